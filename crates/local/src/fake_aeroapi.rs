//! A fake FlightAware AeroAPI v4 alerts service for local runs and tests: the account endpoint,
//! alert configurations (create, list with cursor pages, read, delete) behind `x-apikey`, and
//! control routes under `/_fake/` that make it push an alert delivery to the configured endpoint.
//! It follows AeroAPI v4's documented shapes (https://www.flightaware.com/aeroapi/portal/documentation):
//! error bodies `{title, reason, detail, status}`, `201` with `Location: /alerts/{id}` and no
//! body, `links.next` as a path relative to the base URL, and pushes shaped as
//! `tests/fixtures/aeroapi-push-delay.json`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

/// Alerts per page of `GET /alerts`, as AeroAPI pages them.
pub const PAGE_SIZE: usize = 15;

/// The header AeroAPI reads the API key from.
pub const KEY_HEADER: &str = "x-apikey";

/// Which events an alert fires on (AeroAPI's `events` object); absent ones are off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertEvents {
    pub arrival: bool,
    pub cancelled: bool,
    pub departure: bool,
    pub diverted: bool,
    pub filed: bool,
    pub out: bool,
    pub off: bool,
    pub on: bool,
    #[serde(rename = "in")]
    pub in_: bool,
    pub hold_start: bool,
    pub hold_end: bool,
}

/// A stored alert configuration. Serializes as AeroAPI's alert object (with the `*_icao`,
/// `*_iata` and `*_lid` variants it resolves, which the fake leaves null).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeAlert {
    pub id: i64,
    pub description: Option<String>,
    pub ident: String,
    pub origin: Option<String>,
    pub destination: Option<String>,
    pub aircraft_type: Option<String>,
    pub created: DateTime<Utc>,
    pub changed: DateTime<Utc>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub max_weekly: i64,
    pub eta: i64,
    pub events: AlertEvents,
    /// Where this alert delivers instead of the account endpoint.
    pub target_url: Option<String>,
    pub enabled: bool,
    pub user_ident: Option<String>,
    pub impending_arrival: Option<Vec<i64>>,
    pub impending_departure: Option<Vec<i64>>,
}

/// AeroAPI's alert object, field for field.
#[derive(Serialize)]
struct AlertWire<'a> {
    id: i64,
    description: Option<&'a str>,
    ident: &'a str,
    ident_icao: Option<&'a str>,
    ident_iata: Option<&'a str>,
    origin: Option<&'a str>,
    origin_icao: Option<&'a str>,
    origin_iata: Option<&'a str>,
    origin_lid: Option<&'a str>,
    destination: Option<&'a str>,
    destination_icao: Option<&'a str>,
    destination_iata: Option<&'a str>,
    destination_lid: Option<&'a str>,
    aircraft_type: Option<&'a str>,
    created: String,
    changed: String,
    start: Option<&'a str>,
    end: Option<&'a str>,
    max_weekly: i64,
    eta: i64,
    events: &'a AlertEvents,
    target_url: Option<&'a str>,
    enabled: bool,
    user_ident: Option<&'a str>,
    impending_arrival: Option<&'a [i64]>,
    impending_departure: Option<&'a [i64]>,
}

