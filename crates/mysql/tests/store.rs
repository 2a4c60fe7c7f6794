//! The MySQL stores against a real MariaDB: each test gets a fresh database from `#[sqlx::test]`
//! (DATABASE_URL names the server; scripts/test.sh sets it up).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::time::Duration;

use flightwatch_domain::flight::parse_time;
use flightwatch_domain::ports::{AlertStore, FlightStore, Idempotency, Recorded};
use flightwatch_domain::{
    AirportCode, AlertId, AlertQuery, Email, EventKind, FlightEvent, FlightKey, FlightNumber,
    FlightRegistration, Notification, Passenger, PassengerName, PhoneNumber, Publication, Reason,
};
use flightwatch_mysql::{migrate_all, MySqlAlertStore, MySqlFlightStore};
use sqlx::MySqlPool;

fn passenger(i: u32, email: &str) -> Passenger {
    Passenger {
        name: PassengerName::parse(&format!("Passenger {i}")).unwrap(),
        email: Email::parse(email).unwrap(),
        phone: PhoneNumber::parse(&format!("+1415555{i:04}")).unwrap(),
    }
}

fn registration(passengers: Vec<Passenger>) -> FlightRegistration {
    FlightRegistration::new(
        FlightNumber::parse("UA123").unwrap(),
        AirportCode::parse("SFO").unwrap(),
        AirportCode::parse("JFK").unwrap(),
        parse_time("2026-12-01T08:05:00-08:00").unwrap(),
        parse_time("2026-12-01T16:40:00-05:00").unwrap(),
        passengers,
    )
    .unwrap()
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

async fn stores(pool: &MySqlPool) -> (MySqlFlightStore, MySqlAlertStore) {
    migrate_all(pool).await.unwrap();
    (
        MySqlFlightStore::new(pool.clone()),
        MySqlAlertStore::new(pool.clone()),
    )
}

fn created(r: Recorded) -> flightwatch_domain::Alert {
    match r {
        Recorded::Created(a) => a,
        other => panic!("expected a new alert, got {other:?}"),
    }
}

#[sqlx::test(migrations = false)]
async fn registering_again_merges_passengers_by_phone(pool: MySqlPool) {
    let (flights, _) = stores(&pool).await;
    let first = flights
        .register(&registration(vec![
            passenger(1, "a@example.com"),
            passenger(2, "b@example.com"),
        ]))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.flight.passenger_count, 2);

    let again = flights
        .register(&registration(vec![
            passenger(2, "b.new@example.com"),
            passenger(3, "c@example.com"),
        ]))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.flight.passenger_count, 3);
    let (_, passengers) = flights.find(&key()).await.unwrap().unwrap();
    let emails: Vec<_> = passengers
        .iter()
        .map(|p| p.email.expose().to_owned())
        .collect();
    assert_eq!(
        emails,
        ["a@example.com", "b.new@example.com", "c@example.com"]
    );
}

