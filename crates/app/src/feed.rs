//! A flight-status provider's push: the reported flight becomes a DELAYED or CANCELLED
//! notification and goes through `notify`, with its idempotency (keyed by the provider's
//! event), duplicate rules and spend limits. A report that makes no alert (an unknown flight, a
//! delay under the threshold, an event that is no change, a limit reached) is acknowledged with
//! the reason, so that the provider does not retry it forever; only a storage failure is an
//! error, which the provider should retry.

use std::time::Duration;

use flightwatch_domain::feed::ProviderReport;
use flightwatch_domain::ports::{AlertBus, Notifications, Outbox, StoreError};
use flightwatch_domain::Notification;

use crate::idempotency;
use crate::notify::{notify, Limits, Notified, NotifyError};

/// What a provider's report came to.
#[derive(Debug)]
pub enum Received {
    Notified(Notified),
    /// No alert, and why (for the log and the provider's answer).
    Ignored(String),
}

pub async fn receive(
    store: &dyn Notifications,
    outbox: &dyn Outbox,
    bus: &dyn AlertBus,
    report: &ProviderReport,
    threshold: Duration,
    limits: Limits,
) -> Result<Received, StoreError> {
    let ignored = |why: String| {
        tracing::info!(provider = report.provider, reason = %why, "provider report ignored");
        Ok(Received::Ignored(why))
    };
    let Some(schedule) = store
        .flight_departing(&report.flight_number, report.scheduled_departure)
        .await?
    else {
        return ignored(format!(
            "no flight {} departing {} is registered",
            report.flight_number, report.scheduled_departure
        ));
    };
    let event = match report.event(&schedule, threshold) {
        Ok(event) => event,
        Err(why) => return ignored(why.to_string()),
    };
    let notification = Notification {
        flight: schedule.key(),
        event,
        reason: None,
    };
    let key = idempotency::for_notification(report.idempotency_key(), &notification);
    match notify(store, outbox, bus, &notification, Some(&key), limits).await {
        Ok(notified) => Ok(Received::Notified(notified)),
        Err(NotifyError::Store(e)) => Err(e),
        // The provider's answer is the same whatever the reason: acknowledged, no alert.
        Err(e) => ignored(e.to_string()),
    }
}
