//! Flights: their identity (flight number + local departure date), their schedule, and the
//! registration an insurer posts with its insured passengers.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike};
use serde::{Deserialize, Serialize};

use crate::contact::{Email, PassengerName, PhoneNumber};

/// A flight number as airlines write it: a 2-character carrier code with at least one letter,
/// 1 to 4 digits and an optional suffix letter. Stored upper-case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct FlightNumber(String);

impl FlightNumber {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        const WHAT: &str =
            "must be a 2-character airline code, 1 to 4 digits and an optional letter, e.g. UA123";
        let upper = raw.to_ascii_uppercase();
        let b = upper.as_bytes();
        if !(3..=7).contains(&b.len()) || !b.iter().all(u8::is_ascii_alphanumeric) {
            return Err(WHAT);
        }
        let (carrier, rest) = b.split_at(2);
        if carrier.iter().all(u8::is_ascii_digit) {
            return Err(WHAT);
        }
        let digits = match rest.last() {
            Some(l) if l.is_ascii_alphabetic() => &rest[..rest.len() - 1],
            _ => rest,
        };
        if !(1..=4).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
            return Err(WHAT);
        }
        Ok(Self(upper))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FlightNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FlightNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// An IATA airport code: three letters, stored upper-case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AirportCode([u8; 3]);

impl AirportCode {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        match raw.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_alphabetic()) => Ok(Self([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
                c.to_ascii_uppercase(),
            ])),
            _ => Err("must be a 3-letter IATA airport code, e.g. SFO"),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for AirportCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AirportCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AirportCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The departure date in the origin's local time: with the flight number, a flight's identity.
pub type DepartureDate = NaiveDate;

/// What identifies a flight: `UA123` departing on `2026-12-01` (local date at the origin).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FlightKey {
    pub number: FlightNumber,
    pub date: DepartureDate,
}

impl FlightKey {
    /// The public id, `UA123-2026-12-01`: readable, stable, and derived from the identity.
    pub fn id(&self) -> String {
        format!("{}-{}", self.number, self.date.format("%Y-%m-%d"))
    }
}

/// Why a flight id is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlightIdError {
    #[error("must be an upper-case flight number and a departure date, e.g. UA123-2026-12-01")]
    Malformed,
    /// Well formed, but the date is not in the calendar (`2026-02-30`): no flight has it.
    #[error("names a date that is not in the calendar")]
    NoSuchDate,
}

impl FromStr for FlightKey {
    type Err = FlightIdError;

    /// Exactly the ids this API returns: upper case, the date zero-padded.
    fn from_str(id: &str) -> Result<Self, Self::Err> {
        let (number, date) = id.split_once('-').ok_or(FlightIdError::Malformed)?;
        let number = FlightNumber::parse(number)
            .ok()
            .filter(|n| n.as_str() == number)
            .ok_or(FlightIdError::Malformed)?;
        let date = match parse_date(date) {
            Ok(date) => date,
            Err(DateError::NotInCalendar) => return Err(FlightIdError::NoSuchDate),
            Err(_) => return Err(FlightIdError::Malformed),
        };
        Ok(Self { number, date })
    }
}

/// Why a date is not one this API takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("must be a date as YYYY-MM-DD")]
    Malformed,
    #[error("must fall in the years 1000 to 9999")]
    OutOfRange,
    #[error("is not a date in the calendar")]
    NotInCalendar,
}

/// Parses a date written exactly as `YYYY-MM-DD` (chrono alone also takes `2026-12-1` and
/// `+2026-12-01`), in the years MySQL's `DATE` holds.
pub fn parse_date(raw: &str) -> Result<NaiveDate, DateError> {
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return Err(DateError::Malformed);
    }
    if raw.starts_with('0') {
        return Err(DateError::OutOfRange);
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| DateError::NotInCalendar)
}

/// One insured passenger. The phone is the passenger's identity within a flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passenger {
    pub name: PassengerName,
    pub email: Email,
    pub phone: PhoneNumber,
}

/// Parses an RFC 3339 time that carries its offset (`Z` counts as one). Schedules are kept to
/// the second: fractions are dropped here, so every store keeps exactly what was parsed.
///
/// The instant, in UTC and in its own offset, must lie in the years 1000 to 9999: what MySQL's
/// `DATETIME` and `DATE` hold, and so what every store keeps alike
/// (`9999-12-31T23:00:00-05:00` is year 10000 in UTC: refused).
pub fn parse_time(raw: &str) -> Result<DateTime<FixedOffset>, &'static str> {
    let t = DateTime::parse_from_rfc3339(raw).map_err(|_| {
        "must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T08:05:00-08:00"
    })?;
    let storable = |year: i32| (1000..=9999).contains(&year);
    if !storable(t.naive_utc().year()) || !storable(t.year()) {
        return Err("must fall in the years 1000 to 9999 in UTC");
    }
    Ok(t.with_nanosecond(0).unwrap_or(t))
}

