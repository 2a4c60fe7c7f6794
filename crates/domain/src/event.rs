//! Flight events reported by the insurer's monitoring: a delay with its new departure time, or a
//! cancellation.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::flight::{FlightKey, FlightSchedule};

/// The kind of event, as it appears in the API and on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    Delayed,
    Cancelled,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delayed => "DELAYED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "DELAYED" => Ok(Self::Delayed),
            "CANCELLED" => Ok(Self::Cancelled),
            _ => Err("must be DELAYED or CANCELLED"),
        }
    }
}

/// What happened to the flight. A delay always carries its new departure time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlightEvent {
    Delayed {
        estimated_departure: DateTime<FixedOffset>,
    },
    Cancelled,
}

impl FlightEvent {
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Delayed { .. } => EventKind::Delayed,
            Self::Cancelled => EventKind::Cancelled,
        }
    }

    pub fn estimated_departure(&self) -> Option<DateTime<FixedOffset>> {
        match self {
            Self::Delayed {
                estimated_departure,
            } => Some(*estimated_departure),
            Self::Cancelled => None,
        }
    }

    /// What makes two events "the same event": the kind and the new time (as an instant), to the
    /// minute, since that is what the SMS shows. A second report that says the same must not text
    /// the passengers again.
    pub fn dedup_key(&self) -> String {
        match self {
            Self::Delayed {
                estimated_departure,
            } => format!(
                "DELAYED@{}",
                estimated_departure.to_utc().format("%Y-%m-%dT%H:%M:00Z")
            ),
            Self::Cancelled => "CANCELLED".to_owned(),
        }
    }
}

/// Why it happened, in the insurer's words: 1 to 500 characters, single line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Reason(String);

impl Reason {
    pub const MAX_CHARS: usize = 500;

    /// The length limit applies to the reason as sent (as `openapi.yaml` states it); runs of
    /// whitespace are then collapsed to one space.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err("must be at most 500 characters");
        }
        // Line breaks and tabs would waste SMS characters and break log lines. U+FEFF counts as
        // a space, as it does for JSON Schema patterns.
        let collapsed = raw
            .split(|c: char| c.is_whitespace() || c == '\u{feff}')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if collapsed.is_empty() {
            return Err("must not be empty (leave it out instead)");
        }
        if collapsed.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Self(collapsed))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Reason {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Reason> for String {
    fn from(r: Reason) -> Self {
        r.0
    }
}

/// A reported event for one flight, parsed but not yet checked against the flight's schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub flight: FlightKey,
    pub event: FlightEvent,
    pub reason: Option<Reason>,
}

/// Why an event cannot apply to the flight it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error(
        "estimatedDeparture ({estimated}) must be later than the scheduled departure ({scheduled})"
    )]
    NotLater {
        estimated: DateTime<FixedOffset>,
        scheduled: DateTime<FixedOffset>,
    },
}

impl Notification {
    /// A delay must move the departure later than scheduled.
    pub fn check(&self, schedule: &FlightSchedule) -> Result<(), EventError> {
        match self.event {
            FlightEvent::Delayed {
                estimated_departure,
            } if estimated_departure <= schedule.scheduled_departure => Err(EventError::NotLater {
                estimated: estimated_departure,
                scheduled: schedule.scheduled_departure,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flight::{parse_time, AirportCode, FlightNumber};

    fn schedule() -> FlightSchedule {
        FlightSchedule {
            flight_number: FlightNumber::parse("UA123").unwrap(),
            departure_date: "2026-12-01".parse().unwrap(),
            origin: AirportCode::parse("SFO").unwrap(),
            destination: AirportCode::parse("JFK").unwrap(),
            scheduled_departure: parse_time("2026-12-01T08:05:00-08:00").unwrap(),
        }
    }

    fn delayed(to: &str) -> Notification {
        Notification {
            flight: FlightKey {
                number: FlightNumber::parse("UA123").unwrap(),
                date: "2026-12-01".parse().unwrap(),
            },
            event: FlightEvent::Delayed {
                estimated_departure: parse_time(to).unwrap(),
            },
            reason: None,
        }
    }

    #[test]
    fn a_delay_must_move_departure_later() {
        assert!(delayed("2026-12-01T10:30:00-08:00")
            .check(&schedule())
            .is_ok());
        assert!(delayed("2026-12-01T08:05:00-08:00")
            .check(&schedule())
            .is_err());
        // Same instant written in another offset is not later either.
        assert!(delayed("2026-12-01T16:05:00Z").check(&schedule()).is_err());
    }

    #[test]
    fn the_same_new_time_in_another_offset_is_the_same_event() {
        let a = delayed("2026-12-01T10:30:00-08:00").event.dedup_key();
        let b = delayed("2026-12-01T18:30:00Z").event.dedup_key();
        assert_eq!(a, b);
        assert_ne!(a, FlightEvent::Cancelled.dedup_key());
    }

    #[test]
    fn a_new_time_in_the_same_minute_is_the_same_event() {
        let a = delayed("2026-12-01T10:30:00-08:00").event.dedup_key();
        assert_eq!(a, delayed("2026-12-01T10:30:59-08:00").event.dedup_key());
        assert_ne!(a, delayed("2026-12-01T10:31:00-08:00").event.dedup_key());
    }

    #[test]
    fn reasons_are_one_trimmed_line_of_at_most_500_characters() {
        assert_eq!(
            Reason::parse("  Late\n inbound\taircraft ")
                .unwrap()
                .as_str(),
            "Late inbound aircraft"
        );
        assert!(Reason::parse(" \n ").is_err());
        assert!(Reason::parse(&"é".repeat(500)).is_ok());
        assert!(Reason::parse(&"é".repeat(501)).is_err());
    }

    #[test]
    fn event_kinds_parse_exactly() {
        assert_eq!("DELAYED".parse::<EventKind>(), Ok(EventKind::Delayed));
        assert!("delayed".parse::<EventKind>().is_err());
    }
}
