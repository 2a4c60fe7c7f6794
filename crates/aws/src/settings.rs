//! Database settings at cold start: `DATABASE_URL` when set (local use), otherwise the JDBC-style
//! properties file in S3 named by `FLIGHTWATCH_CONFIG_BUCKET` and `FLIGHTWATCH_CONFIG_KEY`.

use flightwatch_config::{ConfigError, ConfigSource, DatabaseSettings};
use secrecy::ExposeSecret;

use crate::S3Objects;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading s3://{bucket}/{key}: {cause}")]
    S3 {
        bucket: String,
        key: String,
        cause: String,
    },
    #[error("s3://{bucket}/{key} is not UTF-8 text")]
    NotText { bucket: String, key: String },
    #[error("{source_name}: {error}")]
    Invalid {
        source_name: String,
        error: ConfigError,
    },
}

/// Reads the settings once; the caller keeps them for the life of the execution environment.
/// The SDK is only set up when the settings live in S3.
pub async fn load_database_settings(source: &ConfigSource) -> Result<DatabaseSettings, LoadError> {
    match source {
        ConfigSource::Url(_) => database_settings(None, source).await,
        ConfigSource::S3 { .. } => {
            database_settings(Some(&crate::sdk_config().await), source).await
        }
    }
}

/// Reads the settings from `source`, with `sdk` when they live in S3.
pub async fn database_settings(
    sdk: Option<&aws_config::SdkConfig>,
    source: &ConfigSource,
) -> Result<DatabaseSettings, LoadError> {
    match source {
        ConfigSource::Url(url) => {
            DatabaseSettings::from_url(url.expose_secret()).map_err(|error| LoadError::Invalid {
                source_name: "DATABASE_URL".into(),
                error,
            })
        }
        ConfigSource::S3 { bucket, key } => {
            let sdk = sdk.ok_or_else(|| LoadError::S3 {
                bucket: bucket.clone(),
                key: key.clone(),
                cause: "no AWS configuration".into(),
            })?;
            let text = read_text(&S3Objects::new(sdk, bucket.as_str()), key).await?;
            let settings = DatabaseSettings::from_jdbc_properties(&text).map_err(|error| {
                LoadError::Invalid {
                    source_name: format!("s3://{bucket}/{key}"),
                    error,
                }
            })?;
            tracing::info!(?settings, "database settings loaded from S3");
            Ok(settings)
        }
    }
}

/// A text file in S3 (a properties file the deployment wrote).
pub async fn read_text(objects: &S3Objects, key: &str) -> Result<String, LoadError> {
    let bytes = objects.get(key).await.map_err(|e| LoadError::S3 {
        bucket: objects.bucket().to_owned(),
        key: key.to_owned(),
        cause: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|_| LoadError::NotText {
        bucket: objects.bucket().to_owned(),
        key: key.to_owned(),
    })
}

/// The watch function's AeroAPI key, from its properties file in S3; `None` when it has none.
pub async fn load_aeroapi_key(
    bucket: &str,
    key: &str,
) -> Result<Option<secrecy::SecretString>, LoadError> {
    let objects = S3Objects::new(&crate::sdk_config().await, bucket);
    let text = read_text(&objects, key).await?;
    flightwatch_config::aeroapi_key(&text).map_err(|error| LoadError::Invalid {
        source_name: format!("s3://{bucket}/{key}"),
        error,
    })
}
