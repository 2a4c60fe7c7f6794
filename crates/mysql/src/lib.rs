//! MySQL adapters for the flight and alert stores, and each function's migrations. Every query
//! binds its parameters; writes that belong together share one transaction.

mod alerts;
mod flights;
pub mod provision;
mod time;

pub use alerts::MySqlAlertStore;
pub use flights::MySqlFlightStore;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::MySqlPool;

/// The flights function's tables and the views it grants the alerts function.
pub fn flights_migrator() -> Migrator {
    let mut m = sqlx::migrate!("./migrations/flights");
    // Both functions' migrations share one history table in one schema: each ignores the other's.
    m.set_ignore_missing(true);
    m
}

/// The alerts function's tables. Needs the flights migrations first (it reads their views).
pub fn alerts_migrator() -> Migrator {
    let mut m = sqlx::migrate!("./migrations/alerts");
    m.set_ignore_missing(true);
    m
}

/// Applies both functions' migrations, flights first: what the local stack, the tests and the
/// deployer's migration step run.
pub async fn migrate_all(pool: &MySqlPool) -> Result<(), MigrateError> {
    flights_migrator().run(pool).await?;
    alerts_migrator().run(pool).await
}

/// Errors a concurrent writer can cause, which the same transaction run again resolves: a lost
/// insert race (the second run sees the winner's row) or an InnoDB deadlock (SQLSTATE 40001).
fn is_contention(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation() || db.code().as_deref() == Some("40001"))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// How many times a transaction runs before contention is reported as a failure.
const ATTEMPTS: u32 = 3;
