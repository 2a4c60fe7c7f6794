//! The two S3 calls the functions make: read an object, and write one (optionally only if it is
//! not there yet). Each is an operation on the SDK's own runtime (its HTTPS client, standard
//! retries, timeouts, credentials, SigV4 signing with S3's settings), without the generated S3
//! client: that client links S3's whole endpoint rule set, S3 Express sessions and every
//! checksum it can validate, whose CRC tables alone are 660 KiB of every function that read
//! one properties file (issue 13's size budgets). The deployer and the tests, which call S3
//! broadly, use `aws-sdk-s3`.
//!
//! Addressing: virtual-hosted (`https://<bucket>.s3.<region>.amazonaws.com/<key>`, as S3
//! recommends), and path-style under `AWS_ENDPOINT_URL` (an emulator or an endpoint by URL).

use std::time::Duration;

use aws_runtime::auth::sigv4::{SigV4AuthScheme, SCHEME_ID as SIGV4};
use aws_runtime::auth::{SigV4OperationSigningConfig, SigningOptions};
use aws_smithy_runtime::client::identity::IdentityCache;
use aws_smithy_runtime::client::orchestrator::operation::Operation;
use aws_smithy_runtime::client::retries::classifiers::{
    HttpStatusCodeClassifier, TransientErrorClassifier,
};
use aws_smithy_runtime_api::client::auth::static_resolver::StaticAuthSchemeOptionResolver;
use aws_smithy_runtime_api::client::auth::{
    AuthSchemeOptionResolverParams, SharedAuthScheme, SharedAuthSchemeOptionResolver,
};
use aws_smithy_runtime_api::client::identity::SharedIdentityResolver;
use aws_smithy_runtime_api::client::orchestrator::{
    HttpRequest, HttpResponse, OrchestratorError, SensitiveOutput,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
use aws_smithy_runtime_api::client::runtime_plugin::StaticRuntimePlugin;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::Layer;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::SigningRegion;
use aws_types::SigningName;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Characters a key keeps in the path as they are: S3 signs the path as sent (no double
/// encoding), so encoding anything beyond what must be encoded would only risk a mismatch.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// An S3 answer other than success, or no answer.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// S3 refused: the HTTP status and S3's error code (`NoSuchKey`, `AccessDenied`...).
    #[error("S3 answered {status} {code}")]
    Refused { status: u16, code: String },
    /// No answer (connection, timeout, credentials) after the retries.
    #[error("{0}")]
    Failed(String),
}

impl ObjectError {
    /// The HTTP status S3 answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            Self::Failed(_) => None,
        }
    }
}

/// What a conditional write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    /// The object was there already (`412 Precondition Failed`, or `409` while a concurrent
    /// conditional write of the same key is in flight).
    Exists,
}

/// One bucket's objects.
#[derive(Clone, Debug)]
pub struct S3Objects {
    bucket: String,
    get: Operation<Request, Contents, ObjectError>,
    put: Operation<Request, (), ObjectError>,
}

/// An object's bytes, which the runtime's trace logging shows only the length of: the objects
/// read hold the database password and the AeroAPI key.
struct Contents(Vec<u8>);

impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes", self.0.len())
    }
}

/// A request to the bucket (its method is the operation's): the key, the condition, the body.
#[derive(Debug)]
struct Request {
    key: String,
    if_none_match: bool,
    body: Vec<u8>,
}

impl S3Objects {
    /// Calls give up after 5 s (retries included), as the SNS client's do.
    pub fn new(sdk: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        let bucket = bucket.into();
        // Lambda always sets a region; elsewhere S3's own default, for the address and the
        // signature alike.
        let region = sdk.region().map_or("us-east-1", |r| r.as_ref()).to_owned();
        let endpoint = endpoint(sdk, &region, &bucket);
        Self {
            get: operation(sdk, &region, &endpoint, Call::Get)
                .deserializer(|response| success(response).map(|body| Contents(body.to_vec())))
                .build(),
            put: operation(sdk, &region, &endpoint, Call::Put)
                .deserializer(|response| success(response).map(|_| ()))
                .build(),
            bucket,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object's bytes.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        let request = Request {
            key: key.to_owned(),
            if_none_match: false,
            body: Vec::new(),
        };
        self.get
            .invoke(request)
            .await
            .map(|contents| contents.0)
            .map_err(describe)
    }

    /// Writes the object, replacing what is there.
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        let request = Request {
            key: key.to_owned(),
            if_none_match: false,
            body,
        };
        self.put.invoke(request).await.map_err(describe)
    }

    /// Writes the object only if there is none (`If-None-Match: *`).
    pub async fn create(&self, key: &str, body: Vec<u8>) -> Result<Written, ObjectError> {
        let request = Request {
            key: key.to_owned(),
            if_none_match: true,
            body,
        };
        match self.put.invoke(request).await.map_err(describe) {
            Ok(()) => Ok(Written::Created),
            Err(e) if matches!(e.status(), Some(412 | 409)) => Ok(Written::Exists),
            Err(e) => Err(e),
        }
    }
}

