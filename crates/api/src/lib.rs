//! The HTTP surface of the flights and alerts functions: one axum router each, serving Lambda,
//! the local stack and the tests alike. Handlers parse requests into domain types, call a use
//! case (`flightwatch-app`), and map every failure once to an RFC 9457 problem.

pub mod alerts;
pub mod auth;
mod body;
pub mod feeds;
pub mod flights;
pub mod problem;
mod wire;

pub use problem::ApiError;

use axum::Router;
use tower_http::trace::TraceLayer;

/// Request spans with stable fields; no headers or bodies, which could carry personal data.
pub fn traced(router: Router) -> Router {
    router.layer(TraceLayer::new_for_http().make_span_with(
        |req: &http::Request<axum::body::Body>| {
            let route = req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            tracing::info_span!("request", method = %req.method(), route = %route)
        },
    ))
}
