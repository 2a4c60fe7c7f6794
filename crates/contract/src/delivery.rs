//! Delivery scenarios: the ledger (each adapter), the relay and the sms function's handler
//! together, on a simulated clock, with faults injected between them. Each ends with every
//! passenger texted exactly once, or visibly failed and never texted twice.
//!
//! The relay runs a pass a minute of simulated time; each alert message on the bus becomes one
//! sms invocation, run on a paused tokio clock (so its pacing costs no real time) with the sms
//! function's timeout from `serverless.yml`; its report is recorded in the ledger at the
//! simulated time.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flightwatch_app::relay;
use flightwatch_delivery::{handle_until, sns_event, InMemoryClaims, Policy, Texting};
use flightwatch_domain::delivery::timing;
use flightwatch_domain::flight::parse_time;
use flightwatch_domain::ports::{
    AlertBus, BusError, Claimed, DeliveryReports, OutgoingSms, Recorded, SendError, SmsSender,
};
use flightwatch_domain::{
    AirportCode, AlertId, AlertMessage, DeliveryCounts, DeliveryReport, DeliveryState,
    FailureClass, FlightEvent, FlightKey, FlightNumber, FlightRegistration, Notification,
};

use crate::{passenger, Backend, LIMITS};

/// The sms function's timeout, as `serverless.yml` gives it to Lambda.
pub fn sms_timeout() -> Duration {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../serverless.yml");
    let yaml: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    Duration::from_secs(yaml["functions"]["sms"]["timeout"].as_u64().unwrap())
}

/// The SMS provider: records who was texted when (in simulated time), and throttles every send
/// until a simulated moment.
#[derive(Default)]
struct Provider {
    texts: Mutex<Vec<(String, DateTime<Utc>)>>,
    throttled_until: Mutex<Option<DateTime<Utc>>>,
    /// The invocation's start, in simulated time and on its paused clock.
    started: Mutex<Option<(DateTime<Utc>, tokio::time::Instant)>>,
}

impl Provider {
    fn now(&self) -> DateTime<Utc> {
        let (at, since) = self.started.lock().unwrap().expect("inside an invocation");
        at + chrono::Duration::from_std(since.elapsed()).unwrap()
    }
}

#[async_trait]
impl SmsSender for Provider {
    async fn send(&self, sms: &OutgoingSms) -> Result<String, SendError> {
        let now = self.now();
        if self
            .throttled_until
            .lock()
            .unwrap()
            .is_some_and(|t| now < t)
        {
            return Err(SendError::Transient("Rate exceeded".into()));
        }
        let mut texts = self.texts.lock().unwrap();
        texts.push((sms.to.expose().to_owned(), now));
        Ok(format!("m-{}", texts.len()))
    }
}

/// The alerts topic: messages queue until the simulation delivers them.
#[derive(Default)]
struct Topic {
    queue: Mutex<Vec<AlertMessage>>,
    /// Publishes that the topic takes but answers with a timeout.
    accept_then_time_out: AtomicU32,
    /// Every message delivered twice, as SNS may.
    twice: AtomicBool,
}

#[async_trait]
impl AlertBus for Topic {
    async fn publish(&self, message: &AlertMessage) -> Result<(), BusError> {
        let mut queue = self.queue.lock().unwrap();
        queue.push(message.clone());
        if self.twice.load(Ordering::SeqCst) {
            queue.push(message.clone());
        }
        let timed_out = self
            .accept_then_time_out
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if timed_out {
            return Err(BusError("publishing timed out".into()));
        }
        Ok(())
    }
}

#[derive(Default)]
struct Collected(Mutex<Vec<DeliveryReport>>);

#[async_trait]
impl DeliveryReports for Collected {
    async fn report(&self, report: &DeliveryReport) -> Result<(), BusError> {
        self.0.lock().unwrap().push(report.clone());
        Ok(())
    }
}

struct Sim<'a> {
    b: &'a Backend,
    alert: AlertId,
    passengers: u32,
    now: DateTime<Utc>,
    provider: Arc<Provider>,
    topic: Topic,
    claims: Arc<InMemoryClaims>,
    per_second: Option<NonZeroU32>,
    /// Reports of the next invocations are lost while set.
    lose_reports: bool,
    invocations: u32,
    /// How often the relay runs: every minute, as scheduled; more often to stand for requests
    /// handing out between passes.
    pass_every: Duration,
}

