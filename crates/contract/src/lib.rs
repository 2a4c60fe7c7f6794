//! The storage contract. Each `pub async fn` here is one behaviour the API relies on, written
//! against the ports only; every adapter's tests run all of them through `for_each_contract!`, so
//! a behaviour that differs between MySQL and SQLite is a failing test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a contract that cannot unwrap has failed

mod delivery;
pub use delivery::*;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use flightwatch_app::relay as publish;
use flightwatch_domain::delivery::timing;
use flightwatch_domain::flight::parse_time;
use flightwatch_domain::ports::{
    AlertBus, AlertStore, BusError, Claimed, FlightStore, Handout, Idempotency, Recorded,
    RegisterError, Settled,
};
use flightwatch_domain::{
    AirportCode, Alert, AlertId, AlertMessage, AlertQuery, CarrierOutcome, DeliveryCounts,
    DeliveryReport, DeliveryState, Email, EventKind, FailureClass, FlightEvent, FlightKey,
    FlightNumber, FlightRegistration, Notification, Outcome, Passenger, PassengerName, PhoneNumber,
    Publication, Reason, RecipientOutcome, Refusal, SmsText, SpendLimits,
};
use flightwatch_store::{Arg, Dialect};

/// What a contract needs to look at that the ports do not show.
#[async_trait]
pub trait Probe: Send + Sync {
    /// Every flight's and passenger's last-modified mark, to tell whether a write changed anything.
    async fn modification_marks(&self) -> String;
    async fn count(&self, table: &str) -> i64;
    /// Makes an alert's stored route undecodable, as a bug or a hand edit might.
    async fn corrupt_alert(&self, id: AlertId);
}

/// The probe for any database of `flightwatch-store`, through its dialect: the tables as they
/// are, read by the admin (or the file's owner), not through the stores.
pub struct SqlProbe<DB: Dialect>(pub sqlx::Pool<DB>);

impl<DB: Dialect> SqlProbe<DB> {
    async fn rows(&self, sql: &str, args: Vec<Arg<'_>>) -> Vec<DB::Row> {
        let mut conn = self.0.acquire().await.expect("a connection");
        DB::fetch_all(&mut conn, sql, args).await.expect(sql)
    }

    async fn exec(&self, sql: &str, args: Vec<Arg<'_>>) {
        let mut conn = self.0.acquire().await.expect("a connection");
        DB::exec(&mut conn, sql, args).await.expect(sql);
    }
}

#[async_trait]
impl<DB: Dialect> Probe for SqlProbe<DB> {
    async fn modification_marks(&self) -> String {
        let mut marks = Vec::new();
        for table in ["flights", "passengers"] {
            for r in self
                .rows(&format!("SELECT id, updated_at FROM {table}"), vec![])
                .await
            {
                let id = DB::int(&r, "id").expect("id");
                let at = DB::opt_stamp(&r, "updated_at").expect("updated_at");
                marks.push(format!("{table}{id}@{at:?}"));
            }
        }
        marks.sort();
        marks.join(",")
    }

    async fn count(&self, table: &str) -> i64 {
        // Table names come from the contract itself, never from input.
        let rows = self
            .rows(&format!("SELECT COUNT(*) AS n FROM {table}"), vec![])
            .await;
        DB::int(&rows[0], "n").expect("count")
    }

    async fn corrupt_alert(&self, id: AlertId) {
        let id = id.to_string();
        self.exec(
            "UPDATE alerts SET origin = 'x1' WHERE alert_id = ?",
            vec![Arg::Text(&id)],
        )
        .await;
    }
}

/// One adapter, on a fresh, migrated, empty database.
pub struct Backend {
    pub flights: Arc<dyn FlightStore>,
    pub alerts: Arc<dyn AlertStore>,
    pub probe: Arc<dyn Probe>,
}

/// Calls `$m!(name, ...)` with every contract, so adapters cannot miss one.
#[macro_export]
macro_rules! for_each_contract {
    ($m:ident) => {
        $m!(
            registering_again_merges_passengers_by_phone,
            an_identical_registration_changes_nothing,
            a_changed_schedule_is_updated_on_registration,
            concurrent_first_registrations_make_one_flight,
            an_unknown_flight_has_no_schedule_and_no_details,
            a_flight_is_found_by_number_and_scheduled_departure_instant,
            an_alert_is_recorded_with_its_recipients_and_outbox_in_one_go,
            an_identical_event_is_issued_once,
            an_event_that_undoes_a_later_one_is_issued_again,
            a_key_is_replayed_before_anything_else,
            old_keys_are_forgotten_and_their_alerts_kept,
            an_idempotency_key_replays_its_first_answer,
            concurrent_requests_with_one_key_record_one_alert,
            concurrent_identical_events_without_keys_record_one_alert,
            alerts_page_newest_first_and_stay_stable_under_inserts,
            alerts_filter_by_flight_date_event_and_time,
            due_recipients_are_handed_out_once_until_their_wait_ends,
            a_new_alert_is_handed_out_as_it_is_recorded,
            recordings_and_paced_passes_side_by_side_never_deadlock,
            concurrent_hand_outs_never_hand_out_a_recipient_twice,
            a_failed_publish_is_handed_out_again_by_the_relay_after_its_wait,
            a_big_alert_hands_out_again_only_the_part_the_bus_refused,
            an_unreadable_alert_is_set_aside_and_the_others_handed_out,
            what_an_alert_says_is_fixed_when_it_is_recorded,
            the_extreme_times_the_api_accepts_are_stored_alike,
            times_keep_their_instant_and_offset,
            a_new_time_in_the_same_minute_is_the_same_event,
            alerts_past_the_daily_limit_are_refused_and_record_nothing,
            concurrent_events_never_pass_the_daily_limit,
            a_flight_holds_at_most_a_thousand_passengers_across_merges,
            delivery_reports_fill_the_ledger_and_never_go_back,
            throttling_for_two_minutes_ends_with_everyone_texted_once,
            a_publish_that_times_out_after_the_bus_took_it_texts_once,
            a_relay_stopped_half_way_hands_out_the_rest_after_the_wait,
            a_message_delivered_twice_texts_once,
            a_lost_report_ends_visibly_failed_never_texted_twice,
            a_thousand_passengers_at_three_a_second_across_invocations,
            paced_hand_outs_reserve_send_slots_and_take_turns,
            recipients_still_failing_at_the_deadline_expire
        );
    };
}

