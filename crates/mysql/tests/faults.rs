//! How the MySQL adapter classifies real failures of a real server: what passes by itself
//! (connection refused, lock wait timeouts) is transient, what does not (a missing grant) is
//! permanent. The API turns the first into 503 with Retry-After and the second into a 500.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use flightwatch_domain::flight::parse_time;
use flightwatch_domain::ports::{FlightStore, Idempotency, Notifications, RegisterError};
use flightwatch_domain::{
    AirportCode, AlertId, Email, FlightEvent, FlightNumber, FlightRegistration, Notification,
    Passenger, PassengerName, PhoneNumber, SpendLimits,
};
use flightwatch_mysql::provision::FunctionPools;
use flightwatch_mysql::{MySqlAlertStore, MySqlFlightStore};
use sqlx::mysql::MySqlPoolOptions;
use sqlx::{Executor, MySqlPool};

fn registration() -> FlightRegistration {
    FlightRegistration::new(
        FlightNumber::parse("UA123").unwrap(),
        AirportCode::parse("SFO").unwrap(),
        AirportCode::parse("JFK").unwrap(),
        parse_time("2026-12-01T08:05:00-08:00").unwrap(),
        parse_time("2026-12-01T16:40:00-05:00").unwrap(),
        vec![Passenger {
            name: PassengerName::parse("Ada Lovelace").unwrap(),
            email: Email::parse("ada@example.com").unwrap(),
            phone: PhoneNumber::parse("+14155550100").unwrap(),
        }],
    )
    .unwrap()
}

#[sqlx::test(migrations = false)]
async fn a_missing_grant_is_permanent(admin: MySqlPool) {
    let users = FunctionPools::provision(&admin, 2).await.unwrap();
    // The alerts user may not write flights: the kind of fault that hid a broken relay.
    let wrong = MySqlFlightStore::new(users.alerts.clone());
    let e = wrong.register(&registration()).await.unwrap_err();
    assert!(
        matches!(&e, RegisterError::Store(e) if !e.is_transient()),
        "{e:?}"
    );
    users.drop_users(&admin).await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_refused_connection_is_transient(admin: MySqlPool) {
    let options = (*admin.connect_options()).clone().port(1);
    let pool = MySqlPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_lazy_with(options);
    let e = MySqlFlightStore::new(pool).ping().await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
}

#[sqlx::test(migrations = false)]
async fn a_lock_wait_timeout_is_transient(admin: MySqlPool) {
    let users = FunctionPools::provision(&admin, 2).await.unwrap();
    MySqlFlightStore::new(users.flights.clone())
        .register(&registration())
        .await
        .unwrap();
    // Another transaction holds the idempotency key's row; ours gives up after a second.
    let mut holder = admin.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO idempotency_keys (idem_key, fingerprint, created_at) VALUES ('k', 'f', NOW())",
    )
    .execute(&mut *holder)
    .await
    .unwrap();
    let impatient = MySqlPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET SESSION innodb_lock_wait_timeout = 1")
                    .await
                    .map(|_| ())
            })
        })
        .connect_with((*users.alerts.connect_options()).clone())
        .await
        .unwrap();
    let notification = Notification {
        flight: "UA123-2026-12-01".parse().unwrap(),
        event: FlightEvent::Cancelled,
        reason: None,
    };
    let key = Idempotency {
        key: "k".into(),
        fingerprint: "f".into(),
    };
    let e = MySqlAlertStore::new(impatient.clone())
        .record(
            AlertId::new(),
            &notification,
            Some(&key),
            &SpendLimits::default(),
        )
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    holder.rollback().await.unwrap();
    impatient.close().await;
    users.drop_users(&admin).await.unwrap();
}
