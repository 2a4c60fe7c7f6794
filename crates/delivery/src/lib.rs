//! The sms function's handler: an SNS event carrying alert messages in, one SMS per recipient
//! out. Recipients that cannot be reached yet are republished as a new message with the attempt
//! counted, so a retry never texts someone who already got the SMS; after the final attempt they
//! go to the dead letters. Invalid or opted-out numbers are skipped, logged masked. What became of
//! each settled recipient (sent with the provider's message id, or failed with the reason's
//! class) is reported to the alerts function's delivery ledger after each message.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use aws_lambda_events::sns::SnsEvent;
use flightwatch_domain::message::MessageError;
use flightwatch_domain::ports::{
    AlertBus, BusError, DeliveryReports, OutgoingSms, SendError, SmsSender,
};
use flightwatch_domain::{
    AlertMessage, DeliveryReport, FailureClass, Outcome as Settled, PhoneNumber, RecipientOutcome,
    SmsText,
};
use futures::stream::{self, StreamExt};
use lambda_runtime::Diagnostic;

/// What the handler borrows, built once per cold start.
#[derive(Clone)]
pub struct Texting {
    pub sender: Arc<dyn SmsSender>,
    /// Where recipients still failing are republished for another attempt (the alerts topic).
    pub retries: Arc<dyn AlertBus>,
    /// Where recipients still failing after the final attempt are recorded.
    pub dead_letters: Arc<dyn AlertBus>,
    /// Where each message's settled recipients are reported (the alerts function's ledger).
    pub reports: Arc<dyn DeliveryReports>,
    pub policy: Policy,
}

/// How hard the handler tries.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Messages with this attempt number are the last chance; failures go to the dead letters.
    pub max_attempts: u32,
    /// SMS in flight at once within one invocation.
    pub concurrency: usize,
    /// Tries per SMS within one invocation for transient failures (throttling, 5xx).
    pub tries: u32,
    /// First pause between tries; doubled each time.
    pub backoff: Duration,
    /// The SMS budget of the origination identity, in messages a second (about 1 for a long
    /// code, 3 for toll-free, 100 for a short code); `None`: unpaced. Every send, retries
    /// included, takes the next slot; recipients whose slot falls after the invocation's cutoff
    /// are handed on untried, so a big alert spreads over as many invocations as it takes.
    pub per_second: Option<std::num::NonZeroU32>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            concurrency: 8,
            tries: 3,
            backoff: Duration::from_millis(200),
            per_second: None,
        }
    }
}

