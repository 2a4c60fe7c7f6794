//! The subscribers' end of SNS HTTP subscriptions on the AWS path: SNS posts each notification
//! here, and it is handed on in the same event envelope Lambda would build from it (to the sms
//! handler for the alerts topic, to the delivery ledger for the reports topic). Locally, without
//! SNS, the sms handler reports straight into the ledger (`LedgerReports`).

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::sns::SnsEvent;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use flightwatch_domain::ports::{AlertStore, BusError, DeliveryReports};
use flightwatch_domain::DeliveryReport;
use serde_json::Value;

/// What to do with an event from the topic; it runs on its own task, as Lambda's async
/// invocation would.
pub(crate) type OnEvent = Arc<dyn Fn(SnsEvent) + Send + Sync>;

/// Accepts deliveries from `topic_arn` only: anything else posted here could send real SMS or
/// write the ledger.
pub(crate) fn router(path: &str, topic_arn: String, on_event: OnEvent) -> Router {
    Router::new()
        .route(path, post(deliver))
        .with_state(Arc::new((topic_arn, on_event)))
}

/// Answers at once, as Lambda's async invocation does.
async fn deliver(State(state): State<Arc<(String, OnEvent)>>, body: String) -> StatusCode {
    let (topic_arn, on_event) = (&state.0, &state.1);
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
    match flightwatch_delivery::sns_event_from_http(&notification) {
        Ok(event) => {
            on_event(event);
            StatusCode::OK
        }
        Err(e) => {
            tracing::error!(error = %e, "not an SNS notification");
            StatusCode::BAD_REQUEST
        }
    }
}

/// The sms handler's reports written straight into the alerts store's ledger, where no reports
/// topic stands between them.
pub struct LedgerReports(pub Arc<dyn AlertStore>);

#[async_trait]
impl DeliveryReports for LedgerReports {
    async fn report(&self, report: &DeliveryReport) -> Result<(), BusError> {
        flightwatch_app::record_outcomes(self.0.as_ref(), report)
            .await
            .map(drop)
            .map_err(|e| BusError(Box::new(e)))
    }
}
