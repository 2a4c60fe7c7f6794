//! Lambda glue shared by the functions: API Gateway REST proxy events served by the same axum
//! routers as the local stack, and the alerts function's other triggers: EventBridge's schedule
//! that runs the relay, SNS with the sms function's delivery reports, and CloudWatch Logs with
//! the carrier's delivery status; and the watch function's schedule and SNS announcements.

pub mod carrier;
mod logging;

use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::cloudwatch_logs::LogsEvent;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sns::SnsEvent;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::Router;
use lambda_http::lambda_runtime::{Context, Diagnostic};
use lambda_http::request::LambdaRequest;
use lambda_http::{service_fn, LambdaEvent, RequestExt};
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;

pub use lambda_http::Error;
pub use logging::init_logging;

/// Serves an HTTP function: API Gateway REST events in, the router's responses out. The stage
/// (`/dev`) is left out of the routed path by lambda_http itself, with
/// `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` set in the function's environment (`serverless.yml`),
/// so the routes are the same as in `openapi.yaml` and in the local stack.
pub async fn run_http(router: Router) -> Result<(), Error> {
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<LambdaRequest>| {
        serve(router.clone(), event.payload, event.context)
    }))
    .await
}

/// One API Gateway REST request through the router, as lambda_http's own adapter serves it
/// (its request, the invocation's context and X-Ray trace id on it), with the response made
/// here: lambda_http's would re-decode each text body by its charset, linking encoding_rs's
/// tables (150 KiB) for routers that write only UTF-8 (issue 13's size budgets).
async fn serve(
    router: Router,
    request: LambdaRequest,
    context: Context,
) -> Result<ApiGatewayProxyResponse, InvocationError> {
    let mut request: lambda_http::Request = request.into();
    if let Some(trace) = context
        .xray_trace_id
        .as_deref()
        .and_then(|id| HeaderValue::from_str(id).ok())
    {
        request.headers_mut().insert("x-amzn-trace-id", trace);
    }
    let response = router
        .oneshot(request.with_lambda_context(context))
        .await
        .unwrap_or_else(|never| match never {});
    rest_response(response).await
}

/// API Gateway's REST response: the body as text when it is UTF-8 (every answer of ours), else
/// base64; the headers as `multiValueHeaders` only, since API Gateway merges `headers` into
/// them and would repeat each.
async fn rest_response(response: Response) -> Result<ApiGatewayProxyResponse, InvocationError> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| InvocationError::RequestFailed(Box::new(e)))?;
    let mut answer = ApiGatewayProxyResponse::default();
    answer.status_code = i64::from(parts.status.as_u16());
    answer.multi_value_headers = parts.headers;
    if !bytes.is_empty() {
        answer.body = Some(match String::from_utf8(bytes.into()) {
            Ok(text) => Body::Text(text),
            Err(binary) => {
                answer.is_base64_encoded = true;
                Body::Binary(binary.into_bytes())
            }
        });
    }
    Ok(answer)
}

/// What invokes the alerts function: EventBridge's schedule, SNS, CloudWatch Logs, or API
/// Gateway.
enum Invocation {
    Schedule(Box<EventBridgeEvent>),
    Notifications(Box<SnsEvent>),
    CarrierStatus(Box<LogsEvent>),
    Request(Box<LambdaRequest>),
}

impl Invocation {
    /// An EventBridge event if it reads as one (API Gateway's have no `detail-type`), else an
    /// API Gateway request. (Not a serde untagged enum: lambda_http's request does not
    /// deserialize from serde's buffered content.)
    fn read(payload: Value) -> Result<Self, serde_json::Error> {
        // Read from a borrow: an API request is not copied to find out it is not a schedule.
        if let Ok(event) = EventBridgeEvent::deserialize(&payload) {
            return Ok(Self::Schedule(Box::new(event)));
        }
        // SNS events are `{"Records": [...]}`, CloudWatch Logs' `{"awslogs": ...}`: no API
        // Gateway request has either.
        if payload.get("Records").is_some() {
            return SnsEvent::deserialize(&payload).map(|e| Self::Notifications(Box::new(e)));
        }
        if payload.get("awslogs").is_some() {
            return LogsEvent::deserialize(&payload).map(|e| Self::CarrierStatus(Box::new(e)));
        }
        serde_json::from_value(payload).map(|r| Self::Request(Box::new(r)))
    }
}

