//! Lambda glue shared by the functions: API Gateway REST proxy events served by the same axum
//! routers as the local stack, and the alerts function's second trigger, the schedule that runs
//! the outbox relay.

use std::future::Future;
use std::time::{Duration, SystemTime};

use axum::Router;
use lambda_http::lambda_runtime::Diagnostic;
use lambda_http::request::{LambdaRequest, RequestContext};
use lambda_http::{service_fn, Adapter, LambdaEvent, RequestExt, Service};
use serde_json::Value;
use tower::util::MapRequest;
use tower::ServiceExt;

pub use lambda_http::tracing::init_default_subscriber;
pub use lambda_http::Error;

/// The router behind API Gateway: the stage (`/dev`) is cut from the path before routing, so the
/// routes are the same as in `openapi.yaml` and in the local stack, whatever the stage is called.
pub fn rest_api(
    router: Router,
) -> MapRequest<Router, fn(lambda_http::Request) -> lambda_http::Request> {
    MapRequest::new(router, strip_stage as fn(_) -> _)
}

fn strip_stage(mut req: lambda_http::Request) -> lambda_http::Request {
    let stage = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.stage.clone(),
        _ => None,
    };
    if let Some(stage) = stage {
        let prefix = format!("/{stage}");
        let path = req.uri().path();
        if let Some(rest) = path
            .strip_prefix(&prefix)
            .filter(|r| r.is_empty() || r.starts_with('/'))
        {
            let rest = if rest.is_empty() { "/" } else { rest };
            let path_and_query = match req.uri().query() {
                Some(q) => format!("{rest}?{q}"),
                None => rest.to_owned(),
            };
            let mut parts = req.uri().clone().into_parts();
            if let Ok(pq) = path_and_query.parse() {
                parts.path_and_query = Some(pq);
                if let Ok(uri) = http::Uri::from_parts(parts) {
                    *req.uri_mut() = uri;
                }
            }
        }
    }
    req
}

/// Serves an HTTP function: API Gateway REST events in, the router's responses out.
pub async fn run_http(router: Router) -> Result<(), Error> {
    lambda_http::run(rest_api(router)).await
}

/// Whether an event is EventBridge's scheduled trigger rather than an API request.
fn is_scheduled(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some("aws.events")
}

/// Why an invocation failed, as the Lambda runtime reports it: the `errorType` that CloudWatch,
/// the invocation result and on-failure destinations show, instead of a Rust type name.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The event is neither an API Gateway REST request nor the schedule: sending it again
    /// will not help.
    #[error("the event is neither an API Gateway REST request nor a scheduled event: {0}")]
    UnreadableEvent(#[source] serde_json::Error),
    /// The router's response could not be turned into API Gateway's format.
    #[error("serving the request failed: {0}")]
    RequestFailed(#[source] serde_json::Error),
    /// The scheduled outbox relay failed; the next schedule runs it again.
    #[error("the outbox relay failed: {0}")]
    RelayFailed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<InvocationError> for Diagnostic {
    fn from(e: InvocationError) -> Self {
        let error_type = match &e {
            InvocationError::UnreadableEvent(_) => "UnreadableEvent",
            InvocationError::RequestFailed(_) => "RequestFailed",
            InvocationError::RelayFailed(_) => "RelayFailed",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// Serves the alerts function: API requests through the router, and scheduled events (every
/// minute in AWS) through `on_schedule`, which publishes alerts still pending. It is given the
/// time left before the invocation's deadline, so its budget follows the function's timeout in
/// `serverless.yml` rather than restating it.
pub async fn run_http_and_schedule<F, Fut, E>(router: Router, on_schedule: F) -> Result<(), Error>
where
    F: Fn(Duration) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Value, E>> + Send,
    E: std::error::Error + Send + Sync + 'static,
{
    let app = rest_api(router);
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = app.clone();
        let on_schedule = on_schedule.clone();
        async move {
            let LambdaEvent { payload, context } = event;
            if is_scheduled(&payload) {
                let left = context
                    .deadline()
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                return on_schedule(left)
                    .await
                    .map_err(|e| InvocationError::RelayFailed(Box::new(e)));
            }
            let request: LambdaRequest =
                serde_json::from_value(payload).map_err(InvocationError::UnreadableEvent)?;
            let mut adapter = Adapter::from(app);
            // The router answers every request, errors included, so this cannot fail.
            let response = async {
                adapter
                    .ready()
                    .await?
                    .call(LambdaEvent::new(request, context))
                    .await
            }
            .await
            .map_err(|never| match never {})?;
            serde_json::to_value(response).map_err(InvocationError::RequestFailed)
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_an_error_type_that_says_what_failed() {
        let unreadable = serde_json::from_str::<LambdaRequest>("{}").unwrap_err();
        let diagnostic = Diagnostic::from(InvocationError::UnreadableEvent(unreadable));
        assert_eq!(diagnostic.error_type, "UnreadableEvent");
        let relay = InvocationError::RelayFailed("storage failed (Transient)".into());
        assert_eq!(Diagnostic::from(relay).error_type, "RelayFailed");
    }
}
