//! Reporting a flight event: the alert is recorded (with its recipients in the delivery ledger,
//! the facts its SMS will state and an outbox entry) and its recipients handed out, in one
//! transaction, then put on the bus; whatever does not get there, the relay hands out later.

use chrono::{DateTime, Utc};
use flightwatch_domain::event::EventError;
use flightwatch_domain::ports::{
    AlertBus, Idempotency, Notifications, Outbox, Recorded, StoreError,
};
use flightwatch_domain::{
    Alert, AlertId, FlightKey, Notification, Publication, Refusal, SpendLimits,
};

use crate::relay;

/// What a notification came to.
#[derive(Debug)]
pub struct Notified {
    pub alert: Alert,
    /// `false` when it matched an existing alert: a duplicate event, or a replay of a request
    /// that itself matched one.
    pub created: bool,
    /// The idempotency key was seen before: this is the first answer again.
    pub replayed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("no flight {} departing {} is registered; register it with POST /flights first", .0.number, .0.date)]
    UnknownFlight(FlightKey),
    /// The event contradicts the flight (a delay that does not move it later).
    #[error(transparent)]
    Contradicts(#[from] EventError),
    /// The idempotency key was used before with a different request.
    #[error("this Idempotency-Key was already used with a different request")]
    KeyReused,
    /// A spend limit: too many alerts for the flight today, or the flight long gone.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a notification is checked against: the spend limits, at a moment; and the SMS budget
/// its recipients are handed out within.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub spend: SpendLimits,
    pub per_second: relay::PerSecond,
    pub now: DateTime<Utc>,
}

impl Limits {
    pub fn now(spend: SpendLimits, per_second: relay::PerSecond) -> Self {
        Self {
            spend,
            per_second,
            now: Utc::now(),
        }
    }
}

/// Records the event as an alert unless it repeats the flight's latest one or breaks a spend
/// limit, and publishes it. A key already seen is answered as the first request was, whatever
/// has changed since (the flight's schedule, say), and a reused key is refused before anything
/// else is looked at.
pub async fn notify(
    store: &dyn Notifications,
    outbox: &dyn Outbox,
    bus: &dyn AlertBus,
    notification: &Notification,
    idempotency: Option<&Idempotency>,
    limits: Limits,
) -> Result<Notified, NotifyError> {
    let earlier = match idempotency {
        Some(idem) => store.replay(idem).await?,
        None => None,
    };
    let (recorded, handed_out) = match earlier {
        Some(recorded) => (recorded, Vec::new()),
        None => {
            let schedule = store
                .schedule(&notification.flight)
                .await?
                .ok_or_else(|| NotifyError::UnknownFlight(notification.flight.clone()))?;
            notification.check(&schedule)?;
            notification.check_not_departed(&schedule, limits.now)?;
            // A new alert's recipients are handed out as it is recorded, in one commit.
            store
                .record_and_hand_out(
                    AlertId::new(),
                    notification,
                    idempotency,
                    &limits.spend,
                    relay::pass_limit(limits.per_second),
                    limits.per_second,
                )
                .await?
        }
    };
    let (mut alert, created, replayed) = match recorded {
        Recorded::Created(alert) => (alert, true, false),
        Recorded::Duplicate(alert) => (alert, false, false),
        Recorded::Replayed { alert, created } => (alert, created, true),
        Recorded::KeyReused => return Err(NotifyError::KeyReused),
        Recorded::Refused(refusal) => return Err(refusal.into()),
    };
    if !handed_out.is_empty() {
        // The alert is committed with its recipients out, unconfirmed: if this fails, the relay
        // hands them out again once the wait for a report is over.
        let now = Utc::now().max(limits.now);
        match relay::publish_claimed(outbox, bus, handed_out, now).await {
            // Published once every recipient is on the bus; a big alert under a budget is
            // handed out over several passes.
            Ok(on_the_bus) if on_the_bus == alert.recipients => {
                alert.publication = Publication::Published
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "alert left pending for the relay"),
        }
    }
    Ok(Notified {
        alert,
        created,
        replayed,
    })
}
