//! The sms Lambda: SNS and S3 clients built once per cold start, then one SNS event per
//! invocation. It runs one invocation at a time (reserved concurrency 1 in `serverless.yml`), so
//! its pace is the origination identity's whole budget.

use std::sync::Arc;

use aws_lambda_events::sns::SnsEvent;
use flightwatch_aws::{S3Claims, SnsSmsSender, SnsTopic};
use flightwatch_config::SmsSettings;
use flightwatch_delivery::{handle_until, Policy, Texting};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    flightwatch_lambda::init_default_subscriber();
    let settings = SmsSettings::from_env()?;
    let sdk = flightwatch_aws::sdk_config().await;
    let texting = Texting {
        sender: Arc::new(SnsSmsSender::from_config(&sdk, settings.sender_id)),
        claims: Arc::new(S3Claims::from_config(&sdk, settings.claims_bucket)),
        reports: Arc::new(SnsTopic::from_config(&sdk, settings.reports_topic.as_str())),
        policy: Policy {
            per_second: settings.sms_per_second,
            ..Policy::default()
        },
    };
    let texting = &texting;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        let deadline = deadline(event.context.deadline);
        handle_until(texting, event.payload, deadline, chrono::Utc::now()).await
    }))
    .await
}

/// Lambda's deadline (milliseconds since the epoch) as an instant on this clock; `None` when it
/// is not in the future (Lambda always sets one; an emulator may not), rather than send nothing.
fn deadline(epoch_ms: u64) -> Option<tokio::time::Instant> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let remaining = epoch_ms.checked_sub(now_ms).filter(|ms| *ms > 0)?;
    Some(tokio::time::Instant::now() + std::time::Duration::from_millis(remaining))
}
