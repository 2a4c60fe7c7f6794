//! The watch function's handlers, over its settings and a source of the AeroAPI key: each
//! announcement becomes a watch, each scheduled run a sweep. The provider is built on the first
//! event, not at cold start (the key is read from S3 then), and watching is off, every event
//! acknowledged with nothing done, without the feed's token or a key.

use flightwatch_aeroapi::AeroApi;
use flightwatch_app::watch::{sweep, watch};
use flightwatch_aws::LoadError;
use flightwatch_domain::watch::{AnnouncementError, FlightRegistered, ProviderError};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Settings(#[from] LoadError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Announcement(#[from] AnnouncementError),
}

/// Where the AeroAPI key comes from: the function's properties file in S3 in AWS.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    async fn aeroapi_key(&self) -> Result<Option<SecretString>, LoadError>;
}

/// `aeroapi.key` in the properties file `s3://bucket/key`.
pub struct S3Key {
    pub bucket: String,
    pub key: String,
}

#[async_trait::async_trait]
impl KeySource for S3Key {
    async fn aeroapi_key(&self) -> Result<Option<SecretString>, LoadError> {
        flightwatch_aws::load_aeroapi_key(&self.bucket, &self.key).await
    }
}

pub struct Watching<K> {
    /// The feed URL with its token; `None`: the feed is off, so is watching.
    pub feed_url: Option<SecretString>,
    /// AeroAPI's base URL.
    pub aeroapi_url: String,
    pub keys: K,
    provider: OnceCell<Option<AeroApi>>,
}

impl<K: KeySource> Watching<K> {
    pub fn new(feed_url: Option<SecretString>, aeroapi_url: String, keys: K) -> Self {
        Self {
            feed_url,
            aeroapi_url,
            keys,
            provider: OnceCell::new(),
        }
    }

    /// The provider, built once; `None` when watching is off (said once in the log).
    async fn provider(&self) -> Result<Option<&AeroApi>, WatchError> {
        let provider = self
            .provider
            .get_or_try_init(|| async {
                let Some(feed_url) = self.feed_url.clone() else {
                    tracing::warn!(
                        "no feed token (FLIGHTWATCH_FLIGHTAWARE_TOKEN): watching is off"
                    );
                    return Ok::<_, WatchError>(None);
                };
                let Some(key) = self.keys.aeroapi_key().await? else {
                    tracing::warn!("no aeroapi.key in the properties file: watching is off");
                    return Ok(None);
                };
                Ok(Some(AeroApi::new(&self.aeroapi_url, key, feed_url)?))
            })
            .await?;
        Ok(provider.as_ref())
    }

    /// One announcement from the flight events topic.
    pub async fn on_announcement(&self, message: &str) -> Result<Value, WatchError> {
        let announced = FlightRegistered::from_json(message)?;
        let Some(aeroapi) = self.provider().await? else {
            return Ok(json!({ "watching": "off" }));
        };
        let watched = watch(aeroapi, &announced, chrono::Utc::now()).await?;
        Ok(json!(watched))
    }

    /// The hourly run: departed flights' watches ended.
    pub async fn on_schedule(&self) -> Result<Value, WatchError> {
        let Some(aeroapi) = self.provider().await? else {
            return Ok(json!({ "watching": "off" }));
        };
        Ok(json!(sweep(aeroapi, chrono::Utc::now()).await?))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts its reads; holds no key.
    #[derive(Default)]
    struct NoKey(AtomicUsize);

    #[async_trait::async_trait]
    impl KeySource for NoKey {
        async fn aeroapi_key(&self) -> Result<Option<SecretString>, LoadError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        }
    }

    const ANNOUNCED: &str = r#"{"version":1,"flight":{"flightNumber":"UA123","departureDate":"2037-12-01","origin":"SFO","destination":"JFK","scheduledDeparture":"2037-12-01T08:05:00-08:00"}}"#;

    #[tokio::test]
    async fn without_a_feed_token_every_event_is_acknowledged_and_no_key_is_read() {
        let watching = Watching::new(None, "http://127.0.0.1:9".into(), NoKey::default());
        let answer = watching.on_announcement(ANNOUNCED).await;
        assert_eq!(answer.ok(), Some(json!({"watching": "off"})));
        let answer = watching.on_schedule().await;
        assert_eq!(answer.ok(), Some(json!({"watching": "off"})));
        assert_eq!(watching.keys.0.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn without_a_key_watching_is_off_and_the_key_is_read_once() {
        let feed = Some(SecretString::from(
            "https://api.example.com/feeds/flightaware?token=t",
        ));
        let watching = Watching::new(feed, "http://127.0.0.1:9".into(), NoKey::default());
        for _ in 0..3 {
            let answer = watching.on_announcement(ANNOUNCED).await;
            assert_eq!(answer.ok(), Some(json!({"watching": "off"})));
        }
        assert_eq!(watching.keys.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unreadable_announcement_fails_even_when_watching_is_off() {
        let watching = Watching::new(None, "http://127.0.0.1:9".into(), NoKey::default());
        let answer = watching.on_announcement(r#"{"version": 9}"#).await;
        assert!(matches!(answer, Err(WatchError::Announcement(_))));
    }
}
