//! flightwatch's domain: the types every function shares, parsed once at the edge so that an
//! invalid flight number, phone or time can never reach storage or an SMS; the rules that need no
//! I/O (merge identity, event checks, SMS text); and the ports that adapters implement.

pub mod alert;
pub mod contact;
pub mod delivery;
pub mod event;
pub mod feed;
pub mod flight;
pub mod limits;
pub mod message;
pub mod ports;
pub mod text;
pub mod watch;

pub use alert::{Alert, AlertId, AlertQuery, Publication};
pub use contact::{redact_phone_numbers, Email, PassengerName, PhoneNumber};
pub use delivery::{
    CarrierOutcome, DeliveryCounts, DeliveryReport, DeliveryState, FailureClass, Outcome,
    RecipientDelivery, RecipientOutcome,
};
pub use event::{EventKind, FlightEvent, Notification, Reason};
pub use flight::{
    parse_date, AirportCode, DateError, DepartureDate, FlightIdError, FlightKey, FlightNumber,
    FlightRegistration, FlightSchedule, Passenger,
};
pub use limits::{Refusal, SpendLimits};
pub use message::AlertMessage;
pub use text::{Encoding, SmsText};

/// An error with all its causes on one line (`outer: cause: root cause`), for logs and for the
/// error fields of stored records: the one place the chain is walked.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