#[sqlx::test(migrations = false)]
async fn an_identical_registration_changes_nothing(pool: MySqlPool) {
    let (flights, _) = stores(&pool).await;
    let reg = registration(vec![passenger(1, "a@example.com")]);
    flights.register(&reg).await.unwrap();
    let snapshot = || async {
        sqlx::query_as::<_, (chrono::NaiveDateTime, chrono::NaiveDateTime)>(
            "SELECT (SELECT MAX(updated_at) FROM flights), (SELECT MAX(updated_at) FROM passengers)",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = snapshot().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = flights.register(&reg).await.unwrap();
    assert!(!again.created);
    assert_eq!(snapshot().await, before);
}

#[sqlx::test(migrations = false)]
async fn an_unknown_flight_has_no_schedule_and_no_details(pool: MySqlPool) {
    let (flights, alerts) = stores(&pool).await;
    assert!(flights.find(&key()).await.unwrap().is_none());
    assert!(alerts.schedule(&key()).await.unwrap().is_none());
}

#[sqlx::test(migrations = false)]
async fn an_alert_is_recorded_with_its_recipients_and_outbox_in_one_go(pool: MySqlPool) {
    let (flights, alerts) = stores(&pool).await;
    flights
        .register(&registration(
            (1..=3).map(|i| passenger(i, "p@example.com")).collect(),
        ))
        .await
        .unwrap();
    let schedule = alerts.schedule(&key()).await.unwrap().unwrap();
    assert_eq!(
        schedule.scheduled_departure,
        parse_time("2026-12-01T08:05:00-08:00").unwrap()
    );
    assert_eq!(
        schedule.scheduled_departure.offset().local_minus_utc(),
        -8 * 3600
    );

    let alert = created(
        alerts
            .record(AlertId::new(), &delayed_to("10:30"), None)
            .await
            .unwrap(),
    );
    assert_eq!(alert.recipients, 3);
    assert_eq!(alert.publication, Publication::Pending);
    let outbox: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM alert_outbox WHERE published_at IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(outbox, 1);

    // Passengers registered later are not recipients of an alert already issued.
    flights
        .register(&registration(vec![passenger(4, "p@example.com")]))
        .await
        .unwrap();
    let pending = alerts
        .claim(alert.id, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.recipients.len(), 3);
    assert_eq!(pending.flight, schedule);
}

#[sqlx::test(migrations = false)]
async fn an_identical_event_is_issued_once(pool: MySqlPool) {
    let (flights, alerts) = stores(&pool).await;
    flights
        .register(&registration(vec![passenger(1, "p@example.com")]))
        .await
        .unwrap();
    let first = created(
        alerts
            .record(AlertId::new(), &delayed_to("10:30"), None)
            .await
            .unwrap(),
    );
    match alerts
        .record(AlertId::new(), &delayed_to("10:30"), None)
        .await
        .unwrap()
    {
        Recorded::Duplicate(a) => assert_eq!(a.id, first.id),
        other => panic!("expected the existing alert, got {other:?}"),
    }
    // A new time is a new event.
    created(
        alerts
            .record(AlertId::new(), &delayed_to("11:00"), None)
            .await
            .unwrap(),
    );
    let cancel = Notification {
        event: FlightEvent::Cancelled,
        ..delayed_to("10:30")
    };
    created(alerts.record(AlertId::new(), &cancel, None).await.unwrap());
    assert!(matches!(
        alerts.record(AlertId::new(), &cancel, None).await.unwrap(),
        Recorded::Duplicate(_)
    ));
}

#[sqlx::test(migrations = false)]
async fn an_idempotency_key_replays_its_first_answer(pool: MySqlPool) {
    let (flights, alerts) = stores(&pool).await;
    flights
        .register(&registration(vec![passenger(1, "p@example.com")]))
        .await
        .unwrap();
    let idem = Idempotency {
        key: "retry-me".into(),
        fingerprint: "f".repeat(64),
    };
    let first = created(
        alerts
            .record(AlertId::new(), &delayed_to("10:30"), Some(&idem))
            .await
            .unwrap(),
    );
    match alerts
        .record(AlertId::new(), &delayed_to("10:30"), Some(&idem))
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
        alerts
            .record(AlertId::new(), &delayed_to("11:00"), Some(&other_body))
            .await
            .unwrap(),
        Recorded::KeyReused
    );
    // Keys are exact: another case is another key.
    let upper = Idempotency {
        key: "RETRY-ME".into(),
        ..idem
    };
    assert!(matches!(
        alerts
            .record(AlertId::new(), &delayed_to("10:30"), Some(&upper))
            .await
            .unwrap(),
        Recorded::Duplicate(_)
    ));
}

#[sqlx::test(migrations = false)]
async fn concurrent_requests_with_one_key_record_one_alert(pool: MySqlPool) {
    let (flights, alerts) = stores(&pool).await;
    flights
        .register(&registration(vec![passenger(1, "p@example.com")]))
        .await
        .unwrap();
    let idem = Idempotency {
        key: "same-key".into(),
        fingerprint: "a".repeat(64),
    };
    let n = delayed_to("10:30");
    let results =
        futures::future::join_all((0..6).map(|_| alerts.record(AlertId::new(), &n, Some(&idem))))
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
            Recorded::KeyReused => panic!("same body, same key"),
        }
    }
    assert_eq!(created_count, 1);
    ids.dedup();
    assert_eq!(ids.len(), 1);
    let alerts_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alerts")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(alerts_rows, 1);
}

#[sqlx::test(migrations = false)]
async fn concurrent_identical_events_without_keys_record_one_alert(pool: MySqlPool) {
    let (flights, alerts) = stores(&pool).await;
    flights
        .register(&registration(vec![passenger(1, "p@example.com")]))
        .await
        .unwrap();
    let n = delayed_to("10:30");
    let results =
        futures::future::join_all((0..6).map(|_| alerts.record(AlertId::new(), &n, None))).await;
    let created_count = results
        .into_iter()
        .filter(|r| matches!(r, Ok(Recorded::Created(_))))
        .count();
    assert_eq!(created_count, 1);
}

