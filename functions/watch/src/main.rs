//! The watch Lambda, outside the VPC since it calls the internet: each registration announced on
//! the flight events topic becomes a watch at FlightAware AeroAPI, and the hourly schedule ends
//! the watches of flights that have left (`watch::Watching`).

use std::sync::Arc;

use flightwatch_config::WatchSettings;
use watch::{S3Key, Watching};

#[tokio::main]
async fn main() -> Result<(), flightwatch_lambda::Error> {
    flightwatch_lambda::init_logging();
    let settings = WatchSettings::from_env()?;
    let aeroapi_url = settings
        .aeroapi_url
        .unwrap_or_else(|| flightwatch_aeroapi::DEFAULT_URL.to_owned());
    let keys = S3Key {
        bucket: settings.config_bucket,
        key: settings.config_key,
    };
    let watching = Arc::new(Watching::new(settings.feed_url, aeroapi_url, keys));
    let on_schedule = {
        let watching = watching.clone();
        move || {
            let watching = watching.clone();
            async move { watching.on_schedule().await }
        }
    };
    let on_message = move |message: String| {
        let watching = watching.clone();
        async move { watching.on_announcement(&message).await }
    };
    flightwatch_lambda::run_events(on_schedule, on_message).await
}
