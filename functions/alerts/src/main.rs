//! The alerts Lambda: settings from S3 once per cold start, the database pool and the SNS client
//! built lazily (on first use), the alerts router served for API Gateway, the relay run by the
//! schedule, the sms function's delivery reports (SNS) and the carrier's delivery status
//! (CloudWatch Logs) recorded in the ledger.

use std::sync::Arc;
use std::time::Duration;

use flightwatch_api::alerts::{router, AlertsState};
use flightwatch_api::feeds::FeedsState;
use flightwatch_app::relay;
use flightwatch_aws::LazySnsTopic;
use flightwatch_config::AlertsSettings;
use flightwatch_domain::ports::{AlertBus, AlertStore};
use flightwatch_domain::SpendLimits;
use flightwatch_mysql::MySqlAlertStore;

#[tokio::main]
async fn main() -> Result<(), flightwatch_lambda::Error> {
    flightwatch_lambda::init_logging();
    let settings = AlertsSettings::from_env()?;
    let db = flightwatch_aws::load_database_settings(&settings.database).await?;
    let topic = settings.alerts_topic.as_str();
    let store: Arc<dyn AlertStore> = Arc::new(MySqlAlertStore::new(db.pool()));
    // Built on the first publish: most invocations never publish.
    let bus: Arc<dyn AlertBus> = Arc::new(LazySnsTopic::new(topic));
    let limits = SpendLimits::per_day(settings.alerts_per_flight_per_day);
    let per_second = settings.sms_per_second;
    let state = AlertsState {
        store: store.clone(),
        bus: bus.clone(),
        limits,
        sms_per_second: per_second,
    };
    let mut app = router(state.clone());
    // FlightAware's pushes, when a token is configured.
    if let Some(feed) = settings.flightaware {
        app = app.merge(flightwatch_api::feeds::router(FeedsState {
            alerts: state,
            token: feed.token,
            delay_threshold: feed.delay_threshold,
        }));
    }
    let app = flightwatch_api::traced(app);
    let (ledger, carrier) = (store.clone(), store.clone());
    let on_schedule = move |time_left: Duration| {
        let (store, bus) = (store.clone(), bus.clone());
        async move {
            // Start no new hand-out after half the time left: one in progress publishes a few
            // messages, and must end before the function's timeout.
            let budget = time_left / 2;
            let now = chrono::Utc::now();
            let report =
                relay::relay(store.as_ref(), bus.as_ref(), per_second, budget, now).await?;
            Ok::<_, flightwatch_domain::ports::StoreError>(serde_json::json!(report))
        }
    };
    let on_report = move |message: String| {
        let ledger = ledger.clone();
        async move {
            flightwatch_app::record_report_message(ledger.as_ref(), &message)
                .await
                .map(drop)
        }
    };
    let on_carrier = move |outcomes: Vec<flightwatch_domain::CarrierOutcome>| {
        let ledger = carrier.clone();
        async move { flightwatch_app::record_carrier(ledger.as_ref(), &outcomes).await }
    };
    flightwatch_lambda::run_alerts(app, on_schedule, on_report, on_carrier).await
}
