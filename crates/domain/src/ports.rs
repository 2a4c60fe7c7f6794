//! The ports: what the use cases need from the outside world, as traits shaped by use. Each
//! function gets only the ports it may use (flights: `FlightStore` and `FlightAnnouncements`;
//! alerts: `AlertStore`, that is `Notifications`, `AlertListing`, `DeliveryLedger` and `Outbox`,
//! and `AlertBus`; sms: `SmsSender`, `SmsClaims` and `DeliveryReports`; watch:
//! `FlightWatcher`), mirroring each function's IAM and database grants; each use case takes only
//! the part it needs.

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::alert::{Alert, AlertId, AlertQuery};
use crate::contact::PhoneNumber;
use crate::delivery::{CarrierOutcome, DeliveryCounts, DeliveryReport, RecipientDelivery};
use crate::event::Notification;
use crate::flight::{
    FlightKey, FlightNumber, FlightRegistration, FlightSchedule, FlightSummary, Passenger,
};
use crate::limits::{Refusal, SpendLimits};
use crate::message::AlertMessage;
use crate::watch::{FlightRegistered, ProviderError, Watch, WatchRequest};

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
    /// The flight is stored, but its announcement (for the flight-status provider to watch it)
    /// did not go: the same request again changes nothing and announces it.
    #[error("the flight is registered, but announcing it failed")]
    NotAnnounced(#[source] BusError),
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

/// Recipients of one alert handed out for one attempt, with all it takes to text them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handout {
    pub alert: Alert,
    /// The flight as it was when the alert was recorded: every message and every attempt says
    /// the same, whatever has been registered since.
    pub flight: FlightSchedule,
    pub attempt: u32,
    pub recipients: Vec<PhoneNumber>,
    /// Under a paced budget: the first of the send slots reserved for these recipients, and
    /// the budget.
    pub pace: Option<(DateTime<Utc>, NonZeroU32)>,
}

impl Handout {
    pub fn messages(&self) -> Vec<AlertMessage> {
        AlertMessage::split_paced(
            &self.alert,
            &self.flight,
            self.attempt,
            &self.recipients,
            self.pace,
        )
    }
}

/// What handing out an alert's due recipients came to.
#[derive(Debug)]
pub enum Claimed {
    Ready(Handout),
    /// The alert cannot be turned into messages (a value that does not decode, facts missing):
    /// the relay sets it aside and carries on with the others.
    Unreadable {
        seq: i64,
        error: StoreError,
    },
}

/// What one settling pass changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Handed out, taken by the bus, never reported on: failed as `OutcomeUnknown`.
    pub unknown: u64,
    /// Handed out without the bus acknowledging it, never reported on: due again.
    pub unconfirmed: u64,
    /// Still pending at their alert's deadline: failed as `Expired`.
    pub expired: u64,
}

/// What notifying needs of the alerts function's store: the flight's schedule (through the
/// narrow view onto flights data), and recording an alert with its recipients, facts and outbox
/// entry in one transaction, or answering a key already seen.
#[async_trait]
pub trait Notifications: Send + Sync {
    async fn schedule(&self, flight: &FlightKey) -> Result<Option<FlightSchedule>, StoreError>;

    /// The registered flight with this number scheduled to depart at this instant, as a
    /// flight-status provider names a flight.
    async fn flight_departing(
        &self,
        number: &FlightNumber,
        at: DateTime<Utc>,
    ) -> Result<Option<FlightSchedule>, StoreError>;

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

