//! Test harness: the local stack on a fresh database, served on an ephemeral port, and a client
//! that talks to it over HTTP exactly as an insurer's system would.

use std::path::PathBuf;
use std::time::Duration;

pub mod moto;

use flightwatch_local::{LocalStack, Options, SnsOptions, Stores, WatchOptions};
use flightwatch_mysql::provision::FunctionPools;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use sqlx::{MySqlPool, SqlitePool};

/// The database behind a harness, for counting rows.
#[derive(Clone)]
pub enum Db {
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

pub const API_KEY: &str = "e2e-key";
/// The FlightAware feed's token in the stack the tests run.
pub const FEED_TOKEN: &str = "e2e-feed-token-0123456789abcdefghijklmnop";

pub struct Harness {
    pub base: String,
    pub http: reqwest::Client,
    pub db: Db,
    pub outbox: PathBuf,
    dir: PathBuf,
    stack: LocalStack,
    server: tokio::task::JoinHandle<()>,
}

impl Harness {
    /// Migrates the (fresh) MySQL database behind `pool` and starts the stack on 127.0.0.1:0.
    pub async fn start(pool: MySqlPool) -> Self {
        Self::start_with(pool, None).await
    }

    /// The same, with the alerts bus and SMS on SNS when `sns` is given. Each function connects
    /// as the database user the deployer provisions for it, with exactly its grants; `pool`, the
    /// admin's, only migrates, provisions and counts rows.
    pub async fn start_with(pool: MySqlPool, sns: Option<SnsOptions>) -> Self {
        let stores = as_functions(&pool).await;
        Self::serve(stores, Db::MySql(pool), sns, None, temp_dir()).await
    }

    /// The stack on a fresh embedded SQLite database, as `scripts/dev.sh` runs by default.
    pub async fn start_sqlite() -> Self {
        Self::start_sqlite_with(None).await
    }

    /// The stack with every registered flight watched at the AeroAPI `watch` names (the fake
    /// provider), on MySQL as the functions' own users or on SQLite.
    pub async fn start_watching(pool: Option<MySqlPool>, watch: WatchOptions) -> Self {
        match pool {
            Some(pool) => {
                let stores = as_functions(&pool).await;
                Self::serve(stores, Db::MySql(pool), None, Some(watch), temp_dir()).await
            }
            None => Self::start_sqlite_with(Some(watch)).await,
        }
    }

    async fn start_sqlite_with(watch: Option<WatchOptions>) -> Self {
        let dir = temp_dir();
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("flightwatch.db").display());
        let pool = flightwatch_sqlite::open(&url).await.expect("sqlite opens");
        Self::serve(
            Stores::sqlite(pool.clone()),
            Db::Sqlite(pool),
            None,
            watch,
            dir,
        )
        .await
    }

    async fn serve(
        stores: Stores,
        db: Db,
        sns: Option<SnsOptions>,
        watch: Option<WatchOptions>,
        dir: PathBuf,
    ) -> Self {
        let outbox = dir.join("sms-outbox.jsonl");
        let options = Options {
            api_key: Some(API_KEY.into()),
            sms_outbox: outbox.clone(),
            relay_every: Duration::from_millis(200),
            policy: Default::default(),
            limits: Default::default(),
            flightaware: Some(flightwatch_config::FeedSettings {
                token: FEED_TOKEN.to_owned().into(),
                delay_threshold: flightwatch_domain::feed::DEFAULT_DELAY_THRESHOLD,
            }),
            watch,
            sns,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("port");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let stack = flightwatch_local::build(stores, &options, &base)
            .await
            .expect("stack builds");
        let router = stack.router.clone();
        let server = tokio::spawn(async move {
            axum_serve(listener, router).await;
        });
        Self {
            base,
            http: reqwest::Client::new(),
            db,
            outbox,
            dir,
            stack,
            server,
        }
    }

    /// A provider push to the FlightAware feed, without the API key, as AeroAPI sends it.
    pub async fn push(&self, token: Option<&str>, body: &[u8]) -> (StatusCode, Value) {
        let mut url = format!("{}/feeds/flightaware", self.base);
        if let Some(token) = token {
            url.push_str(&format!("?token={token}"));
        }
        let req = self
            .http
            .post(url)
            .header("content-type", "application/json; charset=UTF-8")
            .body(body.to_vec());
        let (s, b, _) = self.send(req).await;
        (s, b)
    }

    /// A request with the API key, as API Gateway requires.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", API_KEY)
    }

    /// Sends and returns the status and the JSON body (Null when empty).
    pub async fn send(&self, req: RequestBuilder) -> (StatusCode, Value, Option<String>) {
        let resp = req.send().await.expect("request reaches the stack");
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("JSON body")
        };
        (status, body, content_type)
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let (s, b, _) = self.send(self.request(Method::POST, path).json(body)).await;
        (s, b)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, b, _) = self.send(self.request(Method::GET, path)).await;
        (s, b)
    }

    /// The SMS written so far.
    pub fn sms(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.outbox)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each outbox line is JSON"))
            .collect()
    }

    /// Waits until at least `n` SMS were written (delivery is asynchronous, as with SNS).
    pub async fn wait_for_sms(&self, n: usize) -> Vec<Value> {
        for _ in 0..100 {
            let sms = self.sms();
            if sms.len() >= n {
                return sms;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.sms()
    }

    /// Lets in-flight deliveries finish, then returns every SMS written.
    pub async fn settled_sms(&self) -> Vec<Value> {
        tokio::time::sleep(Duration::from_millis(400)).await;
        self.sms()
    }

    pub async fn count(&self, table: &str) -> i64 {
        // Table names come from the tests themselves, never from input.
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match &self.db {
            Db::MySql(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await,
            Db::Sqlite(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await,
        }
        .expect("count")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
        self.stack.relay.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The stores, each connected as the database user the deployer provisions for its function.
async fn as_functions(pool: &MySqlPool) -> Stores {
    let users = FunctionPools::provision(pool, 5)
        .await
        .expect("migrations and function users");
    Stores::mysql_as(&users)
}

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("flightwatch-e2e-{}", uuid::Uuid::now_v7()))
}

async fn axum_serve(listener: tokio::net::TcpListener, router: flightwatch_local::Router) {
    let _ = flightwatch_local::serve(listener, router).await;
}
