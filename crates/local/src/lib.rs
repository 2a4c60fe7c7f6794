//! The whole system on one machine, wired as in AWS: both HTTP functions' routers behind one
//! address (API Gateway's routing, and its API key check when a key is set), the alerts bus
//! delivered in-process to the sms handler in the same SNS event envelope Lambda would hand it,
//! and SMS written as JSON lines to a file. The relay runs on a timer, and hands out from the
//! delivery ledger whatever is due, so a stack killed mid-alert resumes where the ledger stands.

mod bus;
mod delivery;
pub mod fake_aeroapi;
mod files;
pub mod gateway;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sns::SnsEvent;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Json;
pub use axum::Router;
use flightwatch_api::alerts::AlertsState;
use flightwatch_api::flights::FlightsState;
use flightwatch_api::{auth, ApiError};
use flightwatch_app::relay;
use flightwatch_aws::ConfigSource;
use flightwatch_aws::{SnsSmsSender, SnsTopic};
use flightwatch_delivery::{Policy, Texting};
use flightwatch_domain::ports::{AlertBus, AlertStore, DeliveryReports, FlightStore};
use flightwatch_mysql::{MySqlAlertStore, MySqlFlightStore};
use flightwatch_sqlite::{SqliteAlertStore, SqliteFlightStore};
use sqlx::{MySqlPool, SqlitePool};
use tokio::task::JoinHandle;

pub use bus::{FileClaims, InProcessBus, Publisher};
pub use delivery::LedgerReports;
pub use files::JsonLinesSender;
pub use watch::{InProcessWatch, WatchOptions};

/// How the local stack is set up; `from_env` reads the documented environment variables.
#[derive(Clone, Debug)]
pub struct Options {
    /// When set, every API call must carry it as `x-api-key`, as API Gateway requires.
    pub api_key: Option<String>,
    /// Where SMS are appended as JSON lines.
    pub sms_outbox: PathBuf,
    /// How often the relay hands out what the ledger holds due.
    pub relay_every: Duration,
    pub policy: Policy,
    pub limits: flightwatch_domain::SpendLimits,
    /// FlightAware pushes on `POST /feeds/flightaware`, when a token is set.
    pub flightaware: Option<flightwatch_config::FeedSettings>,
    /// Registered flights watched at this AeroAPI (needs `flightaware`).
    pub watch: Option<WatchOptions>,
    /// When set, the alerts bus and SMS go through SNS (moto, with `AWS_ENDPOINT_URL`).
    pub sns: Option<SnsOptions>,
}

/// The AWS path: the alerts topic, and SMS sent with SNS `Publish`.
#[derive(Clone, Debug)]
pub struct SnsOptions {
    pub alerts_topic_arn: String,
    /// Without it, delivery reports go straight into the ledger.
    pub reports_topic_arn: Option<String>,
    pub sender_id: Option<String>,
}

impl Options {
    pub fn from_env() -> anyhow::Result<Self> {
        use flightwatch_config::optional_env as var;
        let relay_every = match var("FLIGHTWATCH_RELAY_SECONDS") {
            Some(s) => Duration::from_secs_f64(
                s.parse()
                    .map_err(|_| anyhow::anyhow!("FLIGHTWATCH_RELAY_SECONDS must be a number"))?,
            ),
            None => Duration::from_secs(5),
        };
        // One variable wires a provider: the feed gets a random token unless one is given.
        let watch = var("FLIGHTWATCH_AEROAPI_URL").map(|aeroapi_url| WatchOptions {
            aeroapi_url,
            aeroapi_key: var("FLIGHTWATCH_AEROAPI_KEY")
                .unwrap_or_else(|| "local".into())
                .into(),
        });
        let flightaware = match (flightwatch_config::FeedSettings::from_env()?, &watch) {
            (None, Some(_)) => Some(flightwatch_config::FeedSettings {
                token: random_token().into(),
                delay_threshold: flightwatch_domain::feed::DEFAULT_DELAY_THRESHOLD,
            }),
            (feed, _) => feed,
        };
        Ok(Self {
            api_key: var("FLIGHTWATCH_API_KEY"),
            sms_outbox: var("FLIGHTWATCH_SMS_OUTBOX")
                .unwrap_or_else(|| ".flightwatch/sms-outbox.jsonl".into())
                .into(),
            relay_every,
            policy: Policy {
                per_second: flightwatch_config::sms_per_second()?,
                ..Policy::default()
            },
            limits: flightwatch_domain::SpendLimits::per_day(
                flightwatch_config::alerts_per_flight_per_day()?,
            ),
            flightaware,
            watch,
            sns: var("FLIGHTWATCH_ALERTS_TOPIC_ARN").map(|alerts_topic_arn| SnsOptions {
                alerts_topic_arn,
                reports_topic_arn: var("FLIGHTWATCH_DELIVERY_REPORTS_TOPIC_ARN"),
                sender_id: var("FLIGHTWATCH_SMS_SENDER_ID"),
            }),
        })
    }
}

