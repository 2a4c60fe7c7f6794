//! The use cases of flightwatch, over the ports and nothing else (no HTTP, no Lambda, no SQL), so
//! each is tested over in-memory fakes and served alike by the axum routers, the Lambda glue and
//! the local stack:
//!
//! - `register` and `find`: the flights function's requests;
//! - `notify`: record a reported event as an alert and put it on the bus (`idempotency` holds the
//!   one place where an `Idempotency-Key` is parsed and a request fingerprinted);
//! - `list`: the alerts issued, newest first, a page at a time;
//! - `relay`: publication of alerts still pending, and housekeeping.
//!
//! Delivering the SMS is the sms function's use case, in `flightwatch-delivery`.

pub mod idempotency;
pub mod notify;
pub mod relay;

use flightwatch_domain::flight::FlightSummary;
use flightwatch_domain::ports::{AlertListing, FlightStore, RegisterError, Registered, StoreError};
use flightwatch_domain::{Alert, AlertQuery, FlightKey, FlightRegistration, Passenger};

/// Registers a flight, or merges it into the registered one (unless that overfills it).
pub async fn register(
    store: &dyn FlightStore,
    registration: &FlightRegistration,
) -> Result<Registered, RegisterError> {
    store.register(registration).await
}

/// A registered flight with its passengers.
pub async fn find(
    store: &dyn FlightStore,
    key: &FlightKey,
) -> Result<Option<(FlightSummary, Vec<Passenger>)>, StoreError> {
    store.find(key).await
}

/// A page of alerts, newest first.
pub struct Page {
    pub alerts: Vec<Alert>,
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
        alerts.last().map(|a| a.seq)
    } else {
        None
    };
    Ok(Page {
        alerts,
        next_before,
    })
}
