//! The two S3 calls the functions make: read an object, and write one (optionally only if it is
//! not there yet), as operations on the SDK's runtime (`operation`). The deployer and the tests,
//! which call S3 broadly, use `aws-sdk-s3`.
//!
//! Addressing: virtual-hosted (`https://<bucket>.s3.<region>.amazonaws.com/<key>`, as S3
//! recommends), and path-style under `AWS_ENDPOINT_URL` (an emulator or an endpoint by URL).

use aws_runtime::auth::SigningOptions;
use aws_smithy_runtime::client::orchestrator::operation::{Operation, OperationBuilder};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, OrchestratorError};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::body::SdkBody;
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
    /// Calls give up after 5 s, retries included (`operation`).
    pub fn new(sdk: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        let bucket = bucket.into();
        let region = crate::operation::region(sdk);
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
        None => format!(
            "https://{bucket}.s3.{region}.{}",
            crate::operation::dns_suffix(region)
        ),
    }
}

/// An S3 operation on `endpoint`, signed with SigV4 as S3 wants it (the payload's SHA-256 in
/// `x-amz-content-sha256`, the path signed as sent).
fn operation(
    sdk: &aws_config::SdkConfig,
    region: &str,
    endpoint: &str,
    call: Call,
) -> OperationBuilder<Request> {
    let mut signing = SigningOptions::default();
    signing.double_uri_encode = false;
    signing.normalize_uri_path = false;
    signing.content_sha256_header = true;
    let builder = crate::operation::operation::<ObjectError>(
        sdk,
        region,
        endpoint,
        crate::operation::Call {
            service: "s3",
            operation: call.operation(),
            signing,
            // What is read holds secrets (the database password, the AeroAPI key).
            sensitive_output: call == Call::Get,
        },
    );
    builder.serializer(move |request: Request| {
        let mut http = http::Request::builder()
            .method(call.method())
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

impl Call {
    /// Its name in S3's API.
    fn operation(self) -> &'static str {
        match self {
            Self::Get => "GetObject",
            Self::Put => "PutObject",
        }
    }

    fn method(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
        }
    }
}

/// The body of a 2xx answer, else S3's refusal with its error code.
fn success(response: &HttpResponse) -> Result<&[u8], OrchestratorError<ObjectError>> {
    let body = response.body().bytes().unwrap_or_default();
    if response.status().is_success() {
        return Ok(body);
    }
    Err(OrchestratorError::operation(ObjectError::Refused {
        status: response.status().as_u16(),
        code: crate::operation::xml_text(body, "Code")
            .unwrap_or("(no code)")
            .to_owned(),
    }))
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