/// A feed token for a local run: 40 random letters and digits.
fn random_token() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), 40)
}

impl Options {
    /// A file of the stack's own next to the SMS outbox: the bus log, the sms handler's claims.
    pub fn beside_outbox(&self, name: &str) -> PathBuf {
        self.sms_outbox.with_file_name(name)
    }
}

/// A running local stack: its router and the relay task behind it.
pub struct LocalStack {
    pub router: Router,
    pub relay: JoinHandle<()>,
}

/// The topic name the local bus stamps on its SNS envelopes.
pub const LOCAL_TOPIC_ARN: &str = "arn:aws:sns:local:000000000000:flightwatch-alerts";

/// Serves the stack until the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}

/// Both functions' stores, on one database.
#[derive(Clone)]
pub struct Stores {
    pub flights: Arc<dyn FlightStore>,
    pub alerts: Arc<dyn AlertStore>,
}

impl Stores {
    /// MySQL, as in AWS: for a pool whose migrations are applied.
    pub fn mysql(pool: MySqlPool) -> Self {
        Self {
            flights: Arc::new(MySqlFlightStore::new(pool.clone())),
            alerts: Arc::new(MySqlAlertStore::new(pool)),
        }
    }

    /// MySQL with each function connected as its own database user, as in AWS.
    pub fn mysql_as(pools: &flightwatch_mysql::provision::FunctionPools) -> Self {
        Self {
            flights: Arc::new(MySqlFlightStore::new(pools.flights.clone())),
            alerts: Arc::new(MySqlAlertStore::new(pools.alerts.clone())),
        }
    }

    /// The embedded default: for a pool from `flightwatch_sqlite::open`.
    pub fn sqlite(pool: SqlitePool) -> Self {
        Self {
            flights: Arc::new(SqliteFlightStore::new(pool.clone())),
            alerts: Arc::new(SqliteAlertStore::new(pool)),
        }
    }
}

/// Where the local stack keeps its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// `DATABASE_URL=mysql://...`, or the JDBC properties in S3.
    MySql(ConfigSource),
    /// `DATABASE_URL=sqlite://...`, or by default `$FLIGHTWATCH_DATA_DIR/flightwatch.db`.
    Sqlite(String),
}

impl Database {
    pub fn from_env() -> anyhow::Result<Self> {
        use flightwatch_config::optional_env as var;
        match var("DATABASE_URL") {
            Some(url) if url.starts_with("sqlite:") => Ok(Self::Sqlite(url)),
            Some(url) if url.starts_with("mysql:") || url.starts_with("mariadb:") => {
                Ok(Self::MySql(ConfigSource::url(url)))
            }
            Some(_) => anyhow::bail!("DATABASE_URL must be a mysql:// or sqlite:// URL"),
            None if var("FLIGHTWATCH_CONFIG_BUCKET").is_some() => {
                Ok(Self::MySql(ConfigSource::from_env()?))
            }
            None => {
                let dir = var("FLIGHTWATCH_DATA_DIR").unwrap_or_else(|| ".flightwatch".into());
                std::fs::create_dir_all(&dir)?;
                Ok(Self::Sqlite(format!("sqlite://{dir}/flightwatch.db")))
            }
        }
    }