impl Serialize for FakeAlert {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AlertWire {
            id: self.id,
            description: self.description.as_deref(),
            ident: &self.ident,
            ident_icao: None,
            ident_iata: None,
            origin: self.origin.as_deref(),
            origin_icao: None,
            origin_iata: None,
            origin_lid: None,
            destination: self.destination.as_deref(),
            destination_icao: None,
            destination_iata: None,
            destination_lid: None,
            aircraft_type: self.aircraft_type.as_deref(),
            created: rfc3339(self.created),
            changed: rfc3339(self.changed),
            start: self.start.as_deref(),
            end: self.end.as_deref(),
            max_weekly: self.max_weekly,
            eta: self.eta,
            events: &self.events,
            target_url: self.target_url.as_deref(),
            enabled: self.enabled,
            user_ident: self.user_ident.as_deref(),
            impending_arrival: self.impending_arrival.as_deref(),
            impending_departure: self.impending_departure.as_deref(),
        }
        .serialize(serializer)
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What the fake remembers: the account endpoint, the alerts by id, the ids deleted.
#[derive(Debug, Default)]
struct Book {
    endpoint: Option<String>,
    alerts: BTreeMap<i64, FakeAlert>,
    last_id: i64,
    deleted: Vec<i64>,
    /// How many times the list was read from its first page (a watcher's look before it acts).
    listings: usize,
}

/// The fake's shared state: its key, its book, and the HTTP client pushes go out with.
/// Cheap to clone; every clone sees the same book.
#[derive(Clone)]
pub struct FakeState {
    key: Arc<str>,
    book: Arc<Mutex<Book>>,
    client: reqwest::Client,
}

impl FakeState {
    /// An empty account whose requests must carry `key` in `x-apikey`.
    pub fn new(key: &str) -> Self {
        Self {
            key: key.into(),
            book: Arc::default(),
            // Without a timeout a receiver that never answers would hang the test pushing.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    /// The API key requests must carry.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The stored alerts, lowest id first.
    pub fn alerts(&self) -> Vec<FakeAlert> {
        self.book().alerts.values().cloned().collect()
    }

    /// The ids of the alerts deleted, in the order they were.
    pub fn deleted(&self) -> Vec<i64> {
        self.book().deleted.clone()
    }

    /// How many times `GET /alerts` was read from its first page.
    pub fn listings(&self) -> usize {
        self.book().listings
    }

    /// The account-wide endpoint set with `PUT /alerts/endpoint`.
    pub fn endpoint(&self) -> Option<String> {
        self.book().endpoint.clone()
    }

    /// A poisoned lock only means a handler panicked mid-update; the book is still usable.
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Pushes an alert delivery for the first (lowest id) alert on `ident` to its target URL,
    /// else the account endpoint; the endpoint's status and body (JSON when it parses, else a
    /// string) come back.
    pub async fn push(&self, push: &Push) -> Result<(u16, Value), PushError> {
        let (alert, target) = {
            let book = self.book();
            let alert = book
                .alerts
                .values()
                .find(|a| a.ident.eq_ignore_ascii_case(&push.ident))
                .cloned()
                .ok_or_else(|| PushError::NotWatched(push.ident.clone()))?;
            let target = alert
                .target_url
                .clone()
                .or_else(|| book.endpoint.clone())
                .ok_or(PushError::NoEndpoint(alert.id))?;
            (alert, target)
        };
        let body = delivery(&alert, push)?;
        let response = self
            .client
            .post(&target)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| PushError::Delivery(without_query(&target).to_owned(), e.without_url()))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| PushError::Delivery(without_query(&target).to_owned(), e.without_url()))?;
        let answer = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        let target = without_query(&target);
        tracing::info!(alert_id = alert.id, ident = %alert.ident, %target, status, "alert pushed");
        Ok((status, answer))
    }
}

/// What `POST /_fake/push` takes: the flight, and either a delay or a cancellation.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Push {
    pub ident: String,
    pub scheduled_out: DateTime<Utc>,
    #[serde(default)]
    pub delay_minutes: Option<i64>,
    #[serde(default)]
    pub cancelled: bool,
}

impl Push {
    /// The departure `minutes` later than scheduled.
    pub fn delay(ident: &str, scheduled_out: DateTime<Utc>, minutes: i64) -> Self {
        Self {
            ident: ident.to_owned(),
            scheduled_out,
            delay_minutes: Some(minutes),
            cancelled: false,
        }
    }

    /// The flight cancelled.
    pub fn cancelled(ident: &str, scheduled_out: DateTime<Utc>) -> Self {
        Self {
            ident: ident.to_owned(),
            scheduled_out,
            delay_minutes: None,
            cancelled: true,
        }
    }
}

/// Why a push was not delivered.
#[derive(Debug)]
pub enum PushError {
    /// No stored alert has the ident (404): the flight is not watched.
    NotWatched(String),
    /// The alert has no target URL and the account no endpoint (409).
    NoEndpoint(i64),
    /// Neither a delay nor a cancellation, or a delay out of range (400).
    Invalid(String),
    /// The endpoint could not be reached or its answer not read (502).
    Delivery(String, reqwest::Error),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotWatched(ident) => write!(f, "no alert is set on {ident}"),
            Self::NoEndpoint(id) => write!(
                f,
                "alert {id} has no target_url and no endpoint is set (PUT /alerts/endpoint)"
            ),
            Self::Invalid(why) => f.write_str(why),
            Self::Delivery(url, e) => write!(f, "pushing to {url}: {e}"),
        }
    }
}

impl std::error::Error for PushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Delivery(_, e) => Some(e),
            _ => None,
        }
    }
}

impl IntoResponse for PushError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::NotWatched(_) => StatusCode::NOT_FOUND,
            Self::NoEndpoint(_) => StatusCode::CONFLICT,
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::Delivery(..) => StatusCode::BAD_GATEWAY,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// AeroAPI's alert delivery, field for field as the fixtures, times in UTC.
#[derive(Serialize)]
struct Delivery<'a> {
    long_description: String,
    short_description: String,
    summary: String,
    event_code: &'static str,
    alert_id: i64,
    flight: DeliveredFlight<'a>,
}