/// The limits production starts with.
pub const LIMITS: SpendLimits = SpendLimits {
    alerts_per_day: SpendLimits::DEFAULT_ALERTS_PER_DAY,
};

/// The relay's time budget in these tests: ample for a handful of alerts.
const SECOND: Duration = Duration::from_secs(1);

fn passenger(i: u32, email: &str) -> Passenger {
    Passenger {
        name: PassengerName::parse(&format!("Passenger {i}")).unwrap(),
        email: Email::parse(email).unwrap(),
        phone: PhoneNumber::parse(&format!("+1415555{i:04}")).unwrap(),
    }
}

fn registration_at(departure: &str, passengers: Vec<Passenger>) -> FlightRegistration {
    FlightRegistration::new(
        FlightNumber::parse("UA123").unwrap(),
        AirportCode::parse("SFO").unwrap(),
        AirportCode::parse("JFK").unwrap(),
        parse_time(departure).unwrap(),
        parse_time("2037-12-01T16:40:00-05:00").unwrap(),
        passengers,
    )
    .unwrap()
}

fn registration(passengers: Vec<Passenger>) -> FlightRegistration {
    registration_at("2037-12-01T08:05:00-08:00", passengers)
}

fn key() -> FlightKey {
    "UA123-2037-12-01".parse().unwrap()
}

fn delayed_to(hhmm: &str) -> Notification {
    Notification {
        flight: key(),
        event: FlightEvent::Delayed {
            estimated_departure: parse_time(&format!("2037-12-01T{hhmm}:00-08:00")).unwrap(),
        },
        reason: Some(Reason::parse("Late inbound aircraft").unwrap()),
    }
}

fn cancelled() -> Notification {
    Notification {
        event: FlightEvent::Cancelled,
        ..delayed_to("10:30")
    }
}

fn created(r: Recorded) -> Alert {
    match r {
        Recorded::Created(a) => a,
        other => panic!("expected a new alert, got {other:?}"),
    }
}

async fn with_passengers(b: &Backend, n: u32) {
    b.flights
        .register(&registration(
            (1..=n).map(|i| passenger(i, "p@example.com")).collect(),
        ))
        .await
        .unwrap();
}

pub async fn registering_again_merges_passengers_by_phone(b: &Backend) {
    let first = b
        .flights
        .register(&registration(vec![
            passenger(1, "a@example.com"),
            passenger(2, "b@example.com"),
        ]))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.flight.passenger_count, 2);
    let again = b
        .flights
        .register(&registration(vec![
            passenger(2, "b.new@example.com"),
            passenger(3, "c@example.com"),
        ]))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.flight.passenger_count, 3);
    let (_, passengers) = b.flights.find(&key()).await.unwrap().unwrap();
    let emails: Vec<_> = passengers
        .iter()
        .map(|p| p.email.expose().to_owned())
        .collect();
    assert_eq!(
        emails,
        ["a@example.com", "b.new@example.com", "c@example.com"]
    );
}

pub async fn an_identical_registration_changes_nothing(b: &Backend) {
    let reg = registration(vec![
        passenger(1, "a@example.com"),
        passenger(2, "b@example.com"),
    ]);
    b.flights.register(&reg).await.unwrap();
    let before = b.probe.modification_marks().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = b.flights.register(&reg).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.flight.passenger_count, 2);
    assert_eq!(b.probe.modification_marks().await, before);
}

pub async fn a_changed_schedule_is_updated_on_registration(b: &Backend) {
    b.flights
        .register(&registration(vec![passenger(1, "a@example.com")]))
        .await
        .unwrap();
    let later = registration_at(
        "2037-12-01T09:05:00-08:00",
        vec![passenger(1, "a@example.com")],
    );
    let again = b.flights.register(&later).await.unwrap();
    assert!(!again.created);
    let (summary, _) = b.flights.find(&key()).await.unwrap().unwrap();
    assert_eq!(
        summary.departure,
        parse_time("2037-12-01T09:05:00-08:00").unwrap()
    );
    let schedule = b.alerts.schedule(&key()).await.unwrap().unwrap();
    assert_eq!(schedule.scheduled_departure, summary.departure);
}

pub async fn concurrent_first_registrations_make_one_flight(b: &Backend) {
    let regs: Vec<_> = (1..=4)
        .map(|i| registration(vec![passenger(i, "p@example.com")]))
        .collect();
    let results = futures::future::join_all(regs.iter().map(|r| b.flights.register(r))).await;
    let created = results
        .into_iter()
        .map(|r| r.unwrap().created)
        .filter(|c| *c)
        .count();
    assert_eq!(created, 1);
    assert_eq!(b.probe.count("flights").await, 1);
    assert_eq!(b.probe.count("passengers").await, 4);
}

pub async fn an_unknown_flight_has_no_schedule_and_no_details(b: &Backend) {
    assert!(b.flights.find(&key()).await.unwrap().is_none());
    assert!(b.alerts.schedule(&key()).await.unwrap().is_none());
}

pub async fn a_flight_is_found_by_number_and_scheduled_departure_instant(b: &Backend) {
    with_passengers(b, 1).await;
    let number = FlightNumber::parse("UA123").unwrap();
    // 08:05 in San Francisco is 16:05 UTC, as providers name it.
    let at = parse_time("2037-12-01T16:05:00Z").unwrap().to_utc();
    let found = b
        .alerts
        .flight_departing(&number, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.key(), key());
    assert_eq!(
        found.scheduled_departure.to_rfc3339(),
        "2037-12-01T08:05:00-08:00"
    );
    let other_time = at + chrono::Duration::minutes(1);
    assert!(b
        .alerts
        .flight_departing(&number, other_time)
        .await
        .unwrap()
        .is_none());
    let other = FlightNumber::parse("UA124").unwrap();
    assert!(b
        .alerts
        .flight_departing(&other, at)
        .await
        .unwrap()
        .is_none());
}

