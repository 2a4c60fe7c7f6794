//! The outbox relay, and getting recorded alerts onto the bus: right after the request that
//! created them, and again from the relay for any that did not make it. Nothing accepted is lost: an alert stays
//! pending until every one of its messages is on the bus.

use std::time::Duration;

use flightwatch_domain::ports::{AlertBus, BusError, Claimed, Outbox, PendingAlert, StoreError};
use flightwatch_domain::AlertId;

/// How long a publisher holds an alert before another may take it over: far longer than a
/// publish takes, short enough that a crashed publisher delays an alert by seconds, not hours.
pub const LEASE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// When a failed alert is due again: 5 s, 10 s, 20 s, ... at most 5 min.
pub fn retry_after(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(6);
    Duration::from_secs(5 * (1 << exp)).min(Duration::from_secs(300))
}

/// Publishes one alert now if nobody else is. `Ok(true)` when it is on the bus.
pub async fn publish_now(
    store: &dyn Outbox,
    bus: &dyn AlertBus,
    id: AlertId,
) -> Result<bool, PublishError> {
    match store.claim(id, LEASE).await? {
        Some(pending) => publish(store, bus, pending, None)
            .await
            .map(|p| p == Published::Whole),
        None => Ok(false),
    }
}

/// How far a publication got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    Whole,
    /// Out of time between two parts: the parts on the bus are recorded and the lease released,
    /// so the next relay pass resumes after them instead of a timeout stopping it mid-part.
    Paused {
        parts_published: u32,
    },
}

/// Publishes a claimed alert's remaining messages, recording progress after each, and starting
/// no part after `deadline` (the first part always goes: a pass must make progress).
#[tracing::instrument(skip_all, fields(alert_id = %pending.alert.id, attempt = pending.attempts, recipients = pending.recipients.len()))]
pub async fn publish(
    store: &dyn Outbox,
    bus: &dyn AlertBus,
    pending: PendingAlert,
    deadline: Option<tokio::time::Instant>,
) -> Result<Published, PublishError> {
    let id = pending.alert.id;
    let messages = pending.messages();
    let parts = messages.len() as u32;
    for (n, message) in messages
        .iter()
        .enumerate()
        .skip(pending.parts_published as usize)
    {
        let started_one = n > pending.parts_published as usize;
        if started_one && deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            let parts_published = n as u32;
            store.release(id).await?;
            tracing::info!(
                parts_published,
                parts,
                "out of time between parts; the next pass resumes"
            );
            return Ok(Published::Paused { parts_published });
        }
        let published = match tokio::time::timeout(PUBLISH_TIMEOUT, bus.publish(message)).await {
            Ok(result) => result,
            Err(_) => Err(BusError("publishing timed out".into())),
        };
        if let Err(e) = published {
            tracing::warn!(error = %e, part = message.part, "publish failed; the alert stays pending");
            store
                .mark_failed(id, &e.to_string(), retry_after(pending.attempts))
                .await?;
            return Err(e.into());
        }
        if message.part < parts {
            store.mark_progress(id, message.part).await?;
        }
    }
    store.mark_published(id).await?;
    tracing::info!(parts, "alert published");
    Ok(Published::Whole)
}

/// What one relay pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayReport {
    pub published: u32,
    /// Alerts stopped between two parts by the time budget; the next pass resumes them.
    pub paused: u32,
    /// Publishes that failed: those alerts stay pending and are retried with backoff.
    pub failed: u32,
    /// Rows that could not be processed at all, set aside as failed publications.
    pub set_aside: u32,
}

/// How long one publish may take before it counts as failed: several of them fit in a lease.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// One pass of the outbox relay: publishes due alerts one at a time (each claimed just before it
/// is published, so no lease runs out while it waits its turn), at most `batch` of them, and
/// starts no new alert, nor a further part of a big one, after `budget`: in Lambda, well inside
/// the function's timeout.
pub async fn relay(
    store: &dyn Outbox,
    bus: &dyn AlertBus,
    batch: u32,
    budget: Duration,
) -> Result<RelayReport, StoreError> {
    let started = tokio::time::Instant::now();
    let deadline = started + budget;
    let mut report = RelayReport::default();
    for _ in 0..batch {
        if started.elapsed() >= budget {
            break;
        }
        let pending = match store.claim_due(1, LEASE).await?.pop() {
            None => break,
            Some(Claimed::Ready(pending)) => pending,
            Some(Claimed::Unreadable { seq, error }) => {
                set_aside(store, seq, &error).await?;
                report.set_aside += 1;
                continue;
            }
        };
        let seq = pending.alert.seq;
        match publish(store, bus, pending, Some(deadline)).await {
            Ok(Published::Whole) => report.published += 1,
            Ok(Published::Paused { .. }) => {
                report.paused += 1;
                break;
            }
            Err(PublishError::Bus(_)) => report.failed += 1,
            // A fault of this row's own (it cannot be written back, say) must not block the
            // others; a store that is down stops the pass, and the next one resumes.
            Err(PublishError::Store(e)) if !e.is_transient() => {
                set_aside(store, seq, &e).await?;
                report.set_aside += 1;
            }
            Err(PublishError::Store(e)) => return Err(e),
        }
    }
    // Housekeeping rides on the relay's schedule, after publication and never in its way.
    if let Err(e) = store
        .forget_keys_older_than(crate::idempotency::KEY_RETENTION)
        .await
    {
        tracing::error!(error = %flightwatch_domain::error_chain(&e), "expiring idempotency keys failed");
    }
    Ok(report)
}

async fn set_aside(store: &dyn Outbox, seq: i64, error: &StoreError) -> Result<(), StoreError> {
    let why = flightwatch_domain::error_chain(error);
    tracing::error!(alert_seq = seq, error = %why, "outbox row set aside: it cannot be published");
    store.set_aside(seq, &why).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_up_to_five_minutes() {
        let waits: Vec<u64> = (1..=9).map(|a| retry_after(a).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    }
}
