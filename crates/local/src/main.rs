//! `flightwatch-local`: runs the whole system on 127.0.0.1 (see `scripts/dev.sh`).

use anyhow::Context;
use flightwatch_config::DatabaseSettings;
use flightwatch_local::Options;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let url = std::env::var("DATABASE_URL")
        .context("DATABASE_URL is not set: run scripts/dev.sh, which sets it up")?;
    let mut db = DatabaseSettings::from_url(&url)?;
    db.max_connections = 10;
    let pool = db.pool();
    flightwatch_mysql::migrate_all(&pool)
        .await
        .context("applying migrations")?;
    let options = Options::from_env()?;
    let stack = flightwatch_local::build(pool, &options)?;
    let host = std::env::var("FLIGHTWATCH_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port: u16 = std::env::var("PORT")
        .ok()
        .map(|p| p.parse())
        .transpose()
        .context("PORT must be a port number")?
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .with_context(|| format!("binding {host}:{port}"))?;
    tracing::info!(
        address = %format!("http://{}", listener.local_addr()?),
        sms_outbox = %options.sms_outbox.display(),
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