#[derive(Serialize)]
struct DeliveredFlight<'a> {
    ident: &'a str,
    ident_icao: Option<&'a str>,
    ident_iata: &'a str,
    fa_flight_id: String,
    registration: Option<&'a str>,
    atc_ident: Option<&'a str>,
    aircraft_type: Option<&'a str>,
    origin: Option<&'a str>,
    origin_icao: Option<&'a str>,
    origin_iata: Option<&'a str>,
    origin_lid: Option<&'a str>,
    destination: Option<&'a str>,
    destination_icao: Option<&'a str>,
    destination_iata: Option<&'a str>,
    destination_lid: Option<&'a str>,
    route: Option<&'a str>,
    position_only: bool,
    blocked: bool,
    cancelled: bool,
    diverted: bool,
    route_distance: Option<i64>,
    filed_ete: Option<i64>,
    filed_altitude: Option<i64>,
    filed_airspeed_kts: Option<i64>,
    scheduled_out: String,
    estimated_out: String,
    actual_out: Option<&'a str>,
    scheduled_off: Option<&'a str>,
    estimated_off: Option<&'a str>,
    actual_off: Option<&'a str>,
    scheduled_on: Option<&'a str>,
    estimated_on: Option<&'a str>,
    actual_on: Option<&'a str>,
    scheduled_in: Option<&'a str>,
    estimated_in: Option<&'a str>,
    actual_in: Option<&'a str>,
    baggage_claim: Option<&'a str>,
    gate_origin: Option<&'a str>,
    gate_destination: Option<&'a str>,
    terminal_origin: Option<&'a str>,
    terminal_destination: Option<&'a str>,
}

/// The push body: a function of the alert and the push alone (no clock, no counter), so the
/// same push sent twice is the same bytes and a receiver can tell it is a repeat.
fn delivery(alert: &FakeAlert, push: &Push) -> Result<Vec<u8>, PushError> {
    let ident = alert.ident.as_str();
    let scheduled = push.scheduled_out;
    let (event_code, estimated, long, short, summary) = if push.cancelled {
        (
            "cancelled",
            scheduled,
            format!("{} has been cancelled.", flight_text(alert)),
            format!("{ident} {} has been cancelled", route_text(alert)),
            format!("{ident} cancelled"),
        )
    } else {
        let minutes = push.delay_minutes.ok_or_else(|| {
            PushError::Invalid("a push needs delay_minutes or \"cancelled\": true".into())
        })?;
        let estimated = TimeDelta::try_minutes(minutes)
            .and_then(|d| scheduled.checked_add_signed(d))
            .ok_or_else(|| PushError::Invalid(format!("a delay of {minutes} minutes")))?;
        let by = if minutes >= 0 {
            format!("delayed {}", plural(minutes, "minute"))
        } else {
            format!("{} early", plural(-minutes, "minute"))
        };
        let at = estimated.format("%H:%MZ");
        (
            "change",
            estimated,
            format!(
                "{} is {by}. The new estimated departure is {at}.",
                flight_text(alert)
            ),
            format!("{ident} {by}, departing {}", departing_text(alert, &at)),
            format!("{ident} departure {by}"),
        )
    };
    let body = Delivery {
        long_description: long,
        short_description: short,
        summary,
        event_code,
        alert_id: alert.id,
        flight: DeliveredFlight {
            ident,
            ident_icao: None,
            ident_iata: ident,
            fa_flight_id: format!("{ident}-{}-schedule-0000", scheduled.timestamp()),
            registration: None,
            atc_ident: None,
            aircraft_type: alert.aircraft_type.as_deref(),
            origin: alert.origin.as_deref(),
            origin_icao: None,
            origin_iata: alert.origin.as_deref(),
            origin_lid: None,
            destination: alert.destination.as_deref(),
            destination_icao: None,
            destination_iata: alert.destination.as_deref(),
            destination_lid: None,
            route: None,
            position_only: false,
            blocked: false,
            cancelled: push.cancelled,
            diverted: false,
            route_distance: None,
            filed_ete: None,
            filed_altitude: None,
            filed_airspeed_kts: None,
            scheduled_out: rfc3339(scheduled),
            estimated_out: rfc3339(estimated),
            actual_out: None,
            scheduled_off: None,
            estimated_off: None,
            actual_off: None,
            scheduled_on: None,
            estimated_on: None,
            actual_on: None,
            scheduled_in: None,
            estimated_in: None,
            actual_in: None,
            baggage_claim: None,
            gate_origin: None,
            gate_destination: None,
            terminal_origin: None,
            terminal_destination: None,
        },
    };
    serde_json::to_vec(&body).map_err(|e| PushError::Invalid(e.to_string()))
}

fn plural(n: i64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// "Flight UA123 from SFO to JFK", leaving out what the alert does not name.
fn flight_text(alert: &FakeAlert) -> String {
    let route = route_text(alert);
    if route.is_empty() {
        format!("Flight {}", alert.ident)
    } else {
        format!("Flight {} {route}", alert.ident)
    }
}

/// "from SFO to JFK", "from SFO", "to JFK" or "".
fn route_text(alert: &FakeAlert) -> String {
    match (&alert.origin, &alert.destination) {
        (Some(o), Some(d)) => format!("from {o} to {d}"),
        (Some(o), None) => format!("from {o}"),
        (None, Some(d)) => format!("to {d}"),
        (None, None) => String::new(),
    }
}

/// "SFO @ 16:45Z for JFK", leaving out what the alert does not name.
fn departing_text(alert: &FakeAlert, at: &impl std::fmt::Display) -> String {
    let mut text = match &alert.origin {
        Some(o) => format!("{o} @ {at}"),
        None => format!("@ {at}"),
    };
    if let Some(d) = &alert.destination {
        text.push_str(&format!(" for {d}"));
    }
    text
}

/// AeroAPI's error: `{title, reason, detail, status}` with the status it is sent with.
#[derive(Debug)]
struct AeroError {
    status: StatusCode,
    title: &'static str,
    reason: &'static str,
    detail: String,
}

impl AeroError {
    fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            title: "Invalid API key",
            reason: "UNAUTHORIZED",
            detail: format!("the {KEY_HEADER} header is missing or is not a valid key"),
        }
    }

    fn bad_request(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            title: "Invalid argument",
            reason: "INVALID_ARGUMENT",
            detail: detail.into(),
        }
    }

    fn not_found(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            reason: "NOT_FOUND",
            detail: detail.into(),
        }
    }
}

