//! The sms handler against fakes: one SMS per recipient it is given, a report on each, nothing
//! for a message delivered twice, and its pace. Retries across invocations are the ledger's, and
//! are tested with it in the storage contract's delivery scenarios.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use flightwatch_delivery::{
    handle, handle_until, sns_event, HandleError, InMemoryClaims, Policy, Report, Texting,
};
use flightwatch_domain::flight::parse_time;
use flightwatch_domain::ports::{
    BusError, Claim, DeliveryReports, OutgoingSms, SendError, SmsClaims, SmsSender,
};
use flightwatch_domain::{
    AirportCode, AlertId, AlertMessage, DeliveryReport, EventKind, FailureClass, FlightNumber,
    FlightSchedule, Outcome, PhoneNumber, Reason,
};

/// Fails each number as scripted: `Transient(n)` fails the first n sends, `Rejected` always.
#[derive(Default)]
struct ScriptedSender {
    script: Mutex<HashMap<String, Script>>,
    sent: Mutex<Vec<OutgoingSms>>,
    /// When each send (failed or not) reached the provider.
    calls: Mutex<Vec<tokio::time::Instant>>,
}

#[derive(Clone, Copy)]
enum Script {
    Transient(u32),
    Rejected,
}

#[async_trait]
impl SmsSender for ScriptedSender {
    async fn send(&self, sms: &OutgoingSms) -> Result<String, SendError> {
        self.calls.lock().unwrap().push(tokio::time::Instant::now());
        let mut script = self.script.lock().unwrap();
        match script.get_mut(sms.to.expose()) {
            Some(Script::Rejected) => return Err(SendError::Rejected("opted out".into())),
            Some(Script::Transient(n)) if *n > 0 => {
                *n -= 1;
                return Err(SendError::Transient("throttled".into()));
            }
            _ => {}
        }
        self.sent.lock().unwrap().push(sms.clone());
        Ok(format!("m-{}", sms.to.expose()))
    }
}

#[derive(Default)]
struct CollectingReports(Mutex<Vec<DeliveryReport>>);

#[async_trait]
impl DeliveryReports for CollectingReports {
    async fn report(&self, report: &DeliveryReport) -> Result<(), BusError> {
        self.0.lock().unwrap().push(report.clone());
        Ok(())
    }
}

struct LostReports;

#[async_trait]
impl DeliveryReports for LostReports {
    async fn report(&self, _: &DeliveryReport) -> Result<(), BusError> {
        Err(BusError("reports topic unreachable".into()))
    }
}

struct DownClaims;

#[async_trait]
impl SmsClaims for DownClaims {
    async fn claim(&self, _: &AlertMessage, _: usize) -> Result<Claim, BusError> {
        Err(BusError("claims bucket unreachable".into()))
    }

    async fn record_sent(&self, _: &AlertMessage, _: usize, _: &str) -> Result<(), BusError> {
        Err(BusError("claims bucket unreachable".into()))
    }
}

fn phone(i: usize) -> PhoneNumber {
    PhoneNumber::parse(&format!("+1415555{i:04}")).unwrap()
}

fn message(recipients: usize) -> AlertMessage {
    AlertMessage {
        version: AlertMessage::VERSION,
        alert_id: AlertId::new(),
        handout: uuid::Uuid::now_v7(),
        flight: FlightSchedule {
            flight_number: FlightNumber::parse("UA123").unwrap(),
            departure_date: "2026-12-01".parse().unwrap(),
            origin: AirportCode::parse("SFO").unwrap(),
            destination: AirportCode::parse("JFK").unwrap(),
            scheduled_departure: parse_time("2026-12-01T08:05:00-08:00").unwrap(),
        },
        event: EventKind::Delayed,
        estimated_departure: Some(parse_time("2026-12-01T10:30:00-08:00").unwrap()),
        reason: Some(Reason::parse("Late inbound aircraft").unwrap()),
        part: 1,
        parts: 1,
        attempt: 1,
        not_before: None,
        recipients: (0..recipients).map(phone).collect(),
    }
}

struct Rig {
    sender: Arc<ScriptedSender>,
    reports: Arc<CollectingReports>,
    texting: Texting,
}

