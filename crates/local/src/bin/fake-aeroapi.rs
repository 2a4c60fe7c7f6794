//! `fake-aeroapi`: the fake FlightAware AeroAPI v4 alerts service on its own, for local runs
//! (see `flightwatch_local::fake_aeroapi`). Prints one line with its address once listening.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use flightwatch_local::fake_aeroapi::{router, FakeState};
use tracing_subscriber::EnvFilter;

/// A fake FlightAware AeroAPI v4 alerts service.
#[derive(Parser)]
#[command(name = "fake-aeroapi", version)]
struct Cli {
    /// Port to listen on; 0 picks a free one (the line printed says which).
    #[arg(long, env = "FAKE_AEROAPI_PORT", default_value_t = 0)]
    port: u16,
    /// The API key every AeroAPI request must carry in `x-apikey`.
    #[arg(long, env = "FAKE_AEROAPI_KEY")]
    key: String,
    /// Address to bind.
    #[arg(long, env = "FAKE_AEROAPI_HOST", default_value = "127.0.0.1")]
    host: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let listener = tokio::net::TcpListener::bind((cli.host.as_str(), cli.port))
        .await
        .with_context(|| format!("binding {}:{}", cli.host, cli.port))?;
    let url = format!("http://{}", listener.local_addr()?);
    {
        // Scripts wait for this line to learn the port: it goes out whole, at once.
        let mut out = std::io::stdout().lock();
        writeln!(out, "fake-aeroapi listening on {url}")?;
        out.flush()?;
    }
    tracing::info!(address = %url, "fake AeroAPI ready");
    axum::serve(listener, router(FakeState::new(&cli.key)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