impl IntoResponse for AeroError {
    fn into_response(self) -> Response {
        let body = json!({
            "title": self.title,
            "reason": self.reason,
            "detail": self.detail,
            "status": self.status.as_u16(),
        });
        (self.status, Json(body)).into_response()
    }
}

/// The fake's routes: AeroAPI's alert routes behind `x-apikey`, the `/_fake/` control routes
/// without it. Used by [`FakeAeroApi::start`] and the `fake-aeroapi` binary.
pub fn router(state: FakeState) -> Router {
    let aeroapi = Router::new()
        .route(
            "/alerts/endpoint",
            get(get_endpoint).put(put_endpoint).delete(delete_endpoint),
        )
        .route("/alerts", get(list_alerts).post(create_alert))
        .route("/alerts/{id}", get(get_alert).delete(delete_alert))
        .fallback(|| async { AeroError::not_found("no such route") })
        .layer(middleware::from_fn_with_state(state.clone(), require_key));
    let control = Router::new()
        .route("/_fake/push", post(control_push))
        .route("/_fake/alerts", get(control_alerts));
    control.merge(aeroapi).with_state(state)
}

async fn require_key(State(state): State<FakeState>, request: Request, next: Next) -> Response {
    let given = request.headers().get(KEY_HEADER).map(HeaderValue::as_bytes);
    if given != Some(state.key.as_bytes()) {
        tracing::warn!(path = %request.uri().path(), "request without a valid x-apikey");
        return AeroError::unauthorized().into_response();
    }
    next.run(request).await
}

#[derive(Deserialize)]
struct EndpointBody {
    url: Option<String>,
}

async fn put_endpoint(
    State(state): State<FakeState>,
    body: Bytes,
) -> Result<StatusCode, AeroError> {
    let body: EndpointBody = serde_json::from_slice(&body)
        .map_err(|e| AeroError::bad_request(format!("the body is not {{\"url\": ...}}: {e}")))?;
    let url = body
        .url
        .ok_or_else(|| AeroError::bad_request("url is required"))?;
    check_url("url", &url)?;
    tracing::info!(url = without_query(&url), "alerts endpoint set");
    state.book().endpoint = Some(url);
    Ok(StatusCode::NO_CONTENT)
}

async fn get_endpoint(State(state): State<FakeState>) -> Json<Value> {
    Json(json!({ "url": state.endpoint() }))
}

async fn delete_endpoint(State(state): State<FakeState>) -> StatusCode {
    state.book().endpoint = None;
    StatusCode::NO_CONTENT
}

fn check_url(field: &str, url: &str) -> Result<(), AeroError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() => Ok(()),
        _ => Err(AeroError::bad_request(format!(
            "{field} must be an http(s) URL, not {url:?}"
        ))),
    }
}

/// AeroAPI's alert configuration, as `POST /alerts` takes it; only `ident` is required.
#[derive(Deserialize)]
struct AlertConfig {
    ident: Option<String>,
    description: Option<String>,
    origin: Option<String>,
    destination: Option<String>,
    aircraft_type: Option<String>,
    start: Option<String>,
    end: Option<String>,
    max_weekly: Option<i64>,
    eta: Option<i64>,
    events: Option<AlertEvents>,
    target_url: Option<String>,
    user_ident: Option<String>,
    impending_arrival: Option<Vec<i64>>,
    impending_departure: Option<Vec<i64>>,
}

/// AeroAPI takes a date (`2037-12-01`) or a date-time for `start` and `end`.
fn check_date(field: &str, value: &Option<String>) -> Result<(), AeroError> {
    match value {
        Some(v)
            if NaiveDate::parse_from_str(v, "%Y-%m-%d").is_err()
                && DateTime::parse_from_rfc3339(v).is_err() =>
        {
            Err(AeroError::bad_request(format!(
                "{field} must be a date (YYYY-MM-DD) or an RFC 3339 date-time, not {v:?}"
            )))
        }
        _ => Ok(()),
    }
}

