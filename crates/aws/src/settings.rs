//! Database settings at cold start: `DATABASE_URL` when set (local use), otherwise the JDBC-style
//! properties file in S3 named by `FLIGHTWATCH_CONFIG_BUCKET` and `FLIGHTWATCH_CONFIG_KEY`.

use flightwatch_config::{ConfigError, ConfigSource, DatabaseSettings};
use secrecy::ExposeSecret;

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
            let sdk = crate::sdk_config().await;
            database_settings(Some(&crate::s3_client(&sdk)), source).await
        }
    }
}

/// Reads the settings from `source`, with `s3` when they live there.
pub async fn database_settings(
    s3: Option<&aws_sdk_s3::Client>,
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
            let s3 = s3.ok_or_else(|| LoadError::S3 {
                bucket: bucket.clone(),
                key: key.clone(),
                cause: "no S3 client".into(),
            })?;
            let text = read_text(s3, bucket, key).await?;
            let text = text.as_str();
            let settings = DatabaseSettings::from_jdbc_properties(text).map_err(|error| {
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
pub async fn read_text(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<String, LoadError> {
    let s3_error = |cause: String| LoadError::S3 {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        cause,
    };
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| s3_error(crate::describe(&e)))?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| s3_error(crate::describe(&e)))?
        .into_bytes();
    String::from_utf8(bytes.to_vec()).map_err(|_| LoadError::NotText {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    })
}

/// The watch function's AeroAPI key, from its properties file in S3; `None` when it has none.
pub async fn load_aeroapi_key(
    bucket: &str,
    key: &str,
) -> Result<Option<secrecy::SecretString>, LoadError> {
    let s3 = crate::s3_client(&crate::sdk_config().await);
    let text = read_text(&s3, bucket, key).await?;
    flightwatch_config::aeroapi_key(&text).map_err(|error| LoadError::Invalid {
        source_name: format!("s3://{bucket}/{key}"),
        error,
    })
}