/// Why a registration as a whole is invalid (each field parsed fine on its own).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("destination must differ from origin")]
    SameAirports,
    #[error("scheduledArrival must be after scheduledDeparture")]
    ArrivalNotAfterDeparture,
    #[error("must list 1 to {max} passengers")]
    PassengerCount { max: usize },
    #[error("phone {phone} appears more than once in this request")]
    DuplicatePhone { index: usize, phone: String },
}

/// A flight registration that has passed every rule: what storage receives.
#[derive(Clone, Debug)]
pub struct FlightRegistration {
    key: FlightKey,
    origin: AirportCode,
    destination: AirportCode,
    departure: DateTime<FixedOffset>,
    arrival: DateTime<FixedOffset>,
    passengers: Vec<Passenger>,
}

impl FlightRegistration {
    pub const MAX_PASSENGERS: usize = 1000;

    /// Checks the rules that tie fields together; every field has been parsed already.
    pub fn new(
        number: FlightNumber,
        origin: AirportCode,
        destination: AirportCode,
        departure: DateTime<FixedOffset>,
        arrival: DateTime<FixedOffset>,
        passengers: Vec<Passenger>,
    ) -> Result<Self, Vec<RegistrationError>> {
        let mut errors = Vec::new();
        if origin == destination {
            errors.push(RegistrationError::SameAirports);
        }
        if arrival <= departure {
            errors.push(RegistrationError::ArrivalNotAfterDeparture);
        }
        if passengers.is_empty() || passengers.len() > Self::MAX_PASSENGERS {
            errors.push(RegistrationError::PassengerCount {
                max: Self::MAX_PASSENGERS,
            });
        }
        let mut seen = HashSet::new();
        for (index, p) in passengers.iter().enumerate() {
            if !seen.insert(&p.phone) {
                errors.push(RegistrationError::DuplicatePhone {
                    index,
                    phone: p.phone.masked(),
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let key = FlightKey {
            number,
            // The local date at the origin: the offset in the time is the origin's.
            date: departure.date_naive(),
        };
        Ok(Self {
            key,
            origin,
            destination,
            departure,
            arrival,
            passengers,
        })
    }

    pub fn key(&self) -> &FlightKey {
        &self.key
    }
    pub fn origin(&self) -> AirportCode {
        self.origin
    }
    pub fn destination(&self) -> AirportCode {
        self.destination
    }
    pub fn departure(&self) -> DateTime<FixedOffset> {
        self.departure
    }
    pub fn arrival(&self) -> DateTime<FixedOffset> {
        self.arrival
    }
    pub fn passengers(&self) -> &[Passenger] {
        &self.passengers
    }
}

/// A registered flight as stored, without its passengers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlightSummary {
    pub key: FlightKey,
    pub origin: AirportCode,
    pub destination: AirportCode,
    pub departure: DateTime<FixedOffset>,
    pub arrival: DateTime<FixedOffset>,
    pub passenger_count: u32,
}

/// What the alerts function may know of a flight: enough to check an event and write the SMS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlightSchedule {
    pub flight_number: FlightNumber,
    pub departure_date: DepartureDate,
    pub origin: AirportCode,
    pub destination: AirportCode,
    pub scheduled_departure: DateTime<FixedOffset>,
}

impl FlightSummary {
    /// What the other functions may know of this flight: no passengers.
    pub fn schedule(&self) -> FlightSchedule {
        FlightSchedule {
            flight_number: self.key.number.clone(),
            departure_date: self.key.date,
            origin: self.origin,
            destination: self.destination,
            scheduled_departure: self.departure,
        }
    }
}

impl FlightSchedule {
    pub fn key(&self) -> FlightKey {
        FlightKey {
            number: self.flight_number.clone(),
            date: self.departure_date,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flight_numbers_are_written_as_airlines_write_them() {
        let cases = [
            ("UA123", Some("UA123")),
            ("ua123", Some("UA123")),
            ("U21234", Some("U21234")),
            ("9W1", Some("9W1")),
            ("BA2490A", Some("BA2490A")),
            ("UA12345", None),
            ("UA", None),
            ("12123", None),
            ("UA 123", None),
            ("UA-123", None),
            ("UA123AB", None),
            ("ÜA123", None),
            ("", None),
        ];
        for (raw, want) in cases {
            let got = FlightNumber::parse(raw).ok();
            assert_eq!(got.as_ref().map(FlightNumber::as_str), want, "case {raw:?}");
        }
    }

    #[test]
    fn flight_ids_are_exactly_the_ids_the_api_returns() {
        let cases = [
            ("UA123-2026-12-01", Ok(())),
            ("ua123-2026-12-01", Err(FlightIdError::Malformed)),
            ("UA123-2026-12-1", Err(FlightIdError::Malformed)),
            ("UA123-+2026-12-01", Err(FlightIdError::Malformed)),
            ("12345-2026-12-01", Err(FlightIdError::Malformed)),
            ("UA123-0999-12-01", Err(FlightIdError::Malformed)),
            ("UA123-2026-02-30", Err(FlightIdError::NoSuchDate)),
        ];
        for (raw, want) in cases {
            assert_eq!(raw.parse::<FlightKey>().map(|_| ()), want, "case {raw}");
        }
    }

    #[test]
    fn times_outside_what_the_databases_store_are_refused() {
        let cases = [
            ("9999-12-31T18:00:00-05:00", true),
            ("9999-12-31T23:00:00-05:00", false), // year 10000 in UTC
            ("9999-12-31T23:59:59Z", true),
            ("1000-01-01T00:00:00Z", true),
            ("1000-01-01T03:00:00+05:00", false), // 0999 in UTC
            ("0999-12-31T23:30:00-01:00", false), // 0999 in its own offset
        ];
        for (raw, ok) in cases {
            assert_eq!(parse_time(raw).is_ok(), ok, "case {raw}");
        }
    }

    #[test]
    fn airport_codes_are_three_letters_upper_cased() {
        assert_eq!(AirportCode::parse("sfo").unwrap().as_str(), "SFO");
        for bad in ["SF", "SFOO", "S1O", "", "ÅRH"] {
            assert!(AirportCode::parse(bad).is_err(), "case {bad:?}");
        }
    }

    #[test]
    fn flight_ids_round_trip() {
        let key: FlightKey = "UA123-2026-12-01".parse().unwrap();
        assert_eq!(key.number.as_str(), "UA123");
        assert_eq!(key.id(), "UA123-2026-12-01");
        for bad in ["UA123", "UA123-2026-13-01", "-2026-12-01", "UA123-20261201"] {
            assert!(bad.parse::<FlightKey>().is_err(), "case {bad:?}");
        }
    }

    fn passenger(phone: &str) -> Passenger {
        Passenger {
            name: PassengerName::parse("Ada Lovelace").unwrap(),
            email: Email::parse("ada@example.com").unwrap(),
            phone: PhoneNumber::parse(phone).unwrap(),
        }
    }

    fn register(
        dep: &str,
        arr: &str,
        passengers: Vec<Passenger>,
    ) -> Result<FlightRegistration, Vec<RegistrationError>> {
        FlightRegistration::new(
            FlightNumber::parse("UA123").unwrap(),
            AirportCode::parse("SFO").unwrap(),
            AirportCode::parse("JFK").unwrap(),
            parse_time(dep).unwrap(),
            parse_time(arr).unwrap(),
            passengers,
        )
    }

    #[test]
    fn the_departure_date_is_the_local_date_at_the_origin() {
        // 23:30 in San Francisco is already the next day in UTC.
        let reg = register(
            "2026-12-01T23:30:00-08:00",
            "2026-12-02T07:55:00-05:00",
            vec![passenger("+14155550100")],
        )
        .unwrap();
        assert_eq!(reg.key().id(), "UA123-2026-12-01");
    }

    #[test]
    fn arrival_must_follow_departure_in_absolute_time() {
        // 16:40 in New York is after 08:05 in San Francisco, even if 08:05 UTC-8 looks later in UTC.
        assert!(register(
            "2026-12-01T08:05:00-08:00",
            "2026-12-01T16:40:00-05:00",
            vec![passenger("+14155550100")]
        )
        .is_ok());
        let err = register(
            "2026-12-01T08:05:00-08:00",
            "2026-12-01T11:05:00-05:00",
            vec![passenger("+14155550100")],
        )
        .unwrap_err();
        assert_eq!(err, vec![RegistrationError::ArrivalNotAfterDeparture]);
    }

    #[test]
    fn passengers_are_one_to_a_thousand_without_repeated_phones() {
        let dep = "2026-12-01T08:05:00-08:00";
        let arr = "2026-12-01T16:40:00-05:00";
        assert!(matches!(
            register(dep, arr, vec![]).unwrap_err()[..],
            [RegistrationError::PassengerCount { .. }]
        ));
        let many: Vec<_> = (0..1001)
            .map(|i| passenger(&format!("+1415555{i:04}")))
            .collect();
        assert!(register(dep, arr, many[..1000].to_vec()).is_ok());
        assert!(register(dep, arr, many).is_err());
        let err = register(
            dep,
            arr,
            vec![passenger("+14155550100"), passenger("+14155550100")],
        )
        .unwrap_err();
        assert!(matches!(
            err[..],
            [RegistrationError::DuplicatePhone { index: 1, .. }]
        ));
    }
}
