//! Passenger contact data. Phone numbers and emails are personal data: their `Debug` and
//! `Display` are masked, so a stray `{:?}` in a log line cannot leak them; the clear value is only
//! reachable through an explicit `expose()`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A phone number in E.164 form (`+` then 8 to 15 digits, no leading zero).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let digits = raw
            .strip_prefix('+')
            .ok_or("must be in E.164 form, starting with + and the country code")?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must contain only digits after the +, with no spaces or punctuation");
        }
        if !(8..=15).contains(&digits.len()) {
            return Err("must have 8 to 15 digits after the +");
        }
        if digits.starts_with('0') {
            return Err("country code cannot start with 0");
        }
        Ok(Self(raw.to_owned()))
    }

    /// The clear number, for the SMS sender and storage only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `+1415•••0100`: enough to tell numbers apart in a log, not enough to call one.
    pub fn masked(&self) -> String {
        let keep_head = if self.0.len() >= 12 { 5 } else { 3 };
        format!("{}•••{}", &self.0[..keep_head], &self.0[self.0.len() - 4..])
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// On the alerts bus the number travels in clear: the sms function has no other way to reach it.
impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Masks anything that looks like a phone number (`+` and 7 or more digits) in free text, such
/// as an error message from an SMS provider that quotes the number it refused.
pub fn redact_phone_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '+' {
            let digits = text[i + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .count();
            if digits >= 7 {
                out.push_str("+•••");
                for _ in 0..digits {
                    chars.next();
                }
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// A plausible email address: one `@`, a non-empty local part, a dotted domain, no spaces.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.len() > 254 {
            return Err("must be at most 254 characters");
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces");
        }
        let (local, domain) = raw.split_once('@').ok_or("must contain an @")?;
        if local.is_empty() || local.len() > 64 {
            return Err("must have 1 to 64 characters before the @");
        }
        if domain.contains('@') {
            return Err("must contain exactly one @");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let valid_label = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(valid_label) {
            return Err("must have a domain such as example.com after the @");
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `a•••@example.com`
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or(("", &self.0));
        let first: String = local.chars().take(1).collect();
        format!("{first}•••@{domain}")
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

/// A passenger's name as written on the ticket: 1 to 100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassengerName(String);

impl PassengerName {
    /// Limits apply to the name as sent (as `openapi.yaml` states them), then it is trimmed.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.chars().count() > 100 {
            return Err("must be at most 100 characters");
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        let name = raw.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if name.is_empty() {
            return Err("must not be empty");
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_follow_e164() {
        let cases = [
            ("+14155550100", true),
            ("+447911123456", true),
            ("+8613800138000", true),
            ("+12345678", true),
            ("14155550100", false),
            ("+1 415 555 0100", false),
            ("+1-415-555-0100", false),
            ("+04155550100", false),
            ("+1234567", false),
            ("+1234567890123456", false),
            ("", false),
            ("+", false),
            ("+١٤١٥٥٥٥٠١٠٠", false),
        ];
        for (raw, ok) in cases {
            assert_eq!(PhoneNumber::parse(raw).is_ok(), ok, "case {raw:?}");
        }
    }

    #[test]
    fn phone_numbers_never_print_in_clear() {
        let phone = PhoneNumber::parse("+14155550100").unwrap();
        assert_eq!(phone.masked(), "+1415•••0100");
        assert_eq!(format!("{phone}"), "+1415•••0100");
        assert!(!format!("{phone:?}").contains("5550100"));
        let short = PhoneNumber::parse("+12345678").unwrap();
        assert_eq!(short.masked(), "+12•••5678");
    }

    #[test]
    fn phone_numbers_are_redacted_from_free_text() {
        assert_eq!(
            redact_phone_numbers(
                "Invalid parameter: PhoneNumber Reason: +14155550100 is not valid"
            ),
            "Invalid parameter: PhoneNumber Reason: +••• is not valid"
        );
        assert_eq!(
            redact_phone_numbers("UA123 +1 day, +123"),
            "UA123 +1 day, +123"
        );
        assert_eq!(
            redact_phone_numbers("+447911123456+14155550100"),
            "+•••+•••"
        );
    }

    #[test]
    fn emails_must_be_plausible() {
        let cases = [
            ("ada@example.com", true),
            ("a.b+tag@mail.example.co.uk", true),
            ("ada@localhost", false),
            ("ada.example.com", false),
            ("@example.com", false),
            ("ada@@example.com", false),
            ("ada@exa mple.com", false),
            ("ada@example..com", false),
            ("ada@-example.com", false),
            ("", false),
        ];
        for (raw, ok) in cases {
            assert_eq!(Email::parse(raw).is_ok(), ok, "case {raw:?}");
        }
    }

    #[test]
    fn emails_are_masked_for_display() {
        let email = Email::parse("ada@example.com").unwrap();
        assert_eq!(email.masked(), "a•••@example.com");
        assert!(!format!("{email:?}").contains("ada@"));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PassengerName::parse("  Ada  ").unwrap().as_str(), "Ada");
        assert!(PassengerName::parse("   ").is_err());
        assert!(PassengerName::parse(&"x".repeat(101)).is_err());
        assert!(PassengerName::parse("Ada\u{0}").is_err());
        assert!(PassengerName::parse("李小龍").is_ok());
    }
}
