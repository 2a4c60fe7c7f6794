//! The storage logic of the flights and alerts functions, written once for every database: each
//! SQL flow (register and merge, record an alert with its recipients and outbox entry,
//! idempotency keys, duplicate events, keyset listing, the delivery ledger's hand-outs and reports,
//! expiry) lives here. What MySQL and SQLite spell differently sits in one small trait, `Dialect`,
//! implemented for each in `mysql.rs` and `sqlite.rs` (features `mysql`, `sqlite`; their
//! migrations stay in `flightwatch-mysql` and `flightwatch-sqlite`): how values are bound and read
//! (time encodings, unsigned ids), `GREATEST`, row locking, the passengers upsert, how a write
//! transaction begins, which errors pass by themselves.

mod alerts;
mod flights;

pub use alerts::SqlAlertStore;
pub use flights::SqlFlightStore;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use flightwatch_domain::ports::StoreError;
use futures::future::BoxFuture;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::Database;

/// A value bound to a statement, in the store's own terms; each dialect encodes it.
#[derive(Clone, Copy, Debug)]
pub enum Arg<'a> {
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
    Date(NaiveDate),
    /// A schedule instant, kept to the second.
    At(DateTime<Utc>),
    OptAt(Option<DateTime<Utc>>),
    /// A bookkeeping time, kept to the microsecond.
    Stamp(DateTime<Utc>),
    OptStamp(Option<DateTime<Utc>>),
}

/// What a statement did.
#[derive(Clone, Copy, Debug)]
pub struct Done {
    pub rows: u64,
    /// The id of the row an `INSERT` created (auto-increment, or SQLite's rowid).
    pub last_id: i64,
}

/// What MySQL and SQLite do differently, and nothing else.
pub trait Dialect: Database {
    /// The larger of two values (`GREATEST` / `MAX`).
    const GREATEST: &'static str;
    /// Appended to a `SELECT` that must lock the rows it reads until the transaction ends
    /// (MySQL's `FOR UPDATE`; SQLite's write transaction already holds the database).
    const FOR_UPDATE: &'static str;
    /// Appended to the multi-row passengers `INSERT`: merge by (flight, phone), touching a row
    /// (and its `updated_at`) only when its name or email really changed, case included.
    const UPSERT_PASSENGERS: &'static str;

    fn exec<'c>(
        conn: &'c mut Self::Connection,
        sql: &'c str,
        args: Vec<Arg<'c>>,
    ) -> BoxFuture<'c, Result<Done, sqlx::Error>>;

    fn fetch_all<'c>(
        conn: &'c mut Self::Connection,
        sql: &'c str,
        args: Vec<Arg<'c>>,
    ) -> BoxFuture<'c, Result<Vec<Self::Row>, sqlx::Error>>;

    /// Begins a transaction that will write: SQLite takes its write lock up front
    /// (`BEGIN IMMEDIATE`), so two writers queue instead of failing with SQLITE_BUSY.
    fn begin_write(
        pool: &sqlx::Pool<Self>,
    ) -> BoxFuture<'_, Result<sqlx::Transaction<'static, Self>, sqlx::Error>>;

    fn text(row: &Self::Row, col: &str) -> Result<String, sqlx::Error>;
    fn opt_text(row: &Self::Row, col: &str) -> Result<Option<String>, sqlx::Error>;
    /// Any integer column, signed or not.
    fn int(row: &Self::Row, col: &str) -> Result<i64, sqlx::Error> {
        Self::opt_int(row, col)?.ok_or(sqlx::Error::ColumnNotFound(col.to_owned()))
    }
    fn opt_int(row: &Self::Row, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn bool(row: &Self::Row, col: &str) -> Result<bool, sqlx::Error>;
    fn date(row: &Self::Row, col: &str) -> Result<NaiveDate, sqlx::Error>;
    fn opt_at(row: &Self::Row, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
    fn opt_stamp(row: &Self::Row, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;

    fn migrate<'a>(
        pool: &'a sqlx::Pool<Self>,
        migrator: &'a Migrator,
    ) -> BoxFuture<'a, Result<(), MigrateError>>;

    /// Whether the failure may pass if the caller tries again in a moment.
    fn is_transient(e: &sqlx::Error) -> bool;
    /// Whether running the same transaction again resolves it: a lost insert race, a deadlock.
    fn is_contention(e: &sqlx::Error) -> bool;
}

/// A `Dialect` impl: what reads the same for every database is written here once; the caller
/// gives its connection and row types, how a statement's result tells the id of the row it
/// inserted, how instants are encoded (`at`: schedules, to the second; `stamp`: bookkeeping
/// times, to the microsecond), and the rest of the trait.
#[allow(unused_macros)] // used by the dialect modules of the enabled features
macro_rules! dialect {
    (
        impl Dialect for $db:ty {
            connection: $conn:ty,
            row: $row:ty,
            last_id: $last_id:expr,
            at: $at:expr,
            stamp: $stamp:expr,
            $($rest:tt)*
        }
    ) => {
        fn bind_all<'q>(
            mut q: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            args: Vec<Arg<'q>>,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
            for arg in args {
                q = match arg {
                    Arg::Text(v) => q.bind(v),
                    Arg::OptText(v) => q.bind(v),
                    Arg::Int(v) => q.bind(v),
                    Arg::OptInt(v) => q.bind(v),
                    Arg::Bool(v) => q.bind(v),
                    Arg::Date(v) => q.bind(v),
                    Arg::At(v) => q.bind($at(v)),
                    Arg::OptAt(v) => q.bind(v.map($at)),
                    Arg::Stamp(v) => q.bind($stamp(v)),
                    Arg::OptStamp(v) => q.bind(v.map($stamp)),
                };
            }
            q
        }

        impl Dialect for $db {
            fn exec<'c>(
                conn: &'c mut $conn,
                sql: &'c str,
                args: Vec<Arg<'c>>,
            ) -> BoxFuture<'c, Result<Done, sqlx::Error>> {
                Box::pin(async move {
                    let done = bind_all(sqlx::query(sql), args).execute(conn).await?;
                    Ok(Done {
                        rows: done.rows_affected(),
                        last_id: $last_id(&done),
                    })
                })
            }

            fn fetch_all<'c>(
                conn: &'c mut $conn,
                sql: &'c str,
                args: Vec<Arg<'c>>,
            ) -> BoxFuture<'c, Result<Vec<$row>, sqlx::Error>> {
                Box::pin(async move { bind_all(sqlx::query(sql), args).fetch_all(conn).await })
            }

            fn migrate<'a>(
                pool: &'a sqlx::Pool<$db>,
                migrator: &'a sqlx::migrate::Migrator,
            ) -> BoxFuture<'a, Result<(), sqlx::migrate::MigrateError>> {
                Box::pin(migrator.run(pool))
            }

            fn text(row: &$row, col: &str) -> Result<String, sqlx::Error> {
                sqlx::Row::try_get(row, col)
            }

            fn opt_text(row: &$row, col: &str) -> Result<Option<String>, sqlx::Error> {
                sqlx::Row::try_get(row, col)
            }

            fn bool(row: &$row, col: &str) -> Result<bool, sqlx::Error> {
                sqlx::Row::try_get(row, col)
            }

            fn date(row: &$row, col: &str) -> Result<NaiveDate, sqlx::Error> {
                sqlx::Row::try_get(row, col)
            }

            $($rest)*
        }
    };
}

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "sqlite")]
mod sqlite;

