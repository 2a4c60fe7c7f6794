//! The delivery ledger's vocabulary: each recipient's state for an alert, the report the sms
//! function sends back after each alert message, what the carrier later says, and the timing
//! rules by which the alerts function (which owns the ledger) hands recipients out again.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::AlertId;
use crate::contact::PhoneNumber;

/// Where one recipient of one alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryState {
    /// Not settled yet: due, handed out to the sms function, or waiting for its next attempt.
    Pending,
    /// Accepted by the SMS provider, with its message id.
    Sent,
    /// The carrier confirmed delivery to the handset (where the provider reports it).
    Delivered,
    /// Given up on, with the reason's class.
    Failed,
}

impl DeliveryState {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Sent, Self::Delivered, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Sent => "SENT",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
        }
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryState {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or("not a delivery state")
    }
}

/// Why a recipient was given up on: only the class, never the provider's text (it can quote the
/// number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureClass {
    /// The provider refused the number for good: invalid, unreachable or opted out.
    Rejected,
    /// The alert's deadline passed before an attempt got through (throttling, provider errors,
    /// or no attempt at all).
    Expired,
    /// Handed to the sms function, which never reported on it: it may or may not have been
    /// texted, and it is not tried again (at most one text).
    OutcomeUnknown,
    /// Sent, but the carrier reported it undelivered.
    Undelivered,
    /// The alert could not be turned into messages at all (its stored facts are unreadable).
    NotPublished,
}

impl FailureClass {
    pub const ALL: [Self; 5] = [
        Self::Rejected,
        Self::Expired,
        Self::OutcomeUnknown,
        Self::Undelivered,
        Self::NotPublished,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "REJECTED",
            Self::Expired => "EXPIRED",
            Self::OutcomeUnknown => "OUTCOME_UNKNOWN",
            Self::Undelivered => "UNDELIVERED",
            Self::NotPublished => "NOT_PUBLISHED",
        }
    }
}

impl FromStr for FailureClass {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or("not a failure class")
    }
}

/// What happened to one recipient's SMS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    #[serde(rename_all = "camelCase")]
    Sent { message_id: String },
    #[serde(rename_all = "camelCase")]
    Failed { class: FailureClass },
    /// Tried, and failed for a reason that may pass (throttling, provider errors, timeouts): the
    /// ledger hands it out again after the backoff.
    Retry,
    /// Not tried: the invocation ran out of time first. Handed out again at once, no attempt
    /// used.
    Untried,
    /// Claimed by an earlier delivery of the same message that did not say what became of it
    /// (an invocation that crashed half-way): it may have been texted, so it is not texted again.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientOutcome {
    pub phone: PhoneNumber,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The sms function's report on one alert message: what became of each of its recipients.
/// Versioned JSON on the delivery-reports bus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    pub version: u32,
    pub alert_id: AlertId,
    /// The message's attempt: a `Retry` or `Untried` applies only to a recipient still out on
    /// this attempt, so a late report cannot undo a later hand-out.
    pub attempt: u32,
    pub outcomes: Vec<RecipientOutcome>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("not a delivery report: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("delivery report version {0} is not supported (this build reads version 2)")]
    UnsupportedVersion(u32),
}

impl DeliveryReport {
    pub const VERSION: u32 = 2;

    pub fn new(alert_id: AlertId, attempt: u32, outcomes: Vec<RecipientOutcome>) -> Self {
        Self {
            version: Self::VERSION,
            alert_id,
            attempt,
            outcomes,
        }
    }

    pub fn parse(json: &str) -> Result<Self, ReportError> {
        let report: Self = serde_json::from_str(json)?;
        if report.version != Self::VERSION {
            return Err(ReportError::UnsupportedVersion(report.version));
        }
        Ok(report)
    }

