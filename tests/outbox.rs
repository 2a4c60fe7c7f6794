//! A publish that fails after the commit loses nothing: the alert answers 202 PENDING, and the
//! relay publishes it later with no client retry. Runs the alerts router over real MariaDB with a
//! bus that fails on demand.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use flightwatch_api::alerts::{router, AlertsState};
use flightwatch_api::publish;
use flightwatch_domain::flight::parse_time;
use flightwatch_domain::ports::{AlertBus, AlertStore, BusError, FlightStore};
use flightwatch_domain::{
    AirportCode, AlertMessage, Email, FlightNumber, FlightRegistration, Passenger, PassengerName,
    PhoneNumber,
};
use flightwatch_mysql::{migrate_all, MySqlAlertStore, MySqlFlightStore};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::MySqlPool;
use tower::ServiceExt;

/// Fails the next `failures` publishes, then records what it is given.
#[derive(Default)]
struct FlakyBus {
    failures: AtomicU32,
    published: Mutex<Vec<AlertMessage>>,
}

#[async_trait]
impl AlertBus for FlakyBus {
    async fn publish(&self, message: &AlertMessage) -> Result<(), BusError> {
        if self
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

async fn register(pool: &MySqlPool, passengers: usize) {
    let flights = MySqlFlightStore::new(pool.clone());
    let reg = FlightRegistration::new(
        FlightNumber::parse("UA123").unwrap(),
        AirportCode::parse("SFO").unwrap(),
        AirportCode::parse("JFK").unwrap(),
        parse_time("2026-12-01T08:05:00-08:00").unwrap(),
        parse_time("2026-12-01T16:40:00-05:00").unwrap(),
        (0..passengers)
            .map(|i| Passenger {
                name: PassengerName::parse("P").unwrap(),
                email: Email::parse("p@example.com").unwrap(),
                phone: PhoneNumber::parse(&format!("+1415555{i:04}")).unwrap(),
            })
            .collect(),
    )
    .unwrap();
    flights.register(&reg).await.unwrap();
}

async fn notify(state: &AlertsState) -> (u16, Value) {
    let body =
        json!({"flightNumber": "UA123", "departureDate": "2026-12-01", "event": "CANCELLED"});
    let req = http::Request::post("/notifications")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = router(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[sqlx::test(migrations = false)]
async fn a_failed_publish_leaves_the_alert_pending_until_the_relay_publishes_it(pool: MySqlPool) {
    migrate_all(&pool).await.unwrap();
    register(&pool, 3).await;
    let bus = Arc::new(FlakyBus::default());
    bus.failures.store(1, Ordering::SeqCst);
    let store = Arc::new(MySqlAlertStore::new(pool.clone()));
    let state = AlertsState {
        store: store.clone(),
        bus: bus.clone(),
    };

    let (status, receipt) = notify(&state).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(receipt["publication"], "PENDING");
    assert!(bus.published.lock().unwrap().is_empty());

    // Not due before its retry delay...
    let report = publish::relay(store.as_ref(), bus.as_ref(), 10)
        .await
        .unwrap();
    assert_eq!(report, publish::RelayReport::default());
    // ...and published by the relay once it is.
    sqlx::query("UPDATE alert_outbox SET lease_until = NULL")
        .execute(&pool)
        .await
        .unwrap();
    let report = publish::relay(store.as_ref(), bus.as_ref(), 10)
        .await
        .unwrap();
    assert_eq!(report.published, 1);
    let published = bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!(
        published[0].alert_id.to_string(),
        receipt["alertId"].as_str().unwrap()
    );
    assert_eq!(published[0].recipients.len(), 3);

    // Published once: later passes find nothing to do.
    let report = publish::relay(store.as_ref(), bus.as_ref(), 10)
        .await
        .unwrap();
    assert_eq!(report, publish::RelayReport::default());
    let (attempts, error): (u32, Option<String>) =
        sqlx::query_as("SELECT attempts, last_error FROM alert_outbox")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, 2);
    assert_eq!(error, None);
}

#[sqlx::test(migrations = false)]
async fn a_big_flight_resumes_after_the_parts_already_published(pool: MySqlPool) {
    migrate_all(&pool).await.unwrap();
    register(&pool, 1000).await;
    let bus = Arc::new(FlakyBus::default());
    let store = Arc::new(MySqlAlertStore::new(pool.clone()));
    let state = AlertsState {
        store: store.clone(),
        bus: bus.clone(),
    };
    // Part 1 goes out, part 2 fails: the relay must send part 2 only.
    struct SecondPartFailsOnce(Arc<FlakyBus>, AtomicU32);
    #[async_trait]
    impl AlertBus for SecondPartFailsOnce {
        async fn publish(&self, m: &AlertMessage) -> Result<(), BusError> {
            if m.part == 2 && self.1.swap(0, Ordering::SeqCst) == 1 {
                return Err(BusError("throttled".into()));
            }
            self.0.publish(m).await
        }
    }
    let state = AlertsState {
        bus: Arc::new(SecondPartFailsOnce(bus.clone(), AtomicU32::new(1))),
        ..state
    };
    let (status, receipt) = notify(&state).await;
    assert_eq!(status, 202);
    assert_eq!(receipt["recipients"], 1000);
    assert_eq!(receipt["publication"], "PENDING");
    assert_eq!(bus.published.lock().unwrap().len(), 1);

    sqlx::query("UPDATE alert_outbox SET lease_until = NULL")
        .execute(&pool)
        .await
        .unwrap();
    publish::relay(store.as_ref(), state.bus.as_ref(), 10)
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
    assert!(store
        .claim_due(10, publish::LEASE)
        .await
        .unwrap()
        .is_empty());
}