/// What one invocation did, summed over its records.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub sent: u32,
    pub skipped: u32,
    pub retried: u32,
    pub dead_lettered: u32,
    /// Delivery reports that could not be handed to the ledger: those recipients stay pending
    /// there although settled here (logged with the alert id).
    pub unreported: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The message cannot be read: retrying will not help.
    #[error("unreadable alert message: {0}")]
    Malformed(#[from] MessageError),
    /// Republishing the recipients still to reach failed: retrying the invocation may help.
    #[error("could not hand on recipients still to reach: {0}")]
    Bus(#[from] BusError),
}

impl From<HandleError> for Diagnostic {
    fn from(e: HandleError) -> Self {
        let error_type = match e {
            HandleError::Malformed(_) => "NonRetryable",
            HandleError::Bus(_) => "Retryable",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

enum Outcome {
    Sent(PhoneNumber, String),
    Skipped(PhoneNumber),
    Failed(PhoneNumber),
    /// Not tried: the invocation was about to run out of time.
    Unsent(PhoneNumber),
}

/// Time kept in hand before the invocation's deadline: no SMS is started after it, so the
/// recipients not reached yet can still be handed on before Lambda stops the function. A short
/// timeout keeps a quarter of it instead.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// Hands out send slots `1 / per_second` apart, shared by every send of one message.
struct Pacer {
    interval: Duration,
    next: std::sync::Mutex<Instant>,
}

impl Pacer {
    /// The first slot is one interval away: the invocation before (this message handed on, or
    /// another part) may have used its last slot just now.
    fn new(per_second: Option<std::num::NonZeroU32>) -> Option<Self> {
        per_second.map(|n| {
            let interval = Duration::from_secs(1) / n.get();
            Self {
                interval,
                next: std::sync::Mutex::new(Instant::now() + interval),
            }
        })
    }

    /// Waits for the next slot; `false` (and no slot used) when it falls after `cutoff`.
    async fn slot(&self, cutoff: Option<Instant>) -> bool {
        let at = {
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let at = (*next).max(Instant::now());
            if cutoff.is_some_and(|c| at >= c) {
                return false;
            }
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
        true
    }
}

/// When to stop starting SMS, for a deadline this far away.
fn cutoff(deadline: Instant) -> Instant {
    let remaining = deadline.saturating_duration_since(Instant::now());
    deadline - DEADLINE_MARGIN.min(remaining / 4)
}

/// Handles one SNS event: every record is one alert message.
pub async fn handle(texting: &Texting, event: SnsEvent) -> Result<Report, HandleError> {
    handle_until(texting, event, None).await
}

/// Handles one SNS event, starting no SMS within `DEADLINE_MARGIN` of `deadline` (Lambda's).
pub async fn handle_until(
    texting: &Texting,
    event: SnsEvent,
    deadline: Option<Instant>,
) -> Result<Report, HandleError> {
    let mut report = Report::default();
    for record in event.records {
        let message = AlertMessage::parse(&record.sns.message)?;
        let r = deliver(texting, &message, deadline).await?;
        report.sent += r.sent;
        report.skipped += r.skipped;
        report.retried += r.retried;
        report.dead_lettered += r.dead_lettered;
        report.unreported += r.unreported;
    }
    Ok(report)
}

/// Sends one alert message's SMS and hands on the recipients still to reach.
#[tracing::instrument(skip_all, fields(alert_id = %message.alert_id, part = message.part, attempt = message.attempt, recipients = message.recipients.len()))]
pub async fn deliver(
    texting: &Texting,
    message: &AlertMessage,
    deadline: Option<Instant>,
) -> Result<Report, HandleError> {
    let cutoff = deadline.map(cutoff);
    let body = SmsText::for_alert(message).into_string();
    // Owned items: a stream of borrowed ones trips the compiler's Send inference in spawned tasks.
    let body = body.as_str();
    let pacer = Pacer::new(texting.policy.per_second);
    let pacer = pacer.as_ref();
    let outcomes: Vec<Outcome> = stream::iter(message.recipients.iter().cloned())
        .map(|to| send_one(texting, message, to, body, cutoff, pacer))
        .buffer_unordered(texting.policy.concurrency.max(1))
        .collect()
        .await;
    let mut report = Report::default();
    let mut failed = Vec::new();
    let mut unsent = Vec::new();
    let mut settled = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Sent(phone, message_id) => {
                report.sent += 1;
                settled.push(RecipientOutcome {
                    phone,
                    outcome: Settled::Sent { message_id },
                });
            }
            Outcome::Skipped(phone) => {
                report.skipped += 1;
                settled.push(RecipientOutcome {
                    phone,
                    outcome: Settled::Failed {
                        class: FailureClass::Rejected,
                    },
                });
            }
            Outcome::Failed(phone) => failed.push(phone),
            Outcome::Unsent(phone) => unsent.push(phone),
        }
    }
    if !unsent.is_empty() {
        // Not tried, so no attempt used up: the same attempt again, in a fresh invocation.
        let count = unsent.len() as u32;
        let rest = AlertMessage {
            recipients: unsent,
            ..message.clone()
        };
        texting.retries.publish(&rest).await?;
        tracing::warn!(count, "out of time: recipients not tried yet handed on");
        report.retried += count;
    }
    if !failed.is_empty() {
        let count = failed.len() as u32;
        let next = message.retry_for(failed);
        if message.attempt < texting.policy.max_attempts {
            texting.retries.publish(&next).await?;
            tracing::warn!(
                count,
                next_attempt = next.attempt,
                "recipients republished for another attempt"
            );
            report.retried += count;
        } else {
            texting.dead_letters.publish(&next).await?;
            tracing::error!(
                count,
                "recipients unreachable after the final attempt; sent to dead letters"
            );
            report.dead_lettered = count;
            settled.extend(next.recipients.into_iter().map(|phone| RecipientOutcome {
                phone,
                outcome: Settled::Failed {
                    class: FailureClass::AttemptsExhausted,
                },
            }));
        }
    }
    if !settled.is_empty() {
        // The SMS are out: a report that cannot be handed on must not fail the invocation, whose
        // retry would text them again. The recipients stay pending in the ledger.
        let count = settled.len() as u32;
        let delivery = DeliveryReport::new(message.alert_id, settled);
        if let Err(e) = texting.reports.report(&delivery).await {
            tracing::error!(count, error = %e, "delivery report lost: these recipients stay pending in the ledger");
            report.unreported += count;
        }
    }
    tracing::info!(
        sent = report.sent,
        skipped = report.skipped,
        "alert message delivered"
    );
    Ok(report)
}

async fn send_one(
    texting: &Texting,
    message: &AlertMessage,
    to: PhoneNumber,
    body: &str,
    cutoff: Option<Instant>,
    pacer: Option<&Pacer>,
) -> Outcome {
    let out_of_time = || cutoff.is_some_and(|c| Instant::now() >= c);
    if out_of_time() {
        return Outcome::Unsent(to);
    }
    let sms = OutgoingSms {
        to,
        body: body.to_owned(),
        alert_id: message.alert_id,
    };
    let mut pause = texting.policy.backoff;
    for try_ in 1..=texting.policy.tries.max(1) {
        if let Some(pacer) = pacer {
            if !pacer.slot(cutoff).await {
                // No slot before the cutoff. Untried: handed on with the same attempt. Tried and
                // failed: the retry, like any failure, takes the next attempt.
                return if try_ == 1 {
                    Outcome::Unsent(sms.to)
                } else {
                    Outcome::Failed(sms.to)
                };
            }
        }
        match texting.sender.send(&sms).await {
            Ok(message_id) => {
                tracing::info!(to = %sms.to, "sms sent");
                return Outcome::Sent(sms.to, message_id);
            }
            Err(SendError::Rejected(why)) => {
                tracing::warn!(to = %sms.to, reason = %why, "sms skipped: number rejected");
                return Outcome::Skipped(sms.to);
            }
            Err(SendError::Transient(why)) => {
                tracing::warn!(to = %sms.to, try_, reason = %why, "sms failed, may retry");
                if try_ < texting.policy.tries {
                    if out_of_time() {
                        break;
                    }
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
    }
    Outcome::Failed(sms.to)
}

/// Wraps alert messages in the SNS event envelope Lambda hands the sms function, exactly as SNS
/// delivers them, so the local stack and the tests exercise the same parsing as AWS.
pub fn sns_event(
    topic_arn: &str,
    messages: &[AlertMessage],
) -> Result<SnsEvent, serde_json::Error> {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": format!("{topic_arn}:local"),
                "Sns": {
                    "Type": "Notification",
                    "MessageId": m.alert_id.to_string(),
                    "TopicArn": topic_arn,
                    "Subject": null,
                    "Message": m.to_json(),
                    "Timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "SignatureVersion": "1",
                    "Signature": "local",
                    "SigningCertUrl": "https://localhost/local.pem",
                    "UnsubscribeUrl": "https://localhost/unsubscribe",
                    "MessageAttributes": {}
                }
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records }))
}

/// Turns a notification as SNS posts it to an HTTP subscriber into the event Lambda would get
/// for it: the same fields, under the Lambda record's names.
pub fn sns_event_from_http(
    notification: &serde_json::Value,
) -> Result<SnsEvent, serde_json::Error> {
    let field = |name: &str| {
        notification
            .get(name)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    let topic_arn = field("TopicArn");
    let record = serde_json::json!({
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": format!("{}:http", topic_arn.as_str().unwrap_or_default()),
        "Sns": {
            "Type": field("Type"),
            "MessageId": field("MessageId"),
            "TopicArn": topic_arn,
            "Subject": field("Subject"),
            "Message": field("Message"),
            "Timestamp": field("Timestamp"),
            "SignatureVersion": field("SignatureVersion"),
            "Signature": field("Signature"),
            "SigningCertUrl": field("SigningCertURL"),
            "UnsubscribeUrl": field("UnsubscribeURL"),
            "MessageAttributes": notification.get("MessageAttributes").cloned().unwrap_or_else(|| serde_json::json!({})),
        }
    });
    serde_json::from_value(serde_json::json!({ "Records": [record] }))
}
