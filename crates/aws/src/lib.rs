//! AWS adapters, through the official SDK: the alerts bus on an SNS topic, SMS through SNS
//! `Publish` to a phone number, the database settings read from S3 at cold start, and the sms
//! function's claims in S3 (S3 through two operations on the SDK's runtime: `objects`).
//! `AWS_ENDPOINT_URL` (the SDK's standard variable) points them all at an emulator such as moto.

#[cfg(feature = "sns")]
mod bus;
#[cfg(feature = "claims")]
mod claims;
mod https;
#[cfg(feature = "objects")]
mod objects;
#[cfg(feature = "runtime")]
mod operation;
#[cfg(feature = "sns")]
mod sender;
#[cfg(feature = "s3")]
mod settings;
#[cfg(all(feature = "claims", feature = "sns"))]
mod sms_clients;
#[cfg(feature = "sns")]
mod sns;

#[cfg(feature = "sns")]
pub use bus::{LazySnsTopic, SnsTopic};
#[cfg(feature = "claims")]
pub use claims::S3Claims;
pub use flightwatch_config::ConfigSource;
pub use https::http_client;
#[cfg(feature = "objects")]
pub use objects::{ObjectError, S3Objects, Written};
#[cfg(feature = "sns")]
pub use sender::SnsSmsSender;
#[cfg(feature = "s3")]
pub use settings::{
    database_settings, load_aeroapi_key, load_database_settings, read_text, LoadError,
};
#[cfg(all(feature = "claims", feature = "sns"))]
pub use sms_clients::{LazySmsClients, SmsClientSettings};
#[cfg(feature = "sns")]
pub use sns::{Publish, PublishError, Sns};

/// The SDK configuration of a function: region and credentials from the environment, which is
/// where Lambda puts them (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), and `AWS_ENDPOINT_URL` when set (an emulator, or a VPC endpoint by URL).
/// Not `aws_config::defaults`: its chain (profile files, SSO, STS web identity, ECS, IMDS) is
/// never consulted in Lambda and links an STS client and a profile parser into every function
/// (about 270 KiB of code); the deployer and the local stack, which run on people's machines,
/// keep that chain.
pub async fn sdk_config() -> aws_config::SdkConfig {
    use aws_config::environment::{
        EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
    };
    use aws_config::meta::region::ProvideRegion;
    use aws_credential_types::provider::SharedCredentialsProvider;

    let region = EnvironmentVariableRegionProvider::new().region().await;
    let mut config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(region)
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(http_client());
    if let Some(url) = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        config = config.endpoint_url(url);
    }
    config.build()
}

#[cfg(feature = "subscribe")]
/// Subscribes an HTTP(S) endpoint to a topic (idempotent: SNS returns the existing subscription).
pub async fn subscribe_http(
    sdk: &aws_config::SdkConfig,
    topic_arn: &str,
    endpoint: &str,
) -> Result<(), aws_sdk_sns::Error> {
    let protocol = if endpoint.starts_with("https:") {
        "https"
    } else {
        "http"
    };
    aws_sdk_sns::Client::new(sdk)
        .subscribe()
        .topic_arn(topic_arn)
        .protocol(protocol)
        .endpoint(endpoint)
        .send()
        .await?;
    Ok(())
}

/// The error chain of an SDK failure on one line, for logs and outbox records.
#[allow(dead_code)] // not every feature set calls it
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    flightwatch_domain::error_chain(e)
}
