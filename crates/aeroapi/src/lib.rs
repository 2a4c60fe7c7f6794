//! FlightAware AeroAPI v4 as the flight-status provider that watches flights: one alert per
//! registered flight (`POST /alerts`), listed with `GET /alerts` (the provider's list is the
//! record of what is watched), ended with `DELETE /alerts/{id}`. Alerts are delivered to the
//! account-wide endpoint (`PUT /alerts/endpoint`), set to the API's `/feeds/flightaware` URL
//! before the first alert of each cold start, since AeroAPI refuses alerts without it.
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
        install_crypto_provider();
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

    /// Points the account's alert deliveries at our feed, once per cold start (idempotent).
    async fn ensure_endpoint(&self) -> Result<(), ProviderError> {
        self.endpoint_set
            .get_or_try_init(|| async {
                let body = EndpointBody {
                    url: self.endpoint.expose_secret(),
                };
                let response = self
                    .request(reqwest::Method::PUT, "/alerts/endpoint")
                    .json(&body)
                    .send()
                    .await
                    .map_err(transport)?;
                expect_success(response, "PUT /alerts/endpoint").await?;
                tracing::info!("AeroAPI alert endpoint set");
                Ok(())
            })
            .await
            .map(drop)
    }
}

/// Makes aws-lc-rs (the AWS SDK's own) rustls' process-wide crypto provider. reqwest is built
/// without a provider of its own (no second crypto stack), so every `reqwest::Client` in a
/// process that links this crate (the watch function, the local stack, the tests) needs one
/// installed before it is built, or reqwest panics. Installing twice is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[derive(Serialize)]
struct EndpointBody<'a> {
    url: &'a str,
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

#[derive(Deserialize)]
struct AlertPage {
    #[serde(default)]
    links: Option<Links>,
    #[serde(default)]
    alerts: Vec<ListedAlert>,
}

#[derive(Deserialize)]
struct Links {
    next: Option<String>,
}

#[derive(Deserialize)]
struct ListedAlert {
    id: i64,
    #[serde(default)]
    ident: Option<String>,
    /// The ident as given, when AeroAPI resolved a codeshare into `ident`.
    #[serde(default)]
    user_ident: Option<String>,
    #[serde(default)]
    start: Option<NaiveDate>,
    #[serde(default)]
    end: Option<NaiveDate>,
}

impl From<ListedAlert> for Watch {
    fn from(a: ListedAlert) -> Self {
        let ident = a.user_ident.or(a.ident);
        Watch {
            id: a.id.to_string(),
            flight_number: ident.as_deref().and_then(|i| FlightNumber::parse(i).ok()),
            first_day: a.start,
            last_day: a.end,
        }
    }
}

/// At most this many pages are followed: 15 alerts a page, far more than this system watches.
const MAX_PAGES: usize = 200;

#[async_trait]
impl FlightWatcher for AeroApi {
    async fn watching(&self) -> Result<Vec<Watch>, ProviderError> {
        let mut watches = Vec::new();
        let mut path = "/alerts".to_owned();
        for _ in 0..MAX_PAGES {
            let response = self
                .request(reqwest::Method::GET, &path)
                .send()
                .await
                .map_err(transport)?;
            let response = expect_success(response, "GET /alerts").await?;
            let page: AlertPage = response
                .json()
                .await
                .map_err(|e| ProviderError::Transient(format!("GET /alerts: unreadable: {e}")))?;
            watches.extend(page.alerts.into_iter().map(Watch::from));
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
            start: request.first_day,
            end: request.last_day,
            events: EVENTS,
        };
        let response = self
            .request(reqwest::Method::POST, "/alerts")
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        let response = expect_success(response, "POST /alerts").await?;
        // 201 with no body: the new alert is named by its Location, /alerts/{id}.
        response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
            .ok_or_else(|| {
                ProviderError::Permanent("POST /alerts: no alert id in the Location header".into())
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
        expect_success(response, "DELETE /alerts/{id}")
            .await
            .map(drop)
    }
}

fn transport(e: reqwest::Error) -> ProviderError {
    // Without the URL: it could carry nothing secret today, but the key is a header and the
    // endpoint a body, and a log line should not depend on that.
    ProviderError::Transient(e.without_url().to_string())
}

/// A 2xx, or the error with AeroAPI's own reason (its error bodies carry no secrets).
async fn expect_success(response: Response, call: &str) -> Result<Response, ProviderError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let detail: String = body.chars().take(300).collect();
    let message = format!("{call}: {status}: {detail}");
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Err(ProviderError::Transient(message))
    } else {
        Err(ProviderError::Permanent(message))
    }
}
