//! FlightAware AeroAPI v4 as the flight-status provider that watches flights: one alert per
//! registered flight (`POST /alerts`), listed with `GET /alerts` (the provider's list is the
//! record of what is watched), ended with `DELETE /alerts/{id}`. Each alert delivers to this
//! stage's `/feeds/flightaware` URL (its `target_url`), and only alerts that do are ours: a key
//! shared by several stages, or alerts made by hand on the account, are left alone. AeroAPI
//! refuses alerts while the account has no endpoint (`PUT /alerts/endpoint`), so ours is set
//! when none is, never over another's.
//! Shapes from AeroAPI's published OpenAPI description
//! (<https://www.flightaware.com/aeroapi/portal/documentation>).

use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use flightwatch_domain::ports::FlightWatcher;
use flightwatch_domain::watch::{ProviderError, Watch, WatchRequest};
use flightwatch_domain::FlightNumber;
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// AeroAPI's production base URL.
pub const DEFAULT_URL: &str = "https://aeroapi.flightaware.com/aeroapi";

/// An AeroAPI account: its base URL, its key (a secret: sent as `x-apikey`, never logged), and
/// where its alerts are to be delivered (a secret too: the URL carries the feed's token).
pub struct AeroApi {
    http: reqwest::Client,
    base: String,
    key: SecretString,
    endpoint: SecretString,
    endpoint_set: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for AeroApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AeroApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl AeroApi {
    /// `base` without a trailing slash (`DEFAULT_URL`, or a fake's); `endpoint`, the feed URL with
    /// its token, as AeroAPI is to call it.
    pub fn new(
        base: &str,
        key: SecretString,
        endpoint: SecretString,
    ) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            // Well under the watch function's 30 s: a slow call fails and the event is retried.
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ProviderError::Permanent(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
            endpoint,
            endpoint_set: tokio::sync::OnceCell::new(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("x-apikey", self.key.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
    }

    /// Gives the account an alert endpoint (ours) when it has none, once per cold start.
    async fn ensure_endpoint(&self) -> Result<(), ProviderError> {
        self.endpoint_set
            .get_or_try_init(|| async {
                let current: Endpoint = self
                    .get_json("/alerts/endpoint", "GET /alerts/endpoint")
                    .await?;
                if current.url.is_some_and(|url| !url.is_empty()) {
                    return Ok(());
                }
                let body = Endpoint {
                    url: Some(self.endpoint.expose_secret().to_owned()),
                };
                self.send(
                    self.request(reqwest::Method::PUT, "/alerts/endpoint")
                        .json(&body),
                    "PUT /alerts/endpoint",
                )
                .await?;
                tracing::info!("AeroAPI account endpoint set to this stage's feed");
                Ok(())
            })
            .await
            .map(drop)
    }

    /// Sends `request`; a 2xx, or `call`'s error.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        call: &str,
    ) -> Result<Response, ProviderError> {
        let response = request.send().await.map_err(transport)?;
        self.expect_success(response, call).await
    }

    /// A 2xx answer to `GET path`, read as JSON.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        call: &str,
    ) -> Result<T, ProviderError> {
        self.send(self.request(reqwest::Method::GET, path), call)
            .await?
            .json()
            .await
            .map_err(|e| unreadable(call, e))
    }

    /// A 2xx, or the error with AeroAPI's own reason, the feed's token taken out: an error about
    /// an endpoint could quote it, and errors end up in logs and dead letters.
    async fn expect_success(
        &self,
        response: Response,
        call: &str,
    ) -> Result<Response, ProviderError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let mut detail: String = body.chars().take(300).collect();
        if let Some((_, token)) = self.endpoint.expose_secret().split_once("token=") {
            if !token.is_empty() {
                detail = detail.replace(token, "[token]");
            }
        }
        let message = format!("{call}: {status}: {detail}");
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Err(ProviderError::Transient(message))
        } else {
            Err(ProviderError::Permanent(message))
        }
    }

    /// Whether a listed alert is ours: it delivers to this stage's feed.
    fn is_ours(&self, alert: &serde_json::Value) -> bool {
        alert.get("target_url").and_then(|u| u.as_str()) == Some(self.endpoint.expose_secret())
    }
}

#[derive(Serialize, Deserialize)]
struct Endpoint {
    url: Option<String>,
}

/// `POST /alerts`: AeroAPI requires every event flag.
#[derive(Serialize)]
struct NewAlert<'a> {
    ident: &'a str,
    origin: &'a str,
    destination: &'a str,
    start: NaiveDate,
    end: NaiveDate,
    events: Events,
    /// This stage's feed: a key shared by stages delivers each alert to its own.
    target_url: &'a str,
}

/// What is pushed: the plan filed (with its times), the departure (which bundles departure
/// delays of more than 30 minutes), cancellation (and reinstatement) and diversion. Nothing
/// about the flight in the air or its arrival, which texts nobody and costs per delivery.
#[derive(Serialize)]
struct Events {
    arrival: bool,
    cancelled: bool,
    departure: bool,
    diverted: bool,
    filed: bool,
    out: bool,
    off: bool,
    on: bool,
    #[serde(rename = "in")]
    in_: bool,
    hold_start: bool,
    hold_end: bool,
}