async fn create_alert(State(state): State<FakeState>, body: Bytes) -> Result<Response, AeroError> {
    let config: AlertConfig = serde_json::from_slice(&body)
        .map_err(|e| AeroError::bad_request(format!("the alert configuration is invalid: {e}")))?;
    let ident = config
        .ident
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| AeroError::bad_request("ident is required"))?;
    check_date("start", &config.start)?;
    check_date("end", &config.end)?;
    if let Some(url) = &config.target_url {
        check_url("target_url", url)?;
    }
    let now = Utc::now();
    let id = {
        let mut book = state.book();
        if config.target_url.is_none() && book.endpoint.is_none() {
            return Err(AeroError::bad_request(
                "no alert endpoint is set for this account (PUT /alerts/endpoint) and the alert has no target_url",
            ));
        }
        book.last_id += 1;
        let id = book.last_id;
        book.alerts.insert(
            id,
            FakeAlert {
                id,
                description: config.description,
                ident: ident.clone(),
                origin: config.origin,
                destination: config.destination,
                aircraft_type: config.aircraft_type,
                created: now,
                changed: now,
                start: config.start,
                end: config.end,
                max_weekly: config.max_weekly.unwrap_or(1000),
                eta: config.eta.unwrap_or(0),
                events: config.events.unwrap_or_default(),
                target_url: config.target_url,
                enabled: true,
                user_ident: config.user_ident,
                impending_arrival: config.impending_arrival,
                impending_departure: config.impending_departure,
            },
        );
        id
    };
    tracing::info!(alert_id = id, %ident, "alert created");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/alerts/{id}"))],
    )
        .into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    cursor: Option<String>,
    max_pages: Option<String>,
}

/// The cursor is opaque to clients; here it is the last id already listed, in hex.
fn cursor_after(cursor: &str) -> Result<i64, AeroError> {
    i64::from_str_radix(cursor, 16)
        .map_err(|_| AeroError::bad_request(format!("invalid cursor {cursor:?}")))
}

/// A page of `GET /alerts`, fields in AeroAPI's order.
#[derive(Serialize)]
struct Page {
    links: Option<Links>,
    num_pages: usize,
    alerts: Vec<FakeAlert>,
}

#[derive(Serialize)]
struct Links {
    next: String,
}

async fn list_alerts(
    State(state): State<FakeState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page>, AeroError> {
    let after = query.cursor.as_deref().map(cursor_after).transpose()?;
    let max_pages = match query.max_pages.as_deref() {
        None => 1,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| AeroError::bad_request("max_pages must be a positive integer"))?,
    };
    let limit = PAGE_SIZE.saturating_mul(max_pages);
    let mut book = state.book();
    if after.is_none() {
        book.listings += 1;
    }
    let mut remaining = book
        .alerts
        .range(after.map_or(i64::MIN, |a| a.saturating_add(1))..)
        .map(|(_, alert)| alert);
    let alerts: Vec<FakeAlert> = remaining.by_ref().take(limit).cloned().collect();
    let more = remaining.next().is_some();
    let links = match alerts.last() {
        Some(last) if more => Some(Links {
            next: format!("/alerts?cursor={:x}", last.id),
        }),
        _ => None,
    };
    Ok(Json(Page {
        links,
        num_pages: alerts.len().div_ceil(PAGE_SIZE).max(1),
        alerts,
    }))
}

fn alert_id(id: &str) -> Result<i64, AeroError> {
    id.parse()
        .map_err(|_| AeroError::not_found(format!("no alert {id}")))
}

async fn get_alert(
    State(state): State<FakeState>,
    Path(id): Path<String>,
) -> Result<Json<FakeAlert>, AeroError> {
    let id = alert_id(&id)?;
    let alert = state.book().alerts.get(&id).cloned();
    alert
        .map(Json)
        .ok_or_else(|| AeroError::not_found(format!("no alert {id}")))
}

