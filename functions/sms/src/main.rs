//! The sms Lambda: SNS and S3 clients built once per execution environment, on its first event,
//! then one SNS event per invocation. It runs one invocation at a time (reserved concurrency 1 in `serverless.yml`), so
//! its pace is the origination identity's whole budget.

use std::sync::Arc;

use aws_lambda_events::sns::SnsEvent;
use flightwatch_aws::{LazySmsClients, SmsClientSettings};
use flightwatch_config::SmsSettings;
use flightwatch_delivery::{handle_until, Policy, Texting};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    flightwatch_lambda::init_logging();
    let settings = SmsSettings::from_env()?;
    // Built on the first event, not before the runtime asks for one.
    let clients = Arc::new(LazySmsClients::new(SmsClientSettings {
        sender_id: settings.sender_id,
        claims_bucket: settings.claims_bucket,
        reports_topic_arn: settings.reports_topic.as_str().to_owned(),
    }));
    let texting = Texting {
        sender: clients.clone(),
        claims: clients.clone(),
        reports: clients,
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
