//! `flightwatch-local`: runs the whole system on 127.0.0.1 (see `scripts/dev.sh`).

use anyhow::Context;
use flightwatch_local::{Database, Options};
use tracing_subscriber::EnvFilter;

// One thread answers the requests: with SQLite's worker thread and the sms handler's (`bus.rs`)
// beside it, a second one only moved tasks between threads (POST /flights 0.40 ms p50 on two,
// 0.15 ms on one, on the local stack's benchmark).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let database = Database::from_env()?;
    let stores = database
        .open()
        .await
        .with_context(|| format!("opening {}", database.describe()))?;
    let options = Options::from_env()?;
    let host =
        flightwatch_config::optional_env("FLIGHTWATCH_HOST").unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = flightwatch_config::optional_env("PORT")
        .map(|p| p.parse())
        .transpose()
        .context("PORT must be a port number")?
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("binding {host}:{port}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let stack = flightwatch_local::build(stores, &options, &url).await?;
    tracing::info!(
        address = %url,
        database = %database.describe(),
        sms = %options.sns.as_ref().map_or_else(|| options.sms_outbox.display().to_string(), |_| "SNS".into()),
        api_key = options.api_key.is_some(),
        "flightwatch local stack ready"
    );
    axum::serve(listener, stack.router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
