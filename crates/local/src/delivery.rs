//! The sms function's end of an SNS HTTP subscription: SNS posts each notification here; it is
//! handed to the sms handler in the same event envelope Lambda would build from it.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use flightwatch_delivery::Texting;
use serde_json::Value;

/// Accepts deliveries from `topic_arn` only: anything else posted here could send real SMS.
pub(crate) fn router(texting: Texting, topic_arn: String) -> Router {
    Router::new()
        .route(crate::SNS_DELIVERY_PATH, post(deliver))
        .with_state(Arc::new((texting, topic_arn)))
}

/// Answers at once, as Lambda's async invocation does; the SMS go out on their own task.
async fn deliver(State(state): State<Arc<(Texting, String)>>, body: String) -> StatusCode {
    let (texting, topic_arn) = (&state.0, &state.1);
    let Ok(notification) = serde_json::from_str::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    match notification.get("Type").and_then(Value::as_str) {
        Some("Notification") => {}
        Some("SubscriptionConfirmation") => {
            // Real SNS waits for SubscribeURL to be visited; emulators confirm on their own.
            tracing::info!("subscription confirmation received");
            return StatusCode::OK;
        }
        _ => return StatusCode::BAD_REQUEST,
    }
    if notification.get("TopicArn").and_then(Value::as_str) != Some(topic_arn.as_str()) {
        tracing::warn!("refused a notification from another topic");
        return StatusCode::FORBIDDEN;
    }
    let event = match flightwatch_delivery::sns_event_from_http(&notification) {
        Ok(event) => event,
        Err(e) => {
            tracing::error!(error = %e, "not an SNS notification");
            return StatusCode::BAD_REQUEST;
        }
    };
    let texting = texting.clone();
    tokio::spawn(async move {
        if let Err(e) = flightwatch_delivery::handle(&texting, event).await {
            tracing::error!(error = %e, "sms invocation failed");
        }
    });
    StatusCode::OK
}