    /// Connects and applies the migrations.
    pub async fn open(&self) -> anyhow::Result<Stores> {
        match self {
            Self::MySql(source) => {
                let mut db = flightwatch_aws::load_database_settings(source).await?;
                db.max_connections = 10;
                let pool = db.pool();
                flightwatch_mysql::migrate_all(&pool).await?;
                Ok(Stores::mysql(pool))
            }
            Self::Sqlite(url) => Ok(Stores::sqlite(flightwatch_sqlite::open(url).await?)),
        }
    }

    /// For the log: which kind and where, never a password.
    pub fn describe(&self) -> String {
        match self {
            Self::MySql(ConfigSource::Url(_)) => "MySQL (DATABASE_URL)".into(),
            Self::MySql(ConfigSource::S3 { bucket, key }) => format!("MySQL (s3://{bucket}/{key})"),
            Self::Sqlite(url) => format!("SQLite ({url})"),
        }
    }
}

/// Wires the stack over migrated stores. `public_url` is where the stack will be listening: on
/// the AWS path the alerts topic delivers to `{public_url}/sns/alerts`.
pub async fn build(
    stores: Stores,
    options: &Options,
    public_url: &str,
) -> anyhow::Result<LocalStack> {
    let Stores { flights, alerts } = stores;
    let (bus, sns_delivery): (Arc<dyn AlertBus>, Option<Router>) = match &options.sns {
        None => {
            let bus = InProcessBus::open(&options.beside_outbox("bus.jsonl"))?;
            bus.subscribe(Texting {
                sender: Arc::new(JsonLinesSender::open(&options.sms_outbox)?),
                claims: Arc::new(FileClaims::open(&options.beside_outbox("sms-claims.txt"))?),
                reports: Arc::new(LedgerReports(alerts.clone())),
                policy: options.policy,
            });
            (Arc::new(Publisher(bus)), None)
        }
        Some(sns) => {
            let (bus, delivery) = sns_path(sns, options, public_url, alerts.clone()).await?;
            (bus, Some(delivery))
        }
    };

    let alerts_state = AlertsState {
        store: alerts.clone(),
        bus: bus.clone(),
        limits: options.limits,
        sms_per_second: options.policy.per_second,
    };
    let announcements = match (&options.watch, &options.flightaware) {
        (None, _) => None,
        (Some(_), None) => anyhow::bail!("watching needs the feed's token"),
        (Some(watch), Some(feed)) => {
            let feed_url = flightwatch_config::feed_url(
                &format!("{public_url}/feeds/flightaware"),
                &feed.token,
            )?;
            let watching = InProcessWatch::new(watch, feed_url)?;
            watching.sweep_every(Duration::from_secs(3600));
            tracing::info!(aeroapi = %watch.aeroapi_url, "registered flights are watched");
            Some(Arc::new(watching) as Arc<dyn flightwatch_domain::ports::FlightAnnouncements>)
        }
    };
    let api = Router::new()
        .merge(flightwatch_api::flights::router(FlightsState {
            store: flights.clone(),
            announcements,
        }))
        .merge(flightwatch_api::alerts::router(alerts_state.clone()))
        .fallback(|| async { ApiError::NotFound("no such route".into()) });
    let api = match &options.api_key {
        Some(key) => {
            auth::require_api_key(api, key.clone(), gateway::operations(gateway::OPENAPI)?)
        }
        None => api,
    };
    // Provider pushes are not behind the API key: the feed's own token guards them.
    let feeds = match &options.flightaware {
        Some(feed) => flightwatch_api::feeds::router(flightwatch_api::feeds::FeedsState {
            alerts: alerts_state.clone(),
            token: feed.token.clone(),
            delay_threshold: feed.delay_threshold,
        }),
        None => Router::new(),
    };
    let router = flightwatch_api::traced(
        Router::new()
            .route(
                "/health",
                get(health).with_state(Health {
                    flights,
                    alerts: alerts.clone(),
                }),
            )
            .merge(sns_delivery.unwrap_or_default())
            .merge(feeds)
            .merge(api),
    );
    let per_second = options.policy.per_second;
    let relay = tokio::spawn(relay_forever(alerts, bus, options.relay_every, per_second));
    Ok(LocalStack { router, relay })
}

