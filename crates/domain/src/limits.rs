//! What bounds SMS spend, whoever calls: every alert texts every passenger of its flight, so the
//! number of alerts per flight, the flights they may concern and the passengers a flight holds
//! are capped. (Repeating the latest alert's event to the minute is not an alert at all: see
//! `FlightEvent::dedup_key`.)

use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};

use crate::event::{FlightEvent, Notification};
use crate::flight::FlightSchedule;

/// The alerts one flight may have within `WINDOW`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpendLimits {
    pub alerts_per_day: u32,
}

impl SpendLimits {
    pub const DEFAULT_ALERTS_PER_DAY: u32 = 6;
    /// The window `alerts_per_day` counts in: the last 24 hours, rolling.
    pub const WINDOW: Duration = Duration::from_secs(24 * 3600);
    /// A flight that departed longer ago than this gets no more alerts.
    pub const DEPARTED_FOR: Duration = Duration::from_secs(24 * 3600);

    /// The limits for a configured number of alerts a day (`None`: the default).
    pub fn per_day(alerts_per_day: Option<u32>) -> Self {
        Self {
            alerts_per_day: alerts_per_day.unwrap_or(Self::DEFAULT_ALERTS_PER_DAY),
        }
    }

    /// Whether one more alert fits, given when the flight's latest alerts were created (any
    /// order; only those within `WINDOW` of `now` count). When it does not, the refusal says when
    /// the oldest of them leaves the window.
    pub fn check_rate(&self, now: DateTime<Utc>, recent: &[DateTime<Utc>]) -> Result<(), Refusal> {
        let window = chrono::Duration::from_std(Self::WINDOW).unwrap_or_default();
        let mut within: Vec<_> = recent.iter().filter(|t| **t > now - window).collect();
        // Zero is taken as one (settings allow 1 to 100): a flight is never silenced for good.
        let limit = self.alerts_per_day.max(1);
        if within.len() < limit as usize {
            return Ok(());
        }
        // The (len - limit + 1)-th oldest must leave the window before one more fits.
        within.sort();
        let frees = *within[within.len() - limit as usize] + window;
        let wait = (frees - now).to_std().unwrap_or_default();
        Err(Refusal::TooManyAlerts {
            limit,
            retry_after: Duration::from_secs(wait.as_secs() + 1),
        })
    }
}

impl Default for SpendLimits {
    fn default() -> Self {
        Self::per_day(None)
    }
}

/// Why a notification about a real flight was not issued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this flight already had {limit} alerts in the last 24 hours; retry in {} s", retry_after.as_secs())]
    TooManyAlerts { limit: u32, retry_after: Duration },
    #[error("this flight departed at {departed}, more than 24 hours ago: its passengers are not texted any more")]
    Departed { departed: DateTime<FixedOffset> },
}

impl Notification {
    /// A flight that departed more than a day ago is past alerting. It departed at its scheduled
    /// time, unless this very event moves it later (a delay's new time).
    pub fn check_not_departed(
        &self,
        schedule: &FlightSchedule,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let departs = match self.event {
            FlightEvent::Delayed {
                estimated_departure,
            } => estimated_departure.max(schedule.scheduled_departure),
            FlightEvent::Cancelled => schedule.scheduled_departure,
        };
        let grace = chrono::Duration::from_std(SpendLimits::DEPARTED_FOR).unwrap_or_default();
        if departs + grace < now {
            return Err(Refusal::Departed { departed: departs });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flight::{parse_time, AirportCode, FlightKey, FlightNumber};

    fn at(t: &str) -> DateTime<Utc> {
        parse_time(t).unwrap().to_utc()
    }

    #[test]
    fn a_seventh_alert_in_a_day_waits_for_the_oldest_to_leave_the_window() {
        let limits = SpendLimits::default();
        let now = at("2026-12-01T12:00:00Z");
        let mut recent: Vec<_> = (0..5)
            .map(|h| at(&format!("2026-12-01T0{h}:00:00Z")))
            .collect();
        recent.push(at("2026-11-30T11:00:00Z")); // outside the window
        assert_eq!(limits.check_rate(now, &recent), Ok(()));
        let zero = SpendLimits { alerts_per_day: 0 };
        assert_eq!(zero.check_rate(now, &[]), Ok(()));
        assert!(zero.check_rate(now, &recent).is_err());
        recent.push(at("2026-12-01T11:30:00Z"));
        let Err(Refusal::TooManyAlerts { limit, retry_after }) = limits.check_rate(now, &recent)
        else {
            panic!("six alerts in the window")
        };
        assert_eq!(limit, 6);
        // The oldest within the window (00:00) leaves it at 00:00 the next day.
        assert_eq!(retry_after, Duration::from_secs(12 * 3600 + 1));
    }

    #[test]
    fn a_flight_is_past_alerting_a_day_after_it_departed() {
        let schedule = FlightSchedule {
            flight_number: FlightNumber::parse("UA123").unwrap(),
            departure_date: "2026-12-01".parse().unwrap(),
            origin: AirportCode::parse("SFO").unwrap(),
            destination: AirportCode::parse("JFK").unwrap(),
            scheduled_departure: parse_time("2026-12-01T08:00:00Z").unwrap(),
        };
        let notification = |event| Notification {
            flight: FlightKey {
                number: schedule.flight_number.clone(),
                date: schedule.departure_date,
            },
            event,
            reason: None,
        };
        let cancelled = notification(FlightEvent::Cancelled);
        assert!(cancelled
            .check_not_departed(&schedule, at("2026-12-02T08:00:00Z"))
            .is_ok());
        assert!(matches!(
            cancelled.check_not_departed(&schedule, at("2026-12-02T08:00:01Z")),
            Err(Refusal::Departed { .. })
        ));
        // A delay to the next evening keeps the flight alive until a day after that.
        let delayed = notification(FlightEvent::Delayed {
            estimated_departure: parse_time("2026-12-02T20:00:00Z").unwrap(),
        });
        assert!(delayed
            .check_not_departed(&schedule, at("2026-12-03T08:00:00Z"))
            .is_ok());
    }
}
