//! The watch Lambda, outside the VPC since it calls the internet: each registration announced on
//! the flight events topic becomes a watch at FlightAware AeroAPI, and the hourly schedule ends
//! the watches of flights that have left. The AeroAPI key is read from the function's properties
//! file in S3 on the first event, not at cold start. Off (every event acknowledged, nothing done)
//! without the feed's token or an AeroAPI key.

use std::sync::Arc;

use flightwatch_aeroapi::AeroApi;
use flightwatch_app::watch::{sweep, watch};
use flightwatch_aws::LoadError;
use flightwatch_config::WatchSettings;
use flightwatch_domain::watch::{AnnouncementError, FlightRegistered, ProviderError};
use tokio::sync::OnceCell;

#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error(transparent)]
    Settings(#[from] LoadError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Announcement(#[from] AnnouncementError),
}

/// The provider, built on the first event; `None` when watching is off.
struct Provider {
    settings: WatchSettings,
    aeroapi: OnceCell<Option<AeroApi>>,
}

impl Provider {
    async fn get(&self) -> Result<Option<&AeroApi>, WatchError> {
        let aeroapi = self
            .aeroapi
            .get_or_try_init(|| async {
                let Some(feed_url) = self.settings.feed_url.clone() else {
                    tracing::warn!(
                        "no feed token (FLIGHTWATCH_FLIGHTAWARE_TOKEN): watching is off"
                    );
                    return Ok::<_, WatchError>(None);
                };
                let s = &self.settings;
                let Some(key) =
                    flightwatch_aws::load_aeroapi_key(&s.config_bucket, &s.config_key).await?
                else {
                    tracing::warn!("no aeroapi.key in the properties file: watching is off");
                    return Ok(None);
                };
                let base = s
                    .aeroapi_url
                    .as_deref()
                    .unwrap_or(flightwatch_aeroapi::DEFAULT_URL);
                Ok(Some(AeroApi::new(base, key, feed_url)?))
            })
            .await?;
        Ok(aeroapi.as_ref())
    }
}

#[tokio::main]
async fn main() -> Result<(), flightwatch_lambda::Error> {
    flightwatch_lambda::init_default_subscriber();
    let provider = Arc::new(Provider {
        settings: WatchSettings::from_env()?,
        aeroapi: OnceCell::new(),
    });
    let on_schedule = {
        let provider = provider.clone();
        move || {
            let provider = provider.clone();
            async move {
                let Some(aeroapi) = provider.get().await? else {
                    return Ok::<_, WatchError>(serde_json::json!({ "watching": "off" }));
                };
                let swept = sweep(aeroapi, chrono::Utc::now()).await?;
                Ok(serde_json::json!(swept))
            }
        }
    };
    let on_message = move |message: String| {
        let provider = provider.clone();
        async move {
            let announced = FlightRegistered::from_json(&message)?;
            let Some(aeroapi) = provider.get().await? else {
                return Ok::<_, WatchError>(serde_json::json!({ "watching": "off" }));
            };
            let watched = watch(aeroapi, &announced, chrono::Utc::now()).await?;
            Ok(serde_json::json!(watched))
        }
    };
    flightwatch_lambda::run_events(on_schedule, on_message).await
}