const EVENTS: Events = Events {
    arrival: false,
    cancelled: true,
    departure: true,
    diverted: true,
    filed: true,
    out: false,
    off: false,
    on: false,
    in_: false,
    hold_start: false,
    hold_end: false,
};

/// A page of `GET /alerts`. Each alert is read on its own (`listed`), so that one alert of a
/// shape we do not expect (made by hand, a newer API) cannot make the whole list unreadable.
#[derive(Deserialize)]
struct AlertPage {
    #[serde(default)]
    links: Option<Links>,
    #[serde(default)]
    alerts: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Links {
    next: Option<String>,
}

/// One listed alert as a watch; `None` without an id. The flight is named by the ident we gave
/// (`user_ident`, kept when AeroAPI resolves a codeshare into `ident`), else `ident`, else its
/// IATA form; the days are read from dates or date-times.
fn listed(alert: &serde_json::Value) -> Option<Watch> {
    let text = |key: &str| alert.get(key).and_then(|v| v.as_str());
    let day = |key: &str| {
        text(key)
            .and_then(|d| d.get(..10))
            .and_then(|d| d.parse::<NaiveDate>().ok())
    };
    let id = alert.get("id").and_then(serde_json::Value::as_i64)?;
    Some(Watch {
        id: id.to_string(),
        flight_number: ["user_ident", "ident", "ident_iata"]
            .into_iter()
            .filter_map(text)
            .find_map(|i| FlightNumber::parse(i).ok()),
        first_day: day("start"),
        last_day: day("end"),
    })
}

/// At most this many pages are followed: 15 alerts a page, far more than this system watches.
const MAX_PAGES: usize = 200;

#[async_trait]
impl FlightWatcher for AeroApi {
    async fn watching(&self) -> Result<Vec<Watch>, ProviderError> {
        let mut watches = Vec::new();
        let mut path = "/alerts".to_owned();
        for _ in 0..MAX_PAGES {
            let page: AlertPage = self.get_json(&path, "GET /alerts").await?;
            watches.extend(
                page.alerts
                    .iter()
                    .filter(|a| self.is_ours(a))
                    .filter_map(listed),
            );
            match page.links.and_then(|l| l.next) {
                // A link relative to the base, as AeroAPI gives it.
                Some(next) => path = next,
                None => return Ok(watches),
            }
        }
        Err(ProviderError::Permanent(format!(
            "GET /alerts: more than {MAX_PAGES} pages"
        )))
    }

    async fn watch(&self, request: &WatchRequest) -> Result<String, ProviderError> {
        self.ensure_endpoint().await?;
        let body = NewAlert {
            ident: request.flight_number.as_str(),
            origin: request.origin.as_str(),
            destination: request.destination.as_str(),
            start: request.day,
            end: request.day,
            events: EVENTS,
            target_url: self.endpoint.expose_secret(),
        };
        let response = self
            .send(
                self.request(reqwest::Method::POST, "/alerts").json(&body),
                "POST /alerts",
            )
            .await?;
        // 201 with no body: the new alert is named by its Location, /alerts/{id}.
        response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.split(['?', '#']).next())
            .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
            .ok_or_else(|| {
                // Created, but unnamed: the next announcement or sweep finds it in the list.
                ProviderError::Transient("POST /alerts: no alert id in the Location header".into())
            })
    }

    async fn unwatch(&self, id: &str) -> Result<(), ProviderError> {
        let response = self
            .request(reqwest::Method::DELETE, &format!("/alerts/{id}"))
            .send()
            .await
            .map_err(transport)?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        self.expect_success(response, "DELETE /alerts/{id}")
            .await
            .map(drop)
    }
}

fn transport(e: reqwest::Error) -> ProviderError {
    // Without the URL: it could carry nothing secret today, but the key is a header and the
    // endpoint a body, and a log line should not depend on that.
    ProviderError::Transient(e.without_url().to_string())
}

/// A 2xx answer we cannot read: asking again gets the same answer.
fn unreadable(call: &str, e: reqwest::Error) -> ProviderError {
    ProviderError::Permanent(format!("{call}: unreadable answer: {}", e.without_url()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_alert_is_named_by_the_ident_we_gave_and_read_leniently() {
        let resolved = serde_json::json!({
            "id": 7, "ident": "UAL123", "user_ident": "UA123", "ident_iata": "UA123",
            "start": "2037-12-01", "end": "2037-12-01T23:59:59Z"
        });
        let watch = listed(&resolved).expect("an alert with an id");
        assert_eq!(watch.id, "7");
        assert_eq!(
            watch.flight_number.map(|n| n.to_string()),
            Some("UA123".into())
        );
        assert_eq!(
            watch.last_day.map(|d| d.to_string()),
            Some("2037-12-01".into())
        );
        // Only the ICAO ident and its IATA form.
        let icao = serde_json::json!({"id": 8, "ident": "UAL123", "ident_iata": "UA123"});
        let watch = listed(&icao).expect("an alert with an id");
        assert_eq!(
            watch.flight_number.map(|n| n.to_string()),
            Some("UA123".into())
        );
        assert_eq!(watch.first_day, None);
        // Made by hand, with no ident: never a flight of ours.
        let other = serde_json::json!({"id": 9, "ident": null, "start": "soon"});
        assert_eq!(listed(&other).and_then(|w| w.flight_number), None);
        assert!(listed(&serde_json::json!({"ident": "UA123"})).is_none());
    }
}