#[sqlx::test(migrations = false)]
async fn alerts_page_newest_first_and_stay_stable_under_inserts(pool: MySqlPool) {
    let (flights, alerts) = stores(&pool).await;
    flights
        .register(&registration(vec![passenger(1, "p@example.com")]))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for minute in 10..17 {
        ids.push(
            created(
                alerts
                    .record(AlertId::new(), &delayed_to(&format!("10:{minute}")), None)
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
    let p1 = alerts.list(&page(None)).await.unwrap();
    assert_eq!(p1.iter().map(|a| a.id).collect::<Vec<_>>(), ids[0..3]);
    // A new alert arriving between pages does not shift the next page.
    created(
        alerts
            .record(AlertId::new(), &delayed_to("12:00"), None)
            .await
            .unwrap(),
    );
    let p2 = alerts.list(&page(Some(p1[2].seq))).await.unwrap();
    assert_eq!(p2.iter().map(|a| a.id).collect::<Vec<_>>(), ids[3..6]);
    let p3 = alerts.list(&page(Some(p2[2].seq))).await.unwrap();
    assert_eq!(p3.iter().map(|a| a.id).collect::<Vec<_>>(), ids[6..7]);
}

#[sqlx::test(migrations = false)]
async fn alerts_filter_by_flight_date_event_and_time(pool: MySqlPool) {
    let (flights, alerts) = stores(&pool).await;
    flights
        .register(&registration(vec![passenger(1, "p@example.com")]))
        .await
        .unwrap();
    let delay = created(
        alerts
            .record(AlertId::new(), &delayed_to("10:30"), None)
            .await
            .unwrap(),
    );
    let cancel = Notification {
        event: FlightEvent::Cancelled,
        ..delayed_to("10:30")
    };
    let cancelled = created(alerts.record(AlertId::new(), &cancel, None).await.unwrap());
    let q = |f: fn(&mut AlertQuery)| {
        let mut q = AlertQuery {
            limit: 50,
            ..AlertQuery::default()
        };
        f(&mut q);
        q
    };
    let ids = |v: Vec<flightwatch_domain::Alert>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(
        ids(alerts
            .list(&q(|q| q.event = Some(EventKind::Cancelled)))
            .await
            .unwrap()),
        [cancelled.id]
    );
    assert_eq!(
        ids(alerts
            .list(&q(|q| q.event = Some(EventKind::Delayed)))
            .await
            .unwrap()),
        [delay.id]
    );
    assert_eq!(
        alerts
            .list(&q(
                |q| q.flight_number = Some(FlightNumber::parse("UA123").unwrap())
            ))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(alerts
        .list(&q(
            |q| q.flight_number = Some(FlightNumber::parse("BA1").unwrap())
        ))
        .await
        .unwrap()
        .is_empty());
    assert!(alerts
        .list(&q(
            |q| q.departure_date = Some("2026-12-02".parse().unwrap())
        ))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        alerts
            .list(&q(
                |q| q.departure_date = Some("2026-12-01".parse().unwrap())
            ))
            .await
            .unwrap()
            .len(),
        2
    );
    let mut since = q(|_| {});
    since.since = Some(cancelled.created_at);
    assert_eq!(ids(alerts.list(&since).await.unwrap()), [cancelled.id]);
    since.since = Some(cancelled.created_at + chrono::Duration::seconds(1));
    assert!(alerts.list(&since).await.unwrap().is_empty());
}

#[sqlx::test(migrations = false)]
async fn a_pending_alert_is_leased_to_one_publisher_until_published(pool: MySqlPool) {
    let (flights, alerts) = stores(&pool).await;
    flights
        .register(&registration(vec![passenger(1, "p@example.com")]))
        .await
        .unwrap();
    let alert = created(
        alerts
            .record(AlertId::new(), &delayed_to("10:30"), None)
            .await
            .unwrap(),
    );
    let lease = Duration::from_secs(30);

    let first = alerts.claim(alert.id, lease).await.unwrap().unwrap();
    assert_eq!(first.attempts, 1);
    assert!(
        alerts.claim(alert.id, lease).await.unwrap().is_none(),
        "leased"
    );
    assert!(
        alerts.claim_due(10, lease).await.unwrap().is_empty(),
        "leased"
    );

    // A failure makes it due again after the retry delay, not before.
    alerts
        .mark_failed(alert.id, "topic unreachable", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(alerts.claim_due(10, lease).await.unwrap().is_empty());
    alerts
        .mark_failed(alert.id, "topic unreachable", Duration::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let due = alerts.claim_due(10, lease).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempts, 2);

    alerts.mark_progress(alert.id, 1).await.unwrap();
    alerts.mark_published(alert.id).await.unwrap();
    assert!(alerts
        .claim(alert.id, Duration::ZERO)
        .await
        .unwrap()
        .is_none());
    let listed = alerts
        .list(&AlertQuery {
            limit: 1,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(listed[0].publication, Publication::Published);
}
