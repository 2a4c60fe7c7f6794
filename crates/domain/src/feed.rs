//! What a flight-status provider reports about a flight, in the provider-neutral shape the use
//! case takes: the flight as providers name it (its number and scheduled departure instant,
//! since they speak UTC and know nothing of our flight ids), what changed, and the provider's own
//! id of the event, for idempotency. Each provider's wire format is read into this at the edge.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::event::FlightEvent;
use crate::flight::{FlightNumber, FlightSchedule};

/// The default delay threshold: a new departure at least this much later than scheduled is a
/// delay worth a text.
pub const DEFAULT_DELAY_THRESHOLD: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderReport {
    /// Who reported it (`flightaware`): part of the idempotency key.
    pub provider: &'static str,
    /// The provider's identity of this event: the same event pushed again has the same id.
    pub event_id: String,
    pub flight_number: FlightNumber,
    pub scheduled_departure: DateTime<Utc>,
    pub change: Change,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Cancelled,
    /// The provider's current estimate of the departure.
    EstimatedDeparture(DateTime<Utc>),
    /// Anything else (filed, departed, arrived, ...): no text.
    Other(String),
}

/// Why a report makes no alert.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    #[error("a departure {minutes} minutes from schedule is under the delay threshold of {threshold} minutes")]
    UnderThreshold { minutes: i64, threshold: u64 },
    #[error("a {0} event is not a delay or a cancellation")]
    NotAChange(String),
}

impl ProviderReport {
    /// The idempotency key of this report: the same provider event, pushed again, is the same
    /// request.
    pub fn idempotency_key(&self) -> String {
        let key = format!("{}:{}", self.provider, self.event_id);
        // Keys are 1 to 255 visible ASCII characters; provider ids are short and plain, but
        // nothing forces them to be.
        key.chars()
            .filter(char::is_ascii_graphic)
            .take(255)
            .collect()
    }

    /// The event this report makes for the flight scheduled as `schedule`: a cancellation, or
    /// a delay to the new estimate (in the schedule's offset, as the SMS shows it) when it is at
    /// least `threshold` after the scheduled departure.
    pub fn event(
        &self,
        schedule: &FlightSchedule,
        threshold: Duration,
    ) -> Result<FlightEvent, Ignored> {
        match &self.change {
            Change::Cancelled => Ok(FlightEvent::Cancelled),
            Change::EstimatedDeparture(at) => {
                let late = *at - schedule.scheduled_departure.to_utc();
                let minutes = late.num_minutes();
                if late < chrono::Duration::from_std(threshold).unwrap_or_default() {
                    return Err(Ignored::UnderThreshold {
                        minutes,
                        threshold: threshold.as_secs() / 60,
                    });
                }
                Ok(FlightEvent::Delayed {
                    estimated_departure: at.with_timezone(schedule.scheduled_departure.offset()),
                })
            }
            Change::Other(what) => Err(Ignored::NotAChange(what.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flight::{parse_time, AirportCode};

    fn schedule() -> FlightSchedule {
        FlightSchedule {
            flight_number: FlightNumber::parse("UA123").unwrap(),
            departure_date: "2037-12-01".parse().unwrap(),
            origin: AirportCode::parse("SFO").unwrap(),
            destination: AirportCode::parse("JFK").unwrap(),
            scheduled_departure: parse_time("2037-12-01T08:05:00-08:00").unwrap(),
        }
    }

    fn report(change: Change) -> ProviderReport {
        ProviderReport {
            provider: "flightaware",
            event_id: "1234:change".into(),
            flight_number: FlightNumber::parse("UA123").unwrap(),
            scheduled_departure: parse_time("2037-12-01T16:05:00Z").unwrap().to_utc(),
            change,
        }
    }

    #[test]
    fn a_new_estimate_past_the_threshold_is_a_delay_in_the_local_offset() {
        let est = parse_time("2037-12-01T16:45:00Z").unwrap().to_utc();
        let event =
            report(Change::EstimatedDeparture(est)).event(&schedule(), DEFAULT_DELAY_THRESHOLD);
        assert_eq!(
            event,
            Ok(FlightEvent::Delayed {
                estimated_departure: parse_time("2037-12-01T08:45:00-08:00").unwrap()
            })
        );
        let soon = parse_time("2037-12-01T16:19:00Z").unwrap().to_utc();
        let under =
            report(Change::EstimatedDeparture(soon)).event(&schedule(), DEFAULT_DELAY_THRESHOLD);
        assert_eq!(
            under,
            Err(Ignored::UnderThreshold {
                minutes: 14,
                threshold: 15
            })
        );
    }

    #[test]
    fn cancellations_count_and_other_events_do_not() {
        let r = report(Change::Cancelled);
        assert_eq!(
            r.event(&schedule(), DEFAULT_DELAY_THRESHOLD),
            Ok(FlightEvent::Cancelled)
        );
        assert_eq!(r.idempotency_key(), "flightaware:1234:change");
        let other = report(Change::Other("arrival".into()));
        assert!(matches!(
            other.event(&schedule(), DEFAULT_DELAY_THRESHOLD),
            Err(Ignored::NotAChange(_))
        ));
    }
}
