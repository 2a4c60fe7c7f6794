//! The API key check API Gateway performs in AWS, for the local stack: every call without the
//! configured `x-api-key` is refused with 403.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::problem::ApiError;

/// Wraps `router` so that each request must carry `x-api-key: <key>`.
pub fn require_api_key(router: Router, key: String) -> Router {
    router.layer(axum::middleware::from_fn_with_state(Arc::new(key), check))
}

async fn check(State(key): State<Arc<String>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get("x-api-key")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if constant_time_eq(given, key.as_bytes()) {
        next.run(req).await
    } else {
        ApiError::Forbidden.into_response()
    }
}

/// Compares without stopping at the first difference, so timing does not reveal the key.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_only_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"secret"));
    }
}