/// Why an invocation failed, as the Lambda runtime reports it: the `errorType` that CloudWatch,
/// the invocation result and on-failure destinations show, instead of a Rust type name.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// The event is neither an API Gateway REST request nor the schedule: sending it again
    /// will not help.
    #[error("the event is neither an API Gateway REST request nor a scheduled event: {0}")]
    UnreadableEvent(#[source] serde_json::Error),
    /// The router's response could not be read or turned into API Gateway's format.
    #[error("serving the request failed: {0}")]
    RequestFailed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The scheduled relay failed; the next schedule runs it again.
    #[error("the relay failed: {0}")]
    RelayFailed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An SNS notification could not be handled (an unreadable report, the ledger unreachable):
    /// Lambda retries it, then sends it to the on-failure destination.
    #[error("handling an SNS notification failed: {0}")]
    NotificationFailed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The carrier's delivery status could not be recorded: Lambda retries the batch.
    #[error("recording the carrier's delivery status failed: {0}")]
    CarrierStatusFailed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An event function's scheduled run failed; the next schedule runs it again.
    #[error("the scheduled run failed: {0}")]
    ScheduledRunFailed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An event of a kind this function is not subscribed to.
    #[error("this function takes only its schedule and SNS events")]
    UnexpectedEvent,
}

impl From<InvocationError> for Diagnostic {
    fn from(e: InvocationError) -> Self {
        let error_type = match &e {
            InvocationError::UnreadableEvent(_) => "UnreadableEvent",
            InvocationError::RequestFailed(_) => "RequestFailed",
            InvocationError::RelayFailed(_) => "RelayFailed",
            InvocationError::NotificationFailed(_) => "NotificationFailed",
            InvocationError::CarrierStatusFailed(_) => "CarrierStatusFailed",
            InvocationError::ScheduledRunFailed(_) => "ScheduledRunFailed",
            InvocationError::UnexpectedEvent => "UnexpectedEvent",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// Serves the alerts function: API requests through the router, scheduled events (every minute
/// in AWS) through `on_schedule`, which runs the relay, each SNS message (a delivery report)
/// through `on_message`, and each batch of the carrier's delivery status through `on_carrier`.
/// `on_schedule` is given the time left before the invocation's deadline, so its budget follows
/// the function's timeout in `serverless.yml` rather than restating it.
pub async fn run_alerts<F, Fut, E, M, MFut, ME, C, CFut, CE>(
    router: Router,
    on_schedule: F,
    on_message: M,
    on_carrier: C,
) -> Result<(), Error>
where
    F: Fn(Duration) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Value, E>> + Send,
    E: std::error::Error + Send + Sync + 'static,
    M: Fn(String) -> MFut + Clone + Send + 'static,
    MFut: Future<Output = Result<(), ME>> + Send,
    ME: std::error::Error + Send + Sync + 'static,
    C: Fn(Vec<flightwatch_domain::CarrierOutcome>) -> CFut + Clone + Send + 'static,
    CFut: Future<Output = Result<u64, CE>> + Send,
    CE: std::error::Error + Send + Sync + 'static,
{
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = router.clone();
        let on_schedule = on_schedule.clone();
        let on_message = on_message.clone();
        let on_carrier = on_carrier.clone();
        async move {
            let LambdaEvent { payload, context } = event;
            let invocation = Invocation::read(payload).map_err(InvocationError::UnreadableEvent)?;
            let request = match invocation {
                Invocation::Request(request) => *request,
                Invocation::Schedule(event) => {
                    tracing::debug!(source = %event.source, detail_type = %event.detail_type, "scheduled run");
                    let left = context
                        .deadline()
                        .duration_since(SystemTime::now())
                        .unwrap_or_default();
                    return on_schedule(left)
                        .await
                        .map_err(|e| InvocationError::RelayFailed(Box::new(e)));
                }
                Invocation::Notifications(event) => {
                    let count = event.records.len();
                    for record in event.records {
                        on_message(record.sns.message)
                            .await
                            .map_err(|e| InvocationError::NotificationFailed(Box::new(e)))?;
                    }
                    return Ok(serde_json::json!({ "handled": count }));
                }
                Invocation::CarrierStatus(event) => {
                    let (outcomes, unreadable) = carrier::outcomes(&event);
                    if unreadable > 0 {
                        tracing::warn!(unreadable, "log lines that are not SMS delivery status skipped");
                    }
                    let changed = on_carrier(outcomes)
                        .await
                        .map_err(|e| InvocationError::CarrierStatusFailed(Box::new(e)))?;
                    return Ok(serde_json::json!({ "changed": changed, "unreadable": unreadable }));
                }
            };
            let response = serve(app, request, context).await?;
            serde_json::to_value(response).map_err(|e| InvocationError::RequestFailed(Box::new(e)))
        }
    }))
    .await
}

