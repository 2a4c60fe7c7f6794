//! The embedded SQLite adapter for the flight and alert stores: the local stack's zero-setup
//! default (a file under `.flightwatch/`). It keeps the MySQL adapter's behaviour — the same
//! storage contract runs against both — but is never linked into the Lambda binaries.

mod alerts;
mod flights;
mod time;

use std::str::FromStr;
use std::time::Duration;

pub use alerts::SqliteAlertStore;
pub use flights::SqliteFlightStore;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("opening {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("applying migrations: {0}")]
    Migrate(#[from] MigrateError),
}

/// Opens (creating if missing) the database at `url` (`sqlite://path/to/file.db`) and applies
/// both functions' migrations.
pub async fn open(url: &str) -> Result<SqlitePool, OpenError> {
    let open_error = |source| OpenError::Open {
        url: url.to_owned(),
        source,
    };
    let options = SqliteConnectOptions::from_str(url)
        .map_err(open_error)?
        .create_if_missing(true)
        // WAL: readers never wait for the writer; NORMAL sync is durable enough for WAL.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(open_error)?;
    migrate_all(&pool).await?;
    Ok(pool)
}

pub fn flights_migrator() -> Migrator {
    let mut m = sqlx::migrate!("./migrations/flights");
    m.set_ignore_missing(true);
    m
}

pub fn alerts_migrator() -> Migrator {
    let mut m = sqlx::migrate!("./migrations/alerts");
    m.set_ignore_missing(true);
    m
}

pub async fn migrate_all(pool: &SqlitePool) -> Result<(), MigrateError> {
    flights_migrator().run(pool).await?;
    alerts_migrator().run(pool).await
}

/// Write transactions take SQLite's write lock up front: a deferred transaction that reads and
/// then writes fails with SQLITE_BUSY when another writer got there first, instead of waiting.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

const ATTEMPTS: u32 = 3;

/// Whether a failure may pass if the caller tries again in a moment: the pool, and the database
/// being busy or locked by another writer beyond the busy timeout (SQLITE_BUSY, SQLITE_LOCKED
/// and their extended codes, whose low byte is 5 or 6). Schema, decoding and invariants do not.
fn is_transient(e: &sqlx::Error) -> bool {
    use sqlx::Error as E;
    match e {
        E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => true,
        E::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        _ => false,
    }
}

/// A sqlx error as the ports see it, classified once here.
fn store_error(e: sqlx::Error) -> flightwatch_domain::ports::StoreError {
    use flightwatch_domain::ports::StoreError;
    if is_transient(&e) {
        StoreError::transient(e)
    } else {
        StoreError::permanent(e)
    }
}
