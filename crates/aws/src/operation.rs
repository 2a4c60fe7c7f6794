//! The AWS calls the functions make, each one operation on the SDK's own runtime (its HTTPS
//! client, standard retries, timeouts, credentials and SigV4 signing), without the generated
//! service clients: those link each service's whole endpoint rule set (SNS's with a partition
//! table matched by regular expressions at the first call) and, for S3, S3 Express sessions and
//! every checksum it can validate, in functions that make two or three calls (issue 13's size
//! budgets). The deployer, the local stack and the tests, which call AWS broadly, use the SDK's
//! clients.

use std::time::Duration;

use aws_runtime::auth::sigv4::{SigV4AuthScheme, SCHEME_ID as SIGV4};
use aws_runtime::auth::{SigV4OperationSigningConfig, SigningOptions};
use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime::client::orchestrator::operation::{Operation, OperationBuilder};
use aws_smithy_runtime::client::retries::classifiers::{
    HttpStatusCodeClassifier, TransientErrorClassifier,
};
use aws_smithy_runtime_api::client::auth::static_resolver::StaticAuthSchemeOptionResolver;
use aws_smithy_runtime_api::client::auth::{
    AuthSchemeOptionResolverParams, SharedAuthScheme, SharedAuthSchemeOptionResolver,
};
use aws_smithy_runtime_api::client::identity::SharedIdentityResolver;
use aws_smithy_runtime_api::client::orchestrator::SensitiveOutput;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
use aws_smithy_runtime_api::client::runtime_plugin::StaticRuntimePlugin;
use aws_smithy_types::config_bag::Layer;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::SigningRegion;
use aws_types::SigningName;

/// One operation of a service, as the runtime signs, names and logs it.
pub(crate) struct Call {
    /// The service's signing name (`s3`, `sns`).
    pub service: &'static str,
    /// The operation's name in the service's API (`GetObject`, `Publish`).
    pub operation: &'static str,
    /// How the service wants requests signed.
    pub signing: SigningOptions,
    /// Keeps the runtime's trace logging from printing what the operation returns.
    pub sensitive_output: bool,
}

/// The region requests go to and are signed for: Lambda always sets one; elsewhere us-east-1,
/// the default of S3 and SNS alike.
pub(crate) fn region(sdk: &aws_config::SdkConfig) -> String {
    sdk.region().map_or("us-east-1", |r| r.as_ref()).to_owned()
}

#[cfg(feature = "sns")]
/// The service's regional address, `https://<service>.<region>.amazonaws.com`, or the endpoint
/// URL the configuration has (an emulator, or an endpoint by URL).
pub(crate) fn regional_endpoint(sdk: &aws_config::SdkConfig, host: &str, region: &str) -> String {
    match sdk.endpoint_url() {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("https://{host}.{region}.{}", dns_suffix(region)),
    }
}

/// The China partition is the one commercial partition with its own DNS suffix.
pub(crate) fn dns_suffix(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

/// An operation on `endpoint` with the SDK configuration's credentials and HTTP client,
/// retried (standard retries) on 5xx and on transient connection errors, and given up after 5 s,
/// retries included, so that a slow call cannot eat a function's time budget: the callers retry
/// or hand the work on. Add the serializer and deserializer, and any further retry classifier.
pub(crate) fn operation<E>(
    sdk: &aws_config::SdkConfig,
    region: &str,
    endpoint: &str,
    call: Call,
) -> OperationBuilder
where
    E: std::error::Error + Send + Sync + 'static,
{
    let signing = SigV4OperationSigningConfig {
        region: Some(SigningRegion::from(aws_config::Region::new(
            region.to_owned(),
        ))),
        name: Some(SigningName::from_static(call.service)),
        signing_options: call.signing,
        ..Default::default()
    };
    let mut config = Layer::new(call.operation);
    config.store_put(signing);
    config.store_put(AuthSchemeOptionResolverParams::new(()));
    if call.sensitive_output {
        config.store_put(SensitiveOutput);
    }
    let mut components = RuntimeComponentsBuilder::new(call.operation)
        .with_auth_scheme_option_resolver(Some(SharedAuthSchemeOptionResolver::new(
            StaticAuthSchemeOptionResolver::new(vec![SIGV4]),
        )))
        .with_auth_scheme(SharedAuthScheme::new(SigV4AuthScheme::new()))
        .with_identity_cache(Some(
            sdk.identity_cache()
                .unwrap_or_else(|| IdentityCache::lazy().build()),
        ));
    if let Some(credentials) = sdk.credentials_provider() {
        components =
            components.with_identity_resolver(SIGV4, SharedIdentityResolver::new(credentials));
    }
    let mut builder = Operation::builder()
        .service_name(call.service)
        .operation_name(call.operation)
        .endpoint_url(endpoint)
        .with_connection_poisoning()
        .standard_retry(&RetryConfig::standard())
        .retry_classifier(HttpStatusCodeClassifier::default())
        .retry_classifier(TransientErrorClassifier::<E>::new())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .runtime_plugin(
            StaticRuntimePlugin::new()
                .with_config(config.freeze())
                .with_runtime_components(components),
        );
    if let Some(client) = sdk.http_client() {
        builder = builder.http_client(client);
    }
    builder
}

/// The text of the first `<tag>` in an XML body (AWS's error codes and messages, SNS's message
/// id); none in a body that is not XML, such as a proxy's page.
pub(crate) fn xml_text<'a>(body: &'a [u8], tag: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{tag}>"))?;
    Some(&text[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_xml() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
        assert_eq!(xml_text(body, "Code"), Some("NoSuchKey"));
        assert_eq!(
            xml_text(body, "Message"),
            Some("The specified key does not exist.")
        );
        assert_eq!(xml_text(b"", "Code"), None);
        assert_eq!(xml_text(b"<html>bad gateway</html>", "Code"), None);
    }

    #[cfg(feature = "sns")]
    #[test]
    fn services_are_regional_in_aws_and_at_the_endpoint_url_elsewhere() {
        let aws = aws_config::SdkConfig::builder().build();
        assert_eq!(
            regional_endpoint(&aws, "sns", "eu-west-1"),
            "https://sns.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            regional_endpoint(&aws, "sns", "cn-north-1"),
            "https://sns.cn-north-1.amazonaws.com.cn"
        );
        let emulator = aws_config::SdkConfig::builder()
            .endpoint_url("http://127.0.0.1:5000/")
            .build();
        assert_eq!(
            regional_endpoint(&emulator, "sns", "us-east-1"),
            "http://127.0.0.1:5000"
        );
    }
}