pub async fn an_alert_is_recorded_with_its_recipients_and_outbox_in_one_go(b: &Backend) {
    with_passengers(b, 3).await;
    let schedule = b.alerts.schedule(&key()).await.unwrap().unwrap();
    assert_eq!(
        schedule.scheduled_departure,
        parse_time("2037-12-01T08:05:00-08:00").unwrap()
    );
    let alert = created(
        b.alerts
            .record(AlertId::new(), &delayed_to("10:30"), None, &LIMITS)
            .await
            .unwrap(),
    );
    assert_eq!(alert.recipients, 3);
    assert_eq!(alert.publication, Publication::Pending);
    assert_eq!(
        alert.estimated_departure,
        Some(parse_time("2037-12-01T10:30:00-08:00").unwrap())
    );
    assert_eq!(b.probe.count("alert_outbox").await, 1);
    assert_eq!(b.probe.count("alert_recipients").await, 3);
    // Passengers registered later are not recipients of an alert already issued.
    b.flights
        .register(&registration(vec![passenger(4, "p@example.com")]))
        .await
        .unwrap();
    let handed = ready(
        b.alerts
            .hand_out(Some(alert.id), 100, None, now())
            .await
            .unwrap(),
    );
    assert_eq!(handed[0].recipients.len(), 3);
    assert_eq!(handed[0].flight, schedule);
}

pub async fn an_identical_event_is_issued_once(b: &Backend) {
    with_passengers(b, 1).await;
    let first = created(
        b.alerts
            .record(AlertId::new(), &delayed_to("10:30"), None, &LIMITS)
            .await
            .unwrap(),
    );
    match b
        .alerts
        .record(AlertId::new(), &delayed_to("10:30"), None, &LIMITS)
        .await
        .unwrap()
    {
        Recorded::Duplicate(a) => assert_eq!(a.id, first.id),
        other => panic!("expected the existing alert, got {other:?}"),
    }
    created(
        b.alerts
            .record(AlertId::new(), &delayed_to("11:00"), None, &LIMITS)
            .await
            .unwrap(),
    );
    created(
        b.alerts
            .record(AlertId::new(), &cancelled(), None, &LIMITS)
            .await
            .unwrap(),
    );
    assert!(matches!(
        b.alerts
            .record(AlertId::new(), &cancelled(), None, &LIMITS)
            .await
            .unwrap(),
        Recorded::Duplicate(_)
    ));
    assert_eq!(b.probe.count("alerts").await, 3);
}

pub async fn an_event_that_undoes_a_later_one_is_issued_again(b: &Backend) {
    with_passengers(b, 1).await;
    created(
        b.alerts
            .record(AlertId::new(), &delayed_to("10:30"), None, &LIMITS)
            .await
            .unwrap(),
    );
    created(
        b.alerts
            .record(AlertId::new(), &delayed_to("11:00"), None, &LIMITS)
            .await
            .unwrap(),
    );
    // Back to 10:30: passengers who were told 11:00 must hear of it.
    let back = created(
        b.alerts
            .record(AlertId::new(), &delayed_to("10:30"), None, &LIMITS)
            .await
            .unwrap(),
    );
    match b
        .alerts
        .record(AlertId::new(), &delayed_to("10:30"), None, &LIMITS)
        .await
        .unwrap()
    {
        Recorded::Duplicate(a) => assert_eq!(a.id, back.id),
        other => panic!("expected the latest alert, got {other:?}"),
    }
    assert_eq!(b.probe.count("alerts").await, 3);
}

pub async fn a_key_is_replayed_before_anything_else(b: &Backend) {
    with_passengers(b, 1).await;
    let idem = Idempotency {
        key: "k-1".into(),
        fingerprint: "f".repeat(64),
    };
    assert_eq!(b.alerts.replay(&idem).await.unwrap(), None, "a new key");
    let first = created(
        b.alerts
            .record(AlertId::new(), &delayed_to("10:30"), Some(&idem), &LIMITS)
            .await
            .unwrap(),
    );
    match b.alerts.replay(&idem).await.unwrap() {
        Some(Recorded::Replayed {
            alert,
            created: true,
        }) => assert_eq!(alert.id, first.id),
        other => panic!("expected a replay, got {other:?}"),
    }
    let other = Idempotency {
        fingerprint: "0".repeat(64),
        ..idem
    };
    assert_eq!(
        b.alerts.replay(&other).await.unwrap(),
        Some(Recorded::KeyReused)
    );
}

