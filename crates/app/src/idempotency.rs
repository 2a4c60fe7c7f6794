//! Idempotency, in one place: what an `Idempotency-Key` may be, and which requests count as the
//! same request. The stores keep the keys (24 hours, expired by the relay) and answer a replay
//! with the first answer; `notify` asks them before anything else.

use flightwatch_domain::ports::Idempotency;
use flightwatch_domain::{Notification, Reason};
use sha2::{Digest, Sha256};

/// How long an Idempotency-Key is remembered: ample for any client's retries. After that the
/// same request is still not sent twice — it is a duplicate of the flight's latest alert.
pub const KEY_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Parses a key: 1 to 255 visible ASCII characters, compared exactly.
pub fn parse_key(raw: &str) -> Result<String, &'static str> {
    if raw.is_empty() || raw.len() > 255 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be 1 to 255 visible ASCII characters");
    }
    Ok(raw.to_owned())
}

/// The request's identity: what it asks for, not how it is spelled (the same new time in
/// another offset is the same request).
pub fn fingerprint(n: &Notification) -> String {
    let canonical = format!(
        "v1|{}|{}|{}",
        n.flight.id(),
        n.event.dedup_key(),
        n.reason.as_ref().map(Reason::as_str).unwrap_or_default()
    );
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A key with the fingerprint of the notification it was sent with.
pub fn for_notification(key: String, n: &Notification) -> Idempotency {
    Idempotency {
        key,
        fingerprint: fingerprint(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flightwatch_domain::flight::parse_time;
    use flightwatch_domain::FlightEvent;

    fn delayed_to(t: &str) -> Notification {
        Notification {
            flight: "UA123-2026-12-01".parse().unwrap_or_else(|e| panic!("{e}")),
            event: FlightEvent::Delayed {
                estimated_departure: parse_time(t).unwrap_or_else(|e| panic!("{e}")),
            },
            reason: Reason::parse("Late").ok(),
        }
    }

    #[test]
    fn the_same_request_in_another_offset_has_the_same_fingerprint() {
        assert_eq!(
            fingerprint(&delayed_to("2026-12-01T10:30:00-08:00")),
            fingerprint(&delayed_to("2026-12-01T18:30:00Z"))
        );
        assert_ne!(
            fingerprint(&delayed_to("2026-12-01T10:30:00-08:00")),
            fingerprint(&delayed_to("2026-12-01T10:45:00-08:00"))
        );
    }

    #[test]
    fn keys_are_visible_ascii_up_to_255_bytes() {
        assert!(parse_key("ops-4711").is_ok());
        assert!(parse_key("").is_err());
        assert!(parse_key("a b").is_err());
        assert!(parse_key("é").is_err());
        assert!(parse_key(&"k".repeat(256)).is_err());
    }
}
