//! The message the alerts function publishes on the alerts bus (SNS in AWS) and the sms function
//! consumes. It is versioned JSON, and carries everything the SMS needs, because the sms function
//! has no database.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertId};
use crate::contact::PhoneNumber;
use crate::event::{EventKind, Reason};
use crate::flight::FlightSchedule;

/// An alert on the bus, for one slice of its recipients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertMessage {
    /// Schema version; a consumer rejects versions it does not know rather than guess.
    pub version: u32,
    pub alert_id: AlertId,
    pub flight: FlightSchedule,
    pub event: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_departure: Option<DateTime<FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// This message's own id, new for every hand-out: the sms function claims it before
    /// sending, so a message the bus delivers twice is texted once.
    pub handout: uuid::Uuid,
    /// 1-based index of this slice among `parts`.
    pub part: u32,
    pub parts: u32,
    /// The recipients' attempt, counted by the delivery ledger: 1 for the first hand-out.
    pub attempt: u32,
    /// When this message's first SMS may go, under a paced budget: its slots were reserved in
    /// the ledger's schedule, so sms invocations running at once take turns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    pub recipients: Vec<PhoneNumber>,
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("not an alert message: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("alert message version {0} is not supported (this build reads version 2)")]
    UnsupportedVersion(u32),
}

impl AlertMessage {
    pub const VERSION: u32 = 2;
    /// 500 E.164 numbers are ~9 KB of JSON: far under SNS's 256 KB message limit, with room for
    /// the envelope, and few enough that one sms invocation sends them well within its timeout.
    pub const MAX_RECIPIENTS: usize = 500;

    /// Splits an alert's recipients handed out for one attempt into as many messages as they
    /// need (none for none).
    pub fn split(
        alert: &Alert,
        flight: &FlightSchedule,
        attempt: u32,
        recipients: &[PhoneNumber],
    ) -> Vec<Self> {
        Self::split_paced(alert, flight, attempt, recipients, None)
    }

    /// The same, each message starting at its first reserved slot: `pace` is the first slot of
    /// the whole hand-out and the budget in messages a second.
    pub fn split_paced(
        alert: &Alert,
        flight: &FlightSchedule,
        attempt: u32,
        recipients: &[PhoneNumber],
        pace: Option<(DateTime<Utc>, std::num::NonZeroU32)>,
    ) -> Vec<Self> {
        let chunks: Vec<&[PhoneNumber]> = recipients.chunks(Self::MAX_RECIPIENTS).collect();
        let starts = |part: usize| {
            pace.map(|(first, per_second)| {
                let before = (part * Self::MAX_RECIPIENTS) as i64;
                first
                    + chrono::Duration::microseconds(
                        before * 1_000_000 / i64::from(per_second.get()),
                    )
            })
        };
        let parts = chunks.len() as u32;
        chunks
            .into_iter()
            .zip(1..)
            .map(|(slice, part)| Self {
                version: Self::VERSION,
                alert_id: alert.id,
                flight: flight.clone(),
                event: alert.event,
                estimated_departure: alert.estimated_departure,
                reason: alert.reason.clone(),
                handout: uuid::Uuid::now_v7(),
                part,
                parts,
                attempt,
                not_before: starts(part as usize - 1),
                recipients: slice.to_vec(),
            })
            .collect()
    }

    pub fn parse(json: &str) -> Result<Self, MessageError> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let Version { version } = serde_json::from_str(json)?;
        if version != Self::VERSION {
            return Err(MessageError::UnsupportedVersion(version));
        }
        Ok(serde_json::from_str(json)?)
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Publication;
    use crate::flight::{parse_time, AirportCode, FlightNumber};

    fn alert() -> (Alert, FlightSchedule) {
        let flight = FlightSchedule {
            flight_number: FlightNumber::parse("UA123").unwrap(),
            departure_date: "2026-12-01".parse().unwrap(),
            origin: AirportCode::parse("SFO").unwrap(),
            destination: AirportCode::parse("JFK").unwrap(),
            scheduled_departure: parse_time("2026-12-01T08:05:00-08:00").unwrap(),
        };
        let alert = Alert {
            seq: 1,
            id: AlertId::new(),
            flight_number: flight.flight_number.clone(),
            departure_date: flight.departure_date,
            event: EventKind::Delayed,
            reason: Some(Reason::parse(&"x".repeat(500)).unwrap()),
            estimated_departure: Some(parse_time("2026-12-01T10:30:00-08:00").unwrap()),
            recipients: 0,
            publication: Publication::Pending,
            created_at: chrono::Utc::now(),
        };
        (alert, flight)
    }

    #[test]
    fn a_thousand_passengers_split_into_messages_far_under_the_sns_limit() {
        let (alert, flight) = alert();
        let phones: Vec<_> = (0..1000)
            .map(|i| PhoneNumber::parse(&format!("+8613800{i:07}")).unwrap())
            .collect();
        let messages = AlertMessage::split(&alert, &flight, 1, &phones);
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages.iter().map(|m| m.recipients.len()).sum::<usize>(),
            1000
        );
        for m in &messages {
            assert_eq!(m.parts, 2);
            assert!(m.to_json().len() < 64 * 1024, "{} bytes", m.to_json().len());
        }
    }

    #[test]
    fn messages_round_trip_and_reject_unknown_versions() {
        let (alert, flight) = alert();
        let phones = vec![PhoneNumber::parse("+14155550100").unwrap()];
        let m = &AlertMessage::split(&alert, &flight, 1, &phones)[0];
        assert_eq!(&AlertMessage::parse(&m.to_json()).unwrap(), m);
        let v1 = m.to_json().replace("\"version\":2", "\"version\":1");
        assert!(matches!(
            AlertMessage::parse(&v1),
            Err(MessageError::UnsupportedVersion(1))
        ));
        assert!(AlertMessage::parse("{}").is_err());
    }
}