impl<'a> Sim<'a> {
    /// A flight departing at `departure` with `n` passengers, and its cancellation recorded.
    async fn with_departure(b: &'a Backend, n: u32, departure: DateTime<Utc>) -> Sim<'a> {
        let passengers = (1..=n).map(|i| passenger(i, "p@example.com")).collect();
        let reg = FlightRegistration::new(
            FlightNumber::parse("UA123").unwrap(),
            AirportCode::parse("SFO").unwrap(),
            AirportCode::parse("JFK").unwrap(),
            departure.fixed_offset(),
            parse_time("2037-12-31T16:40:00-05:00").unwrap(),
            passengers,
        )
        .unwrap();
        b.flights.register(&reg).await.unwrap();
        let n_ = Notification {
            flight: FlightKey {
                number: FlightNumber::parse("UA123").unwrap(),
                date: departure.date_naive(),
            },
            event: FlightEvent::Cancelled,
            reason: None,
        };
        let alert = match b.alerts.record(AlertId::new(), &n_, None, &LIMITS).await {
            Ok(Recorded::Created(a)) => a.id,
            other => panic!("expected a new alert: {other:?}"),
        };
        Sim {
            b,
            alert,
            passengers: n,
            now: Utc::now(),
            provider: Arc::default(),
            topic: Topic::default(),
            claims: Arc::default(),
            per_second: None,
            lose_reports: false,
            invocations: 0,
            pass_every: relay::PASS_EVERY,
        }
    }

    async fn new(b: &'a Backend, n: u32) -> Sim<'a> {
        let departure = parse_time("2037-12-01T08:05:00-08:00").unwrap().to_utc();
        Self::with_departure(b, n, departure).await
    }

    fn advance(&mut self, d: Duration) {
        self.now += chrono::Duration::from_std(d).unwrap();
    }

    /// One relay pass at the simulated time, then every message it put on the bus delivered.
    async fn pass(&mut self) -> relay::RelayReport {
        let budget = Duration::from_secs(30);
        let report = relay::relay(
            self.b.alerts.as_ref(),
            &self.topic,
            self.per_second,
            budget,
            self.now,
        )
        .await
        .unwrap();
        self.deliver().await;
        report
    }

    /// Each queued message is one sms invocation; its report is recorded unless lost.
    async fn deliver(&mut self) {
        let messages: Vec<_> = self.topic.queue.lock().unwrap().drain(..).collect();
        for m in messages {
            let reports = Arc::new(Collected::default());
            let texting = Texting {
                sender: self.provider.clone(),
                claims: self.claims.clone(),
                reports: reports.clone(),
                policy: Policy {
                    per_second: self.per_second,
                    ..Policy::default()
                },
            };
            let provider = self.provider.clone();
            let now = self.now;
            self.invocations += 1;
            tokio::task::spawn_blocking(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .start_paused(true)
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let started = tokio::time::Instant::now();
                    *provider.started.lock().unwrap() = Some((now, started));
                    let event = sns_event("arn:aws:sns:us-east-1:000000000000:alerts", &[m]);
                    handle_until(&texting, event.unwrap(), Some(started + sms_timeout()), now)
                        .await
                        .unwrap()
                })
            })
            .await
            .unwrap();
            if self.lose_reports {
                continue;
            }
            let reports = std::mem::take(&mut *reports.0.lock().unwrap());
            for r in &reports {
                self.b.alerts.record_outcomes(r, self.now).await.unwrap();
            }
        }
    }

    /// Passes a minute apart until nobody is pending, for at most `limit` of simulated time.
    async fn run(&mut self, limit: Duration) {
        let end = self.now + chrono::Duration::from_std(limit).unwrap();
        while self.now <= end {
            self.pass().await;
            if self.counts().await.pending == 0 {
                return;
            }
            self.advance(self.pass_every);
        }
    }

    async fn counts(&self) -> DeliveryCounts {
        let query = flightwatch_domain::AlertQuery {
            limit: 10,
            ..Default::default()
        };
        let listed = self.b.alerts.list(&query).await.unwrap();
        listed.iter().find(|(a, _)| a.id == self.alert).unwrap().1
    }

    fn texts(&self) -> HashMap<String, u32> {
        let mut n = HashMap::new();
        for (phone, _) in self.provider.texts.lock().unwrap().iter() {
            *n.entry(phone.clone()).or_default() += 1;
        }
        n
    }

    /// Nobody pending, nobody texted twice, everyone sent texted once; returns the failures'
    /// classes.
    async fn each_texted_once_or_visibly_failed(&self) -> Vec<FailureClass> {
        let texts = self.texts();
        let (_, recipients) = self.b.alerts.details(self.alert).await.unwrap().unwrap();
        assert_eq!(recipients.len() as u32, self.passengers);
        let mut failures = Vec::new();
        for r in &recipients {
            let n = texts.get(r.phone.expose()).copied().unwrap_or(0);
            assert!(n <= 1, "{} texted {n} times", r.phone);
            match r.state {
                DeliveryState::Pending => panic!("{} still pending", r.phone),
                DeliveryState::Sent | DeliveryState::Delivered => {
                    assert_eq!(n, 1, "{} sent but not texted", r.phone)
                }
                DeliveryState::Failed => failures.push(r.failure.unwrap()),
            }
        }
        failures
    }
}

