//! The one API error type, mapped once to `application/problem+json` (RFC 9457). Client errors say
//! what to fix; server errors are opaque to the caller and logged with their whole cause chain.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use flightwatch_domain::ports::StoreError;
use serde::Serialize;

/// One invalid field, located by a JSON pointer into the request (`/passengers/0/phone`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or breaks a rule; `errors` lists each field at fault.
    #[error("{detail}")]
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
    },
    /// 403: no valid API key.
    #[error("missing or invalid API key")]
    Forbidden,
    /// 403: a provider push without the feed's secret token.
    #[error("missing or wrong feed token")]
    BadFeedToken,
    /// 404: the named flight (or route) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 415: the body is not JSON.
    #[error("the request body must be JSON, sent with content-type: application/json")]
    UnsupportedMediaType,
    /// 413: the body is larger than this API takes.
    #[error(
        "the request body is larger than {} bytes",
        crate::body::MAX_BODY_BYTES
    )]
    TooLarge,
    /// 409: the request is well formed but the state of the flight refuses it (it would hold
    /// too many passengers, it departed long ago).
    #[error("{0}")]
    Conflict(String),
    /// 429 with `Retry-After`: a spend limit that lifts with time (alerts per flight per day).
    #[error("{detail}")]
    TooMany {
        detail: String,
        retry_after: std::time::Duration,
    },
    /// 422: an Idempotency-Key reused with a different request.
    #[error("this Idempotency-Key was already used with a different request; use a new key for a new request")]
    KeyReused,
    /// 503 with `Retry-After`: a fault that passes by itself (the database unreachable, busy or
    /// in a deadlock), or a registration stored whose announcement SNS did not take.
    #[error("the service is temporarily unavailable; retry in a few seconds")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 500: anything unexpected, including storage faults that will not pass by themselves (a
    /// missing grant, an unreadable row): retrying would not help, so no `Retry-After`.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::Invalid {
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn fields(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{} {}", one.pointer, one.detail),
            _ => format!("{} fields are invalid: see errors", errors.len()),
        };
        Self::Invalid { detail, errors }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::Forbidden | Self::BadFeedToken => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "validation",
            Self::Forbidden | Self::BadFeedToken => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::TooLarge => "too-large",
            Self::KeyReused => "idempotency-key-reused",
            Self::Conflict(_) => "conflict",
            Self::TooMany { .. } => "limit-reached",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

/// Seconds a caller should wait before retrying a 503.
pub const RETRY_AFTER_SECONDS: u32 = 2;

impl From<flightwatch_domain::ports::RegisterError> for ApiError {
    fn from(e: flightwatch_domain::ports::RegisterError) -> Self {
        use flightwatch_domain::ports::RegisterError;
        match e {
            RegisterError::Full { .. } => Self::Conflict(e.to_string()),
            RegisterError::Store(e) => e.into(),
            // Stored, not announced: the same request again announces it.
            RegisterError::NotAnnounced(e) => Self::Unavailable(Box::new(e)),
        }
    }
}

impl From<flightwatch_domain::Refusal> for ApiError {
    fn from(e: flightwatch_domain::Refusal) -> Self {
        use flightwatch_domain::Refusal;
        match e {
            Refusal::TooManyAlerts { retry_after, .. } => Self::TooMany {
                detail: e.to_string(),
                retry_after,
            },
            Refusal::Departed { .. } => Self::Conflict(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            Self::Unavailable(Box::new(e))
        } else {
            Self::Internal(Box::new(e))
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    r#type: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The caller learns nothing of the cause; the log gets all of it.
            let chain = flightwatch_domain::error_chain(&self);
            tracing::error!(status = status.as_u16(), error = %chain, "request failed");
        }
        let errors: &[FieldError] = match &self {
            Self::Invalid { errors, .. } => errors,
            _ => &[],
        };
        let body = Problem {
            r#type: format!("https://flightwatch.dev/problems/{}", self.kind()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.to_string(),
            errors,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            json,
        )
            .into_response();
        let retry_after = match &self {
            Self::Unavailable(_) => Some(u64::from(RETRY_AFTER_SECONDS)),
            Self::TooMany { retry_after, .. } => Some(retry_after.as_secs().max(1)),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(e: ApiError) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = e.into_response();
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        (
            status,
            retry,
            serde_json::from_slice(&body).unwrap_or_default(),
        )
    }

    #[tokio::test]
    async fn a_transient_store_fault_is_a_503_with_retry_after() {
        let e = StoreError::transient("connection reset by peer");
        let (status, retry, body) = answer(e.into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("2"));
        assert_eq!(body["status"], 503);
    }

    #[tokio::test]
    async fn a_permanent_store_fault_is_an_opaque_500_without_retry_after() {
        let e = StoreError::permanent("SELECT command denied to user 'alerts'@'%' for table 'x'");
        let (status, retry, body) = answer(e.into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(retry, None);
        assert_eq!(body["detail"], "internal error");
        assert!(
            !body.to_string().contains("denied"),
            "the cause stays in the log"
        );
    }

    #[tokio::test]
    async fn a_spend_limit_is_a_429_with_its_own_retry_after_and_a_departed_flight_a_409() {
        let too_many = flightwatch_domain::Refusal::TooManyAlerts {
            limit: 6,
            retry_after: std::time::Duration::from_secs(3600),
        };
        let (status, retry, body) = answer(too_many.into()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry.as_deref(), Some("3600"));
        assert_eq!(
            body["type"],
            "https://flightwatch.dev/problems/limit-reached"
        );
        let departed = flightwatch_domain::Refusal::Departed {
            departed: chrono::DateTime::parse_from_rfc3339("2037-12-01T08:00:00Z").unwrap(),
        };
        let (status, retry, _) = answer(departed.into()).await;
        assert_eq!((status, retry), (StatusCode::CONFLICT, None));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_a_413_problem() {
        let (status, _, body) = answer(ApiError::TooLarge).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["type"], "https://flightwatch.dev/problems/too-large");
    }
}
