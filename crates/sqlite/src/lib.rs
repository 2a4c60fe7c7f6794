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
use sqlx::{ConnectOptions, SqlitePool};

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
        .busy_timeout(Duration::from_secs(10))
        // No commit checkpoints: `checkpoints` does, from a connection of its own.
        .pragma("wal_autocheckpoint", "0");
    // One connection: SQLite has one writer anyway, and a write that meets another's lock waits
    // in SQLite's busy handler, which sleeps 1, 2, 5 ms...; queued in the pool instead, it starts
    // the moment the other commits (POST /notifications' p50 about 1 ms lower on the local stack,
    // whose sms handler writes its reports while the next request runs).
    // The checkpoints' connection first, one after the other: two connections opening at once
    // would find the file locked while the first puts it in WAL mode.
    let checkpointer = options
        .clone()
        .disable_statement_logging()
        .connect()
        .await
        .map_err(open_error)?;
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        // Each wait for it, at debug (`sqlx::pool::acquire`): bench/load.py's floor run reads them.
        .acquire_time_level(log::LevelFilter::Debug)
        .connect_with(options.clone())
        .await
        .map_err(open_error)?;
    migrate_all(&pool).await?;
    checkpoints(checkpointer, &pool);
    Ok(pool)
}

/// Copies the WAL into the database every 100 ms, from a connection outside the pool, until the
/// pool closes. SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1000
/// pages, which then waits for the copy and its two fsyncs (1 to 5 ms here): on the local stack,
/// one `POST /notifications` in twenty or so, its p99. A passive checkpoint waits for no reader
/// or writer, so requests go on meanwhile.
fn checkpoints(mut connection: sqlx::SqliteConnection, pool: &SqlitePool) {
    let closed = pool.close_event();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(100));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(closed);
        loop {
            tokio::select! {
                _ = &mut closed => break,
                _ = every.tick() => {}
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut connection)
                .await
            {
                log::warn!("WAL checkpoint: {e}");
            }
        }
        let _ = sqlx::Connection::close(connection).await;
    });
}

/// Applies both functions' migrations, flights first.
pub async fn migrate_all(pool: &SqlitePool) -> Result<(), MigrateError> {
    let migrators = [
        sqlx::migrate!("./migrations/flights"),
        sqlx::migrate!("./migrations/alerts"),
    ];
    flightwatch_store::migrate_all(pool, migrators).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits leave the WAL to the background checkpoints, which copy it into the database
    /// file within a few of their 100 ms rounds.
    #[tokio::test]
    async fn the_wal_is_checkpointed_in_the_background_not_by_commits() {
        let dir = std::env::temp_dir().join(format!("flightwatch-wal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("flightwatch.db");
        let pool = open(&format!("sqlite://{}", file.display()))
            .await
            .expect("opens");
        let autocheckpoint: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&pool)
            .await
            .expect("reads");
        assert_eq!(autocheckpoint, 0, "a commit would checkpoint");

        // Let the first rounds copy the migrations, then write a megabyte.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = std::fs::metadata(&file).expect("db file").len();
        sqlx::query("CREATE TABLE scratch (x BLOB)")
            .execute(&pool)
            .await
            .expect("creates");
        for _ in 0..16 {
            sqlx::query("INSERT INTO scratch VALUES (zeroblob(65536))")
                .execute(&pool)
                .await
                .expect("writes");
        }
        let mut copied = false;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = std::fs::metadata(&file).expect("db file").len();
            if now >= before + 16 * 65536 {
                copied = true;
                break;
            }
        }
        pool.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            copied,
            "the WAL was not copied into the database within 2 s"
        );
    }
}