pub async fn old_keys_are_forgotten_and_their_alerts_kept(b: &Backend) {
    with_passengers(b, 1).await;
    let idem = Idempotency {
        key: "k-old".into(),
        fingerprint: "f".repeat(64),
    };
    created(
        b.alerts
            .record(AlertId::new(), &delayed_to("10:30"), Some(&idem), &LIMITS)
            .await
            .unwrap(),
    );
    assert_eq!(
        b.alerts
            .forget_keys_older_than(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        b.alerts
            .forget_keys_older_than(Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    assert_eq!(b.alerts.replay(&idem).await.unwrap(), None);
    assert_eq!(b.probe.count("alerts").await, 1);
}

pub async fn an_idempotency_key_replays_its_first_answer(b: &Backend) {
    with_passengers(b, 1).await;
    let idem = Idempotency {
        key: "retry-me".into(),
        fingerprint: "f".repeat(64),
    };
    let first = created(
        b.alerts
            .record(AlertId::new(), &delayed_to("10:30"), Some(&idem), &LIMITS)
            .await
            .unwrap(),
    );
    match b
        .alerts
        .record(AlertId::new(), &delayed_to("10:30"), Some(&idem), &LIMITS)
        .await
        .unwrap()
    {
        Recorded::Replayed { alert, created } => {
            assert_eq!(alert.id, first.id);
            assert!(created);
        }
        other => panic!("expected a replay, got {other:?}"),
    }
    let other_body = Idempotency {
        fingerprint: "0".repeat(64),
        ..idem.clone()
    };
    assert_eq!(
        b.alerts
            .record(
                AlertId::new(),
                &delayed_to("11:00"),
                Some(&other_body),
                &LIMITS
            )
            .await
            .unwrap(),
        Recorded::KeyReused
    );
    // Keys are exact: another case is another key, and here a duplicate event.
    let upper = Idempotency {
        key: "RETRY-ME".into(),
        ..idem
    };
    match b
        .alerts
        .record(AlertId::new(), &delayed_to("10:30"), Some(&upper), &LIMITS)
        .await
        .unwrap()
    {
        Recorded::Duplicate(a) => assert_eq!(a.id, first.id),
        other => panic!("expected the existing alert, got {other:?}"),
    }
    // Replaying that key answers as a duplicate did: 200, not 202.
    match b
        .alerts
        .record(AlertId::new(), &delayed_to("10:30"), Some(&upper), &LIMITS)
        .await
        .unwrap()
    {
        Recorded::Replayed { created, .. } => assert!(!created),
        other => panic!("expected a replay, got {other:?}"),
    }
    assert_eq!(b.probe.count("alerts").await, 1);
}

pub async fn concurrent_requests_with_one_key_record_one_alert(b: &Backend) {
    with_passengers(b, 1).await;
    let idem = Idempotency {
        key: "same-key".into(),
        fingerprint: "a".repeat(64),
    };
    let n = delayed_to("10:30");
    let results = futures::future::join_all(
        (0..6).map(|_| b.alerts.record(AlertId::new(), &n, Some(&idem), &LIMITS)),
    )
    .await;
    let mut ids = Vec::new();
    let mut created_count = 0;
    for r in results {
        match r.unwrap() {
            Recorded::Created(a) => {
                created_count += 1;
                ids.push(a.id);
            }
            Recorded::Replayed { alert, .. } | Recorded::Duplicate(alert) => ids.push(alert.id),
            Recorded::KeyReused | Recorded::Refused(_) => panic!("same body, same key"),
        }
    }
    assert_eq!(created_count, 1);
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(b.probe.count("alerts").await, 1);
}

pub async fn concurrent_identical_events_without_keys_record_one_alert(b: &Backend) {
    with_passengers(b, 1).await;
    let n = delayed_to("10:30");
    let results = futures::future::join_all(
        (0..6).map(|_| b.alerts.record(AlertId::new(), &n, None, &LIMITS)),
    )
    .await;
    let created_count = results
        .into_iter()
        .filter(|r| matches!(r, Ok(Recorded::Created(_))))
        .count();
    assert_eq!(created_count, 1);
    assert_eq!(b.probe.count("alerts").await, 1);
}

pub async fn alerts_page_newest_first_and_stay_stable_under_inserts(b: &Backend) {
    with_passengers(b, 1).await;
    // More alerts than one flight may have in a day: this is about paging, not limits.
    const PAGING: SpendLimits = SpendLimits { alerts_per_day: 50 };
    let mut ids = Vec::new();
    for minute in 10..17 {
        let n = delayed_to(&format!("10:{minute}"));
        ids.push(
            created(
                b.alerts
                    .record(AlertId::new(), &n, None, &PAGING)
                    .await
                    .unwrap(),
            )
            .id,
        );
    }
    ids.reverse();
    let page = |before_seq| AlertQuery {
        before_seq,
        limit: 3,
        ..AlertQuery::default()
    };
    let p1 = b.alerts.list(&page(None)).await.unwrap();
    assert_eq!(p1.iter().map(|(a, _)| a.id).collect::<Vec<_>>(), ids[0..3]);
    // A new alert arriving between pages does not shift the next page.
    created(
        b.alerts
            .record(AlertId::new(), &delayed_to("12:00"), None, &PAGING)
            .await
            .unwrap(),
    );
    let p2 = b.alerts.list(&page(Some(p1[2].0.seq))).await.unwrap();
    assert_eq!(p2.iter().map(|(a, _)| a.id).collect::<Vec<_>>(), ids[3..6]);
    let p3 = b.alerts.list(&page(Some(p2[2].0.seq))).await.unwrap();
    assert_eq!(p3.iter().map(|(a, _)| a.id).collect::<Vec<_>>(), ids[6..7]);
}

pub async fn alerts_filter_by_flight_date_event_and_time(b: &Backend) {
    with_passengers(b, 1).await;
    let delay = created(
        b.alerts
            .record(AlertId::new(), &delayed_to("10:30"), None, &LIMITS)
            .await
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cancel = created(
        b.alerts
            .record(AlertId::new(), &cancelled(), None, &LIMITS)
            .await
            .unwrap(),
    );
    let list = |f: &dyn Fn(&mut AlertQuery)| {
        let mut q = AlertQuery {
            limit: 50,
            ..AlertQuery::default()
        };
        f(&mut q);
        let alerts = b.alerts.clone();
        async move {
            alerts
                .list(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|(a, _)| a.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(&|q| q.event = Some(EventKind::Cancelled)).await,
        [cancel.id]
    );
    assert_eq!(
        list(&|q| q.event = Some(EventKind::Delayed)).await,
        [delay.id]
    );
    assert_eq!(
        list(&|q| q.flight_number = FlightNumber::parse("UA123").ok()).await,
        [cancel.id, delay.id]
    );
    assert!(list(&|q| q.flight_number = FlightNumber::parse("BA1").ok())
        .await
        .is_empty());
    assert!(list(&|q| q.departure_date = "2026-12-02".parse().ok())
        .await
        .is_empty());
    assert_eq!(
        list(&|q| q.departure_date = "2037-12-01".parse().ok())
            .await
            .len(),
        2
    );
    let at = cancel.created_at;
    assert_eq!(
        list(&|q| q.since = Some(at)).await,
        [cancel.id],
        "since is inclusive"
    );
    let after = at + chrono::Duration::seconds(1);
    assert!(list(&|q| q.since = Some(after)).await.is_empty());
}

/// Fails the next `failures` publishes (or only those of `fail_part`), then records messages.
#[derive(Default)]
struct FlakyBus {
    failures: AtomicU32,
    fail_part: Option<u32>,
    published: Mutex<Vec<AlertMessage>>,
}

#[async_trait]
impl AlertBus for FlakyBus {
    async fn publish(&self, message: &AlertMessage) -> Result<(), BusError> {
        let targeted = self.fail_part.is_none_or(|p| p == message.part);
        if targeted
            && self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(BusError("topic unreachable".into()));
        }
        self.published.lock().unwrap().push(message.clone());
        Ok(())
    }
}

/// The relay's clock in these tests: now, as the store's own clock reads it when recording.
fn now() -> DateTime<Utc> {
    Utc::now()
}

/// What a hand-out claims, when all of it is readable.
fn ready(claimed: Vec<Claimed>) -> Vec<Handout> {
    claimed
        .into_iter()
        .map(|c| match c {
            Claimed::Ready(h) => h,
            other => panic!("a readable alert is ready: {other:?}"),
        })
        .collect()
}

pub async fn due_recipients_are_handed_out_once_until_their_wait_ends(b: &Backend) {
    with_passengers(b, 3).await;
    let alert = created(
        b.alerts
            .record(AlertId::new(), &delayed_to("10:30"), None, &LIMITS)
            .await
            .unwrap(),
    );
    let t = now();
    // A limit is a limit: two now, the third at the next call.
    let first = ready(b.alerts.hand_out(Some(alert.id), 2, None, t).await.unwrap());
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].attempt, first[0].recipients.len()), (1, 2));
    let rest = ready(b.alerts.hand_out(None, 10, None, t).await.unwrap());
    assert_eq!(rest[0].recipients.len(), 1);
    assert!(
        b.alerts
            .hand_out(None, 10, None, t)
            .await
            .unwrap()
            .is_empty(),
        "all out"
    );
    // Unconfirmed by the bus: due again once the wait for a report is over, not before.
    let almost = timing::after(t, timing::UNCONFIRMED_WAIT - SECOND);
    assert_eq!(b.alerts.settle(almost).await.unwrap(), Settled::default());
    let over = timing::after(t, timing::UNCONFIRMED_WAIT);
    assert_eq!(b.alerts.settle(over).await.unwrap().unconfirmed, 3);
    let again = ready(b.alerts.hand_out(None, 10, None, over).await.unwrap());
    assert_eq!((again[0].attempt, again[0].recipients.len()), (2, 3));
    // Confirmed: published, and waiting for the report; unknown once that wait is over.
    b.alerts
        .confirm(alert.seq, 2, &again[0].recipients, over)
        .await
        .unwrap();
    let query = AlertQuery {
        limit: 1,
        ..AlertQuery::default()
    };
    let listed = b.alerts.list(&query).await.unwrap();
    assert_eq!(listed[0].0.publication, Publication::Published);
    assert_eq!(listed[0].1.pending, 3);
    let gone = timing::after(over, timing::REPORT_WAIT);
    assert_eq!(b.alerts.settle(gone).await.unwrap().unknown, 3);
    assert!(b
        .alerts
        .hand_out(None, 10, None, gone)
        .await
        .unwrap()
        .is_empty());
    let (_, recipients) = b.alerts.details(alert.id).await.unwrap().unwrap();
    assert!(recipients
        .iter()
        .all(|r| r.failure == Some(FailureClass::OutcomeUnknown)));
}

pub async fn concurrent_hand_outs_never_hand_out_a_recipient_twice(b: &Backend) {
    with_passengers(b, 300).await;
    created(
        b.alerts
            .record(AlertId::new(), &cancelled(), None, &LIMITS)
            .await
            .unwrap(),
    );
    let t = now();
    let take = |limit| {
        let alerts = b.alerts.clone();
        async move {
            let mut phones = Vec::new();
            loop {
                let got = ready(alerts.hand_out(None, limit, None, t).await.unwrap());
                if got.is_empty() {
                    return phones;
                }
                phones.extend(got.into_iter().flat_map(|h| h.recipients));
            }
        }
    };
    let (a, c) = tokio::join!(take(7), take(11));
    let mut all: Vec<_> = a.into_iter().chain(c).collect();
    assert_eq!(all.len(), 300);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 300, "nobody handed out twice");
}

pub async fn a_new_alert_is_handed_out_as_it_is_recorded(b: &Backend) {
    with_passengers(b, 5).await;
    let three = NonZeroU32::new(3);
    let before = now();
    let id = AlertId::new();
    let (recorded, claimed) = b
        .alerts
        .record_and_hand_out(id, &cancelled(), None, &LIMITS, 3, three)
        .await
        .unwrap();
    let alert = created(recorded);
    assert_eq!((alert.id, alert.recipients), (id, 5));
    // As many as the pass may take, on their first attempt, in the budget's first free slots.
    let [first] = ready(claimed).try_into().unwrap();
    assert_eq!((first.alert.id, first.attempt), (id, 1));
    assert_eq!(first.recipients.len(), 3);
    let (slot, rate) = first.pace.unwrap();
    assert!(
        slot >= chrono::SubsecRound::trunc_subsecs(before, 6),
        "{slot}"
    );
    assert_eq!(rate, three.unwrap());
    // Committed with the alert: out, so only the other two are left to hand out.
    let rest = ready(
        b.alerts
            .hand_out(Some(id), 1000, None, now())
            .await
            .unwrap(),
    );
    let phones: Vec<_> = rest.iter().flat_map(|h| h.recipients.clone()).collect();
    assert_eq!(phones.len(), 2);
    assert!(phones.iter().all(|p| !first.recipients.contains(p)));
    // The same event again hands out nobody.
    let (again, claimed) = b
        .alerts
        .record_and_hand_out(AlertId::new(), &cancelled(), None, &LIMITS, 3, three)
        .await
        .unwrap();
    assert!(matches!(again, Recorded::Duplicate(a) if a.id == id));
    assert!(claimed.is_empty());
}

/// A paced recording takes the budget's row before it writes its recipients, as a relay pass
/// takes it before the recipients it hands out: in the other order, MySQL would find the two
/// deadlocked and fail one of them.
pub async fn recordings_and_paced_passes_side_by_side_never_deadlock(b: &Backend) {
    with_passengers(b, 20).await;
    let three = NonZeroU32::new(3);
    let events: Vec<_> = (0..4).map(|m| delayed_to(&format!("12:{m:02}"))).collect();
    let records = futures::future::join_all(events.iter().map(|n| {
        b.alerts
            .record_and_hand_out(AlertId::new(), n, None, &LIMITS, 180, three)
    }));
    let passes =
        futures::future::join_all((0..4).map(|_| b.alerts.hand_out(None, 1000, three, now())));
    let (records, passes) = tokio::join!(records, passes);
    let mut handed = Vec::new();
    for r in records {
        let (recorded, claimed) = r.unwrap();
        created(recorded);
        handed.extend(ready(claimed));
    }
    for p in passes {
        handed.extend(ready(p.unwrap()));
    }
    let mut out: Vec<_> = handed
        .iter()
        .flat_map(|h| h.recipients.iter().map(move |p| (h.alert.seq, p.clone())))
        .collect();
    assert_eq!(
        out.len(),
        80,
        "every recipient of the four alerts handed out"
    );
    out.sort();
    out.dedup();
    assert_eq!(out.len(), 80, "nobody handed out twice");
}

pub async fn a_failed_publish_is_handed_out_again_by_the_relay_after_its_wait(b: &Backend) {
    with_passengers(b, 3).await;
    let bus = FlakyBus {
        failures: AtomicU32::new(1),
        ..FlakyBus::default()
    };
    let (recorded, claimed) = b
        .alerts
        .record_and_hand_out(AlertId::new(), &cancelled(), None, &LIMITS, 2000, None)
        .await
        .unwrap();
    // After the recording, whose clock handed them out.
    let t = now();
    let alert = created(recorded);
    assert!(
        publish::publish_claimed(b.alerts.as_ref(), &bus, claimed, t)
            .await
            .is_err()
    );
    // Not before its wait; handed out by the relay once it is over.
    let pass = |t| publish::relay(b.alerts.as_ref(), &bus, None, SECOND, t);
    assert_eq!(pass(t).await.unwrap(), publish::RelayReport::default());
    let over = timing::after(t, timing::UNCONFIRMED_WAIT);
    assert_eq!(pass(over).await.unwrap().handed_out, 3);
    let published = bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!((published[0].alert_id, published[0].attempt), (alert.id, 2));
    assert_eq!(published[0].recipients.len(), 3);
    assert_eq!(pass(over).await.unwrap(), publish::RelayReport::default());
}

pub async fn a_big_alert_hands_out_again_only_the_part_the_bus_refused(b: &Backend) {
    with_passengers(b, 1000).await;
    let bus = FlakyBus {
        failures: AtomicU32::new(1),
        fail_part: Some(2),
        ..FlakyBus::default()
    };
    let (recorded, claimed) = b
        .alerts
        .record_and_hand_out(AlertId::new(), &cancelled(), None, &LIMITS, 2000, None)
        .await
        .unwrap();
    // After the recording, whose clock handed them out.
    let t = now();
    let alert = created(recorded);
    assert_eq!(alert.recipients, 1000);
    assert!(
        publish::publish_claimed(b.alerts.as_ref(), &bus, claimed, t)
            .await
            .is_err()
    );
    assert_eq!(bus.published.lock().unwrap().len(), 1);
    let over = timing::after(t, timing::UNCONFIRMED_WAIT);
    publish::relay(b.alerts.as_ref(), &bus, None, SECOND, over)
        .await
        .unwrap();
    let published = bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 2);
    let mut phones: Vec<_> = published
        .iter()
        .flat_map(|m| m.recipients.clone())
        .collect();
    phones.sort();
    phones.dedup();
    assert_eq!(
        phones.len(),
        1000,
        "every recipient on the bus exactly once"
    );
    assert!(b
        .alerts
        .hand_out(None, 1000, None, over)
        .await
        .unwrap()
        .is_empty());
}