/// The AWS path: alerts published to the SNS topic, which delivers them over HTTP to this stack
/// (as it would invoke the sms Lambda), and SMS sent with SNS `Publish`.
async fn sns_path(
    sns: &SnsOptions,
    options: &Options,
    public_url: &str,
    ledger: Arc<dyn AlertStore>,
) -> anyhow::Result<(Arc<dyn AlertBus>, Router)> {
    // The SDK's whole default chain (profiles, SSO...): the local stack runs on people's machines,
    // against moto or a real account, where the functions' environment-only configuration would
    // miss a profile's credentials and region.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(flightwatch_aws::http_client())
        .load()
        .await;
    let bus: Arc<dyn AlertBus> = Arc::new(SnsTopic::from_config(&sdk, &sns.alerts_topic_arn));
    // With a reports topic, reports travel as in AWS: published by the sms handler, delivered
    // over HTTP to the ledger. Without one, straight into the ledger.
    let (reports, reports_router): (Arc<dyn DeliveryReports>, Router) = match &sns.reports_topic_arn
    {
        Some(topic) => {
            let endpoint = format!("{public_url}{SNS_REPORTS_PATH}");
            flightwatch_aws::subscribe_http(&sdk, topic, &endpoint).await?;
            tracing::info!(%topic, %endpoint, "delivery reports topic delivers to the ledger");
            let on_event: delivery::OnEvent = Arc::new(move |event: SnsEvent| {
                let ledger = ledger.clone();
                tokio::spawn(async move {
                    for record in event.records {
                        let message = &record.sns.message;
                        if let Err(e) =
                            flightwatch_app::record_report_message(ledger.as_ref(), message).await
                        {
                            tracing::error!(error = %e, "delivery report not recorded");
                        }
                    }
                });
            });
            (
                Arc::new(SnsTopic::from_config(&sdk, topic)),
                delivery::router(SNS_REPORTS_PATH, topic.clone(), on_event),
            )
        }
        None => (Arc::new(LedgerReports(ledger)), Router::new()),
    };
    let texting = Texting {
        sender: Arc::new(SnsSmsSender::from_config(&sdk, sns.sender_id.clone())),
        // S3 claims are tested on their own (flightwatch-aws); the stack keeps them in a file.
        claims: Arc::new(FileClaims::open(&options.beside_outbox("sms-claims.txt"))?),
        reports,
        policy: options.policy,
    };
    let endpoint = format!("{public_url}{SNS_DELIVERY_PATH}");
    flightwatch_aws::subscribe_http(&sdk, &sns.alerts_topic_arn, &endpoint).await?;
    tracing::info!(topic = %sns.alerts_topic_arn, %endpoint, "alerts topic delivers to the sms handler");
    let on_event: delivery::OnEvent = Arc::new(move |event: SnsEvent| {
        let texting = texting.clone();
        tokio::spawn(async move {
            if let Err(e) = flightwatch_delivery::handle(&texting, event).await {
                tracing::error!(error = %e, "sms invocation failed");
            }
        });
    });
    let alerts_router = delivery::router(SNS_DELIVERY_PATH, sns.alerts_topic_arn.clone(), on_event);
    Ok((bus, alerts_router.merge(reports_router)))
}

/// Where the alerts topic delivers on the AWS path.
pub const SNS_DELIVERY_PATH: &str = "/sns/alerts";
/// Where the delivery reports topic delivers on the AWS path.
pub const SNS_REPORTS_PATH: &str = "/sns/reports";

#[derive(Clone)]
struct Health {
    flights: Arc<dyn FlightStore>,
    alerts: Arc<dyn AlertStore>,
}

/// 200 once both functions' stores answer.
async fn health(State(h): State<Health>) -> impl IntoResponse {
    match (h.flights.ping().await, h.alerts.ping().await) {
        (Ok(()), Ok(())) => (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable"})),
        ),
    }
}

/// Hands out what the ledger holds due, as the scheduled relay does in AWS.
async fn relay_forever(
    store: Arc<dyn AlertStore>,
    bus: Arc<dyn AlertBus>,
    every: Duration,
    per_second: relay::PerSecond,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let pass = relay::relay(
            store.as_ref(),
            bus.as_ref(),
            per_second,
            Duration::from_secs(5),
            chrono::Utc::now(),
        );
        match pass.await {
            Ok(r) if r != relay::RelayReport::default() => {
                tracing::info!(report = ?r, "relay pass")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "relay pass failed"),
        }
    }
}