pub async fn throttling_for_two_minutes_ends_with_everyone_texted_once(b: &Backend) {
    let mut sim = Sim::new(b, 20).await;
    let t0 = sim.now;
    *sim.provider.throttled_until.lock().unwrap() = Some(t0 + chrono::Duration::minutes(2));
    sim.run(Duration::from_secs(3600)).await;
    assert!(sim.each_texted_once_or_visibly_failed().await.is_empty());
    // Tried at once and a minute later (both throttled), then after five more minutes: no
    // retry within seconds, and none before its backoff.
    let first = sim
        .provider
        .texts
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| *t)
        .min();
    let waited = first.unwrap() - t0;
    assert!(
        waited >= chrono::Duration::minutes(6) && waited < chrono::Duration::minutes(7),
        "first text after {waited}"
    );
}

pub async fn a_publish_that_times_out_after_the_bus_took_it_texts_once(b: &Backend) {
    let mut sim = Sim::new(b, 10).await;
    sim.topic.accept_then_time_out.store(1, Ordering::SeqCst);
    let first = sim.pass().await;
    assert_eq!(first.failed, 1, "the publish looked failed");
    assert_eq!(
        sim.texts().len(),
        10,
        "but the bus had it, and the sms function texted"
    );
    // Past the wait for unconfirmed hand-outs: nobody is handed out again.
    sim.advance(timing::UNCONFIRMED_WAIT);
    sim.run(Duration::from_secs(600)).await;
    assert!(sim.each_texted_once_or_visibly_failed().await.is_empty());
    assert_eq!(sim.invocations, 1);
}

pub async fn a_relay_stopped_half_way_hands_out_the_rest_after_the_wait(b: &Backend) {
    let mut sim = Sim::new(b, 1000).await;
    // A relay hands out 1000 recipients (two messages), publishes the first, and is stopped.
    let claimed = b.alerts.hand_out(None, 1000, None, sim.now).await.unwrap();
    let [Claimed::Ready(handout)] = claimed.as_slice() else {
        panic!("one hand-out: {claimed:?}")
    };
    let messages = handout.messages();
    assert_eq!(messages.len(), 2);
    sim.topic.publish(&messages[0]).await.unwrap();
    b.alerts
        .confirm(handout.alert.seq, 1, &messages[0].recipients, sim.now)
        .await
        .unwrap();
    sim.deliver().await;
    assert_eq!(sim.texts().len(), 500);
    // The next passes hand out nothing until the wait is over, then the other 500, once.
    sim.advance(relay::PASS_EVERY);
    assert_eq!(sim.pass().await.handed_out, 0);
    sim.advance(timing::UNCONFIRMED_WAIT);
    sim.run(Duration::from_secs(600)).await;
    assert!(sim.each_texted_once_or_visibly_failed().await.is_empty());
    assert_eq!(sim.texts().len(), 1000);
}