/// Applies both functions' migrations (each database crate embeds its own), flights first: the
/// alerts migrations read their views. Both share one history table in one schema, so each
/// ignores the other's entries.
pub async fn migrate_all<DB: Dialect>(
    pool: &sqlx::Pool<DB>,
    [flights, alerts]: [Migrator; 2],
) -> Result<(), MigrateError> {
    for mut migrator in [flights, alerts] {
        migrator.set_ignore_missing(true);
        DB::migrate(pool, &migrator).await?;
    }
    Ok(())
}

/// How many times a transaction runs before contention is reported as a failure: each lost race
/// lets one more of the racers through, so this many requests for one flight at once all succeed.
const ATTEMPTS: u32 = 5;

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn invalid(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored {what} is not valid").into())
}

/// A sqlx error as the ports see it, classified by the dialect.
fn store_error<DB: Dialect>(e: sqlx::Error) -> StoreError {
    if DB::is_transient(&e) {
        StoreError::transient(e)
    } else {
        StoreError::permanent(e)
    }
}

/// A text column parsed into its domain type.
fn parse<DB: Dialect, T, E>(
    row: &DB::Row,
    col: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, sqlx::Error> {
    parse(&DB::text(row, col)?).map_err(|_| invalid(col))
}

fn at<DB: Dialect>(row: &DB::Row, col: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    DB::opt_at(row, col)?.ok_or_else(|| invalid(col))
}

fn stamp<DB: Dialect>(row: &DB::Row, col: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    DB::opt_stamp(row, col)?.ok_or_else(|| invalid(col))
}

/// An instant and the offset it was given in: the UTC column and the offset-in-minutes column.
fn split(t: DateTime<FixedOffset>) -> (DateTime<Utc>, i64) {
    (t.to_utc(), i64::from(t.offset().local_minus_utc() / 60))
}

fn join(utc: DateTime<Utc>, offset_min: i64) -> Result<DateTime<FixedOffset>, sqlx::Error> {
    let offset = i32::try_from(offset_min * 60)
        .ok()
        .and_then(FixedOffset::east_opt)
        .ok_or_else(|| invalid("offset"))?;
    Ok(offset.from_utc_datetime(&utc.naive_utc()))
}

/// `join` of two columns of a row.
fn local<DB: Dialect>(
    row: &DB::Row,
    utc_col: &str,
    offset_col: &str,
) -> Result<Option<DateTime<FixedOffset>>, sqlx::Error> {
    match (DB::opt_at(row, utc_col)?, DB::opt_int(row, offset_col)?) {
        (Some(t), Some(off)) => join(t, off).map(Some),
        _ => Ok(None),
    }
}
