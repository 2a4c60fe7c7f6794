//! Flight-status provider pushes, handled by the alerts function: `POST /feeds/flightaware`
//! takes FlightAware AeroAPI's alert deliveries. AeroAPI signs nothing, so the endpoint is
//! authenticated by a long random token in its URL (`?token=`), known only to the provider's
//! configuration: wrong or missing, 403 and nothing recorded. It is not behind the customer's
//! API key. A body that cannot be read, or a report that makes no alert, is acknowledged with
//! the reason (200), so that the provider does not retry it forever.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use flightwatch_app::feed::{self, Received};
use flightwatch_app::notify;
use flightwatch_domain::feed::{Change, ProviderReport};
use flightwatch_domain::FlightNumber;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::alerts::AlertsState;
use crate::problem::ApiError;

/// What the feed handler borrows, built once per cold start: the alerts API's own state (a push
/// is a notification by another door), and the feed's settings.
#[derive(Clone)]
pub struct FeedsState {
    pub alerts: AlertsState,
    /// The token FlightAware's configured endpoint URL carries.
    pub token: SecretString,
    /// A new departure at least this much later than scheduled is a delay.
    pub delay_threshold: Duration,
}

/// The feed's route; without a configured token there is no route (the feature is off).
pub fn router(state: FeedsState) -> Router {
    Router::new()
        .route("/feeds/flightaware", post(flightaware))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::body::MAX_BODY_BYTES,
        ))
        .with_state(state)
}

#[derive(Deserialize)]
pub struct TokenParam {
    token: Option<String>,
}

/// The answer to the provider: acknowledged, and what came of it.
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FeedReceipt {
    /// `CREATED`: a new alert; `DUPLICATE`: the same event as an alert already issued;
    /// `IGNORED`: no alert, `reason` says why.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl FeedReceipt {
    fn ignored(reason: String) -> Self {
        Self {
            outcome: "IGNORED",
            alert_id: None,
            reason: Some(reason),
        }
    }
}

/// Compared as the API key is, so the comparison's time says nothing about the token.
fn token_matches(given: Option<&str>, want: &SecretString) -> bool {
    given.is_some_and(|g| {
        crate::auth::constant_time_eq(g.as_bytes(), want.expose_secret().as_bytes())
    })
}

async fn flightaware(
    State(state): State<FeedsState>,
    token: Result<Query<TokenParam>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Result<Json<FeedReceipt>, ApiError> {
    let given = token.ok().and_then(|Query(t)| t.token);
    if !token_matches(given.as_deref(), &state.token) {
        tracing::warn!("flightaware push refused: missing or wrong token");
        return Err(ApiError::BadFeedToken);
    }
    let report = match aeroapi::report(&body) {
        Ok(report) => report,
        Err(why) => {
            tracing::warn!(reason = %why, "flightaware push unreadable; acknowledged, ignored");
            return Ok(Json(FeedReceipt::ignored(format!(
                "unreadable push: {why}"
            ))));
        }
    };
    let alerts = &state.alerts;
    let limits = notify::Limits::now(alerts.limits, alerts.sms_per_second);
    let received = feed::receive(
        alerts.store.as_ref(),
        alerts.store.as_ref(),
        alerts.bus.as_ref(),
        &report,
        state.delay_threshold,
        limits,
    )
    .await?;
    Ok(Json(match received {
        Received::Notified(n) => FeedReceipt {
            outcome: if n.created && !n.replayed {
                "CREATED"
            } else {
                "DUPLICATE"
            },
            alert_id: Some(n.alert.id.to_string()),
            reason: None,
        },
        Received::Ignored(why) => FeedReceipt::ignored(why),
    }))
}

/// FlightAware AeroAPI v4's alert delivery (the `deliver_alert` callback of its OpenAPI
/// description): `{long_description, short_description, summary, event_code, alert_id,
/// flight: {...}}`, the flight's times in UTC. Only what a delay or a cancellation needs is read.
pub mod aeroapi {
    use super::*;

    #[derive(Deserialize)]
    struct Push {
        event_code: String,
        alert_id: i64,
        flight: Flight,
    }

    #[derive(Deserialize)]
    struct Flight {
        fa_flight_id: String,
        ident_iata: Option<String>,
        ident: Option<String>,
        #[serde(default)]
        cancelled: bool,
        scheduled_out: Option<DateTime<Utc>>,
        scheduled_off: Option<DateTime<Utc>>,
        estimated_out: Option<DateTime<Utc>>,
        estimated_off: Option<DateTime<Utc>>,
    }

    /// The push as a provider report: the flight by its IATA designator (`UA123`) and
    /// scheduled gate departure, a cancellation (also the `cancelled` event of an alert), or the
    /// current departure estimate; its id, the alert, event and estimate together, so the same
    /// delivery pushed again is the same event and a new estimate is a new one.
    pub fn report(body: &[u8]) -> Result<ProviderReport, String> {
        let push: Push = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let f = push.flight;
        let designator = f
            .ident_iata
            .or(f.ident)
            .ok_or("the flight has no IATA designator")?;
        let flight_number = FlightNumber::parse(&designator)
            .map_err(|_| format!("{designator} is not an IATA flight designator"))?;
        let scheduled_departure = f
            .scheduled_out
            .or(f.scheduled_off)
            .ok_or("the flight has no scheduled departure")?;
        let estimate = f.estimated_out.or(f.estimated_off);
        let (change, mark) = if f.cancelled || push.event_code == "cancelled" {
            (Change::Cancelled, "cancelled".to_owned())
        } else if let Some(at) = estimate {
            (
                Change::EstimatedDeparture(at),
                at.format("%Y%m%dT%H%MZ").to_string(),
            )
        } else {
            (Change::Other(push.event_code.clone()), String::new())
        };
        Ok(ProviderReport {
            provider: "flightaware",
            event_id: format!(
                "{}:{}:{}:{mark}",
                push.alert_id, push.event_code, f.fa_flight_id
            ),
            flight_number,
            scheduled_departure,
            change,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).unwrap_or_default()
    }

    #[test]
    fn a_recorded_delay_push_reads_as_the_flight_and_its_new_estimate() {
        let report = aeroapi::report(&sample("aeroapi-push-delay.json")).unwrap();
        assert_eq!(report.flight_number.as_str(), "UA123");
        assert_eq!(
            report.scheduled_departure.to_rfc3339(),
            "2037-12-01T16:05:00+00:00"
        );
        assert_eq!(
            report.change,
            Change::EstimatedDeparture("2037-12-01T16:45:00Z".parse().unwrap())
        );
        let again = aeroapi::report(&sample("aeroapi-push-delay.json")).unwrap();
        assert_eq!(report.idempotency_key(), again.idempotency_key());
    }

    #[test]
    fn a_recorded_cancellation_push_reads_as_cancelled() {
        let report = aeroapi::report(&sample("aeroapi-push-cancelled.json")).unwrap();
        assert_eq!(report.change, Change::Cancelled);
    }

    #[test]
    fn what_cannot_be_read_says_why() {
        assert!(aeroapi::report(b"not json").is_err());
        assert!(aeroapi::report(
            br#"{"event_code":"change","alert_id":1,"flight":{"fa_flight_id":"x"}}"#
        )
        .is_err());
    }

    #[test]
    fn only_the_configured_token_matches() {
        let want = SecretString::from("s3cr3t-token-of-some-length-0123456789");
        assert!(token_matches(
            Some("s3cr3t-token-of-some-length-0123456789"),
            &want
        ));
        assert!(!token_matches(Some("s3cr3t"), &want));
        assert!(!token_matches(None, &want));
    }
}
