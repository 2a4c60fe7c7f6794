//! The storage contract. Each `pub async fn` here is one behaviour the API relies on, written
//! against the ports only; every adapter's tests run all of them through `for_each_contract!`, so
//! a behaviour that differs between MySQL and SQLite is a failing test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a contract that cannot unwrap has failed

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use flightwatch_app::relay as publish;
use flightwatch_domain::flight::parse_time;
use flightwatch_domain::ports::{
    AlertBus, AlertStore, BusError, Claimed, FlightStore, Idempotency, Recorded, RegisterError,
};
use flightwatch_domain::{
    AirportCode, Alert, AlertId, AlertMessage, AlertQuery, DeliveryCounts, DeliveryReport,
    DeliveryState, Email, EventKind, FailureClass, FlightEvent, FlightKey, FlightNumber,
    FlightRegistration, Notification, Outcome, Passenger, PassengerName, PhoneNumber, Publication,
    Reason, RecipientOutcome, Refusal, SmsText, SpendLimits,
};
use flightwatch_store::{Arg, Dialect};

/// What a contract needs to look at that the ports do not show.
#[async_trait]
pub trait Probe: Send + Sync {
    /// Every flight's and passenger's last-modified mark, to tell whether a write changed anything.
    async fn modification_marks(&self) -> String;
    async fn count(&self, table: &str) -> i64;
    /// Makes every unpublished alert due now, as if its lease and retry delay had run out.
    async fn make_outbox_due(&self);
    /// Publication attempts and last error of the one alert in the outbox.
    async fn outbox_attempts(&self) -> (u32, Option<String>);
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

    async fn make_outbox_due(&self) {
        self.exec(
            "UPDATE alert_outbox SET lease_until = NULL WHERE published_at IS NULL",
            vec![],
        )
        .await;
    }

    async fn outbox_attempts(&self) -> (u32, Option<String>) {
        let rows = self
            .rows("SELECT attempts, last_error FROM alert_outbox", vec![])
            .await;
        let attempts = DB::int(&rows[0], "attempts").expect("attempts");
        (
            attempts as u32,
            DB::opt_text(&rows[0], "last_error").expect("last_error"),
        )
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
            a_pending_alert_is_leased_to_one_publisher_until_published,
            publication_progress_never_goes_back,
            a_failed_publish_stays_pending_until_the_relay_publishes_it,
            a_big_alert_resumes_after_the_parts_already_published,
            an_unreadable_outbox_row_is_set_aside_and_the_others_published,
            what_an_alert_says_is_fixed_when_it_is_recorded,
            the_extreme_times_the_api_accepts_are_stored_alike,
            times_keep_their_instant_and_offset,
            a_new_time_in_the_same_minute_is_the_same_event,
            alerts_past_the_daily_limit_are_refused_and_record_nothing,
            concurrent_events_never_pass_the_daily_limit,
            a_flight_holds_at_most_a_thousand_passengers_across_merges,
            delivery_reports_fill_the_ledger_and_never_go_back,
            a_paused_alert_resumes_at_the_next_pass_after_its_parts
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
        parse_time("2026-12-01T16:40:00-05:00").unwrap(),
        passengers,
    )
    .unwrap()
}

fn registration(passengers: Vec<Passenger>) -> FlightRegistration {
    registration_at("2026-12-01T08:05:00-08:00", passengers)
}

fn key() -> FlightKey {
    "UA123-2026-12-01".parse().unwrap()
}

