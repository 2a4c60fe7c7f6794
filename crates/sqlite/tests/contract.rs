//! The storage contract against the SQLite adapter: each test gets a fresh database file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use flightwatch_domain::AlertId;
use flightwatch_sqlite::{SqliteAlertStore, SqliteFlightStore};
use flightwatch_store_contract::{Backend, Probe};
use sqlx::SqlitePool;

struct SqliteProbe(SqlitePool);

#[async_trait]
impl Probe for SqliteProbe {
    async fn modification_marks(&self) -> String {
        let marks: Vec<String> = sqlx::query_scalar(
            "SELECT 'f' || id || '@' || updated_at FROM flights \
             UNION ALL SELECT 'p' || id || '@' || updated_at FROM passengers ORDER BY 1",
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

/// A fresh database file in its own temporary directory, removed when the test ends.
async fn backend(dir: &Path) -> Backend {
    std::fs::create_dir_all(dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("flightwatch.db").display());
    let pool = flightwatch_sqlite::open(&url)
        .await
        .expect("database opens");
    Backend {
        flights: Arc::new(SqliteFlightStore::new(pool.clone())),
        alerts: Arc::new(SqliteAlertStore::new(pool.clone())),
        probe: Arc::new(SqliteProbe(pool)),
    }
}

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("flightwatch-sqlite-{}", uuid::Uuid::now_v7()))
}

macro_rules! contract {
    ($($name:ident),*) => {$(
        #[tokio::test]
        async fn $name() {
            let dir = temp_dir();
            flightwatch_store_contract::$name(&backend(&dir).await).await;
            let _ = std::fs::remove_dir_all(&dir);
        }
    )*};
}

flightwatch_store_contract::for_each_contract!(contract);
