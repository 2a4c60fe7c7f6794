//! The API key check API Gateway performs in AWS, for the local stack: a call to an operation that
//! requires the key, or to no operation at all, is refused with 403 unless it carries the
//! configured `x-api-key`. Which operations require it is read from `openapi.yaml` by the caller,
//! so the local stack and API Gateway cannot disagree.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::problem::ApiError;

/// One operation of the API and whether it declares the API key as its security requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub method: Method,
    /// The OpenAPI path template, e.g. `/flights/{flightId}`.
    pub path: String,
    pub needs_key: bool,
}

impl Operation {
    /// Whether a request path fits the template: same segments, `{...}` matching any one.
    fn matches(&self, method: &Method, path: &str) -> bool {
        let template = self.path.trim_end_matches('/').split('/');
        let given = path.trim_end_matches('/').split('/');
        self.method == method
            && template.clone().count() == given.clone().count()
            && template
                .zip(given)
                .all(|(t, g)| (t.starts_with('{') && !g.is_empty()) || t == g)
    }
}

struct Policy {
    key: String,
    operations: Vec<Operation>,
}

/// Wraps `router` so that each request to an operation that needs the key, or to an unknown
/// route (API Gateway answers those with 403 too), must carry `x-api-key: <key>`.
pub fn require_api_key(router: Router, key: String, operations: Vec<Operation>) -> Router {
    let policy = Arc::new(Policy { key, operations });
    router.layer(axum::middleware::from_fn_with_state(policy, check))
}

async fn check(State(policy): State<Arc<Policy>>, req: Request, next: Next) -> Response {
    let needs_key = policy
        .operations
        .iter()
        .find(|op| op.matches(req.method(), req.uri().path()))
        .is_none_or(|op| op.needs_key);
    let given = req
        .headers()
        .get("x-api-key")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !needs_key || constant_time_eq(given, policy.key.as_bytes()) {
        next.run(req).await
    } else {
        ApiError::Forbidden.into_response()
    }
}

/// Compares without stopping at the first difference, so timing does not reveal the key.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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

    #[test]
    fn templates_match_one_segment_per_parameter() {
        let op = Operation {
            method: Method::GET,
            path: "/flights/{flightId}".into(),
            needs_key: true,
        };
        assert!(op.matches(&Method::GET, "/flights/UA123-2037-12-01"));
        assert!(!op.matches(&Method::GET, "/flights"));
        assert!(!op.matches(&Method::GET, "/flights/"));
        assert!(!op.matches(&Method::GET, "/flights/a/b"));
        assert!(!op.matches(&Method::POST, "/flights/UA123-2037-12-01"));
    }
}