/// The bucket's address: path-style under an endpoint URL, virtual-hosted in AWS.
fn endpoint(sdk: &aws_config::SdkConfig, region: &str, bucket: &str) -> String {
    match sdk.endpoint_url() {
        Some(url) => format!("{}/{bucket}", url.trim_end_matches('/')),
        None => {
            // The China partition is the one commercial partition with its own DNS suffix.
            let suffix = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://{bucket}.s3.{region}.{suffix}")
        }
    }
}

/// An operation on `endpoint`, signed with SigV4 as S3 wants it (the payload's SHA-256 in
/// `x-amz-content-sha256`, the path signed as sent), retried on throttling, 5xx and transient
/// connection errors.
fn operation(
    sdk: &aws_config::SdkConfig,
    region: &str,
    endpoint: &str,
    call: Call,
) -> aws_smithy_runtime::client::orchestrator::operation::OperationBuilder<Request> {
    let mut options = SigningOptions::default();
    options.double_uri_encode = false;
    options.normalize_uri_path = false;
    options.content_sha256_header = true;
    let signing = SigV4OperationSigningConfig {
        region: Some(SigningRegion::from(aws_config::Region::new(
            region.to_owned(),
        ))),
        name: Some(SigningName::from_static("s3")),
        signing_options: options,
        ..Default::default()
    };
    let mut config = Layer::new("S3Objects");
    config.store_put(signing);
    config.store_put(AuthSchemeOptionResolverParams::new(()));
    if call == Call::Get {
        // Keeps the runtime's trace logging from printing what is read (secrets among it).
        config.store_put(SensitiveOutput);
    }
    let mut components = RuntimeComponentsBuilder::new("S3Objects")
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
        .service_name("s3")
        .operation_name(match call {
            Call::Get => "GetObject",
            Call::Put => "PutObject",
        })
        .endpoint_url(endpoint)
        .with_connection_poisoning()
        .standard_retry(&RetryConfig::standard())
        .retry_classifier(HttpStatusCodeClassifier::default())
        .retry_classifier(TransientErrorClassifier::<ObjectError>::new())
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
    builder.serializer(move |request: Request| {
        let mut http = http::Request::builder()
            .method(match call {
                Call::Get => "GET",
                Call::Put => "PUT",
            })
            .uri(format!("/{}", utf8_percent_encode(&request.key, KEY)));
        if request.if_none_match {
            http = http.header("if-none-match", "*");
        }
        let http = http
            .header("content-length", request.body.len())
            .body(SdkBody::from(request.body))?;
        Ok(HttpRequest::try_from(http)?)
    })
}

/// The two operations: a read, whose contents are kept out of logs, and a write.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Get,
    Put,
}

/// The body of a 2xx answer, else S3's refusal with its error code.
fn success(response: &HttpResponse) -> Result<&[u8], OrchestratorError<ObjectError>> {
    let body = response.body().bytes().unwrap_or_default();
    if response.status().is_success() {
        return Ok(body);
    }
    Err(OrchestratorError::operation(ObjectError::Refused {
        status: response.status().as_u16(),
        code: error_code(body).unwrap_or("(no code)").to_owned(),
    }))
}

/// `<Code>` of S3's XML error body; a HEAD-like answer or a proxy's page has none.
fn error_code(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(&text[start..start + len])
}

fn describe(e: SdkError<ObjectError, HttpResponse>) -> ObjectError {
    match e {
        SdkError::ServiceError(e) => e.into_err(),
        other => ObjectError::Failed(crate::describe(&other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_contents_never_reach_a_log() {
        let secret = Contents(b"jdbc.password=hunter2".to_vec());
        assert_eq!(format!("{secret:?}"), "21 bytes");
    }

    #[test]
    fn s3_error_codes_are_read_from_its_xml() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
        assert_eq!(error_code(body), Some("NoSuchKey"));
        assert_eq!(error_code(b""), None);
        assert_eq!(error_code(b"<html>bad gateway</html>"), None);
    }

    #[test]
    fn keys_are_encoded_as_s3_signs_them() {
        let encoded = |k| utf8_percent_encode(k, KEY).to_string();
        assert_eq!(encoded("dev/alerts.properties"), "dev/alerts.properties");
        assert_eq!(encoded("claims/a b/1"), "claims/a%20b/1");
        assert_eq!(encoded("x+y=z"), "x%2By%3Dz");
    }

    #[test]
    fn buckets_are_virtual_hosts_in_aws_and_paths_under_an_endpoint_url() {
        let aws = aws_config::SdkConfig::builder().build();
        assert_eq!(
            endpoint(&aws, "eu-west-1", "fw-config"),
            "https://fw-config.s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint(&aws, "cn-north-1", "fw-config"),
            "https://fw-config.s3.cn-north-1.amazonaws.com.cn"
        );
        let emulator = aws_config::SdkConfig::builder()
            .endpoint_url("http://127.0.0.1:5000/")
            .build();
        assert_eq!(
            endpoint(&emulator, "us-east-1", "fw-config"),
            "http://127.0.0.1:5000/fw-config"
        );
    }
}