fn rig(script: &[(usize, Script)]) -> Rig {
    let sender = Arc::new(ScriptedSender::default());
    sender.script.lock().unwrap().extend(
        script
            .iter()
            .map(|(i, s)| (phone(*i).expose().to_owned(), *s)),
    );
    let reports = Arc::new(CollectingReports::default());
    let texting = Texting {
        sender: sender.clone(),
        claims: Arc::new(InMemoryClaims::default()),
        reports: reports.clone(),
        policy: Policy {
            concurrency: 4,
            tries: 2,
            backoff: Duration::from_millis(1),
            per_second: None,
        },
    };
    Rig {
        sender,
        reports,
        texting,
    }
}

fn event(m: &AlertMessage) -> aws_lambda_events::sns::SnsEvent {
    sns_event(
        "arn:aws:sns:us-east-1:000000000000:alerts",
        std::slice::from_ref(m),
    )
    .unwrap()
}

/// Who was reported how, by phone; each recipient at most once.
fn heard(rig: &Rig) -> HashMap<String, Outcome> {
    let mut heard = HashMap::new();
    for o in rig
        .reports
        .0
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| r.outcomes.iter())
    {
        let first = heard.insert(o.phone.expose().to_owned(), o.outcome.clone());
        assert!(first.is_none(), "reported twice");
    }
    heard
}

#[tokio::test]
async fn every_recipient_gets_exactly_one_sms_with_the_alert_text() {
    let rig = rig(&[]);
    let report = handle(&rig.texting, event(&message(25))).await.unwrap();
    assert_eq!(
        report,
        Report {
            sent: 25,
            ..Report::default()
        }
    );
    let sent = rig.sender.sent.lock().unwrap();
    let mut to: Vec<_> = sent.iter().map(|s| s.to.clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 25);
    assert_eq!(
        sent[0].body,
        "UA123 SFO-JFK 1 Dec: DELAYED, now departs 10:30 (was 08:05). Reason: Late inbound aircraft"
    );
}

#[tokio::test]
async fn each_recipient_is_reported_sent_rejected_or_to_retry() {
    // 0-2 recover within the invocation, 3-4 do not, 8-9 are rejected outright.
    let rig = rig(&[
        (0, Script::Transient(1)),
        (1, Script::Transient(1)),
        (2, Script::Transient(1)),
        (3, Script::Transient(2)),
        (4, Script::Transient(u32::MAX)),
        (8, Script::Rejected),
        (9, Script::Rejected),
    ]);
    let m = message(20);
    let report = handle(&rig.texting, event(&m)).await.unwrap();
    assert_eq!((report.sent, report.rejected, report.retry), (16, 2, 2));
    let reports = rig.reports.0.lock().unwrap().clone();
    assert_eq!(reports.len(), 1, "one report per message");
    assert_eq!((reports[0].alert_id, reports[0].attempt), (m.alert_id, 1));
    let heard = heard(&rig);
    assert_eq!(heard.len(), 20);
    let rejected = Outcome::Failed {
        class: FailureClass::Rejected,
    };
    assert_eq!(heard[phone(8).expose()], rejected);
    assert_eq!(heard[phone(4).expose()], Outcome::Retry);
    assert_eq!(
        heard[phone(0).expose()],
        Outcome::Sent {
            message_id: format!("m-{}", phone(0).expose())
        }
    );
}

#[tokio::test]
async fn a_message_delivered_twice_texts_nobody_twice() {
    let rig = rig(&[]);
    let m = message(5);
    let first = handle(&rig.texting, event(&m)).await.unwrap();
    let again = handle(&rig.texting, event(&m)).await.unwrap();
    assert_eq!((first.sent, again.sent, again.duplicates), (5, 0, 5));
    assert_eq!(rig.sender.sent.lock().unwrap().len(), 5, "texted once");
    // From the claims: sent, with the same message ids, so the ledger changes nothing.
    let reports = rig.reports.0.lock().unwrap();
    assert_eq!(reports[0].outcomes, reports[1].outcomes);
}

