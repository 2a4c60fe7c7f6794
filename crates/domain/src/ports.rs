//! The ports: what the use cases need from the outside world, as traits shaped by use. Each
//! function gets only the ports it may use (flights: `FlightStore`; alerts: `AlertStore`, that is
//! `Notifications`, `AlertListing` and `Outbox`, and `AlertBus`; sms: `SmsSender` + `AlertBus` for
//! retries), mirroring each function's IAM and database grants; each use case takes only the
//! part it needs.

use std::time::Duration;

use async_trait::async_trait;

use crate::alert::{Alert, AlertId, AlertQuery};
use crate::contact::PhoneNumber;
use crate::delivery::{DeliveryCounts, DeliveryReport, RecipientDelivery};
use crate::event::Notification;
use crate::flight::{FlightKey, FlightRegistration, FlightSchedule, FlightSummary, Passenger};
use crate::limits::{Refusal, SpendLimits};
use crate::message::AlertMessage;

/// Whether a storage failure may pass by itself. The adapter decides, since only it knows its
/// database's error codes; callers decide what to do with it (503 and retry, or 500 and alarm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Connection refused or reset, timeouts, an exhausted pool, deadlocks and lock-wait
    /// timeouts after the adapter's own retries: the same call may succeed in a moment.
    Transient,
    /// A missing grant, a row that cannot be decoded, a broken invariant: retrying will not help.
    Permanent,
}

/// A storage failure. Its cause is for the log, never for the caller.
#[derive(Debug, thiserror::Error)]
#[error("storage failed ({fault:?})")]
pub struct StoreError {
    pub fault: Fault,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    pub fn transient(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            fault: Fault::Transient,
            source: e.into(),
        }
    }

    pub fn permanent(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            fault: Fault::Permanent,
            source: e.into(),
        }
    }

    pub fn is_transient(&self) -> bool {
        self.fault == Fault::Transient
    }
}

/// The outcome of registering a flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    pub flight: FlightSummary,
    /// `false` when the registration merged into an existing flight.
    pub created: bool,
}

/// Why a registration was not stored.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The merge would take the flight over `FlightRegistration::MAX_PASSENGERS`; nothing changed.
    #[error("the flight would hold {would_hold} passengers; a flight holds at most {max}")]
    Full { would_hold: u32, max: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The flights function's store: flights and their passengers.
#[async_trait]
pub trait FlightStore: Send + Sync {
    /// Inserts the flight, or merges into the existing one: passengers are upserted by phone.
    /// Re-registering an identical flight changes nothing, and neither does a merge that would
    /// take the flight over `FlightRegistration::MAX_PASSENGERS`.
    async fn register(&self, flight: &FlightRegistration) -> Result<Registered, RegisterError>;
    async fn find(
        &self,
        key: &FlightKey,
    ) -> Result<Option<(FlightSummary, Vec<Passenger>)>, StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
}

/// A caller's idempotency key with the fingerprint of the request it was first used for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

/// What recording a notification came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new alert, its recipients and its outbox entry were committed together.
    Created(Alert),
    /// The same event was already issued for this flight: nothing new was recorded.
    Duplicate(Alert),
    /// The idempotency key was seen with the same request: the first answer, again.
    Replayed { alert: Alert, created: bool },
    /// The idempotency key was seen with a different request.
    KeyReused,
    /// A new alert would break a spend limit: nothing was recorded, the key included.
    Refused(Refusal),
}

/// An alert whose publication is due, with all it takes to publish it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingAlert {
    pub alert: Alert,
    /// The flight as it was when the alert was recorded: every part and every retry says the
    /// same, whatever has been registered since.
    pub flight: FlightSchedule,
    pub recipients: Vec<PhoneNumber>,
    /// Publication attempts so far, this one included.
    pub attempts: u32,
    /// Messages of this alert already on the bus: a retry resumes after them, so no recipient
    /// of an earlier part is texted twice.
    pub parts_published: u32,
}

impl PendingAlert {
    pub fn messages(&self) -> Vec<AlertMessage> {
        AlertMessage::split(&self.alert, &self.flight, &self.recipients)
    }
}

/// What claiming a due outbox row came to.
#[derive(Debug)]
pub enum Claimed {
    Ready(PendingAlert),
    /// The row is leased but cannot be turned into messages (a value that does not decode, facts
    /// missing): the relay sets it aside and carries on with the others.
    Unreadable {
        seq: i64,
        error: StoreError,
    },
}

/// What notifying needs of the alerts function's store: the flight's schedule (through the
/// narrow view onto flights data), and recording an alert with its recipients, facts and outbox
/// entry in one transaction, or answering a key already seen.
#[async_trait]
pub trait Notifications: Send + Sync {
    async fn schedule(&self, flight: &FlightKey) -> Result<Option<FlightSchedule>, StoreError>;

