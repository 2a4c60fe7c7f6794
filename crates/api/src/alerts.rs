//! The alerts function's API: `POST /notifications` records a flight event as an alert and puts
//! it on the bus; `GET /alerts` lists issued alerts, newest first, with keyset pagination and
//! each alert's delivery counts; `GET /alerts/{alertId}` shows each recipient's delivery state,
//! phones masked.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use flightwatch_domain::flight::{parse_date, parse_time};
use flightwatch_domain::ports::{AlertBus, AlertStore};
use flightwatch_domain::{
    Alert, AlertId, AlertQuery, DeliveryCounts, DeliveryState, EventKind, FailureClass,
    FlightEvent, FlightKey, FlightNumber, Notification, Publication, Reason, SpendLimits,
};
use serde::{Deserialize, Serialize};

use flightwatch_app::idempotency;
use flightwatch_app::notify::{self, NotifyError};

use crate::body::{Fields, JsonBody};
use crate::problem::ApiError;
use crate::wire;

/// What the alerts handlers borrow: the store and the bus, built once per cold start.
#[derive(Clone)]
pub struct AlertsState {
    pub store: Arc<dyn AlertStore>,
    pub bus: Arc<dyn AlertBus>,
    pub limits: SpendLimits,
    /// The SMS budget, in messages a second, that recipients are handed out within.
    pub sms_per_second: Option<std::num::NonZeroU32>,
}

pub fn router(state: AlertsState) -> Router {
    Router::new()
        .route("/notifications", post(notify))
        .route("/alerts", get(list))
        .route("/alerts/{alert_id}", get(details))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::body::MAX_BODY_BYTES,
        ))
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationRequest {
    flight_number: Option<String>,
    departure_date: Option<String>,
    event: Option<String>,
    /// Optional, but never null: `openapi.yaml` says string, and API Gateway refuses null.
    #[serde(default, deserialize_with = "crate::body::not_null")]
    reason: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::body::not_null")]
    estimated_departure: Option<Option<String>>,
}

impl NotificationRequest {
    pub fn parse(self) -> Result<Notification, ApiError> {
        let mut f = Fields::default();
        let number = f.required(
            "/flightNumber",
            self.flight_number.as_deref(),
            FlightNumber::parse,
        );
        let date = f.required("/departureDate", self.departure_date.as_deref(), parse_date);
        let kind = f.required("/event", self.event.as_deref(), str::parse::<EventKind>);
        let reason = f
            .optional("/reason", self.reason)
            .and_then(|r| f.check("/reason", Reason::parse(&r)));
        let estimated_given = self.estimated_departure.is_some();
        let estimated = f
            .optional("/estimatedDeparture", self.estimated_departure)
            .and_then(|t| f.check("/estimatedDeparture", parse_time(&t)));
        let event = match (kind, estimated, estimated_given) {
            (Some(EventKind::Delayed), Some(t), _) => Some(FlightEvent::Delayed {
                estimated_departure: t,
            }),
            (Some(EventKind::Delayed), None, false) => {
                f.fail("/estimatedDeparture", "is required when event is DELAYED");
                None
            }
            (Some(EventKind::Cancelled), _, true) => {
                f.fail(
                    "/estimatedDeparture",
                    "must be left out when event is CANCELLED",
                );
                None
            }
            (Some(EventKind::Cancelled), _, false) => Some(FlightEvent::Cancelled),
            _ => None,
        };
        match (number, date, event) {
            (Some(number), Some(date), Some(event)) if f.is_empty() => Ok(Notification {
                flight: FlightKey { number, date },
                event,
                reason,
            }),
            _ => Err(f.into_error()),
        }
    }
}

/// What the caller learns about the alert its notification created or matched.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertReceipt {
    alert_id: String,
    flight_number: String,
    departure_date: String,
    event: EventKind,
    recipients: u32,
    publication: Publication,
    created_at: String,
}

impl From<&Alert> for AlertReceipt {
    fn from(a: &Alert) -> Self {
        Self {
            alert_id: a.id.to_string(),
            flight_number: a.flight_number.to_string(),
            departure_date: a.departure_date.to_string(),
            event: a.event,
            recipients: a.recipients,
            publication: a.publication,
            created_at: wire::utc_time(a.created_at),
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let mut f = Fields::default();
    let key = value
        .to_str()
        .map_err(|_| "must be 1 to 255 visible ASCII characters")
        .and_then(idempotency::parse_key);
    match f.check("Idempotency-Key", key) {
        Some(key) => Ok(Some(key)),
        None => Err(f.into_error()),
    }
}

#[tracing::instrument(skip_all, fields(flight_number, event, alert_id, recipients))]
async fn notify(
    State(state): State<AlertsState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<NotificationRequest>,
) -> Result<(StatusCode, Json<AlertReceipt>), ApiError> {
    let notification = request.parse()?;
    let key = idempotency_key(&headers)?;
    let span = tracing::Span::current();
    span.record("flight_number", notification.flight.number.as_str());
    span.record("event", notification.event.kind().as_str());
    let idempotency = key.map(|key| idempotency::for_notification(key, &notification));
    let notified = notify::notify(
        state.store.as_ref(),
        state.store.as_ref(),
        state.bus.as_ref(),
        &notification,
        idempotency.as_ref(),
        notify::Limits::now(state.limits, state.sms_per_second),
    )
    .await
    .map_err(|e| match e {
        NotifyError::UnknownFlight(_) => ApiError::NotFound(e.to_string()),
        NotifyError::Contradicts(e) => {
            let mut f = Fields::default();
            f.fail("/estimatedDeparture", e);
            f.into_error()
        }
        NotifyError::KeyReused => ApiError::KeyReused,
        NotifyError::Refused(refusal) => refusal.into(),
        NotifyError::Store(e) => e.into(),
    })?;
    span.record("alert_id", tracing::field::display(notified.alert.id));
    span.record("recipients", notified.alert.recipients);
    let status = if notified.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(AlertReceipt::from(&notified.alert))))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    flight_number: Option<String>,
    departure_date: Option<String>,
    event: Option<String>,
    since: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The position after which the next page starts. Opaque to callers; versioned for us.
fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("a1:{seq}"))
}

