//! What API Gateway takes from `openapi.yaml`, read from the same file for the local stack: which
//! operations require the API key. API Gateway applies a key per method, from each operation's
//! own `security`; a root-level requirement is not applied on import, so it is not read here
//! either.

use axum::http::Method;
use flightwatch_api::auth::Operation;
use serde::Deserialize;

/// The API definition, compiled in: the local stack enforces the spec it was built with.
pub const OPENAPI: &str = include_str!("../../../openapi.yaml");

#[derive(Deserialize)]
struct Spec {
    paths:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, serde_norway::Value>>,
}

#[derive(Deserialize)]
struct OperationSpec {
    #[serde(default)]
    security: Option<Vec<std::collections::BTreeMap<String, Vec<String>>>>,
}

/// Every operation of `spec` with whether it requires the `apiKey` scheme.
pub fn operations(spec: &str) -> anyhow::Result<Vec<Operation>> {
    let spec: Spec = serde_norway::from_str(spec)?;
    let mut operations = Vec::new();
    for (path, items) in spec.paths {
        for (method, op) in items {
            let Ok(method) = method.to_ascii_uppercase().parse::<Method>() else {
                continue;
            };
            if !matches!(
                method,
                Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
            ) {
                continue;
            }
            let op: OperationSpec = serde_norway::from_value(op)?;
            let needs_key = op
                .security
                .unwrap_or_default()
                .iter()
                .any(|requirement| requirement.contains_key("apiKey"));
            operations.push(Operation {
                method,
                path: path.clone(),
                needs_key,
            });
        }
    }
    Ok(operations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_of_the_api_requires_the_key_but_the_provider_feed() {
        let ops = operations(OPENAPI).unwrap_or_default();
        assert_eq!(ops.len(), 6, "{ops:?}");
        let public: Vec<&str> = ops
            .iter()
            .filter(|op| !op.needs_key)
            .map(|op| op.path.as_str())
            .collect();
        assert_eq!(public, ["/feeds/flightaware"], "{ops:?}");
    }

    #[test]
    fn only_an_operation_s_own_requirement_counts() {
        let spec = r"
security: [{apiKey: []}]
paths:
  /a:
    get: {security: [{apiKey: []}]}
    post: {}
  /b/{id}:
    get: {security: []}
";
        let ops = operations(spec).unwrap_or_default();
        let needs = |m: Method, p: &str| {
            ops.iter()
                .find(|o| o.method == m && o.path == p)
                .map(|o| o.needs_key)
        };
        assert_eq!(needs(Method::GET, "/a"), Some(true));
        assert_eq!(
            needs(Method::POST, "/a"),
            Some(false),
            "root-level security is not applied"
        );
        assert_eq!(needs(Method::GET, "/b/{id}"), Some(false));
    }

    /// The delivery vocabulary the API documents is the domain's, word for word.
    #[test]
    fn the_documented_delivery_states_and_failures_are_the_domain_s() {
        use flightwatch_domain::{DeliveryState, FailureClass};
        let spec: serde_norway::Value = serde_norway::from_str(OPENAPI).unwrap_or_default();
        let enumerated = |field: &str| -> Vec<String> {
            spec["components"]["schemas"]["RecipientDelivery"]["properties"][field]["enum"]
                .as_sequence()
                .map(|s| {
                    s.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let states: Vec<String> = DeliveryState::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(enumerated("state"), states);
        let classes: Vec<String> = FailureClass::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect();
        assert_eq!(enumerated("failure"), classes);
        let counts = &spec["components"]["schemas"]["DeliveryCounts"]["required"];
        let lower: Vec<String> = states.iter().map(|s| s.to_lowercase()).collect();
        assert_eq!(
            serde_norway::from_value::<Vec<String>>(counts.clone()).unwrap_or_default(),
            lower
        );
    }
}
