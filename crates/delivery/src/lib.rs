//! The sms function's handler: an SNS event carrying alert messages in, one SMS per recipient
//! out, and one report back per message. It sends only what it is given: the alerts function's
//! delivery ledger decides who is due, and when to try again. Each recipient is claimed just
//! before its SMS (the bus may deliver a message twice, and Lambda retries an invocation that
//! crashed half-way: only the first claim texts). What became of each recipient (sent with the
//! provider's message id, rejected, to retry, not tried for want of time, or claimed before and
//! so unknown) goes back to the ledger in the report, with phones never logged in clear.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use aws_lambda_events::sns::SnsEvent;
use flightwatch_domain::message::MessageError;
use flightwatch_domain::ports::{
    BusError, Claim, DeliveryReports, OutgoingSms, SendError, SmsClaims, SmsSender,
};
use flightwatch_domain::{
    AlertMessage, DeliveryReport, FailureClass, Outcome, PhoneNumber, RecipientOutcome, SmsText,
};
use futures::stream::{self, StreamExt};
use lambda_runtime::Diagnostic;

/// What the handler borrows, built once per cold start.
#[derive(Clone)]
pub struct Texting {
    pub sender: Arc<dyn SmsSender>,
    /// Where each recipient is claimed before it is texted.
    pub claims: Arc<dyn SmsClaims>,
    /// Where each message's outcomes are reported (the alerts function's ledger).
    pub reports: Arc<dyn DeliveryReports>,
    pub policy: Policy,
}

/// How hard the handler tries within one invocation; the ledger decides about later ones.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// SMS in flight at once within one invocation.
    pub concurrency: usize,
    /// Tries per SMS within one invocation for transient failures (a blip, not throttling for
    /// minutes: that is the ledger's backoff).
    pub tries: u32,
    /// First pause between tries; doubled each time.
    pub backoff: Duration,
    /// The SMS budget of the origination identity, in messages a second (about 1 for a long
    /// code, 3 for toll-free, 100 for a short code); `None`: unpaced. Every send, retries
    /// included, takes the next slot; recipients whose slot falls after the invocation's cutoff
    /// are reported untried, and the ledger hands them out again.
    pub per_second: Option<std::num::NonZeroU32>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            concurrency: 8,
            tries: 2,
            backoff: Duration::from_millis(200),
            per_second: None,
        }
    }
}

/// What one invocation did, summed over its records.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub sent: u32,
    /// Rejected by the provider for good (invalid number, opted out).
    pub rejected: u32,
    /// Failed for now: the ledger hands them out again after its backoff.
    pub retry: u32,
    /// Not tried before the invocation's cutoff: the ledger hands them out again at once.
    pub untried: u32,
    /// Recipients already claimed by an earlier delivery of the same message: not texted again,
    /// reported sent when that delivery recorded its SMS on the claim, unknown otherwise.
    pub duplicates: u32,
    /// Outcomes whose report could not be handed on: the ledger waits, then gives up on them
    /// (`OUTCOME_UNKNOWN`) rather than text anyone twice.
    pub unreported: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The message cannot be read: retrying will not help.
    #[error("unreadable alert message: {0}")]
    Malformed(#[from] MessageError),
}

