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
        .pragma("wal_autocheckpoint", "0")
        // A burst's WAL is copied in one go; the file is cut back to this when it starts over.
        .pragma("journal_size_limit", "33554432");
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

/// Copies the WAL into the database from a connection outside the pool, until the pool closes,
/// once commits have paused for `CHECKPOINT_WHEN_QUIET`, or after `CHECKPOINT_AT_LEAST` of
/// commits without such a pause. SQLite's automatic checkpoint runs inside the commit that takes
/// the WAL past 1000 pages, which then waits for the copy and its two fsyncs (1 to 5 ms here). A
/// passive checkpoint from another connection waits for no reader or writer, but the requests
/// that meet its copy and fsyncs still slow down (at a fixed 100 ms, under load on the local
/// stack, they were `POST /notifications`' p99): so it waits for a pause in the writes.
fn checkpoints(mut connection: sqlx::SqliteConnection, pool: &SqlitePool) {
    let closed = pool.close_event();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_ROUND);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(closed);
        // What the migrations wrote is copied once they have paused too.
        let mut wal = Wal::default();
        let mut version = None;
        loop {
            tokio::select! {
                _ = &mut closed => break,
                _ = every.tick() => {}
            }
            // Changes whenever another connection has committed since this one last asked.
            let seen = match sqlx::query_scalar::<_, i64>("PRAGMA data_version")
                .fetch_one(&mut connection)
                .await
            {
                Ok(v) => v,
                Err(e) => {
                    log::warn!("WAL checkpoint: {e}");
                    continue;
                }
            };
            let committed = version != Some(seen);
            version = Some(seen);
            if !wal.round(committed, std::time::Instant::now()) {
                continue;
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

/// How often the checkpointer looks for commits.
const CHECKPOINT_ROUND: Duration = Duration::from_millis(100);

/// How long commits must have paused for a checkpoint: a burst of requests, reads included,
/// mostly ends first (the local stack is idle most of the time).
const CHECKPOINT_WHEN_QUIET: Duration = Duration::from_secs(1);

/// The longest commits go on without a checkpoint: under writes that never pause for long, one
/// every few seconds (one request in thousands meets it) keeps the WAL from growing without end.
const CHECKPOINT_AT_LEAST: Duration = Duration::from_secs(5);

/// Whether the WAL holds commits not yet checkpointed: since when, and the last one seen.
#[derive(Default)]
struct Wal {
    dirty: Option<(std::time::Instant, std::time::Instant)>,
}

impl Wal {
    /// One round at `now`: `committed`, whether anything was committed since the last. Returns
    /// whether to checkpoint now.
    fn round(&mut self, committed: bool, now: std::time::Instant) -> bool {
        let (since, last) = match (self.dirty, committed) {
            (None, false) => return false,
            (None, true) => (now, now),
            (Some((since, _)), true) => (since, now),
            (Some(dirty), false) => dirty,
        };
        let due = now.duration_since(last) >= CHECKPOINT_WHEN_QUIET
            || now.duration_since(since) >= CHECKPOINT_AT_LEAST;
        self.dirty = (!due).then_some((since, last));
        due
    }
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

    #[test]
    fn the_wal_is_checkpointed_when_commits_pause_or_have_gone_on_too_long() {
        let start = std::time::Instant::now();
        let at = |rounds: u32| start + CHECKPOINT_ROUND * rounds;
        let quiet = (CHECKPOINT_WHEN_QUIET.as_millis() / CHECKPOINT_ROUND.as_millis()) as u32;
        let mut wal = Wal::default();
        assert!(!wal.round(false, at(0)), "nothing to copy");
        assert!(!wal.round(true, at(1)), "commits go on");
        assert!(!wal.round(true, at(2)), "commits go on");
        let copied: Vec<u32> = (3..3 + 2 * quiet)
            .filter(|&r| wal.round(false, at(r)))
            .collect();
        assert_eq!(
            copied,
            [2 + quiet],
            "once, when they have paused long enough"
        );
        // Commits in every round: copied once they have gone on for CHECKPOINT_AT_LEAST.
        let rounds = (CHECKPOINT_AT_LEAST.as_millis() / CHECKPOINT_ROUND.as_millis()) as u32;
        let from = 3 + 2 * quiet;
        let copies: Vec<u32> = (from..from + 3 * rounds + 3)
            .filter(|&r| wal.round(true, at(r)))
            .collect();
        assert_eq!(copies.len(), 3, "{copies:?}");
        assert!(copies.windows(2).all(|w| w[1] - w[0] <= rounds + 1));
    }

    /// Commits leave the WAL to the background checkpoints, which copy it into the database
    /// file once the writes have paused.
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

        // Let the migrations be copied, then write a megabyte.
        tokio::time::sleep(CHECKPOINT_WHEN_QUIET + Duration::from_millis(300)).await;
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
        for _ in 0..30 {
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
            "the WAL was not copied into the database within 3 s"
        );
    }
}
