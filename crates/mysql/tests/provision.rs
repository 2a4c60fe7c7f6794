//! Deploy-time provisioning against MariaDB: each function's user can do its own work and nothing
//! else.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use flightwatch_mysql::provision::{provision, FunctionUser, ProvisionError, Role};
use sqlx::mysql::MySqlPoolOptions;
use sqlx::MySqlPool;

fn user(role: Role, name: &str) -> FunctionUser {
    FunctionUser {
        role,
        username: name.into(),
        password: "Abcdefghij0123456789xyz".into(),
    }
}

async fn connect_as(admin: &MySqlPool, name: &str) -> MySqlPool {
    let options = (*admin.connect_options())
        .clone()
        .username(name)
        .password("Abcdefghij0123456789xyz");
    MySqlPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn each_function_user_reaches_its_own_tables_only(admin: MySqlPool) {
    let database = admin.connect_options().get_database().unwrap().to_owned();
    let suffix = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let (flights_user, alerts_user) = (format!("fl_{suffix}"), format!("al_{suffix}"));
    let users = [
        user(Role::Flights, &flights_user),
        user(Role::Alerts, &alerts_user),
    ];
    provision(&admin, &database, &users, false).await.unwrap();
    // Idempotent: a second deploy changes nothing and fails nothing.
    provision(&admin, &database, &users, false).await.unwrap();

    let flights = connect_as(&admin, &flights_user).await;
    sqlx::query("SELECT COUNT(*) FROM passengers")
        .execute(&flights)
        .await
        .unwrap();
    assert!(sqlx::query("SELECT COUNT(*) FROM alerts")
        .execute(&flights)
        .await
        .is_err());
    assert!(
        sqlx::query("DELETE FROM passengers")
            .execute(&flights)
            .await
            .is_err(),
        "no DELETE"
    );

    let alerts = connect_as(&admin, &alerts_user).await;
    sqlx::query("SELECT COUNT(*) FROM alert_outbox")
        .execute(&alerts)
        .await
        .unwrap();
    sqlx::query("SELECT phone FROM passenger_phones")
        .execute(&alerts)
        .await
        .unwrap();
    sqlx::query("SELECT origin FROM flight_schedules")
        .execute(&alerts)
        .await
        .unwrap();
    assert!(
        sqlx::query("SELECT email FROM passengers")
            .execute(&alerts)
            .await
            .is_err(),
        "no emails"
    );
    assert!(sqlx::query("SELECT * FROM flights")
        .execute(&alerts)
        .await
        .is_err());

    flights.close().await;
    alerts.close().await;
    for name in [&flights_user, &alerts_user] {
        sqlx::raw_sql(&format!("DROP USER '{name}'@'%'"))
            .execute(&admin)
            .await
            .unwrap();
    }
}

#[sqlx::test(migrations = false)]
async fn names_and_passwords_that_would_need_quoting_are_refused(admin: MySqlPool) {
    let database = admin.connect_options().get_database().unwrap().to_owned();
    let mut bad = user(Role::Flights, "x'; DROP TABLE flights; --");
    assert!(matches!(
        provision(&admin, &database, &[bad.clone()], false).await,
        Err(ProvisionError::BadIdentifier(_))
    ));
    bad.username = "flights_ok".into();
    bad.password = "short'pw".into();
    assert!(matches!(
        provision(&admin, &database, &[bad], false).await,
        Err(ProvisionError::BadPassword(_))
    ));
}
