//! Watching flights: a flight-status provider is asked to push what happens to each registered
//! flight, and to stop once the flight has left. The flights function announces a registration on
//! the flight events bus (SNS in AWS) with no passenger data; the watch function, outside the VPC
//! since it calls the internet, turns it into a watch at the provider.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::flight::{AirportCode, FlightNumber, FlightSchedule};

/// A registration announced on the flight events bus: the flight as the alerts function knows
/// it (its schedule, as the flights function stored it), and nothing about its passengers. Versioned JSON, like the alert messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlightRegistered {
    pub version: u32,
    pub flight: FlightSchedule,
}

#[derive(Debug, thiserror::Error)]
pub enum AnnouncementError {
    #[error("not a flight announcement: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("flight announcement version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u32),
}

impl FlightRegistered {
    pub const VERSION: u32 = 1;

    pub fn new(flight: FlightSchedule) -> Self {
        Self {
            version: Self::VERSION,
            flight,
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(raw: &str) -> Result<Self, AnnouncementError> {
        let message: Self = serde_json::from_str(raw)?;
        if message.version != Self::VERSION {
            return Err(AnnouncementError::UnsupportedVersion(message.version));
        }
        Ok(message)
    }
}

/// What a provider is asked to watch: the flight as providers name it (number and airports), and
/// the day of its scheduled departure, in the departure airport's time zone as AeroAPI takes it
/// (the registration's own offset). A flight delayed past midnight is still the flight of its
/// scheduled day; a window of that one day keeps the next day's flight of a daily route, which
/// would be billed and ignored, out of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchRequest {
    pub flight_number: FlightNumber,
    pub origin: AirportCode,
    pub destination: AirportCode,
    pub day: NaiveDate,
}

impl WatchRequest {
    pub fn for_flight(flight: &FlightSchedule) -> Self {
        Self {
            flight_number: flight.flight_number.clone(),
            origin: flight.origin,
            destination: flight.destination,
            day: flight.departure_date,
        }
    }
}

/// A watch as the provider lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// The provider's id of the watch (AeroAPI's alert id).
    pub id: String,
    /// The flight as the provider holds it; other watches on the same account (not ours, or
    /// made by hand) may name things we cannot parse, and are left alone.
    pub flight_number: Option<FlightNumber>,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
}

impl Watch {
    /// Whether this watch is the one `request` asks for.
    pub fn is_for(&self, request: &WatchRequest) -> bool {
        self.flight_number.as_ref() == Some(&request.flight_number)
            && self.first_day == Some(request.day)
    }

    /// Whether the flight has left by `now`: the last day its departure could fall on is over
    /// wherever it is (a local day ends at most 12 hours after the UTC day of the same date).
    pub fn is_over(&self, now: DateTime<Utc>) -> bool {
        self.flight_number.is_some()
            && self
                .last_day
                .and_then(|day| day.checked_add_days(Days::new(1)))
                .is_some_and(|day| day < now.date_naive())
    }

    /// Orders the provider's ids as numbers when they are (AeroAPI's are), so that the oldest
    /// of two watches made at once is the same for every caller.
    pub fn age_order(&self) -> (usize, &str) {
        (self.id.len(), self.id.as_str())
    }
}

/// Why a provider call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Timeouts, 429 and 5xx: the same call may succeed later (Lambda retries the event).
    #[error("the flight-status provider failed, for now: {0}")]
    Transient(String),
    /// A refused key, a request the provider rejects: retrying will not help.
    #[error("the flight-status provider refused: {0}")]
    Permanent(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flight::parse_time;

    fn schedule(departure: &str) -> FlightSchedule {
        let scheduled_departure = parse_time(departure).expect("time");
        FlightSchedule {
            flight_number: FlightNumber::parse("UA123").expect("number"),
            departure_date: scheduled_departure.date_naive(),
            origin: AirportCode::parse("SFO").expect("origin"),
            destination: AirportCode::parse("JFK").expect("destination"),
            scheduled_departure,
        }
    }

    #[test]
    fn a_watch_covers_the_local_day_of_departure() {
        // 23:30 in San Francisco is the next day in UTC; AeroAPI takes the airport's own date.
        let request = WatchRequest::for_flight(&schedule("2037-12-01T23:30:00-08:00"));
        assert_eq!(request.day.to_string(), "2037-12-01");
    }

    #[test]
    fn an_announcement_round_trips_and_refuses_other_versions() {
        let message = FlightRegistered::new(schedule("2037-12-01T08:05:00-08:00"));
        let back = FlightRegistered::from_json(&message.to_json()).expect("parses");
        assert_eq!(back, message);
        let newer = message.to_json().replace("\"version\":1", "\"version\":2");
        assert!(matches!(
            FlightRegistered::from_json(&newer),
            Err(AnnouncementError::UnsupportedVersion(2))
        ));
        assert!(FlightRegistered::from_json("{}").is_err());
    }

    #[test]
    fn a_watch_is_over_once_its_last_day_has_passed() {
        let request = WatchRequest::for_flight(&schedule("2037-12-01T08:05:00-08:00"));
        let watch = Watch {
            id: "7".into(),
            flight_number: Some(request.flight_number.clone()),
            first_day: Some(request.day),
            last_day: Some(request.day),
        };
        assert!(watch.is_for(&request));
        let at = |t: &str| parse_time(t).expect("time").to_utc();
        // 1 December ends at noon UTC on the 2nd in the last time zone to see it.
        assert!(!watch.is_over(at("2037-12-02T23:59:59Z")));
        assert!(watch.is_over(at("2037-12-03T00:00:00Z")));
        let not_ours = Watch {
            flight_number: None,
            ..watch
        };
        assert!(!not_ours.is_over(at("2040-01-01T00:00:00Z")));
    }
}
