//! SQLite for the flight and alert stores: the local stack's zero-setup default (a file under
//! `.flightwatch/`). Its dialect of the store's SQL (the storage logic itself is
//! `flightwatch-store`'s, shared with MySQL; the same storage contract runs against both) and its
//! migrations. Never linked into the Lambda binaries.

use std::str::FromStr;
use std::time::Duration;

/// The flights function's store on SQLite.
pub type SqliteFlightStore = flightwatch_store::SqlFlightStore<sqlx::Sqlite>;
/// The alerts function's store on SQLite.
pub type SqliteAlertStore = flightwatch_store::SqlAlertStore<sqlx::Sqlite>;

use sqlx::migrate::MigrateError;
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
    // One connection: SQLite has one writer anyway, and a write that meets another's lock waits
    // in SQLite's busy handler, which sleeps 1, 2, 5 ms...; queued in the pool instead, it starts
    // the moment the other commits (POST /notifications' p50 about 1 ms lower on the local stack,
    // whose sms handler writes its reports while the next request runs).
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        // Each wait for it, at debug (`sqlx::pool::acquire`): bench/load.py's floor run reads them.
        .acquire_time_level(log::LevelFilter::Debug)
        .connect_with(options)
        .await
        .map_err(open_error)?;
    migrate_all(&pool).await?;
    Ok(pool)
}

/// Applies both functions' migrations, flights first.
pub async fn migrate_all(pool: &SqlitePool) -> Result<(), MigrateError> {
    let migrators = [
        sqlx::migrate!("./migrations/flights"),
        sqlx::migrate!("./migrations/alerts"),
    ];
    flightwatch_store::migrate_all(pool, migrators).await
}