pub async fn times_keep_their_instant_and_offset(b: &Backend) {
    // Kathmandu is UTC+05:45; the departure date is the local one.
    let reg = FlightRegistration::new(
        FlightNumber::parse("RA229").unwrap(),
        AirportCode::parse("KTM").unwrap(),
        AirportCode::parse("DEL").unwrap(),
        parse_time("2037-12-01T00:30:00+05:45").unwrap(),
        parse_time("2037-12-01T01:45:00+05:30").unwrap(),
        vec![passenger(1, "p@example.com")],
    )
    .unwrap();
    b.flights.register(&reg).await.unwrap();
    let key: FlightKey = "RA229-2037-12-01".parse().unwrap();
    let (summary, _) = b.flights.find(&key).await.unwrap().unwrap();
    assert_eq!(summary.departure.to_rfc3339(), "2037-12-01T00:30:00+05:45");
    assert_eq!(summary.arrival.to_rfc3339(), "2037-12-01T01:45:00+05:30");
    let n = Notification {
        flight: key,
        event: FlightEvent::Delayed {
            estimated_departure: parse_time("2037-11-30T20:15:30.25Z").unwrap(),
        },
        reason: None,
    };
    let alert = created(
        b.alerts
            .record(AlertId::new(), &n, None, &LIMITS)
            .await
            .unwrap(),
    );
    let listed = b
        .alerts
        .list(&AlertQuery {
            limit: 1,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed[0].0.estimated_departure, alert.estimated_departure);
    assert_eq!(
        listed[0].0.estimated_departure.unwrap().to_rfc3339(),
        "2037-11-30T20:15:30+00:00"
    );
    assert!(
        (listed[0].0.created_at - chrono::Utc::now())
            .num_seconds()
            .abs()
            < 60
    );
}

pub async fn an_unreadable_alert_is_set_aside_and_the_others_handed_out(b: &Backend) {
    with_passengers(b, 2).await;
    let mut ids = Vec::new();
    for n in [delayed_to("10:30"), delayed_to("11:00"), cancelled()] {
        ids.push(
            created(
                b.alerts
                    .record(AlertId::new(), &n, None, &LIMITS)
                    .await
                    .unwrap(),
            )
            .id,
        );
    }
    b.probe.corrupt_alert(ids[0]).await;
    let bus = FlakyBus::default();
    let t = now();
    let report = publish::relay(b.alerts.as_ref(), &bus, None, SECOND, t)
        .await
        .unwrap();
    assert_eq!(
        (report.handed_out, report.failed, report.set_aside),
        (4, 0, 1),
        "the oldest alert, unreadable, blocks nothing"
    );
    let published: Vec<AlertId> = bus
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.alert_id)
        .collect();
    assert_eq!(published, [ids[1], ids[2]]);
    let listed = b
        .alerts
        .list(&AlertQuery {
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    let state = |id: AlertId| {
        listed
            .iter()
            .find(|(a, _)| a.id == id)
            .unwrap()
            .0
            .publication
    };
    assert_eq!(state(ids[0]), Publication::Failed);
    assert_eq!(state(ids[1]), Publication::Published);
    assert_eq!(state(ids[2]), Publication::Published);
    let failed = listed.iter().find(|(a, _)| a.id == ids[0]).unwrap().1;
    assert_eq!(
        (failed.pending, failed.failed),
        (0, 2),
        "its recipients visibly failed"
    );
    // Set aside for good: later passes do not pick it up again.
    let over = timing::after(t, timing::UNCONFIRMED_WAIT);
    assert_eq!(
        publish::relay(b.alerts.as_ref(), &bus, None, SECOND, over)
            .await
            .unwrap(),
        publish::RelayReport::default()
    );
}

pub async fn what_an_alert_says_is_fixed_when_it_is_recorded(b: &Backend) {
    with_passengers(b, 2).await;
    let alert = created(
        b.alerts
            .record(AlertId::new(), &delayed_to("10:30"), None, &LIMITS)
            .await
            .unwrap(),
    );
    assert_eq!(alert.recipients, 2);
    // Re-registered before the alert is published: another time and another destination.
    let changed = FlightRegistration::new(
        FlightNumber::parse("UA123").unwrap(),
        AirportCode::parse("SFO").unwrap(),
        AirportCode::parse("BOS").unwrap(),
        parse_time("2037-12-01T09:40:00-08:00").unwrap(),
        parse_time("2037-12-01T18:00:00-05:00").unwrap(),
        vec![passenger(1, "p@example.com")],
    )
    .unwrap();
    b.flights.register(&changed).await.unwrap();
    let bus = FlakyBus::default();
    let pass = publish::relay(b.alerts.as_ref(), &bus, None, SECOND, now());
    assert_eq!(pass.await.unwrap().handed_out, 2);
    let published = bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!(
        SmsText::for_alert(&published[0]).as_str(),
        "UA123 SFO-JFK 1 Dec: DELAYED, now departs 10:30 (was 08:05). Reason: Late inbound aircraft"
    );
    assert_eq!(
        published[0].recipients.len(),
        2,
        "its recipients are fixed too"
    );
}

pub async fn the_extreme_times_the_api_accepts_are_stored_alike(b: &Backend) {
    // The latest local time whose instant is still in year 9999 in UTC; a minute later is a 400.
    assert!(parse_time("9999-12-31T23:00:00-05:00").is_err());
    let departure = "9999-12-31T18:59:00-05:00";
    let reg = FlightRegistration::new(
        FlightNumber::parse("UA123").unwrap(),
        AirportCode::parse("SFO").unwrap(),
        AirportCode::parse("JFK").unwrap(),
        parse_time(departure).unwrap(),
        parse_time("9999-12-31T23:59:59Z").unwrap(),
        vec![passenger(1, "p@example.com")],
    )
    .unwrap();
    let registered = b.flights.register(&reg).await.unwrap();
    let key: FlightKey = "UA123-9999-12-31".parse().unwrap();
    assert_eq!(registered.flight.key, key);
    let (summary, _) = b.flights.find(&key).await.unwrap().unwrap();
    assert_eq!(summary.departure, parse_time(departure).unwrap());
    assert_eq!(summary.arrival, parse_time("9999-12-31T23:59:59Z").unwrap());
    let n = Notification {
        flight: key,
        event: FlightEvent::Delayed {
            estimated_departure: parse_time("9999-12-31T18:59:59-05:00").unwrap(),
        },
        reason: None,
    };
    let alert = created(
        b.alerts
            .record(AlertId::new(), &n, None, &LIMITS)
            .await
            .unwrap(),
    );
    assert_eq!(alert.estimated_departure, n.event.estimated_departure());
}

pub async fn a_new_time_in_the_same_minute_is_the_same_event(b: &Backend) {
    with_passengers(b, 1).await;
    let first = created(
        b.alerts
            .record(AlertId::new(), &delayed_to("10:30"), None, &LIMITS)
            .await
            .unwrap(),
    );
    // The SMS shows minutes: 10:30:59 reads exactly like 10:30.
    let same_minute = Notification {
        event: FlightEvent::Delayed {
            estimated_departure: parse_time("2037-12-01T10:30:59-08:00").unwrap(),
        },
        ..delayed_to("10:30")
    };
    match b
        .alerts
        .record(AlertId::new(), &same_minute, None, &LIMITS)
        .await
        .unwrap()
    {
        Recorded::Duplicate(a) => assert_eq!(a.id, first.id),
        other => panic!("expected the existing alert, got {other:?}"),
    }
    created(
        b.alerts
            .record(AlertId::new(), &delayed_to("10:31"), None, &LIMITS)
            .await
            .unwrap(),
    );
    assert_eq!(b.probe.count("alerts").await, 2);
}

pub async fn alerts_past_the_daily_limit_are_refused_and_record_nothing(b: &Backend) {
    with_passengers(b, 2).await;
    let two = SpendLimits { alerts_per_day: 2 };
    for t in ["10:30", "11:00"] {
        created(
            b.alerts
                .record(AlertId::new(), &delayed_to(t), None, &two)
                .await
                .unwrap(),
        );
    }
    let idem = Idempotency {
        key: "third".into(),
        fingerprint: "c".repeat(64),
    };
    match b
        .alerts
        .record(AlertId::new(), &delayed_to("11:30"), Some(&idem), &two)
        .await
        .unwrap()
    {
        Recorded::Refused(Refusal::TooManyAlerts { limit, retry_after }) => {
            assert_eq!(limit, 2);
            assert!(
                retry_after > Duration::from_secs(23 * 3600),
                "{retry_after:?}"
            );
            assert!(
                retry_after <= Duration::from_secs(24 * 3600 + 1),
                "{retry_after:?}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(b.probe.count("alerts").await, 2);
    assert_eq!(b.probe.count("alert_recipients").await, 4);
    assert_eq!(
        b.probe.count("idempotency_keys").await,
        0,
        "the key is free for the same request later"
    );
    // Repeating the latest event is still answered with it: a duplicate costs nothing.
    assert!(matches!(
        b.alerts
            .record(AlertId::new(), &delayed_to("11:00"), None, &two)
            .await
            .unwrap(),
        Recorded::Duplicate(_)
    ));
}

pub async fn concurrent_events_never_pass_the_daily_limit(b: &Backend) {
    with_passengers(b, 1).await;
    let three = SpendLimits { alerts_per_day: 3 };
    let events: Vec<_> = (0..8).map(|m| delayed_to(&format!("11:{m:02}"))).collect();
    let results = futures::future::join_all(
        events
            .iter()
            .map(|n| b.alerts.record(AlertId::new(), n, None, &three)),
    )
    .await;
    let (mut made, mut refused) = (0, 0);
    for r in results {
        match r.unwrap() {
            Recorded::Created(_) => made += 1,
            Recorded::Refused(Refusal::TooManyAlerts { .. }) => refused += 1,
            other => panic!("distinct events: {other:?}"),
        }
    }
    assert_eq!((made, refused), (3, 5));
    assert_eq!(b.probe.count("alerts").await, 3);
}

pub async fn a_flight_holds_at_most_a_thousand_passengers_across_merges(b: &Backend) {
    let batch = |from: u32, to: u32| {
        registration((from..=to).map(|i| passenger(i, "p@example.com")).collect())
    };
    b.flights.register(&batch(1, 600)).await.unwrap();
    let marks = b.probe.modification_marks().await;
    match b.flights.register(&batch(401, 1200)).await {
        Err(RegisterError::Full { would_hold, max }) => assert_eq!((would_hold, max), (1200, 1000)),
        other => panic!("expected the flight to be full, got {other:?}"),
    }
    assert_eq!(b.probe.count("passengers").await, 600);
    assert_eq!(b.probe.modification_marks().await, marks, "nothing changed");
    // Passengers already on board count once: 400 of these are merges.
    let full = b.flights.register(&batch(201, 1000)).await.unwrap();
    assert_eq!(full.flight.passenger_count, 1000);
}

pub async fn delivery_reports_fill_the_ledger_and_never_go_back(b: &Backend) {
    with_passengers(b, 3).await;
    let alert = created(
        b.alerts
            .record(AlertId::new(), &cancelled(), None, &LIMITS)
            .await
            .unwrap(),
    );
    let counts = |b: &Backend| {
        let alerts = b.alerts.clone();
        async move {
            let listed = alerts
                .list(&AlertQuery {
                    limit: 1,
                    ..AlertQuery::default()
                })
                .await;
            listed.unwrap()[0].1
        }
    };
    let c = |pending, sent, failed| DeliveryCounts {
        pending,
        sent,
        failed,
        ..DeliveryCounts::default()
    };
    assert_eq!(counts(b).await, c(3, 0, 0));
    let sent = |i, id: &str| RecipientOutcome {
        phone: passenger(i, "p@example.com").phone,
        outcome: Outcome::Sent {
            message_id: id.into(),
        },
    };
    let failed = |i| RecipientOutcome {
        phone: passenger(i, "p@example.com").phone,
        outcome: Outcome::Failed {
            class: FailureClass::Rejected,
        },
    };
    let t = now();
    let record = |r: DeliveryReport| {
        let alerts = b.alerts.clone();
        async move { alerts.record_outcomes(&r, t).await.unwrap() }
    };
    let report = |outcomes| DeliveryReport::new(alert.id, 1, outcomes);
    let first = report(vec![sent(1, "m-1"), failed(2)]);
    assert_eq!(record(first.clone()).await, 2);
    assert_eq!(counts(b).await, c(1, 1, 1));
    // Delivered twice (an SNS redelivery, a Lambda retry): nothing more changes.
    assert_eq!(record(first).await, 0);
    // A late failure does not undo a send; a send does settle a failure.
    assert_eq!(record(report(vec![failed(1)])).await, 0);
    assert_eq!(record(report(vec![sent(2, "m-2")])).await, 1);
    assert_eq!(counts(b).await, c(1, 2, 0));
    // Another stage's alert (a hand-made message, say) touches nobody here, whatever the phones.
    let elsewhere = DeliveryReport::new(AlertId::new(), 1, vec![sent(3, "m-3")]);
    assert_eq!(record(elsewhere).await, 0);
    assert_eq!(counts(b).await, c(1, 2, 0));
    // The carrier's word: delivered, or not after all; for SMS sent only, and once.
    let carrier = |id: &str, delivered| CarrierOutcome {
        message_id: id.into(),
        delivered,
    };
    let outcomes = [
        carrier("m-1", true),
        carrier("m-2", false),
        carrier("m-9", true),
    ];
    assert_eq!(b.alerts.record_carrier(&outcomes, t).await.unwrap(), 2);
    assert_eq!(b.alerts.record_carrier(&outcomes, t).await.unwrap(), 0);
    assert_eq!(
        counts(b).await,
        DeliveryCounts {
            pending: 1,
            delivered: 1,
            failed: 1,
            ..DeliveryCounts::default()
        }
    );
    // A late SENT report does not undo what the carrier said.
    assert_eq!(record(report(vec![sent(2, "m-2")])).await, 0);
    let (shown, recipients) = b.alerts.details(alert.id).await.unwrap().unwrap();
    assert_eq!(shown.id, alert.id);
    let states: Vec<_> = recipients
        .iter()
        .map(|r| (r.phone.clone(), r.state))
        .collect();
    assert_eq!(
        states,
        [
            (
                passenger(1, "p@example.com").phone,
                DeliveryState::Delivered
            ),
            (passenger(2, "p@example.com").phone, DeliveryState::Failed),
            (passenger(3, "p@example.com").phone, DeliveryState::Pending),
        ]
    );
    assert_eq!(recipients[1].failure, Some(FailureClass::Undelivered));
    assert!(recipients[0].updated_at.is_some() && recipients[2].updated_at.is_none());
    // A report about an alert this store never issued is ignored.
    let stranger = DeliveryReport::new(AlertId::new(), 1, vec![sent(3, "m-3")]);
    assert_eq!(record(stranger).await, 0);
    assert!(b.alerts.details(AlertId::new()).await.unwrap().is_none());
}
