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

/// MySQL server errors that pass by themselves: lock wait timeout (1205), deadlock (1213), too
/// many connections (1040), server shutting down (1053), connection killed (1927), statement
/// time limit (3024), query interrupted (1317), server gone or lost (2006, 2013).
const TRANSIENT_CODES: [u16; 9] = [1205, 1213, 1040, 1053, 1927, 3024, 1317, 2006, 2013];

/// Whether a failure may pass if the caller tries again in a moment: the network, the pool, the
/// server's load and lock contention. Grants, schema, decoding and invariants do not pass.
fn is_transient(e: &sqlx::Error) -> bool {
    use sqlx::Error as E;
    match e {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => true,
        E::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|my| TRANSIENT_CODES.contains(&my.number())),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_and_pool_failures_are_transient_and_decoding_is_not() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(store_error(io).is_transient());
        assert!(store_error(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!store_error(sqlx::Error::RowNotFound).is_transient());
        assert!(!store_error(sqlx::Error::Decode("bad".into())).is_transient());
        assert!(!store_error(sqlx::Error::ColumnNotFound("x".into())).is_transient());
    }
}