    pub fn to_json(&self) -> String {
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// How many recipients of an alert stand where.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    pub pending: u32,
    pub sent: u32,
    pub delivered: u32,
    pub failed: u32,
}

impl DeliveryCounts {
    pub fn add(&mut self, state: DeliveryState, n: u32) {
        match state {
            DeliveryState::Pending => self.pending += n,
            DeliveryState::Sent => self.sent += n,
            DeliveryState::Delivered => self.delivered += n,
            DeliveryState::Failed => self.failed += n,
        }
    }
}

/// One recipient of an alert as the ledger holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientDelivery {
    pub phone: PhoneNumber,
    pub state: DeliveryState,
    pub failure: Option<FailureClass>,
    /// When the state last changed.
    pub updated_at: Option<DateTime<Utc>>,
}

/// What the carrier said of one SMS, by the provider's message id (SNS's SMS delivery status
/// logs in AWS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarrierOutcome {
    pub message_id: String,
    pub delivered: bool,
}

/// When the ledger hands a recipient out again, and when it stops.
pub mod timing {
    use super::*;

    /// The wait after the n-th failed attempt: 1, 5, 15, then every 60 minutes, until the
    /// alert's deadline.
    pub fn backoff(attempt: u32) -> Duration {
        const MINUTES: [u64; 4] = [1, 5, 15, 60];
        let i = (attempt.max(1) as usize - 1).min(MINUTES.len() - 1);
        Duration::from_secs(60 * MINUTES[i])
    }

    /// How long a hand-out whose publish was not acknowledged waits for a report before it is
    /// handed out again: the bus may have refused it, or taken it and timed out answering.
    pub const UNCONFIRMED_WAIT: Duration = Duration::from_secs(5 * 60);

    /// How long a hand-out the bus took waits for the sms function's report before the ledger
    /// gives up on knowing (`OutcomeUnknown`): longer than any invocation with its retries.
    pub const REPORT_WAIT: Duration = Duration::from_secs(30 * 60);

    /// The least time an alert is tried for, however close its flight.
    pub const MIN_WINDOW: Duration = Duration::from_secs(60 * 60);

    /// Until when an alert's recipients are tried: its flight's departure (the new one for a
    /// delay), but at least `MIN_WINDOW` after the alert.
    pub fn deliver_until(created_at: DateTime<Utc>, departs: DateTime<Utc>) -> DateTime<Utc> {
        let floor = created_at + chrono::Duration::from_std(MIN_WINDOW).unwrap_or_default();
        departs.max(floor)
    }

    /// Later than `now` by `d`.
    pub fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
        now + chrono::Duration::from_std(d).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_reject_unknown_versions() {
        let report = DeliveryReport::new(
            AlertId::new(),
            1,
            vec![
                RecipientOutcome {
                    phone: PhoneNumber::parse("+14155550100").unwrap(),
                    outcome: Outcome::Sent {
                        message_id: "m-1".into(),
                    },
                },
                RecipientOutcome {
                    phone: PhoneNumber::parse("+447911123456").unwrap(),
                    outcome: Outcome::Failed {
                        class: FailureClass::Rejected,
                    },
                },
            ],
        );
        let json = report.to_json();
        assert!(
            json.contains(r#""result":"SENT","messageId":"m-1""#),
            "{json}"
        );
        assert_eq!(DeliveryReport::parse(&json).unwrap(), report);
        let v1 = json.replace(r#""version":2"#, r#""version":1"#);
        assert!(matches!(
            DeliveryReport::parse(&v1),
            Err(ReportError::UnsupportedVersion(1))
        ));
    }

    #[test]
    fn failure_classes_read_back_what_they_write() {
        for class in FailureClass::ALL {
            assert_eq!(class.as_str().parse::<FailureClass>(), Ok(class));
        }
    }

    #[test]
    fn retries_back_off_in_minutes_until_the_flight_departs() {
        let waits: Vec<u64> = (1..=6).map(|a| timing::backoff(a).as_secs() / 60).collect();
        assert_eq!(waits, [1, 5, 15, 60, 60, 60]);
        let now: DateTime<Utc> = "2037-12-01T10:00:00Z".parse().unwrap();
        let soon: DateTime<Utc> = "2037-12-01T10:20:00Z".parse().unwrap();
        let later: DateTime<Utc> = "2037-12-01T18:00:00Z".parse().unwrap();
        assert_eq!(timing::deliver_until(now, later), later);
        assert_eq!(
            timing::deliver_until(now, soon),
            "2037-12-01T11:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }
}
