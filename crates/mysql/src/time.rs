//! Instants with their offset, stored as a UTC `DATETIME` plus the offset in minutes.

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};

pub(crate) fn split(t: DateTime<FixedOffset>) -> (NaiveDateTime, i16) {
    // Offsets are within ±24 h, so minutes fit an i16.
    (t.naive_utc(), (t.offset().local_minus_utc() / 60) as i16)
}

pub(crate) fn join(utc: NaiveDateTime, offset_min: i16) -> DateTime<FixedOffset> {
    // Stored offsets came from parsed times, so they are valid; UTC is the fallback regardless.
    let offset = FixedOffset::east_opt(i32::from(offset_min) * 60).unwrap_or(Utc.fix());
    offset.from_utc_datetime(&utc)
}

pub(crate) fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    Utc.from_utc_datetime(&t)
}
