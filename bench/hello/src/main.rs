//! The cold-start baseline: what any Rust Lambda on `lambda_runtime` costs before doing anything.
//! `bench/coldstart.py` runs it alternately with each function and prints their ratios to it.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
