//! Handing recipients out to the bus from the delivery ledger: what the request that recorded an
//! alert handed out with it, and from the scheduled relay for whoever is due again (a retry after
//! its backoff, a hand-out the bus never acknowledged, a recipient the sms function had no time
//! for). Each pass hands out at most what the SMS budget can send before the next pass, so the
//! sms function (one invocation at a time) is never given more than it may send.

use std::time::Duration;

use chrono::{DateTime, Utc};
use flightwatch_domain::ports::{AlertBus, BusError, Claimed, Handout, Outbox, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long one publish may take before it counts as failed (its hand-out unconfirmed).
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the relay runs (EventBridge's schedule in `serverless.yml`, the local timer): the
/// ledger reserves send slots as far ahead (`PACE_WINDOW`).
pub const PASS_EVERY: Duration = flightwatch_domain::ports::PACE_WINDOW;

/// Recipients handed out per pass when sends are not paced.
pub const UNPACED_LIMIT: u32 = 2000;

/// The SMS budget, in messages a second; `None`: unpaced.
pub type PerSecond = Option<std::num::NonZeroU32>;

/// How many recipients one pass may hand out at most: what the SMS budget sends until the next
/// pass (the ledger's reserved slots may leave fewer).
pub fn pass_limit(per_second: PerSecond) -> u32 {
    per_second.map_or(UNPACED_LIMIT, |n| {
        n.get().saturating_mul(PASS_EVERY.as_secs() as u32)
    })
}

/// Publishes what the request that recorded an alert handed out with it.
/// Returns how many recipients are on the bus.
pub async fn publish_claimed(
    store: &dyn Outbox,
    bus: &dyn AlertBus,
    claimed: Vec<Claimed>,
    now: DateTime<Utc>,
) -> Result<u32, PublishError> {
    let mut on_the_bus = 0;
    for claimed in claimed {
        // An unreadable alert is set aside by the relay's pass.
        if let Claimed::Ready(handout) = claimed {
            publish(store, bus, &handout, now).await?;
            on_the_bus += handout.recipients.len() as u32;
        }
    }
    Ok(on_the_bus)
}

/// Publishes a hand-out's messages, confirming each one the bus takes. A message the bus
/// refuses, or does not answer in time, stays unconfirmed: the ledger hands it out again once
/// the wait for a report is over, unless the sms function reports on it first.
#[tracing::instrument(skip_all, fields(alert_id = %handout.alert.id, attempt = handout.attempt, recipients = handout.recipients.len()))]
pub async fn publish(
    store: &dyn Outbox,
    bus: &dyn AlertBus,
    handout: &Handout,
    now: DateTime<Utc>,
) -> Result<(), PublishError> {
    for message in handout.messages() {
        let published = match tokio::time::timeout(PUBLISH_TIMEOUT, bus.publish(&message)).await {
            Ok(result) => result,
            Err(_) => Err(BusError("publishing timed out".into())),
        };
        if let Err(e) = published {
            tracing::warn!(error = %e, part = message.part, "publish failed; the hand-out waits for a report, then goes again");
            return Err(e.into());
        }
        store
            .confirm(handout.alert.seq, handout.attempt, &message.recipients, now)
            .await?;
    }
    tracing::info!("recipients handed out");
    Ok(())
}

/// What one relay pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayReport {
    /// Recipients handed out and on the bus.
    pub handed_out: u32,
    /// Hand-outs the bus did not take: they go again after the wait.
    pub failed: u32,
    /// Alerts that could not be processed at all, set aside as failed publications.
    pub set_aside: u32,
    /// Recipients failed for want of a report, or past their alert's deadline.
    pub given_up: u64,
}

/// One relay pass at `now`: ends the waits that are over, then hands out the due recipients
/// that fit in the SMS budget until the next pass, starting no hand-out after `budget` (in
/// Lambda, well inside the function's timeout).
pub async fn relay(
    store: &dyn Outbox,
    bus: &dyn AlertBus,
    per_second: PerSecond,
    budget: Duration,
    now: DateTime<Utc>,
) -> Result<RelayReport, StoreError> {
    let limit = pass_limit(per_second);
    let started = tokio::time::Instant::now();
    let mut report = RelayReport::default();
    let settled = store.settle(now).await?;
    report.given_up = settled.unknown + settled.expired;
    if settled != Default::default() {
        tracing::info!(?settled, "waits ended");
    }
    let mut left = limit;
    'passes: while left > 0 && started.elapsed() < budget {
        let claimed = store.hand_out(None, left.min(500), per_second, now).await?;
        if claimed.is_empty() {
            break;
        }
        for c in claimed {
            let handout = match c {
                Claimed::Ready(handout) => handout,
                Claimed::Unreadable { seq, error } => {
                    set_aside(store, seq, &error, now).await?;
                    report.set_aside += 1;
                    continue;
                }
            };
            let n = handout.recipients.len() as u32;
            left = left.saturating_sub(n);
            match publish(store, bus, &handout, now).await {
                Ok(()) => report.handed_out += n,
                // The bus is down: the rest would fail alike, and waits its turn.
                Err(PublishError::Bus(_)) => {
                    report.failed += 1;
                    break 'passes;
                }
                Err(PublishError::Store(e)) => return Err(e),
            }
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

async fn set_aside(
    store: &dyn Outbox,
    seq: i64,
    error: &StoreError,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let why = flightwatch_domain::error_chain(error);
    tracing::error!(alert_seq = seq, error = %why, "alert set aside: it cannot be published");
    store.set_aside(seq, &why, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_hands_out_what_the_budget_sends_before_the_next() {
        assert_eq!(pass_limit(std::num::NonZeroU32::new(3)), 180);
        assert_eq!(pass_limit(None), UNPACED_LIMIT);
    }
}
