//! The storage contract against the SQLite adapter: each test gets a fresh database file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flightwatch_sqlite::{SqliteAlertStore, SqliteFlightStore};
use flightwatch_store_contract::{Backend, SqlProbe};

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
        probe: Arc::new(SqlProbe(pool)),
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
