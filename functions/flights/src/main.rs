//! The flights Lambda: settings from S3 once per cold start, the database pool built lazily, the
//! flights router served for API Gateway.

use std::sync::Arc;

use flightwatch_api::flights::{router, FlightsState};
use flightwatch_config::FlightsSettings;
use flightwatch_mysql::MySqlFlightStore;

#[tokio::main]
async fn main() -> Result<(), flightwatch_lambda::Error> {
    flightwatch_lambda::init_default_subscriber();
    let settings = FlightsSettings::from_env()?;
    let db = flightwatch_aws::load_database_settings(&settings.database).await?;
    let store = Arc::new(MySqlFlightStore::new(db.pool()));
    flightwatch_lambda::run_http(flightwatch_api::traced(router(FlightsState { store }))).await
}
