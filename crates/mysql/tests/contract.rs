//! The storage contract against the MySQL adapter on a real MariaDB: each test gets a fresh
//! database from `#[sqlx::test]` (DATABASE_URL names the server; scripts/test.sh sets it up).

use std::sync::Arc;

use async_trait::async_trait;
use flightwatch_domain::AlertId;
use flightwatch_mysql::provision::FunctionPools;
use flightwatch_mysql::{MySqlAlertStore, MySqlFlightStore};
use flightwatch_store_contract::{Backend, Probe};
use sqlx::MySqlPool;

struct MySqlProbe(MySqlPool);

#[async_trait]
impl Probe for MySqlProbe {
    async fn modification_marks(&self) -> String {
        let marks: Vec<String> = sqlx::query_scalar(
            "SELECT CONCAT('f', id, '@', updated_at) FROM flights \
             UNION ALL SELECT CONCAT('p', id, '@', updated_at) FROM passengers ORDER BY 1",
        )
        .fetch_all(&self.0)
        .await
        .expect("marks");
        marks.join(",")
    }

    async fn count(&self, table: &str) -> i64 {
        // Table names come from the contract itself, never from input.
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&self.0)
            .await
            .expect("count")
    }

    async fn make_outbox_due(&self) {
        sqlx::query("UPDATE alert_outbox SET lease_until = NULL WHERE published_at IS NULL")
            .execute(&self.0)
            .await
            .expect("outbox due");
    }

    async fn outbox_attempts(&self) -> (u32, Option<String>) {
        sqlx::query_as("SELECT attempts, last_error FROM alert_outbox")
            .fetch_one(&self.0)
            .await
            .expect("one outbox row")
    }

    async fn corrupt_alert(&self, id: AlertId) {
        sqlx::query("UPDATE alerts SET origin = 'x1' WHERE alert_id = ?")
            .bind(id.to_string())
            .execute(&self.0)
            .await
            .expect("corrupt");
    }
}

/// The stores connect as the users the deployer provisions for each function, with exactly
/// their grants, as in AWS; only the probe looks at the tables as admin.
async fn backend(admin: MySqlPool) -> (Backend, FunctionPools) {
    let pools = FunctionPools::provision(&admin, 5)
        .await
        .expect("migrations and users");
    let backend = Backend {
        flights: Arc::new(MySqlFlightStore::new(pools.flights.clone())),
        alerts: Arc::new(MySqlAlertStore::new(pools.alerts.clone())),
        probe: Arc::new(MySqlProbe(admin)),
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
