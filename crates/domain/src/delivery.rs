//! The delivery ledger's vocabulary: each recipient's state for an alert, and the report the sms
//! function sends back after each alert message, so the alerts function (which owns the ledger)
//! knows who was texted.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::AlertId;
use crate::contact::PhoneNumber;

/// Where one recipient of one alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryState {
    /// Not reported on yet: on its way, or being retried.
    Pending,
    /// Accepted by the SMS provider, with its message id.
    Sent,
    /// Given up on, with the reason's class.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Sent => "SENT",
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
        match s {
            "PENDING" => Ok(Self::Pending),
            "SENT" => Ok(Self::Sent),
            "FAILED" => Ok(Self::Failed),
            _ => Err("not a delivery state"),
        }
    }
}

/// Why a recipient was given up on: only the class, never the provider's text (it can quote the
/// number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureClass {
    /// The provider refused the number for good: invalid, unreachable or opted out.
    Rejected,
    /// Every attempt failed for a reason that might have passed (throttling, provider errors).
    AttemptsExhausted,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "REJECTED",
            Self::AttemptsExhausted => "ATTEMPTS_EXHAUSTED",
        }
    }
}

impl FromStr for FailureClass {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "REJECTED" => Ok(Self::Rejected),
            "ATTEMPTS_EXHAUSTED" => Ok(Self::AttemptsExhausted),
            _ => Err("not a failure class"),
        }
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientOutcome {
    pub phone: PhoneNumber,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The sms function's report on one alert message: the recipients it settled. Those it hands on
/// for another attempt are left out (still pending). Versioned JSON on the delivery-reports bus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    pub version: u32,
    pub alert_id: AlertId,
    pub outcomes: Vec<RecipientOutcome>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("not a delivery report: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("delivery report version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u32),
}

impl DeliveryReport {
    pub const VERSION: u32 = 1;

    pub fn new(alert_id: AlertId, outcomes: Vec<RecipientOutcome>) -> Self {
        Self {
            version: Self::VERSION,
            alert_id,
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
    pub failed: u32,
}

impl DeliveryCounts {
    pub fn add(&mut self, state: DeliveryState, n: u32) {
        match state {
            DeliveryState::Pending => self.pending += n,
            DeliveryState::Sent => self.sent += n,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_reject_unknown_versions() {
        let report = DeliveryReport::new(
            AlertId::new(),
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
        let v2 = json.replace(r#""version":1"#, r#""version":2"#);
        assert!(matches!(
            DeliveryReport::parse(&v2),
            Err(ReportError::UnsupportedVersion(2))
        ));
    }
}
