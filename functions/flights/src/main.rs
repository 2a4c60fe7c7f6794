//! The flights Lambda: settings from S3 once per cold start, the database pool and the SNS client
//! built lazily, the flights router served for API Gateway; registrations announced on the
//! flight events topic for the watch function.

use std::sync::Arc;

use flightwatch_api::flights::{router, FlightsState};
use flightwatch_aws::LazySnsTopic;
use flightwatch_config::FlightsSettings;
use flightwatch_domain::ports::FlightAnnouncements;
use flightwatch_mysql::MySqlFlightStore;

#[tokio::main]
async fn main() -> Result<(), flightwatch_lambda::Error> {
    flightwatch_lambda::init_logging();
    let settings = FlightsSettings::from_env()?;
    let db = flightwatch_aws::load_database_settings(&settings.database).await?;
    let store = Arc::new(MySqlFlightStore::new(db.pool()));
    let announcements = settings
        .flight_events_topic
        .map(|topic| Arc::new(LazySnsTopic::new(topic.as_str())) as Arc<dyn FlightAnnouncements>);
    let state = FlightsState {
        store,
        announcements,
    };
    flightwatch_lambda::run_http(flightwatch_api::traced(router(state))).await
}
