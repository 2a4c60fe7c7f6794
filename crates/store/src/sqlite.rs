//! SQLite's spelling of the store's SQL (`flightwatch_store::Dialect`): instants as integers
//! (schedules as unix seconds, bookkeeping times as unix microseconds), `MAX` for `GREATEST`,
//! `ON CONFLICT`, `BEGIN IMMEDIATE`, and which errors pass (the database busy or locked).

use crate::{Arg, Dialect, Done};
use chrono::{DateTime, NaiveDate, Utc};
use futures::future::BoxFuture;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{Row, Sqlite};

fn invalid(col: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored {col} is not a valid time").into())
}

dialect! {
    impl Dialect for Sqlite {
        connection: SqliteConnection,
        row: SqliteRow,
        last_id: |d: &sqlx::sqlite::SqliteQueryResult| d.last_insert_rowid(),
        at: |t: DateTime<Utc>| t.timestamp(),
        stamp: |t: DateTime<Utc>| t.timestamp_micros(),
        const GREATEST: &'static str = "MAX";
        // The write transaction (BEGIN IMMEDIATE) already holds the database.
        const FOR_UPDATE: &'static str = "";
        // Only a real change touches the row, so an identical registration changes nothing.
        const UPSERT_PASSENGERS: &'static str = " ON CONFLICT (flight_id, phone) DO UPDATE SET \
             name = excluded.name, email = excluded.email, updated_at = excluded.updated_at \
             WHERE name <> excluded.name OR email <> excluded.email";

        /// A deferred transaction that reads and then writes fails with SQLITE_BUSY when another
        /// writer got there first, instead of waiting: take the write lock up front.
        fn begin_write(
            pool: &sqlx::Pool<Sqlite>,
        ) -> BoxFuture<'_, Result<sqlx::Transaction<'static, Sqlite>, sqlx::Error>> {
            Box::pin(pool.begin_with("BEGIN IMMEDIATE"))
        }

        fn opt_int(row: &SqliteRow, col: &str) -> Result<Option<i64>, sqlx::Error> {
            row.try_get(col)
        }

        fn opt_at(row: &SqliteRow, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
            row.try_get::<Option<i64>, _>(col)?
                .map(|s| DateTime::from_timestamp(s, 0).ok_or_else(|| invalid(col)))
                .transpose()
        }

        fn opt_stamp(row: &SqliteRow, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
            row.try_get::<Option<i64>, _>(col)?
                .map(|m| DateTime::from_timestamp_micros(m).ok_or_else(|| invalid(col)))
                .transpose()
        }

        /// The pool, and the database busy or locked by another writer beyond the busy timeout
        /// (SQLITE_BUSY, SQLITE_LOCKED and their extended codes, whose low byte is 5 or 6).
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

        /// A lost insert race: the second run sees the winner's row.
        fn is_contention(e: &sqlx::Error) -> bool {
            matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
        }
    }
}