pub async fn a_message_delivered_twice_texts_once(b: &Backend) {
    let mut sim = Sim::new(b, 30).await;
    sim.topic.twice.store(true, Ordering::SeqCst);
    sim.run(Duration::from_secs(600)).await;
    assert_eq!(sim.invocations, 2, "delivered twice");
    assert!(sim.each_texted_once_or_visibly_failed().await.is_empty());
}

pub async fn a_lost_report_ends_visibly_failed_never_texted_twice(b: &Backend) {
    let mut sim = Sim::new(b, 10).await;
    sim.lose_reports = true;
    sim.pass().await;
    sim.lose_reports = false;
    assert_eq!(sim.counts().await.pending, 10, "the ledger has not heard");
    sim.run(timing::REPORT_WAIT + Duration::from_secs(120))
        .await;
    let failures = sim.each_texted_once_or_visibly_failed().await;
    assert_eq!(failures, vec![FailureClass::OutcomeUnknown; 10]);
    assert_eq!(
        sim.texts().len(),
        10,
        "texted, once each, though the ledger cannot know"
    );
}

pub async fn a_thousand_passengers_at_three_a_second_across_invocations(b: &Backend) {
    let mut sim = Sim::new(b, 1000).await;
    sim.per_second = NonZeroU32::new(3);
    // Hand-outs every 20 s, whose invocations overlap: they take turns in the reserved slots.
    sim.pass_every = Duration::from_secs(20);
    sim.run(Duration::from_secs(3600)).await;
    assert!(sim.each_texted_once_or_visibly_failed().await.is_empty());
    assert!(sim.invocations >= 6, "{} invocations", sim.invocations);
    // Never more than 3 sends in any second, across invocations: no throttling.
    let mut at: Vec<_> = sim
        .provider
        .texts
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| *t)
        .collect();
    at.sort();
    for (i, t) in at.iter().enumerate() {
        let in_second = at[i..]
            .iter()
            .take_while(|u| **u < *t + chrono::Duration::seconds(1))
            .count();
        assert!(
            in_second <= 3,
            "{in_second} sends in the second from send {i}"
        );
    }
}

pub async fn paced_hand_outs_reserve_send_slots_and_take_turns(b: &Backend) {
    let sim = Sim::new(b, 400).await;
    let three = NonZeroU32::new(3);
    // The store keeps microseconds.
    let t = chrono::SubsecRound::trunc_subsecs(sim.now, 6);
    let first = b.alerts.hand_out(None, 1000, three, t).await.unwrap();
    let [Claimed::Ready(first)] = first.as_slice() else {
        panic!("one hand-out: {first:?}")
    };
    // A minute's slots at 3 a second, from now.
    assert_eq!(first.recipients.len(), 180);
    assert_eq!(first.pace, Some((t, three.unwrap())));
    assert!(
        b.alerts
            .hand_out(None, 1000, three, t)
            .await
            .unwrap()
            .is_empty(),
        "all slots taken"
    );
    // Half a minute later: the slots from the end of the first hand-out to a minute from now.
    let later = t + chrono::Duration::seconds(30);
    let second = b.alerts.hand_out(None, 1000, three, later).await.unwrap();
    let [Claimed::Ready(second)] = second.as_slice() else {
        panic!("one hand-out: {second:?}")
    };
    assert_eq!(second.recipients.len(), 90);
    assert_eq!(
        second.pace,
        Some((t + chrono::Duration::seconds(60), three.unwrap()))
    );
    assert_eq!(
        second.messages()[0].not_before,
        Some(t + chrono::Duration::seconds(60))
    );
}

pub async fn recipients_still_failing_at_the_deadline_expire(b: &Backend) {
    // Departing in two hours; the provider throttles for good.
    let departure = Utc::now() + chrono::Duration::hours(2);
    let mut sim = Sim::with_departure(b, 5, departure).await;
    *sim.provider.throttled_until.lock().unwrap() = Some(departure + chrono::Duration::days(1));
    sim.run(Duration::from_secs(4 * 3600)).await;
    let failures = sim.each_texted_once_or_visibly_failed().await;
    assert_eq!(failures, vec![FailureClass::Expired; 5]);
    // 1, 5, 15, 60 minutes apart: five attempts fit before the departure, not dozens.
    assert!(sim.invocations <= 6, "{} invocations", sim.invocations);
    assert!(sim.now >= departure);
}