async fn delete_alert(
    State(state): State<FakeState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AeroError> {
    let id = alert_id(&id)?;
    {
        let mut book = state.book();
        if book.alerts.remove(&id).is_none() {
            return Err(AeroError::not_found(format!("no alert {id}")));
        }
        book.deleted.push(id);
    }
    tracing::info!(alert_id = id, "alert deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn control_push(State(state): State<FakeState>, body: Bytes) -> Response {
    let push: Push = match serde_json::from_slice(&body) {
        Ok(push) => push,
        Err(e) => return PushError::Invalid(format!("the push is invalid: {e}")).into_response(),
    };
    match state.push(&push).await {
        Ok((status, body)) => Json(json!({ "status": status, "body": body })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, ident = %push.ident, "push not delivered");
            e.into_response()
        }
    }
}

/// What `GET /_fake/alerts` shows of the book.
#[derive(Serialize)]
struct Snapshot {
    endpoint: Option<String>,
    alerts: Vec<FakeAlert>,
    deleted: Vec<i64>,
}

async fn control_alerts(State(state): State<FakeState>) -> Json<Snapshot> {
    let book = state.book();
    Json(Snapshot {
        endpoint: book.endpoint.clone(),
        alerts: book.alerts.values().cloned().collect(),
        deleted: book.deleted.clone(),
    })
}

/// A URL for the log: its query (the feed's token) left out.
fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// A fake AeroAPI serving in a tokio task on 127.0.0.1; dropping it stops the server.
pub struct FakeAeroApi {
    state: FakeState,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl FakeAeroApi {
    /// Serves on 127.0.0.1 on a free port, requiring `key` in `x-apikey`.
    pub async fn start(key: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = FakeState::new(key);
        let app = router(state.clone());
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake AeroAPI stopped");
            }
        });
        Ok(Self {
            state,
            addr,
            server,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT` (AeroAPI's is `https://aeroapi.flightaware.com/aeroapi`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API key requests must carry.
    pub fn key(&self) -> &str {
        self.state.key()
    }

    /// The shared state, as the router sees it.
    pub fn state(&self) -> &FakeState {
        &self.state
    }

    /// The stored alerts, lowest id first.
    pub fn alerts(&self) -> Vec<FakeAlert> {
        self.state.alerts()
    }

    /// The ids of the alerts deleted, in the order they were.
    pub fn deleted(&self) -> Vec<i64> {
        self.state.deleted()
    }

    /// How many times `GET /alerts` was read from its first page.
    pub fn listings(&self) -> usize {
        self.state.listings()
    }

    /// The account-wide endpoint, once set.
    pub fn endpoint(&self) -> Option<String> {
        self.state.endpoint()
    }

    /// Pushes a `change` delivery: the flight departing `minutes` after `scheduled_out`.
    /// Fails when no alert is set on `ident`, as `POST /_fake/push` answers 404.
    pub async fn push_delay(
        &self,
        ident: &str,
        scheduled_out: DateTime<Utc>,
        minutes: i64,
    ) -> anyhow::Result<(u16, Value)> {
        Ok(self
            .state
            .push(&Push::delay(ident, scheduled_out, minutes))
            .await?)
    }

    /// Pushes a `cancelled` delivery for the flight scheduled out at `scheduled_out`.
    pub async fn push_cancelled(
        &self,
        ident: &str,
        scheduled_out: DateTime<Utc>,
    ) -> anyhow::Result<(u16, Value)> {
        Ok(self
            .state
            .push(&Push::cancelled(ident, scheduled_out))
            .await?)
    }
}

impl Drop for FakeAeroApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "test-key";

    fn client() -> reqwest::Client {
        reqwest::Client::new()
    }

    async fn set_endpoint(fake: &FakeAeroApi, url: &str) {
        let r = client()
            .put(format!("{}/alerts/endpoint", fake.url()))
            .header(KEY_HEADER, KEY)
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }

    async fn create(fake: &FakeAeroApi, config: Value) -> reqwest::Response {
        client()
            .post(format!("{}/alerts", fake.url()))
            .header(KEY_HEADER, KEY)
            .json(&config)
            .send()
            .await
            .unwrap()
    }

    fn ua123() -> Value {
        json!({
            "ident": "UA123", "origin": "SFO", "destination": "JFK", "aircraft_type": null,
            "start": "2037-12-01", "end": "2037-12-02", "max_weekly": 1000, "eta": 0,
            "events": {"arrival": false, "cancelled": true, "departure": true, "diverted": false,
                       "filed": true, "out": false, "off": false, "on": false, "in": false,
                       "hold_start": false, "hold_end": false},
            "target_url": null
        })
    }

    fn scheduled() -> DateTime<Utc> {
        "2037-12-01T16:05:00Z".parse().unwrap()
    }

    /// A receiver that records each push's content type and body, and answers `{"ok": true}`.
    async fn receiver() -> (String, Arc<Mutex<Vec<(String, Bytes)>>>) {
        let got: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
        let record = got.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: axum::http::HeaderMap, body: Bytes| {
                let record = record.clone();
                async move {
                    let ct = headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    record.lock().unwrap().push((ct, body));
                    Json(json!({ "ok": true }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, got)
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    #[tokio::test]
    async fn every_aeroapi_route_requires_the_key_and_answers_401_in_aeroapi_error_shape() {
        let fake = FakeAeroApi::start(KEY).await.unwrap();
        for key in [None, Some("wrong")] {
            for path in ["/alerts", "/alerts/endpoint", "/alerts/1"] {
                let mut request = client().get(format!("{}{path}", fake.url()));
                if let Some(key) = key {
                    request = request.header(KEY_HEADER, key);
                }
                let r = request.send().await.unwrap();
                assert_eq!(r.status(), 401, "{path} with key {key:?}");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["status"], 401, "{path} with key {key:?}");
                for field in ["title", "reason", "detail"] {
                    assert!(body[field].is_string(), "{field} in {body}");
                }
            }
        }
        let r = client()
            .get(format!("{}/alerts", fake.url()))
            .header(KEY_HEADER, KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    #[tokio::test]
    async fn an_alert_posted_before_any_endpoint_is_set_is_refused() {
        let fake = FakeAeroApi::start(KEY).await.unwrap();
        let r = create(&fake, ua123()).await;
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], 400);
        assert!(body["detail"].as_str().unwrap().contains("endpoint"));
        assert!(fake.alerts().is_empty());

        // With its own target_url it needs no account endpoint.
        let mut config = ua123();
        config["target_url"] = json!("http://127.0.0.1:9/hook");
        assert_eq!(create(&fake, config).await.status(), 201);
    }

    #[tokio::test]
    async fn an_alert_without_ident_or_with_a_bad_date_is_a_400() {
        let fake = FakeAeroApi::start(KEY).await.unwrap();
        set_endpoint(&fake, "http://127.0.0.1:9/hook").await;
        let cases = [
            ("no ident", json!({"origin": "SFO"})),
            ("empty ident", json!({"ident": " "})),
            ("bad start", json!({"ident": "UA1", "start": "tomorrow"})),
            ("ident not a string", json!({"ident": 123})),
        ];
        for (case, config) in cases {
            let r = create(&fake, config).await;
            assert_eq!(r.status(), 400, "{case}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["reason"], "INVALID_ARGUMENT", "{case}");
        }
        assert_eq!(create(&fake, json!({"ident": "UA1"})).await.status(), 201);
    }

    #[tokio::test]
    async fn an_alert_is_created_at_its_location_listed_read_and_deleted() {
        let fake = FakeAeroApi::start(KEY).await.unwrap();
        set_endpoint(&fake, "http://127.0.0.1:9/hook").await;
        let endpoint: Value = client()
            .get(format!("{}/alerts/endpoint", fake.url()))
            .header(KEY_HEADER, KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(endpoint, json!({"url": "http://127.0.0.1:9/hook"}));

        let r = create(&fake, ua123()).await;
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()[header::LOCATION], "/alerts/1");
        assert!(r.bytes().await.unwrap().is_empty());
        let r = create(&fake, json!({"ident": "DL5"})).await;
        assert_eq!(r.headers()[header::LOCATION], "/alerts/2");

        let list: Value = client()
            .get(format!("{}/alerts", fake.url()))
            .header(KEY_HEADER, KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["links"], Value::Null);
        assert_eq!(list["num_pages"], 1);
        let first = &list["alerts"][0];
        assert_eq!(first["id"], 1);
        assert_eq!(first["ident"], "UA123");
        assert_eq!(first["origin"], "SFO");
        assert_eq!(first["destination"], "JFK");
        assert_eq!(first["start"], "2037-12-01");
        assert_eq!(first["events"], ua123()["events"]);
        assert_eq!(first["enabled"], true);
        assert_eq!(first["ident_icao"], Value::Null);
        assert!(DateTime::parse_from_rfc3339(first["created"].as_str().unwrap()).is_ok());
        assert!(first["created"].as_str().unwrap().ends_with('Z'));
        assert_eq!(list["alerts"][1]["max_weekly"], 1000);

        let one = client()
            .get(format!("{}/alerts/1", fake.url()))
            .header(KEY_HEADER, KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(one.status(), 200);
        assert_eq!(&one.json::<Value>().await.unwrap(), first);

        let delete = || {
            client()
                .delete(format!("{}/alerts/1", fake.url()))
                .header(KEY_HEADER, KEY)
                .send()
        };
        assert_eq!(delete().await.unwrap().status(), 204);
        assert_eq!(delete().await.unwrap().status(), 404);
        let gone = client()
            .get(format!("{}/alerts/1", fake.url()))
            .header(KEY_HEADER, KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), 404);
        assert_eq!(gone.json::<Value>().await.unwrap()["status"], 404);

        let control: Value = client()
            .get(format!("{}/_fake/alerts", fake.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(control["endpoint"], "http://127.0.0.1:9/hook");
        assert_eq!(control["deleted"], json!([1]));
        assert_eq!(control["alerts"].as_array().unwrap().len(), 1);
        assert_eq!(fake.deleted(), vec![1]);
        assert_eq!(fake.alerts()[0].ident, "DL5");
    }

    #[tokio::test]
    async fn twenty_alerts_come_in_two_pages_joined_by_links_next() {
        let fake = FakeAeroApi::start(KEY).await.unwrap();
        set_endpoint(&fake, "http://127.0.0.1:9/hook").await;
        for n in 1..=20 {
            let r = create(&fake, json!({ "ident": format!("UA{n}") })).await;
            assert_eq!(r.status(), 201, "alert {n}");
        }
        let mut ids = Vec::new();
        let mut next = Some("/alerts".to_owned());
        let mut pages = 0;
        while let Some(path) = next {
            let page: Value = client()
                .get(format!("{}{path}", fake.url()))
                .header(KEY_HEADER, KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            pages += 1;
            let alerts = page["alerts"].as_array().unwrap();
            assert!(alerts.len() <= PAGE_SIZE, "page {pages}");
            ids.extend(alerts.iter().map(|a| a["id"].as_i64().unwrap()));
            next = page["links"]["next"].as_str().map(str::to_owned);
            if let Some(path) = &next {
                assert!(path.starts_with("/alerts?cursor="), "{path}");
            }
        }
        assert_eq!(pages, 2);
        assert_eq!(ids, (1..=20).collect::<Vec<_>>());

        let all: Value = client()
            .get(format!("{}/alerts?max_pages=2", fake.url()))
            .header(KEY_HEADER, KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(all["alerts"].as_array().unwrap().len(), 20);
        assert_eq!(all["num_pages"], 2);
        assert_eq!(all["links"], Value::Null);
    }

    #[tokio::test]
    async fn a_delay_push_delivers_the_fixture_shaped_payload_the_same_bytes_each_time() {
        let fake = FakeAeroApi::start(KEY).await.unwrap();
        let (hook, got) = receiver().await;
        set_endpoint(&fake, &hook).await;
        assert_eq!(create(&fake, ua123()).await.status(), 201);

        let (status, body) = fake.push_delay("UA123", scheduled(), 40).await.unwrap();
        assert_eq!((status, body), (200, json!({ "ok": true })));
        let answer: Value = client()
            .post(format!("{}/_fake/push", fake.url()))
            .json(&json!({
                "ident": "UA123", "scheduled_out": "2037-12-01T16:05:00Z", "delay_minutes": 40
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer, json!({ "status": 200, "body": { "ok": true } }));

        let got = got.lock().unwrap().clone();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "application/json");
        assert_eq!(got[0].1, got[1].1, "the same push is the same bytes");
        let push: Value = serde_json::from_slice(&got[0].1).unwrap();
        assert_eq!(push["alert_id"], 1);
        assert_eq!(push["event_code"], "change");
        let flight = &push["flight"];
        assert_eq!(flight["ident"], "UA123");
        assert_eq!(flight["ident_iata"], "UA123");
        assert_eq!(flight["ident_icao"], Value::Null);
        assert_eq!(flight["origin_iata"], "SFO");
        assert_eq!(flight["destination_iata"], "JFK");
        assert_eq!(flight["cancelled"], false);
        assert_eq!(flight["fa_flight_id"], "UA123-2143296300-schedule-0000");
        assert_eq!(flight["scheduled_out"], "2037-12-01T16:05:00Z");
        assert_eq!(flight["estimated_out"], "2037-12-01T16:45:00Z");
        assert_eq!(push["summary"], "UA123 departure delayed 40 minutes");

        let fixture: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/aeroapi-push-delay.json"
        ))
        .unwrap();
        assert_eq!(keys(&push), keys(&fixture));
        assert_eq!(keys(flight), keys(&fixture["flight"]));

        // And the alerts function's own parser reads it as the delay it is.
        let report = flightwatch_api::feeds::aeroapi::report(&got[0].1).unwrap();
        assert_eq!(report.flight_number.to_string(), "UA123");
        assert_eq!(report.scheduled_departure, scheduled());
        assert_eq!(
            report.change,
            flightwatch_domain::feed::Change::EstimatedDeparture(
                scheduled() + TimeDelta::minutes(40)
            )
        );
    }

    #[tokio::test]
    async fn a_cancellation_push_goes_to_the_alerts_own_target_url() {
        let fake = FakeAeroApi::start(KEY).await.unwrap();
        let (hook, got) = receiver().await;
        set_endpoint(&fake, "http://127.0.0.1:9/unused").await;
        let mut config = ua123();
        config["target_url"] = json!(hook);
        assert_eq!(create(&fake, config).await.status(), 201);

        let (status, _) = fake.push_cancelled("UA123", scheduled()).await.unwrap();
        assert_eq!(status, 200);
        let got = got.lock().unwrap().clone();
        let push: Value = serde_json::from_slice(&got[0].1).unwrap();
        assert_eq!(push["event_code"], "cancelled");
        assert_eq!(push["flight"]["cancelled"], true);
        assert_eq!(push["flight"]["estimated_out"], "2037-12-01T16:05:00Z");
        let fixture: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/aeroapi-push-cancelled.json"
        ))
        .unwrap();
        assert_eq!(keys(&push), keys(&fixture));
        assert_eq!(keys(&push["flight"]), keys(&fixture["flight"]));
        let report = flightwatch_api::feeds::aeroapi::report(&got[0].1).unwrap();
        assert_eq!(report.change, flightwatch_domain::feed::Change::Cancelled);
    }

    #[tokio::test]
    async fn a_push_for_an_ident_no_alert_watches_is_a_404() {
        let fake = FakeAeroApi::start(KEY).await.unwrap();
        set_endpoint(&fake, "http://127.0.0.1:9/hook").await;
        assert_eq!(create(&fake, ua123()).await.status(), 201);
        let r = client()
            .post(format!("{}/_fake/push", fake.url()))
            .json(&json!({
                "ident": "DL5", "scheduled_out": "2037-12-01T16:05:00Z", "delay_minutes": 40
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let body: Value = r.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("DL5"));
        assert!(fake.push_delay("DL5", scheduled(), 40).await.is_err());
    }

    #[tokio::test]
    async fn a_push_with_neither_delay_nor_cancellation_is_a_400() {
        let fake = FakeAeroApi::start(KEY).await.unwrap();
        set_endpoint(&fake, "http://127.0.0.1:9/hook").await;
        assert_eq!(create(&fake, ua123()).await.status(), 201);
        let r = client()
            .post(format!("{}/_fake/push", fake.url()))
            .json(&json!({ "ident": "UA123", "scheduled_out": "2037-12-01T16:05:00Z" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
}
