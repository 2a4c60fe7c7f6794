//! The storage contract against the MySQL adapter on a real MariaDB: each test gets a fresh
//! database from `#[sqlx::test]` (DATABASE_URL names the server; scripts/test.sh sets it up).

use std::sync::Arc;

use flightwatch_mysql::provision::FunctionPools;
use flightwatch_mysql::{MySqlAlertStore, MySqlFlightStore};
use flightwatch_store_contract::{Backend, SqlProbe};
use sqlx::MySqlPool;

/// The stores connect as the users the deployer provisions for each function, with exactly
/// their grants, as in AWS; only the probe looks at the tables as admin.
async fn backend(admin: MySqlPool) -> (Backend, FunctionPools) {
    let pools = FunctionPools::provision(&admin, 5)
        .await
        .expect("migrations and users");
    let backend = Backend {
        flights: Arc::new(MySqlFlightStore::new(pools.flights.clone())),
        alerts: Arc::new(MySqlAlertStore::new(pools.alerts.clone())),
        probe: Arc::new(SqlProbe(admin)),
    };
    (backend, pools)
}

macro_rules! contract {
    ($($name:ident),*) => {$(
        #[sqlx::test(migrations = false)]
        async fn $name(admin: MySqlPool) {
            let (backend, users) = backend(admin.clone()).await;
            flightwatch_store_contract::$name(&backend).await;
            users.drop_users(&admin).await.expect("users dropped");
        }
    )*};
}

flightwatch_store_contract::for_each_contract!(contract);
