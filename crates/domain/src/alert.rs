//! Alerts: the record that an event was issued to a flight's passengers.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{EventKind, Reason};
use crate::flight::{DepartureDate, FlightNumber};

/// An alert's public id: a UUIDv7, so ids sort by creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AlertId(Uuid);

impl AlertId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for AlertId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for AlertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for AlertId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Whether every recipient of the alert has been on the bus yet. `Pending` ones are handed out by
/// the relay; `Failed` ones could not be processed at all (an unreadable row) and were set aside,
/// logged with their error, so that they stop holding up the alerts behind them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Publication {
    Pending,
    Published,
    Failed,
}

impl Publication {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Published => "PUBLISHED",
            Self::Failed => "FAILED",
        }
    }
}

/// An issued alert as the alerts function stores and lists it. No contact data: recipients are a
/// count here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Storage order, newest highest: what the pagination cursor points at. Never shown as is.
    pub seq: i64,
    pub id: AlertId,
    pub flight_number: FlightNumber,
    pub departure_date: DepartureDate,
    pub event: EventKind,
    pub reason: Option<Reason>,
    pub estimated_departure: Option<DateTime<FixedOffset>>,
    pub recipients: u32,
    pub publication: Publication,
    pub created_at: DateTime<Utc>,
}

/// Filters and page bounds for listing alerts, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertQuery {
    pub flight_number: Option<FlightNumber>,
    pub departure_date: Option<DepartureDate>,
    pub event: Option<EventKind>,
    pub since: Option<DateTime<Utc>>,
    /// Only alerts older than this position (from the previous page's last item).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

impl AlertQuery {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 200;
}