    /// `record`, and when it creates the alert, its recipients handed out in the same
    /// transaction, as `Outbox::hand_out` would hand them out right after it (at most `limit`,
    /// within the budget of `per_second`): a notification commits once, not twice, before its
    /// messages go on the bus. Nothing is handed out for any other answer.
    async fn record_and_hand_out(
        &self,
        id: AlertId,
        notification: &Notification,
        idempotency: Option<&Idempotency>,
        limits: &SpendLimits,
        limit: u32,
        per_second: Option<NonZeroU32>,
    ) -> Result<(Recorded, Vec<Claimed>), StoreError>;

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

/// The delivery ledger: what the alerts function learns from the sms function's reports and
/// from the carrier. Every change is made as of `now`, which the caller passes, so that the
/// timing rules are tested on a simulated clock.
#[async_trait]
pub trait DeliveryLedger: Send + Sync {
    /// Applies a report; returns how many recipients changed. Idempotent, and a settled state
    /// never goes back to pending: a report delivered twice, or late, changes nothing more (a
    /// recipient failed may still turn `SENT` when the report proves it was texted). A `Retry`
    /// makes the recipient due after the backoff; `Untried`, due at once with no attempt used.
    async fn record_outcomes(
        &self,
        report: &DeliveryReport,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Applies what the carrier said of SMS sent: `SENT` becomes `DELIVERED`, or `FAILED`
    /// (`Undelivered`). Returns how many recipients changed.
    async fn record_carrier(
        &self,
        outcomes: &[CarrierOutcome],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// How far ahead send slots are reserved: the relay's interval, so that what one pass hands out
/// is sent before the next.
pub const PACE_WINDOW: Duration = Duration::from_secs(60);

/// Handing recipients out to the bus, from the ledger: right after a request and from the
/// scheduled relay, with the housekeeping that rides on the relay's schedule.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Ends the waits that are over at `now`: a hand-out the bus took and nobody reported on
    /// is failed as `OutcomeUnknown` (never texted twice); one the bus did not acknowledge is
    /// due again; recipients still pending at their alert's deadline are failed as `Expired`.
    async fn settle(&self, now: DateTime<Utc>) -> Result<Settled, StoreError>;

    /// Hands out up to `limit` recipients due at `now` (of `alert`, or of any alert, oldest
    /// first), each counted as an attempt and waiting, unconfirmed, for the bus; in one
    /// transaction, so two publishers never hand out the same recipient. Grouped by alert and
    /// attempt. Under a budget of `per_second`, no more than fit in the send slots free until
    /// `PACE_WINDOW` after `now`, and those slots are reserved (each hand-out says its first).
    /// An alert that cannot be read comes back as `Unreadable`, not as an error, so that one
    /// bad row does not stop the others.
    async fn hand_out(
        &self,
        alert: Option<AlertId>,
        limit: u32,
        per_second: Option<NonZeroU32>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// The bus took these recipients' message (of the alert stored as `seq`, which a hand-out
    /// carries): they now wait for the sms function's report. The alert is marked published
    /// once all its recipients have been on the bus.
    async fn confirm(
        &self,
        seq: i64,
        attempt: u32,
        recipients: &[PhoneNumber],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Takes an unprocessable alert out of publication for good, recording why: it is listed as
    /// `Failed`, and its recipients still pending fail as `NotPublished`.
    async fn set_aside(&self, seq: i64, error: &str, now: DateTime<Utc>) -> Result<(), StoreError>;

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

/// A failure to hand a message to a bus (an SNS topic in AWS).
#[derive(Debug, thiserror::Error)]
#[error("publishing to the bus failed: {0}")]
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

/// The sms function's own record of the recipients it has taken on (an S3 prefix in AWS, written
/// with a create-only condition): the bus may deliver a message twice, and Lambda retries an
/// invocation that crashed half-way; only the first claim of a recipient may text it.
#[async_trait]
pub trait SmsClaims: Send + Sync {
    /// Claims the message's `index`-th recipient: `New` for the first claim, `Taken` for any
    /// later one, with the provider's message id if the first claimant recorded it. Keyed by the
    /// message's hand-out and the index, never by the phone.
    async fn claim(&self, message: &AlertMessage, index: usize) -> Result<Claim, BusError>;

    /// Records on the claim that the SMS went, so that a later delivery can report it as sent
    /// rather than unknown.
    async fn record_sent(
        &self,
        message: &AlertMessage,
        index: usize,
        message_id: &str,
    ) -> Result<(), BusError>;
}

/// What claiming a recipient came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    New,
    /// Claimed before; `Some` with the provider's message id once that claimant sent the SMS.
    Taken(Option<String>),
}

/// Where the sms function reports what became of each recipient (an SNS topic the alerts
/// function subscribes to in AWS; the ledger itself locally).
#[async_trait]
pub trait DeliveryReports: Send + Sync {
    async fn report(&self, report: &DeliveryReport) -> Result<(), BusError>;
}

/// Where the flights function announces registrations (the flight events topic in AWS; the
/// watch use case in-process locally), so that a flight-status provider can be asked to watch
/// them without the flights function calling out of the VPC.
#[async_trait]
pub trait FlightAnnouncements: Send + Sync {
    async fn registered(&self, message: &FlightRegistered) -> Result<(), BusError>;
}

/// A flight-status provider's watches (FlightAware AeroAPI alerts; AeroDataBox's web-hook
/// subscriptions would fit the same shape): what happens to a watched flight is pushed to the
/// feed endpoint the provider is configured with.
#[async_trait]
pub trait FlightWatcher: Send + Sync {
    /// Every watch on the account, ours or not.
    async fn watching(&self) -> Result<Vec<Watch>, ProviderError>;
    /// Starts a watch; returns its id.
    async fn watch(&self, request: &WatchRequest) -> Result<String, ProviderError>;
    /// Ends a watch; one already gone is not an error.
    async fn unwatch(&self, id: &str) -> Result<(), ProviderError>;
}