impl From<HandleError> for Diagnostic {
    fn from(e: HandleError) -> Self {
        let error_type = match e {
            HandleError::Malformed(_) => "NonRetryable",
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
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
    /// The first slot is the message's own (`not_before`, reserved by the ledger, `starts_in`
    /// from now), or one interval away for a message without one: another invocation may have
    /// used its last slot just now.
    fn new(per_second: Option<std::num::NonZeroU32>, starts_in: Option<Duration>) -> Option<Self> {
        per_second.map(|n| {
            let interval = Duration::from_secs(1) / n.get();
            Self {
                interval,
                next: std::sync::Mutex::new(Instant::now() + starts_in.unwrap_or(interval)),
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
    handle_until(texting, event, None, chrono::Utc::now()).await
}

/// Handles one SNS event, starting no SMS within `DEADLINE_MARGIN` of `deadline` (Lambda's);
/// `now` is the wall clock at the start, against which each message's first reserved slot is
/// placed on the invocation's own clock.
pub async fn handle_until(
    texting: &Texting,
    event: SnsEvent,
    deadline: Option<Instant>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Report, HandleError> {
    let mut report = Report::default();
    let started = Instant::now();
    for record in event.records {
        let message = AlertMessage::parse(&record.sns.message)?;
        let starts_in = message.not_before.map(|at| {
            (at - now)
                .to_std()
                .unwrap_or_default()
                .saturating_sub(started.elapsed())
        });
        let r = deliver(texting, &message, deadline, starts_in).await?;
        report.sent += r.sent;
        report.rejected += r.rejected;
        report.retry += r.retry;
        report.untried += r.untried;
        report.duplicates += r.duplicates;
        report.unreported += r.unreported;
    }
    Ok(report)
}

/// Claims one alert message, sends its SMS and reports what became of each recipient.
#[tracing::instrument(skip_all, fields(alert_id = %message.alert_id, handout = %message.handout, attempt = message.attempt, recipients = message.recipients.len()))]
pub async fn deliver(
    texting: &Texting,
    message: &AlertMessage,
    deadline: Option<Instant>,
    starts_in: Option<Duration>,
) -> Result<Report, HandleError> {
    let mut report = Report::default();
    let cutoff = deadline.map(cutoff);
    let body = SmsText::for_alert(message).into_string();
    // Owned items: a stream of borrowed ones trips the compiler's Send inference in spawned tasks.
    let body = body.as_str();
    let pacer = Pacer::new(texting.policy.per_second, starts_in);
    let pacer = pacer.as_ref();
    let sent: Vec<(RecipientOutcome, bool)> = stream::iter(message.recipients.iter().cloned())
        .enumerate()
        .map(|(index, to)| send_one(texting, message, index, to, body, cutoff, pacer))
        .buffer_unordered(texting.policy.concurrency.max(1))
        .collect()
        .await;
    let mut outcomes = Vec::with_capacity(sent.len());
    for (o, claimed_before) in sent {
        match o.outcome {
            _ if claimed_before => report.duplicates += 1,
            Outcome::Sent { .. } => report.sent += 1,
            Outcome::Failed { .. } => report.rejected += 1,
            Outcome::Retry => report.retry += 1,
            Outcome::Untried => report.untried += 1,
            Outcome::Unknown => report.duplicates += 1,
        }
        outcomes.push(o);
    }
    if report.duplicates > 0 {
        tracing::warn!(
            count = report.duplicates,
            "recipients claimed by an earlier delivery of this message: not texted again"
        );
    }
    let count = outcomes.len() as u32;
    let delivery = DeliveryReport::new(message.alert_id, message.attempt, outcomes);
    // The SMS are out: a report that cannot be handed on must not fail the invocation, whose
    // retry would find the message claimed and text nobody. The ledger waits for it, then gives
    // up on knowing.
    if let Err(e) = texting.reports.report(&delivery).await {
        tracing::error!(count, error = %e, "delivery report lost: the ledger will mark these recipients OUTCOME_UNKNOWN");
        report.unreported = count;
    }
    tracing::info!(
        sent = report.sent,
        rejected = report.rejected,
        retry = report.retry,
        untried = report.untried,
        "alert message delivered"
    );
    Ok(report)
}

async fn send_one(
    texting: &Texting,
    message: &AlertMessage,
    index: usize,
    to: PhoneNumber,
    body: &str,
    cutoff: Option<Instant>,
    pacer: Option<&Pacer>,
) -> (RecipientOutcome, bool) {
    let untried = |phone| {
        (
            RecipientOutcome {
                phone,
                outcome: Outcome::Untried,
            },
            false,
        )
    };
    // Its slot first, then the claim: a recipient is claimed only when it is about to be sent.
    if cutoff.is_some_and(|c| Instant::now() >= c) {
        return untried(to);
    }
    if let Some(pacer) = pacer {
        if !pacer.slot(cutoff).await {
            return untried(to);
        }
    }
    match texting.claims.claim(message, index).await {
        // Claimed by an earlier delivery: what it recorded, or unknown.
        Ok(Claim::Taken(sent)) => {
            let outcome = sent.map_or(Outcome::Unknown, |message_id| Outcome::Sent { message_id });
            (RecipientOutcome { phone: to, outcome }, true)
        }
        Ok(Claim::New) => (
            send_claimed(texting, message, index, to, body, cutoff, pacer).await,
            false,
        ),
        Err(e) => {
            // Nothing sent: the ledger hands it out again after its backoff.
            tracing::warn!(error = %e, "recipient could not be claimed; not texted");
            let outcome = Outcome::Retry;
            (RecipientOutcome { phone: to, outcome }, false)
        }
    }
}

/// Sends one claimed recipient's SMS (its first slot taken), retrying a blip in further slots.
async fn send_claimed(
    texting: &Texting,
    message: &AlertMessage,
    index: usize,
    to: PhoneNumber,
    body: &str,
    cutoff: Option<Instant>,
    pacer: Option<&Pacer>,
) -> RecipientOutcome {
    let out_of_time = || cutoff.is_some_and(|c| Instant::now() >= c);
    let outcome = |phone, outcome| RecipientOutcome { phone, outcome };
    let sms = OutgoingSms {
        to,
        body: body.to_owned(),
        alert_id: message.alert_id,
    };
    let mut pause = texting.policy.backoff;
    for try_ in 1..=texting.policy.tries.max(1) {
        if let Some(pacer) = pacer.filter(|_| try_ > 1) {
            if !pacer.slot(cutoff).await {
                // Tried and failed, no slot left: the ledger's backoff.
                return outcome(sms.to, Outcome::Retry);
            }
        }
        match texting.sender.send(&sms).await {
            Ok(message_id) => {
                tracing::info!(to = %sms.to, "sms sent");
                // Best effort: without it, a later delivery reports this recipient unknown.
                if let Err(e) = texting
                    .claims
                    .record_sent(message, index, &message_id)
                    .await
                {
                    tracing::warn!(error = %e, "sent, but not recorded on the claim");
                }
                return outcome(sms.to, Outcome::Sent { message_id });
            }
            Err(SendError::Rejected(why)) => {
                tracing::warn!(to = %sms.to, reason = %why, "sms rejected for good");
                let class = FailureClass::Rejected;
                return outcome(sms.to, Outcome::Failed { class });
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
    outcome(sms.to, Outcome::Retry)
}

/// Claims kept in memory: what the tests use where no bucket is.
#[derive(Default)]
pub struct InMemoryClaims(
    std::sync::Mutex<std::collections::HashMap<(uuid::Uuid, usize), Option<String>>>,
);

impl InMemoryClaims {
    fn taken(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(uuid::Uuid, usize), Option<String>>>
    {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl SmsClaims for InMemoryClaims {
    async fn claim(&self, message: &AlertMessage, index: usize) -> Result<Claim, BusError> {
        let mut taken = self.taken();
        match taken.get(&(message.handout, index)) {
            Some(sent) => Ok(Claim::Taken(sent.clone())),
            None => {
                taken.insert((message.handout, index), None);
                Ok(Claim::New)
            }
        }
    }

    async fn record_sent(
        &self,
        message: &AlertMessage,
        index: usize,
        message_id: &str,
    ) -> Result<(), BusError> {
        self.taken()
            .insert((message.handout, index), Some(message_id.to_owned()));
        Ok(())
    }
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