    /// In one transaction: the alert, a recipient row per passenger of the flight now, and an
    /// outbox entry; or the existing alert for a duplicate event or a replayed key; or nothing
    /// when a new alert would exceed `limits`. Alerts of one flight form a chain (each names the
    /// one it follows, uniquely), so that concurrent requests cannot both pass the limits.
    async fn record(
        &self,
        id: AlertId,
        notification: &Notification,
        idempotency: Option<&Idempotency>,
        limits: &SpendLimits,
    ) -> Result<Recorded, StoreError>;

    /// The answer already given for an idempotency key: `Replayed` for the same request,
    /// `KeyReused` for another one, `None` for a key not seen yet.
    async fn replay(&self, idempotency: &Idempotency) -> Result<Option<Recorded>, StoreError>;
}

/// What listing issued alerts needs.
#[async_trait]
pub trait AlertListing: Send + Sync {
    /// Newest first; at most `query.limit` items, each with its recipients counted by state.
    async fn list(&self, query: &AlertQuery) -> Result<Vec<(Alert, DeliveryCounts)>, StoreError>;

    /// One alert with each recipient's delivery state.
    async fn details(
        &self,
        id: AlertId,
    ) -> Result<Option<(Alert, Vec<RecipientDelivery>)>, StoreError>;
}

/// The delivery ledger: what the alerts function learns from the sms function's reports.
#[async_trait]
pub trait DeliveryLedger: Send + Sync {
    /// Applies a report; returns how many recipients changed state. Idempotent, and a state
    /// never goes back: a report delivered twice, or late, changes nothing more (a recipient
    /// `SENT` stays sent; one `FAILED` may still turn `SENT` when a later attempt got through).
    async fn record_outcomes(&self, report: &DeliveryReport) -> Result<u64, StoreError>;
}

/// What publishing needs, right after a request and from the relay: the outbox's leases and
/// progress, and the housekeeping that rides on the relay's schedule.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Takes the lease on one alert's outbox entry if it is still unpublished and not leased, so
    /// that the request that created it and the relay never publish it at the same time.
    async fn claim(&self, id: AlertId, lease: Duration)
        -> Result<Option<PendingAlert>, StoreError>;

    /// Takes the lease on up to `limit` unpublished alerts whose lease has run out, oldest first,
    /// skipping those set aside. A row that cannot be read is returned as `Unreadable`, not as an
    /// error, so that one bad row does not stop the others.
    async fn claim_due(&self, limit: u32, lease: Duration) -> Result<Vec<Claimed>, StoreError>;

    /// Takes an unprocessable alert out of publication for good, recording why; it is listed as
    /// `Failed` from then on.
    async fn set_aside(&self, seq: i64, error: &str) -> Result<(), StoreError>;

    /// Records that the first `parts` messages of the alert are on the bus.
    async fn mark_progress(&self, id: AlertId, parts: u32) -> Result<(), StoreError>;

    async fn mark_published(&self, id: AlertId) -> Result<(), StoreError>;

    /// Gives the lease back with the alert still pending, due at once: a publisher out of time
    /// between two parts hands the rest to the next pass.
    async fn release(&self, id: AlertId) -> Result<(), StoreError>;

    /// Records a failed attempt; the alert stays pending and is due again after `retry_after`.
    async fn mark_failed(
        &self,
        id: AlertId,
        error: &str,
        retry_after: Duration,
    ) -> Result<(), StoreError>;

    /// Deletes idempotency keys older than `age`; returns how many. Their alerts stay.
    async fn forget_keys_older_than(&self, age: Duration) -> Result<u64, StoreError>;
}

/// The alerts function's whole store: alerts, their recipients and the delivery ledger,
/// idempotency keys and the outbox; and read-only access to flight schedules and passenger phones
/// through a narrow view.
#[async_trait]
pub trait AlertStore: Notifications + AlertListing + Outbox + DeliveryLedger {
    async fn ping(&self) -> Result<(), StoreError>;
}

/// A failure to hand a message to the bus.
#[derive(Debug, thiserror::Error)]
#[error("publishing to the alerts bus failed: {0}")]
pub struct BusError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The alerts bus (an SNS topic in AWS).
#[async_trait]
pub trait AlertBus: Send + Sync {
    async fn publish(&self, message: &AlertMessage) -> Result<(), BusError>;
}

/// One text to one phone.
#[derive(Clone, Debug)]
pub struct OutgoingSms {
    pub to: PhoneNumber,
    pub body: String,
    pub alert_id: AlertId,
}

/// Why an SMS was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Sending again will not help: invalid number, opted out.
    #[error("rejected: {0}")]
    Rejected(String),
    /// May succeed later: throttling, provider errors, timeouts.
    #[error("temporarily failed: {0}")]
    Transient(String),
}

/// Sends SMS (SNS `Publish` to a phone number in AWS; a file locally).
#[async_trait]
pub trait SmsSender: Send + Sync {
    /// The provider's message id on success.
    async fn send(&self, sms: &OutgoingSms) -> Result<String, SendError>;
}

/// Where the sms function reports what became of each recipient (an SNS topic the alerts
/// function subscribes to in AWS; the ledger itself locally).
#[async_trait]
pub trait DeliveryReports: Send + Sync {
    async fn report(&self, report: &DeliveryReport) -> Result<(), BusError>;
}
