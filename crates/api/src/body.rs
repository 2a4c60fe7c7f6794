//! Request extraction whose failures are problems, not axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::problem::{ApiError, FieldError};

/// The largest body the API takes: a 1000-passenger registration is about 150 KB. Larger bodies
/// are a 413, the same in Lambda (whose own request limit is 6 MB), locally and in tests.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// A JSON body: 415 without a JSON content type, 413 over `MAX_BODY_BYTES`, 400 when it does
/// not parse.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::invalid(format!("could not read the request body: {e}"))
            }
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::invalid(format!("the body is not valid for this operation: {e}"))
        })
    }
}

/// For an optional field that may be left out but not sent as null: `None` when absent,
/// `Some(None)` when null (see `Fields::optional`).
pub(crate) fn not_null<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Collects every field error of a request, so the caller fixes them all in one go.
#[derive(Default)]
pub(crate) struct Fields(Vec<FieldError>);

impl Fields {
    /// Records the error of a parse, if any, and passes its value on.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        pointer: &str,
        parsed: Result<T, E>,
    ) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(pointer, e);
                None
            }
        }
    }

    /// A required field: missing is an error, present is parsed with `parse`.
    pub fn required<T, E: std::fmt::Display>(
        &mut self,
        pointer: &str,
        value: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match value {
            Some(v) => self.check(pointer, parse(v)),
            None => {
                self.fail(pointer, "is required");
                None
            }
        }
    }

    /// An optional field read with `not_null`: absent is fine, null is an error.
    pub fn optional<T>(&mut self, pointer: &str, value: Option<Option<T>>) -> Option<T> {
        match value {
            Some(None) => {
                self.fail(pointer, "must not be null; leave it out instead");
                None
            }
            other => other.flatten(),
        }
    }

    pub fn fail(&mut self, pointer: &str, detail: impl std::fmt::Display) {
        self.0.push(FieldError {
            pointer: pointer.to_owned(),
            detail: detail.to_string(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_error(self) -> ApiError {
        ApiError::fields(self.0)
    }
}
