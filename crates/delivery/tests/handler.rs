//! The sms handler against fakes: exactly one SMS per reachable recipient, retries without
//! duplicates, dead letters after the final attempt.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use flightwatch_delivery::{handle, sns_event, HandleError, Policy, Report, Texting};
use flightwatch_domain::flight::parse_time;
use flightwatch_domain::ports::{
    AlertBus, BusError, DeliveryReports, OutgoingSms, SendError, SmsSender,
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

#[derive(Default)]
struct CollectingBus(Mutex<Vec<AlertMessage>>);

#[async_trait]
impl AlertBus for CollectingBus {
    async fn publish(&self, message: &AlertMessage) -> Result<(), BusError> {
        self.0.lock().unwrap().push(message.clone());
        Ok(())
    }
}

struct DownBus;

#[async_trait]
impl AlertBus for DownBus {
    async fn publish(&self, _: &AlertMessage) -> Result<(), BusError> {
        Err(BusError("topic unreachable".into()))
    }
}

fn phone(i: usize) -> PhoneNumber {
    PhoneNumber::parse(&format!("+1415555{i:04}")).unwrap()
}

fn message(recipients: usize) -> AlertMessage {
    AlertMessage {
        version: 1,
        alert_id: AlertId::new(),
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
        recipients: (0..recipients).map(phone).collect(),
    }
}

struct Rig {
    sender: Arc<ScriptedSender>,
    retries: Arc<CollectingBus>,
    dead: Arc<CollectingBus>,
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
    let retries = Arc::new(CollectingBus::default());
    let dead = Arc::new(CollectingBus::default());
    let reports = Arc::new(CollectingReports::default());
    let texting = Texting {
        sender: sender.clone(),
        retries: retries.clone(),
        dead_letters: dead.clone(),
        reports: reports.clone(),
        policy: Policy {
            max_attempts: 3,
            concurrency: 4,
            tries: 2,
            backoff: Duration::from_millis(1),
            per_second: None,
        },
    };
    Rig {
        sender,
        retries,
        dead,
        reports,
        texting,
    }
}

/// Runs a message and every retry it spawns, as SNS would redeliver them.
async fn run_to_the_end(rig: &Rig, first: AlertMessage) -> Report {
    let mut total = Report::default();
    let mut queue = vec![first];
    while let Some(m) = queue.pop() {
        let r = handle(
            &rig.texting,
            sns_event("arn:aws:sns:us-east-1:000000000000:alerts", &[m]).unwrap(),
        )
        .await
        .unwrap();
        total.sent += r.sent;
        total.skipped += r.skipped;
        total.retried += r.retried;
        total.dead_lettered += r.dead_lettered;
        queue.extend(rig.retries.0.lock().unwrap().drain(..));
    }
    total
}

#[tokio::test]
async fn every_recipient_gets_exactly_one_sms_with_the_alert_text() {
    let rig = rig(&[]);
    let report = run_to_the_end(&rig, message(25)).await;
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
async fn partial_failures_end_with_one_sms_or_one_recorded_reason_per_recipient() {
    // 0-2 recover within the invocation, 3-5 need a republished attempt, 6-7 never recover,
    // 8-9 are rejected outright.
    let rig = rig(&[
        (0, Script::Transient(1)),
        (1, Script::Transient(1)),
        (2, Script::Transient(1)),
        (3, Script::Transient(3)),
        (4, Script::Transient(3)),
        (5, Script::Transient(2)),
        (6, Script::Transient(u32::MAX)),
        (7, Script::Transient(u32::MAX)),
        (8, Script::Rejected),
        (9, Script::Rejected),
    ]);
    let report = run_to_the_end(&rig, message(20)).await;
    assert_eq!(report.sent, 16);
    assert_eq!(report.skipped, 2);
    assert_eq!(report.dead_lettered, 2);

    let sent = rig.sender.sent.lock().unwrap();
    let mut counts: HashMap<String, u32> = HashMap::new();
    for s in sent.iter() {
        *counts.entry(s.to.expose().to_owned()).or_default() += 1;
    }
    assert!(
        counts.values().all(|&n| n == 1),
        "someone got two SMS: {counts:?}"
    );
    let dead = rig.dead.0.lock().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempt, 4);
    assert_eq!(dead[0].recipients, vec![phone(6), phone(7)]);
    for i in 0..20 {
        let p = phone(i).expose().to_owned();
        let accounted = counts.contains_key(&p) as u32
            + (i == 8 || i == 9) as u32
            + dead[0].recipients.contains(&phone(i)) as u32;
        assert_eq!(accounted, 1, "recipient {i}");
    }
    // The ledger hears of every recipient once, with what became of it.
    let reports = rig.reports.0.lock().unwrap();
    let mut heard: HashMap<String, Outcome> = HashMap::new();
    for o in reports.iter().flat_map(|r| r.outcomes.iter()) {
        assert!(
            heard
                .insert(o.phone.expose().to_owned(), o.outcome.clone())
                .is_none(),
            "reported twice"
        );
    }
    assert_eq!(heard.len(), 20);
    let rejected = Outcome::Failed {
        class: FailureClass::Rejected,
    };
    let exhausted = Outcome::Failed {
        class: FailureClass::AttemptsExhausted,
    };
    assert_eq!(heard[phone(8).expose()], rejected);
    assert_eq!(heard[phone(6).expose()], exhausted);
    assert_eq!(
        heard[phone(3).expose()],
        Outcome::Sent {
            message_id: format!("m-{}", phone(3).expose())
        }
    );
}

#[tokio::test]
async fn a_lost_report_leaves_the_sms_sent_and_the_invocation_done() {
    let mut rig = rig(&[]);
    rig.texting.reports = Arc::new(LostReports);
    let report = handle(
        &rig.texting,
        sns_event("arn:aws:sns:us-east-1:000000000000:alerts", &[message(3)]).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!((report.sent, report.unreported), (3, 3));
    assert_eq!(
        rig.sender.sent.lock().unwrap().len(),
        3,
        "nobody texted twice"
    );
}

#[tokio::test]
async fn an_unreadable_message_is_not_retryable() {
    let rig = rig(&[]);
    let mut event = sns_event("arn:aws:sns:us-east-1:000000000000:alerts", &[message(1)]).unwrap();
    event.records[0].sns.message = "{\"version\":9}".into();
    let err = handle(&rig.texting, event).await.unwrap_err();
    assert!(matches!(err, HandleError::Malformed(_)));
    let diagnostic = lambda_runtime::Diagnostic::from(err);
    assert_eq!(diagnostic.error_type, "NonRetryable");
}

#[tokio::test]
async fn a_failed_republish_is_retryable_and_sends_nothing_twice() {
    let mut rig = rig(&[(0, Script::Transient(u32::MAX))]);
    rig.texting.retries = Arc::new(DownBus);
    let err = handle(
        &rig.texting,
        sns_event("arn:aws:sns:us-east-1:000000000000:alerts", &[message(3)]).unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "Retryable"
    );
    assert_eq!(rig.sender.sent.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_short_deadline_still_leaves_time_to_send() {
    let rig = rig(&[]);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    let event = sns_event("arn:aws:sns:us-east-1:000000000000:alerts", &[message(5)]).unwrap();
    let report = flightwatch_delivery::handle_until(&rig.texting, event, Some(deadline))
        .await
        .unwrap();
    assert_eq!(report.sent, 5);
}

#[tokio::test]
async fn recipients_not_reached_before_the_deadline_are_handed_on_untried() {
    let rig = rig(&[]);
    // Already past: nothing may be started.
    let deadline = tokio::time::Instant::now();
    let event = sns_event("arn:aws:sns:us-east-1:000000000000:alerts", &[message(5)]).unwrap();
    let report = flightwatch_delivery::handle_until(&rig.texting, event, Some(deadline))
        .await
        .unwrap();
    assert_eq!(report.sent, 0);
    assert_eq!(report.retried, 5);
    let handed_on = rig.retries.0.lock().unwrap().clone();
    assert_eq!(handed_on.len(), 1);
    assert_eq!(handed_on[0].attempt, 1, "no attempt used up");
    assert_eq!(handed_on[0].recipients.len(), 5);
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
async fn a_thousand_passengers_at_three_a_second_spread_over_invocations_each_texted_once() {
    let mut rig = rig(&[]);
    rig.texting.policy.per_second = std::num::NonZeroU32::new(3);
    let one = message(1);
    let phones: Vec<PhoneNumber> = (0..1000).map(phone).collect();
    let alert = flightwatch_domain::Alert {
        seq: 1,
        id: one.alert_id,
        flight_number: one.flight.flight_number.clone(),
        departure_date: one.flight.departure_date,
        event: one.event,
        reason: one.reason.clone(),
        estimated_departure: one.estimated_departure,
        recipients: 1000,
        publication: flightwatch_domain::Publication::Pending,
        created_at: chrono::Utc::now(),
    };
    // As the relay publishes it: two messages of 500; SNS invokes the function for each.
    let mut queue = AlertMessage::split(&alert, &one.flight, &phones);
    let mut invocations = 0;
    while let Some(m) = queue.pop() {
        invocations += 1;
        let deadline = tokio::time::Instant::now() + sms_timeout();
        let event = sns_event("arn:aws:sns:us-east-1:000000000000:alerts", &[m]).unwrap();
        let r = flightwatch_delivery::handle_until(&rig.texting, event, Some(deadline))
            .await
            .unwrap();
        assert_eq!(r.dead_lettered, 0);
        queue.extend(rig.retries.0.lock().unwrap().drain(..));
    }
    let sent = rig.sender.sent.lock().unwrap();
    let mut to: Vec<_> = sent.iter().map(|s| s.to.clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!((sent.len(), to.len()), (1000, 1000), "each texted once");
    assert!(invocations > 2, "{invocations} invocations");
    // Never more than 3 sends in any second.
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
    // And no handed-on message used up an attempt.
    let reported: usize = rig
        .reports
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.outcomes.len())
        .sum();
    assert_eq!(reported, 1000);
}
