//! Instants as SQLite integers: schedules as unix seconds plus the offset in minutes (they are kept
//! to the second), bookkeeping times as unix microseconds.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};

pub(crate) fn split(t: DateTime<FixedOffset>) -> (i64, i64) {
    (t.timestamp(), i64::from(t.offset().local_minus_utc() / 60))
}

pub(crate) fn join(utc_seconds: i64, offset_min: i64) -> Option<DateTime<FixedOffset>> {
    let offset = FixedOffset::east_opt(i32::try_from(offset_min * 60).ok()?)?;
    Some(offset.from_utc_datetime(&DateTime::from_timestamp(utc_seconds, 0)?.naive_utc()))
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(m: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(m)
}

pub(crate) fn now() -> i64 {
    micros(Utc::now())
}