fn decode_cursor(raw: &str) -> Result<i64, &'static str> {
    const WHAT: &str =
        "is not a cursor this API returned; pass nextCursor from the previous page as is";
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| WHAT)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| WHAT)?;
    text.strip_prefix("a1:")
        .and_then(|s| s.parse().ok())
        .ok_or(WHAT)
}

impl ListParams {
    fn parse(self) -> Result<AlertQuery, ApiError> {
        let mut f = Fields::default();
        let query = AlertQuery {
            flight_number: self
                .flight_number
                .as_deref()
                .and_then(|v| f.check("flightNumber", FlightNumber::parse(v))),
            departure_date: self
                .departure_date
                .as_deref()
                .and_then(|v| f.check("departureDate", parse_date(v))),
            event: self
                .event
                .as_deref()
                .and_then(|v| f.check("event", v.parse::<EventKind>())),
            since: self
                .since
                .as_deref()
                .and_then(|v| f.check("since", parse_time(&v.replace(' ', "+"))))
                .map(|t| t.to_utc()),
            before_seq: self
                .cursor
                .as_deref()
                .and_then(|v| f.check("cursor", decode_cursor(v))),
            limit: match self.limit.as_deref() {
                None => AlertQuery::DEFAULT_LIMIT,
                Some(v) => f
                    .check(
                        "limit",
                        v.parse::<u32>()
                            .ok()
                            .filter(|l| (1..=AlertQuery::MAX_LIMIT).contains(l))
                            .ok_or("must be a whole number from 1 to 200"),
                    )
                    .unwrap_or_default(),
            },
        };
        if f.is_empty() {
            Ok(query)
        } else {
            Err(f.into_error())
        }
    }
}

/// An issued alert as listed: no phone numbers, no emails.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertItem {
    alert_id: String,
    flight_number: String,
    departure_date: String,
    event: EventKind,
    reason: Option<String>,
    estimated_departure: Option<String>,
    recipients: u32,
    publication: Publication,
    /// The recipients by delivery state, from the sms function's reports.
    delivery: DeliveryCounts,
    created_at: String,
}

impl AlertItem {
    fn new(a: Alert, delivery: DeliveryCounts) -> Self {
        Self {
            alert_id: a.id.to_string(),
            flight_number: a.flight_number.to_string(),
            departure_date: a.departure_date.to_string(),
            event: a.event,
            reason: a.reason.map(String::from),
            estimated_departure: a.estimated_departure.map(wire::local_time),
            recipients: a.recipients,
            publication: a.publication,
            delivery,
            created_at: wire::utc_time(a.created_at),
        }
    }
}

/// One recipient's delivery, the phone masked.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientItem {
    phone: String,
    state: DeliveryState,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<FailureClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertDetails {
    #[serde(flatten)]
    alert: AlertItem,
    recipient_deliveries: Vec<RecipientItem>,
}

async fn details(
    State(state): State<AlertsState>,
    alert_id: Result<Path<String>, PathRejection>,
) -> Result<Json<AlertDetails>, ApiError> {
    let Path(raw) = alert_id.map_err(|e| ApiError::invalid(e.body_text()))?;
    let mut f = Fields::default();
    let Some(id) = f.check(
        "alertId",
        raw.parse::<AlertId>()
            .map_err(|_| "must be an alert id as POST /notifications returned it"),
    ) else {
        return Err(f.into_error());
    };
    let Some((alert, recipients)) = flightwatch_app::details(state.store.as_ref(), id).await?
    else {
        return Err(ApiError::NotFound(format!("no alert {id} was issued")));
    };
    let mut counts = DeliveryCounts::default();
    let recipient_deliveries = recipients
        .into_iter()
        .map(|r| {
            counts.add(r.state, 1);
            RecipientItem {
                phone: r.phone.masked(),
                state: r.state,
                failure: r.failure,
                updated_at: r.updated_at.map(wire::utc_time),
            }
        })
        .collect();
    Ok(Json(AlertDetails {
        alert: AlertItem::new(alert, counts),
        recipient_deliveries,
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertPage {
    items: Vec<AlertItem>,
    next_cursor: Option<String>,
}

async fn list(
    State(state): State<AlertsState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<AlertPage>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let query = params.parse()?;
    let page = flightwatch_app::list(state.store.as_ref(), &query).await?;
    let next_cursor = page.next_before.map(encode_cursor);
    let items = page
        .alerts
        .into_iter()
        .map(|(a, delivery)| AlertItem::new(a, delivery))
        .collect();
    Ok(Json(AlertPage { items, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Ok(42));
        assert!(decode_cursor("42").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("b1:42")).is_err());
    }
}