fn delayed_to(hhmm: &str) -> Notification {
    Notification {
        flight: key(),
        event: FlightEvent::Delayed {
            estimated_departure: parse_time(&format!("2026-12-01T{hhmm}:00-08:00")).unwrap(),
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
        "2026-12-01T09:05:00-08:00",
        vec![passenger(1, "a@example.com")],
    );
    let again = b.flights.register(&later).await.unwrap();
    assert!(!again.created);
    let (summary, _) = b.flights.find(&key()).await.unwrap().unwrap();
    assert_eq!(
        summary.departure,
        parse_time("2026-12-01T09:05:00-08:00").unwrap()
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

pub async fn an_alert_is_recorded_with_its_recipients_and_outbox_in_one_go(b: &Backend) {
    with_passengers(b, 3).await;
    let schedule = b.alerts.schedule(&key()).await.unwrap().unwrap();
    assert_eq!(
        schedule.scheduled_departure,
        parse_time("2026-12-01T08:05:00-08:00").unwrap()
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
        Some(parse_time("2026-12-01T10:30:00-08:00").unwrap())
    );
    assert_eq!(b.probe.count("alert_outbox").await, 1);
    assert_eq!(b.probe.count("alert_recipients").await, 3);
    // Passengers registered later are not recipients of an alert already issued.
    b.flights
        .register(&registration(vec![passenger(4, "p@example.com")]))
        .await
        .unwrap();
    let pending = b
        .alerts
        .claim(alert.id, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.recipients.len(), 3);
    assert_eq!(pending.flight, schedule);
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
        list(&|q| q.departure_date = "2026-12-01".parse().ok())
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

pub async fn a_pending_alert_is_leased_to_one_publisher_until_published(b: &Backend) {
    with_passengers(b, 1).await;
    let alert = created(
        b.alerts
            .record(AlertId::new(), &delayed_to("10:30"), None, &LIMITS)
            .await
            .unwrap(),
    );
    let lease = Duration::from_secs(30);
    let first = b.alerts.claim(alert.id, lease).await.unwrap().unwrap();
    assert_eq!(first.attempts, 1);
    assert!(
        b.alerts.claim(alert.id, lease).await.unwrap().is_none(),
        "leased"
    );
    assert!(
        b.alerts.claim_due(10, lease).await.unwrap().is_empty(),
        "leased"
    );
    // A failure makes it due again after the retry delay, not before.
    b.alerts
        .mark_failed(alert.id, "topic unreachable", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(b.alerts.claim_due(10, lease).await.unwrap().is_empty());
    b.alerts
        .mark_failed(alert.id, "topic unreachable", Duration::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let due = b.alerts.claim_due(10, lease).await.unwrap();
    assert_eq!(due.len(), 1);
    let Claimed::Ready(due) = &due[0] else {
        panic!("a readable alert is ready: {due:?}")
    };
    assert_eq!(due.attempts, 2);
    b.alerts.mark_progress(alert.id, 1).await.unwrap();
    b.alerts.mark_published(alert.id).await.unwrap();
    assert!(b
        .alerts
        .claim(alert.id, Duration::ZERO)
        .await
        .unwrap()
        .is_none());
    let listed = b
        .alerts
        .list(&AlertQuery {
            limit: 1,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed[0].0.publication, Publication::Published);
}

pub async fn publication_progress_never_goes_back(b: &Backend) {
    with_passengers(b, 1).await;
    let alert = created(
        b.alerts
            .record(AlertId::new(), &cancelled(), None, &LIMITS)
            .await
            .unwrap(),
    );
    b.alerts
        .claim(alert.id, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    // A late publisher reporting less progress than a later one must not undo it.
    b.alerts.mark_progress(alert.id, 2).await.unwrap();
    b.alerts.mark_progress(alert.id, 1).await.unwrap();
    b.probe.make_outbox_due().await;
    let pending = b
        .alerts
        .claim(alert.id, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.parts_published, 2);
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

pub async fn a_failed_publish_stays_pending_until_the_relay_publishes_it(b: &Backend) {
    with_passengers(b, 3).await;
    let bus = FlakyBus {
        failures: AtomicU32::new(1),
        ..FlakyBus::default()
    };
    let alert = created(
        b.alerts
            .record(AlertId::new(), &cancelled(), None, &LIMITS)
            .await
            .unwrap(),
    );
    assert!(publish::publish_now(b.alerts.as_ref(), &bus, alert.id)
        .await
        .is_err());
    let (attempts, error) = b.probe.outbox_attempts().await;
    assert_eq!(attempts, 1);
    assert!(error.is_some_and(|e| e.contains("topic unreachable")));
    // Not due before its retry delay; published by the relay once it is.
    assert_eq!(
        publish::relay(b.alerts.as_ref(), &bus, 10, SECOND)
            .await
            .unwrap(),
        publish::RelayReport::default()
    );
    b.probe.make_outbox_due().await;
    assert_eq!(
        publish::relay(b.alerts.as_ref(), &bus, 10, SECOND)
            .await
            .unwrap()
            .published,
        1
    );
    let published = bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].alert_id, alert.id);
    assert_eq!(published[0].recipients.len(), 3);
    assert_eq!(
        publish::relay(b.alerts.as_ref(), &bus, 10, SECOND)
            .await
            .unwrap(),
        publish::RelayReport::default()
    );
    let (attempts, error) = b.probe.outbox_attempts().await;
    assert_eq!((attempts, error), (2, None));
}

pub async fn a_big_alert_resumes_after_the_parts_already_published(b: &Backend) {
    with_passengers(b, 1000).await;
    let bus = FlakyBus {
        failures: AtomicU32::new(1),
        fail_part: Some(2),
        ..FlakyBus::default()
    };
    let alert = created(
        b.alerts
            .record(AlertId::new(), &cancelled(), None, &LIMITS)
            .await
            .unwrap(),
    );
    assert_eq!(alert.recipients, 1000);
    assert!(publish::publish_now(b.alerts.as_ref(), &bus, alert.id)
        .await
        .is_err());
    assert_eq!(bus.published.lock().unwrap().len(), 1);
    b.probe.make_outbox_due().await;
    publish::relay(b.alerts.as_ref(), &bus, 10, SECOND)
        .await
        .unwrap();
    let published = bus.published.lock().unwrap().clone();
    assert_eq!(published.iter().map(|m| m.part).collect::<Vec<_>>(), [1, 2]);
    let mut phones: Vec<_> = published
        .iter()
        .flat_map(|m| m.recipients.clone())
        .collect();
    phones.sort();
    phones.dedup();
    assert_eq!(phones.len(), 1000, "every recipient in exactly one part");
    assert!(b
        .alerts
        .claim_due(10, publish::LEASE)
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
        parse_time("2026-12-01T00:30:00+05:45").unwrap(),
        parse_time("2026-12-01T01:45:00+05:30").unwrap(),
        vec![passenger(1, "p@example.com")],
    )
    .unwrap();
    b.flights.register(&reg).await.unwrap();
    let key: FlightKey = "RA229-2026-12-01".parse().unwrap();
    let (summary, _) = b.flights.find(&key).await.unwrap().unwrap();
    assert_eq!(summary.departure.to_rfc3339(), "2026-12-01T00:30:00+05:45");
    assert_eq!(summary.arrival.to_rfc3339(), "2026-12-01T01:45:00+05:30");
    let n = Notification {
        flight: key,
        event: FlightEvent::Delayed {
            estimated_departure: parse_time("2026-11-30T20:15:30.25Z").unwrap(),
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
        "2026-11-30T20:15:30+00:00"
    );
    assert!(
        (listed[0].0.created_at - chrono::Utc::now())
            .num_seconds()
            .abs()
            < 60
    );
}

pub async fn an_unreadable_outbox_row_is_set_aside_and_the_others_published(b: &Backend) {
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
    let report = publish::relay(b.alerts.as_ref(), &bus, 10, SECOND)
        .await
        .unwrap();
    assert_eq!(
        (report.published, report.failed, report.set_aside),
        (2, 0, 1),
        "the oldest row, unreadable, blocks nothing"
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
    // Set aside for good: later passes do not pick it up again.
    b.probe.make_outbox_due().await;
    assert_eq!(
        publish::relay(b.alerts.as_ref(), &bus, 10, SECOND)
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
    // Re-registered before the alert is published: another time and another destination.
    let changed = FlightRegistration::new(
        FlightNumber::parse("UA123").unwrap(),
        AirportCode::parse("SFO").unwrap(),
        AirportCode::parse("BOS").unwrap(),
        parse_time("2026-12-01T09:40:00-08:00").unwrap(),
        parse_time("2026-12-01T18:00:00-05:00").unwrap(),
        vec![passenger(1, "p@example.com")],
    )
    .unwrap();
    b.flights.register(&changed).await.unwrap();
    let bus = FlakyBus::default();
    assert!(publish::publish_now(b.alerts.as_ref(), &bus, alert.id)
        .await
        .unwrap());
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
            estimated_departure: parse_time("2026-12-01T10:30:59-08:00").unwrap(),
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
    let report = |outcomes| DeliveryReport::new(alert.id, outcomes);
    let first = report(vec![sent(1, "m-1"), failed(2)]);
    assert_eq!(b.alerts.record_outcomes(&first).await.unwrap(), 2);
    assert_eq!(counts(b).await, c(1, 1, 1));
    // Delivered twice (an SNS redelivery, a Lambda retry): nothing more changes.
    assert_eq!(b.alerts.record_outcomes(&first).await.unwrap(), 0);
    // A late failure does not undo a send; a later send does settle a failure.
    assert_eq!(
        b.alerts
            .record_outcomes(&report(vec![failed(1)]))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        b.alerts
            .record_outcomes(&report(vec![sent(2, "m-2")]))
            .await
            .unwrap(),
        1
    );
    assert_eq!(counts(b).await, c(1, 2, 0));
    let (shown, recipients) = b.alerts.details(alert.id).await.unwrap().unwrap();
    assert_eq!(shown.id, alert.id);
    let states: Vec<_> = recipients
        .iter()
        .map(|r| (r.phone.clone(), r.state))
        .collect();
    assert_eq!(
        states,
        [
            (passenger(1, "p@example.com").phone, DeliveryState::Sent),
            (passenger(2, "p@example.com").phone, DeliveryState::Sent),
            (passenger(3, "p@example.com").phone, DeliveryState::Pending),
        ]
    );
    assert!(recipients[0].updated_at.is_some() && recipients[2].updated_at.is_none());
    // A report about an alert this store never issued is ignored.
    let stranger = DeliveryReport::new(AlertId::new(), vec![sent(3, "m-3")]);
    assert_eq!(b.alerts.record_outcomes(&stranger).await.unwrap(), 0);
    assert!(b.alerts.details(AlertId::new()).await.unwrap().is_none());
}

pub async fn a_paused_alert_resumes_at_the_next_pass_after_its_parts(b: &Backend) {
    with_passengers(b, 1000).await;
    let alert = created(
        b.alerts
            .record(AlertId::new(), &cancelled(), None, &LIMITS)
            .await
            .unwrap(),
    );
    let pending = b
        .alerts
        .claim(alert.id, publish::LEASE)
        .await
        .unwrap()
        .unwrap();
    let bus = FlakyBus::default();
    // Out of time before it starts: the first part still goes, then the lease is given back.
    let past = tokio::time::Instant::now();
    let done = publish::publish(b.alerts.as_ref(), &bus, pending, Some(past))
        .await
        .unwrap();
    assert_eq!(done, publish::Published::Paused { parts_published: 1 });
    // Due at once, with no lease to wait for, and resumed after part 1.
    let due = b.alerts.claim_due(10, publish::LEASE).await.unwrap();
    let [Claimed::Ready(resumed)] = due.as_slice() else {
        panic!("the paused alert is due: {due:?}")
    };
    assert_eq!(resumed.parts_published, 1);
    publish::publish(b.alerts.as_ref(), &bus, resumed.clone(), None)
        .await
        .unwrap();
    let parts: Vec<u32> = bus
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.part)
        .collect();
    assert_eq!(parts, [1, 2]);
    assert!(b
        .alerts
        .claim_due(10, publish::LEASE)
        .await
        .unwrap()
        .is_empty());
}
