//! Formats shared by the response bodies.

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};

/// `2037-12-01T08:05:00-08:00`: the instant in the offset it was given in.
pub(crate) fn local_time(t: DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `2026-11-26T10:00:00.123Z`
pub(crate) fn utc_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
