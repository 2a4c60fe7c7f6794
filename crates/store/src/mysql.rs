//! MySQL's spelling of the store's SQL (`flightwatch_store::Dialect`): `DATETIME` columns for
//! instants, unsigned ids, `FOR UPDATE`, `ON DUPLICATE KEY UPDATE`, and which server errors pass.

use crate::{Arg, Dialect, Done};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::{MySql, Row, TypeInfo, ValueRef};

/// MySQL server errors that pass by themselves: lock wait timeout (1205), deadlock (1213), too
/// many connections (1040), server shutting down (1053), connection killed (1927), statement
/// time limit (3024), query interrupted (1317), server gone or lost (2006, 2013).
const TRANSIENT_CODES: [u16; 9] = [1205, 1213, 1040, 1053, 1927, 3024, 1317, 2006, 2013];

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    Utc.from_utc_datetime(&t)
}

dialect! {
    impl Dialect for MySql {
        connection: MySqlConnection,
        row: MySqlRow,
        last_id: |d: &sqlx::mysql::MySqlQueryResult| i64::try_from(d.last_insert_id()).unwrap_or(i64::MAX),
        at: |t: DateTime<Utc>| t.naive_utc(),
        stamp: |t: DateTime<Utc>| t.naive_utc(),
        const GREATEST: &'static str = "GREATEST";
        const FOR_UPDATE: &'static str = " FOR UPDATE";
        // updated_at first: MySQL evaluates assignments left to right, so it still sees the old
        // values. Compared as bytes: a change of case is a change.
        const UPSERT_PASSENGERS: &'static str = " ON DUPLICATE KEY UPDATE \
             updated_at = IF(CAST(name AS BINARY) <> CAST(VALUES(name) AS BINARY) \
             OR CAST(email AS BINARY) <> CAST(VALUES(email) AS BINARY), VALUES(updated_at), updated_at), \
             name = VALUES(name), email = VALUES(email)";

        fn begin_write(
            pool: &sqlx::Pool<MySql>,
        ) -> BoxFuture<'_, Result<sqlx::Transaction<'static, MySql>, sqlx::Error>> {
            Box::pin(pool.begin())
        }

        fn opt_int(row: &MySqlRow, col: &str) -> Result<Option<i64>, sqlx::Error> {
            // Ids and counters are unsigned columns; offsets and COUNT(*) are signed. The
            // column says which, so a listing does not pay a failed decode per value.
            let unsigned = row.try_get_raw(col)?.type_info().name().ends_with("UNSIGNED");
            if unsigned {
                row.try_get::<Option<u64>, _>(col)?
                    .map(|v| i64::try_from(v).map_err(|e| sqlx::Error::Decode(e.into())))
                    .transpose()
            } else {
                row.try_get(col)
            }
        }

        fn opt_at(row: &MySqlRow, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
            Ok(row.try_get::<Option<NaiveDateTime>, _>(col)?.map(utc))
        }

        fn opt_stamp(row: &MySqlRow, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
            Self::opt_at(row, col)
        }

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

        /// A lost insert race (the second run sees the winner's row) or an InnoDB deadlock
        /// (SQLSTATE 40001).
        fn is_contention(e: &sqlx::Error) -> bool {
            matches!(e, sqlx::Error::Database(db)
                if db.is_unique_violation() || db.code().as_deref() == Some("40001"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_and_pool_failures_are_transient_and_decoding_is_not() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(MySql::is_transient(&io));
        assert!(MySql::is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!MySql::is_transient(&sqlx::Error::RowNotFound));
        assert!(!MySql::is_transient(&sqlx::Error::Decode("bad".into())));
        assert!(!MySql::is_transient(&sqlx::Error::ColumnNotFound(
            "x".into()
        )));
    }
}