#[tokio::test]
async fn a_retried_invocation_texts_only_whom_the_crashed_one_had_not_claimed() {
    let rig = rig(&[]);
    let m = message(10);
    // The first invocation claimed the first four, texted and recorded two, then crashed.
    for i in 0..4 {
        assert_eq!(rig.texting.claims.claim(&m, i).await.unwrap(), Claim::New);
    }
    for i in 0..2 {
        rig.texting
            .claims
            .record_sent(&m, i, "m-earlier")
            .await
            .unwrap();
    }
    let retry = handle(&rig.texting, event(&m)).await.unwrap();
    assert_eq!((retry.sent, retry.duplicates), (6, 4));
    assert_eq!(
        rig.sender.sent.lock().unwrap().len(),
        6,
        "only the unclaimed texted"
    );
    let heard = heard(&rig);
    let earlier = Outcome::Sent {
        message_id: "m-earlier".into(),
    };
    assert_eq!(heard[phone(0).expose()], earlier);
    assert_eq!(heard[phone(2).expose()], Outcome::Unknown);
    assert!(matches!(heard[phone(9).expose()], Outcome::Sent { .. }));
}

#[tokio::test]
async fn a_lost_report_leaves_the_sms_sent_and_the_invocation_done() {
    let mut rig = rig(&[]);
    rig.texting.reports = Arc::new(LostReports);
    let report = handle(&rig.texting, event(&message(3))).await.unwrap();
    assert_eq!((report.sent, report.unreported), (3, 3));
    assert_eq!(rig.sender.sent.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn an_unreadable_message_is_not_retryable() {
    let rig = rig(&[]);
    let mut event = event(&message(1));
    event.records[0].sns.message = "{\"version\":9}".into();
    let err = handle(&rig.texting, event).await.unwrap_err();
    assert!(matches!(err, HandleError::Malformed(_)));
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "NonRetryable");
}

#[tokio::test]
async fn recipients_that_cannot_be_claimed_are_not_texted_and_reported_to_retry() {
    let mut rig = rig(&[]);
    rig.texting.claims = Arc::new(DownClaims);
    let report = handle(&rig.texting, event(&message(3))).await.unwrap();
    assert_eq!((report.sent, report.retry), (0, 3));
    assert!(rig.sender.sent.lock().unwrap().is_empty());
    assert!(heard(&rig).values().all(|o| *o == Outcome::Retry));
}

#[tokio::test]
async fn a_short_deadline_still_leaves_time_to_send() {
    let rig = rig(&[]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let report = handle_until(
        &rig.texting,
        event(&message(5)),
        Some(deadline),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(report.sent, 5);
}

#[tokio::test]
async fn recipients_not_reached_before_the_deadline_are_reported_untried() {
    let rig = rig(&[]);
    // Already past: nothing may be started.
    let deadline = tokio::time::Instant::now();
    let report = handle_until(
        &rig.texting,
        event(&message(5)),
        Some(deadline),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!((report.sent, report.untried), (0, 5));
    assert!(heard(&rig).values().all(|o| *o == Outcome::Untried));
    assert!(rig.sender.sent.lock().unwrap().is_empty());
}

/// The sms function's timeout, as `serverless.yml` gives it to Lambda.
fn sms_timeout() -> Duration {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../serverless.yml");
    let yaml: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    Duration::from_secs(yaml["functions"]["sms"]["timeout"].as_u64().unwrap())
}

#[tokio::test(start_paused = true)]
async fn paced_sends_keep_to_the_budget_and_leave_the_rest_untried_at_the_cutoff() {
    let mut rig = rig(&[]);
    rig.texting.policy.per_second = std::num::NonZeroU32::new(3);
    let deadline = tokio::time::Instant::now() + sms_timeout();
    let report = handle_until(
        &rig.texting,
        event(&message(500)),
        Some(deadline),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(report.sent + report.untried, 500);
    // Whatever fits before the cutoff, 5 s before the timeout, at 3 a second.
    let fits = (sms_timeout().as_secs() as u32 - 5) * 3;
    assert!(
        (fits - 3..=fits).contains(&report.sent),
        "{} sent, {fits} fit",
        report.sent
    );
    let calls = rig.sender.calls.lock().unwrap();
    for (i, t) in calls.iter().enumerate() {
        let in_second = calls[i..]
            .iter()
            .take_while(|u| **u < *t + Duration::from_secs(1))
            .count();
        assert!(
            in_second <= 3,
            "{in_second} sends in the second from call {i}"
        );
    }
}