/// Serves an event function (the watch function): EventBridge's schedule through `on_schedule`,
/// each SNS message through `on_message`, whose answers are the invocation's result. A failure
/// fails the invocation, for Lambda to retry it and then hand it to the on-failure destination.
pub async fn run_events<F, Fut, E, M, MFut, ME>(on_schedule: F, on_message: M) -> Result<(), Error>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Value, E>> + Send,
    E: std::error::Error + Send + Sync + 'static,
    M: Fn(String) -> MFut + Clone + Send + 'static,
    MFut: Future<Output = Result<Value, ME>> + Send,
    ME: std::error::Error + Send + Sync + 'static,
{
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let on_schedule = on_schedule.clone();
        let on_message = on_message.clone();
        async move {
            match Invocation::read(event.payload).map_err(InvocationError::UnreadableEvent)? {
                Invocation::Schedule(_) => on_schedule()
                    .await
                    .map_err(|e| InvocationError::ScheduledRunFailed(Box::new(e))),
                Invocation::Notifications(event) => {
                    let mut answers = Vec::with_capacity(event.records.len());
                    for record in event.records {
                        let answer = on_message(record.sns.message)
                            .await
                            .map_err(|e| InvocationError::NotificationFailed(Box::new(e)))?;
                        answers.push(answer);
                    }
                    Ok(Value::Array(answers))
                }
                Invocation::CarrierStatus(_) | Invocation::Request(_) => {
                    Err(InvocationError::UnexpectedEvent)
                }
            }
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/../../tests/lambda/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn the_schedule_sns_and_api_requests_are_told_apart_by_their_types() {
        let schedule = Invocation::read(fixture("relay-schedule.json"));
        assert!(matches!(schedule, Ok(Invocation::Schedule(_))));
        let report = Invocation::read(fixture("delivery-report.json"));
        assert!(matches!(report, Ok(Invocation::Notifications(_))));
        let request = Invocation::read(fixture("list-alerts.json"));
        assert!(matches!(request, Ok(Invocation::Request(_))));
        let status = Invocation::read(fixture("carrier-status.json"));
        assert!(matches!(status, Ok(Invocation::CarrierStatus(_))));
        assert!(Invocation::read(serde_json::json!({"source": "aws.events"})).is_err());
    }

    /// A REST request through a router comes back as API Gateway takes it: the status, each
    /// header in `multiValueHeaders` only, UTF-8 as text, anything else as base64, no body as none.
    #[tokio::test]
    async fn the_routers_answers_are_api_gateway_rest_responses() {
        use axum::routing::get;
        // lambda_http routes the stage in the path unless the function's environment says not
        // to (`serverless.yml`), which a test cannot set for its process alone.
        let stage = fixture("list-alerts.json")["requestContext"]["stage"]
            .as_str()
            .map(|stage| format!("/{stage}"))
            .unwrap_or_default();
        let routes = Router::new()
            .route(
                "/alerts",
                get(|| async {
                    (
                        [("content-type", "application/problem+json")],
                        axum::response::AppendHeaders([("vary", "a"), ("vary", "b")]),
                        "{\"title\":\"é\"}",
                    )
                }),
            )
            .route("/binary", get(|| async { vec![0xffu8, 0x00] }))
            .route(
                "/empty",
                get(|| async { axum::http::StatusCode::NO_CONTENT }),
            );
        let router = Router::new().nest(&stage, routes);
        let request = |path: &str| {
            let mut event = fixture("list-alerts.json");
            event["path"] = path.into();
            event["resource"] = path.into();
            event["requestContext"]["path"] = path.into();
            serde_json::from_value::<LambdaRequest>(event).expect("a REST request")
        };

        let text = serve(router.clone(), request("/alerts"), Context::default())
            .await
            .expect("served");
        assert_eq!(text.status_code, 200);
        assert!(text.headers.is_empty());
        assert_eq!(text.multi_value_headers.get_all("vary").iter().count(), 2);
        assert!(!text.is_base64_encoded);
        assert!(matches!(&text.body, Some(Body::Text(t)) if t == "{\"title\":\"é\"}"));
        let json = serde_json::to_value(&text).expect("serializes");
        assert_eq!(
            json["multiValueHeaders"]["vary"],
            serde_json::json!(["a", "b"])
        );

        let binary = serve(router.clone(), request("/binary"), Context::default())
            .await
            .expect("served");
        assert!(binary.is_base64_encoded);
        assert_eq!(
            serde_json::to_value(&binary).expect("serializes")["body"],
            "/wA="
        );

        let empty = serve(router, request("/empty"), Context::default())
            .await
            .expect("served");
        assert_eq!(empty.status_code, 204);
        assert!(empty.body.is_none());
    }

    #[test]
    fn each_failure_has_an_error_type_that_says_what_failed() {
        let unreadable = serde_json::from_str::<LambdaRequest>("{}").unwrap_err();
        let diagnostic = Diagnostic::from(InvocationError::UnreadableEvent(unreadable));
        assert_eq!(diagnostic.error_type, "UnreadableEvent");
        let relay = InvocationError::RelayFailed("storage failed (Transient)".into());
        assert_eq!(Diagnostic::from(relay).error_type, "RelayFailed");
    }
}
