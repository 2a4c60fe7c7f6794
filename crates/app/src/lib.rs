//! The use cases of flightwatch, over the ports and nothing else (no HTTP, no Lambda, no SQL), so
//! each is tested over in-memory fakes and served alike by the axum routers, the Lambda glue and
//! the local stack:
//!
//! - `register` and `find`: the flights function's requests;
//! - `notify`: record a reported event as an alert and put it on the bus (`idempotency` holds the
//!   one place where an `Idempotency-Key` is parsed and a request fingerprinted); `feed`, the
//!   same for a flight-status provider's push;
//! - `list`: the alerts issued, newest first, a page at a time;
//! - `relay`: handing out, from the delivery ledger, the recipients due; and housekeeping;
//! - `details`, `record_outcomes` and `record_carrier`: the delivery ledger, read and fed by the
//!   sms function's reports and the carrier's delivery status.
//!
//! Delivering the SMS is the sms function's use case, in `flightwatch-delivery`.

pub mod feed;
pub mod idempotency;
pub mod notify;
pub mod relay;
pub mod watch;

use flightwatch_domain::flight::FlightSummary;
use flightwatch_domain::ports::{
    AlertListing, DeliveryLedger, FlightAnnouncements, FlightStore, RegisterError, Registered,
    StoreError,
};
use flightwatch_domain::watch::FlightRegistered;
use flightwatch_domain::{
    Alert, AlertId, AlertQuery, CarrierOutcome, DeliveryCounts, DeliveryReport, FlightKey,
    FlightRegistration, Passenger, RecipientDelivery,
};

/// Registers a flight, or merges it into the registered one (unless that overfills it), then
/// announces it, when announcements are on, for a flight-status provider to watch. Announced
/// after every registration, merged or not: after a failed announcement the caller's retry
/// announces again, and watching is idempotent.
pub async fn register(
    store: &dyn FlightStore,
    announcements: Option<&dyn FlightAnnouncements>,
    registration: &FlightRegistration,
) -> Result<Registered, RegisterError> {
    let registered = store.register(registration).await?;
    if let Some(announcements) = announcements {
        let message = FlightRegistered::new(registered.flight.schedule());
        announcements
            .registered(&message)
            .await
            .map_err(RegisterError::NotAnnounced)?;
    }
    Ok(registered)
}

/// A registered flight with its passengers.
pub async fn find(
    store: &dyn FlightStore,
    key: &FlightKey,
) -> Result<Option<(FlightSummary, Vec<Passenger>)>, StoreError> {
    store.find(key).await
}

/// A page of alerts, newest first, each with its recipients counted by delivery state.
pub struct Page {
    pub alerts: Vec<(Alert, DeliveryCounts)>,
    /// Where the next page starts (the storage order of the last alert), when there is one.
    pub next_before: Option<i64>,
}

/// Lists alerts: one more than asked for tells whether another page exists, without an empty
/// last page.
pub async fn list(store: &dyn AlertListing, query: &AlertQuery) -> Result<Page, StoreError> {
    let limit = query.limit as usize;
    let mut alerts = store
        .list(&AlertQuery {
            limit: query.limit + 1,
            ..query.clone()
        })
        .await?;
    let next_before = if alerts.len() > limit {
        alerts.truncate(limit);
        alerts.last().map(|(a, _)| a.seq)
    } else {
        None
    };
    Ok(Page {
        alerts,
        next_before,
    })
}

/// One alert with each recipient's delivery state.
pub async fn details(
    store: &dyn AlertListing,
    id: AlertId,
) -> Result<Option<(Alert, Vec<RecipientDelivery>)>, StoreError> {
    store.details(id).await
}

/// Records what the sms function reports about an alert's recipients in the delivery ledger.
pub async fn record_outcomes(
    ledger: &dyn DeliveryLedger,
    report: &DeliveryReport,
) -> Result<u64, StoreError> {
    let changed = ledger.record_outcomes(report, chrono::Utc::now()).await?;
    tracing::info!(alert_id = %report.alert_id, outcomes = report.outcomes.len(), changed, "delivery report recorded");
    Ok(changed)
}

/// Records what the carrier said of SMS sent (delivered or not) in the delivery ledger.
pub async fn record_carrier(
    ledger: &dyn DeliveryLedger,
    outcomes: &[CarrierOutcome],
) -> Result<u64, StoreError> {
    let changed = ledger.record_carrier(outcomes, chrono::Utc::now()).await?;
    tracing::info!(
        outcomes = outcomes.len(),
        changed,
        "carrier outcomes recorded"
    );
    Ok(changed)
}

/// Why a delivery report from the bus was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ReportFailed {
    #[error(transparent)]
    Unreadable(#[from] flightwatch_domain::delivery::ReportError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A delivery report as it arrives on the bus (JSON), recorded in the ledger.
pub async fn record_report_message(
    ledger: &dyn DeliveryLedger,
    message: &str,
) -> Result<u64, ReportFailed> {
    let report = DeliveryReport::parse(message)?;
    Ok(record_outcomes(ledger, &report).await?)
}
