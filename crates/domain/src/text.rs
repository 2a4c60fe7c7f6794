//! The SMS text for an alert. Every text is one SMS segment: at most 160 GSM-7 characters, or 70
//! UCS-2 code units when the reason really needs a character GSM-7 lacks. The facts (flight,
//! route, date, event, times) always fit; only the reason is shortened.

use chrono::{DateTime, FixedOffset};

use crate::event::EventKind;
use crate::message::AlertMessage;

/// How the text is encoded on the air, which decides how long one segment may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    /// Characters (GSM-7 septets, or UTF-16 code units) in one segment.
    pub fn segment_limit(self) -> usize {
        match self {
            Self::Gsm7 => 160,
            Self::Ucs2 => 70,
        }
    }

    /// The length of `text` in this encoding, or `None` if GSM-7 cannot carry it.
    pub fn length(self, text: &str) -> Option<usize> {
        match self {
            Self::Gsm7 => text.chars().map(gsm7_septets).sum(),
            Self::Ucs2 => Some(text.encode_utf16().count()),
        }
    }
}

/// The GSM 03.38 basic character set (escape excluded).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters of the extension table, sent as escape + character (two septets).
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{c}";

fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Replaces characters GSM-7 lacks by their nearest GSM-7 spelling where one exists: typographic
/// quotes and dashes, and Latin letters with accents GSM-7 does not carry.
fn to_gsm7(text: &str) -> String {
    const MAP: &[(&str, &str)] = &[
        ("‘’‚‛`´′", "'"),
        ("“”„‟″«»", "\""),
        ("‐‑‒–—―−", "-"),
        ("\u{a0}\u{2009}\u{202f}", " "),
        ("áâãā", "a"),
        ("ÁÂÃÀĀ", "A"),
        ("êëē", "e"),
        ("ÊËÈĒ", "E"),
        ("íîïī", "i"),
        ("ÍÎÏÌĪ", "I"),
        ("óôõō", "o"),
        ("ÓÔÕÒŌ", "O"),
        ("úûū", "u"),
        ("ÚÛÙŪ", "U"),
        ("ç", "c"),
        ("ýÿ", "y"),
        ("Ý", "Y"),
        ("ł", "l"),
        ("Ł", "L"),
        ("ń", "n"),
        ("śš", "s"),
        ("ŚŠ", "S"),
        ("źżž", "z"),
        ("ŹŻŽ", "Z"),
        ("č", "c"),
        ("Č", "C"),
        ("ř", "r"),
        ("Ř", "R"),
        ("ď", "d"),
        ("ť", "t"),
        ("ě", "e"),
        ("ů", "u"),
        ("œ", "oe"),
        ("Œ", "OE"),
    ];
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '…' {
            out.push_str("...");
        } else if let Some((_, to)) = MAP.iter().find(|(from, _)| from.contains(c)) {
            out.push_str(to);
        } else {
            out.push(c);
        }
    }
    out
}

/// A text ready to send, with the encoding that keeps it in one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsText {
    body: String,
    encoding: Encoding,
}

impl SmsText {
    /// Fewer reason characters than this are noise: the reason is left out instead.
    const MIN_REASON: usize = 8;

    /// `UA123 SFO-JFK 1 Dec: DELAYED, now departs 10:30 (was 08:05). Reason: Late inbound aircraft`
    pub fn for_alert(m: &AlertMessage) -> Self {
        let facts = facts(m);
        let Some(reason) = &m.reason else {
            return Self::gsm7(facts);
        };
        let reason = to_gsm7(reason.as_str());
        if Encoding::Gsm7.length(&reason).is_some() {
            let body = with_reason(&facts, &reason, Encoding::Gsm7).unwrap_or(facts);
            return Self::gsm7(body);
        }
        // A few stray symbols (an emoji, say) are dropped rather than cost 90 characters; a
        // reason mostly in another script goes as UCS-2 when some of it fits in 70, and as what
        // GSM-7 can carry of it otherwise: a shortened reason beats none.
        let kept: String = reason
            .chars()
            .filter(|&c| gsm7_septets(c).is_some())
            .collect();
        let kept = kept.split_whitespace().collect::<Vec<_>>().join(" ");
        let mostly_kept = kept.chars().count() * 10 >= reason.chars().count() * 9;
        if !mostly_kept {
            if let Some(body) = with_reason(&facts, &reason, Encoding::Ucs2) {
                return Self {
                    body,
                    encoding: Encoding::Ucs2,
                };
            }
        }
        let has_words = kept.chars().any(char::is_alphanumeric);
        let body = has_words
            .then(|| with_reason(&facts, &kept, Encoding::Gsm7))
            .flatten()
            .unwrap_or(facts);
        Self::gsm7(body)
    }

    fn gsm7(body: String) -> Self {
        Self {
            body,
            encoding: Encoding::Gsm7,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.body
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    pub fn into_string(self) -> String {
        self.body
    }
}

/// Flight, route, local date, what happened and the new local time: never shortened.
fn facts(m: &AlertMessage) -> String {
    let scheduled = m.flight.scheduled_departure;
    let head = format!(
        "{} {}-{} {}:",
        m.flight.flight_number,
        m.flight.origin,
        m.flight.destination,
        scheduled.format("%-d %b")
    );
    match (m.event, m.estimated_departure) {
        (EventKind::Delayed, Some(estimated)) => {
            let local = estimated.with_timezone(scheduled.offset());
            format!(
                "{head} DELAYED, now departs {} (was {}).",
                local_time(local, scheduled),
                scheduled.format("%H:%M")
            )
        }
        (EventKind::Delayed, None) => format!("{head} DELAYED."),
        (EventKind::Cancelled, _) => format!("{head} CANCELLED."),
    }
}

/// The new time at the origin; with its date when the delay crosses midnight.
fn local_time(new: DateTime<FixedOffset>, scheduled: DateTime<FixedOffset>) -> String {
    if new.date_naive() == scheduled.date_naive() {
        new.format("%H:%M").to_string()
    } else {
        new.format("%-d %b %H:%M").to_string()
    }
}

/// `facts Reason: reason`, the reason cut at a word boundary to fit one segment.
fn with_reason(facts: &str, reason: &str, encoding: Encoding) -> Option<String> {
    let len = |s: &str| encoding.length(s).unwrap_or(usize::MAX);
    let limit = encoding.segment_limit();
    let full = format!("{facts} Reason: {reason}");
    if len(&full) <= limit {
        return Some(full);
    }
    let ellipsis = match encoding {
        Encoding::Gsm7 => "...",
        Encoding::Ucs2 => "…",
    };
    let budget = limit.checked_sub(len(facts) + len(" Reason: ") + len(ellipsis))?;
    if budget < SmsText::MIN_REASON {
        return None;
    }
    let mut cut = String::new();
    for c in reason.chars() {
        let mut next = cut.clone();
        next.push(c);
        if len(&next) > budget {
            break;
        }
        cut = next;
    }
    // Prefer ending on a whole word, unless that throws away most of what fits.
    if let Some(space) = cut.rfind(' ') {
        if space * 2 >= cut.len() {
            cut.truncate(space);
        }
    }
    let cut = cut.trim_end_matches([' ', ',', ';', ':', '.', '-']);
    Some(format!("{facts} Reason: {cut}{ellipsis}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertId;
    use crate::event::Reason;
    use crate::flight::{parse_time, AirportCode, FlightNumber, FlightSchedule};

    fn message(event: EventKind, estimated: Option<&str>, reason: Option<&str>) -> AlertMessage {
        AlertMessage {
            version: AlertMessage::VERSION,
            alert_id: AlertId::new(),
            handout: uuid::Uuid::now_v7(),
            flight: FlightSchedule {
                flight_number: FlightNumber::parse("UA123").unwrap(),
                departure_date: "2026-12-01".parse().unwrap(),
                origin: AirportCode::parse("SFO").unwrap(),
                destination: AirportCode::parse("JFK").unwrap(),
                scheduled_departure: parse_time("2026-12-01T08:05:00-08:00").unwrap(),
            },
            event,
            estimated_departure: estimated.map(|t| parse_time(t).unwrap()),
            reason: reason.map(|r| Reason::parse(r).unwrap()),
            part: 1,
            parts: 1,
            attempt: 1,
            not_before: None,
            recipients: vec![],
        }
    }

    fn assert_one_segment(text: &SmsText, case: &str) {
        let enc = text.encoding();
        let len = enc.length(text.as_str()).expect("encodable");
        assert!(
            len <= enc.segment_limit(),
            "{case}: {len} > {} in {enc:?}: {:?}",
            enc.segment_limit(),
            text.as_str()
        );
    }

    #[test]
    fn a_delay_reads_as_in_the_brief() {
        let text = SmsText::for_alert(&message(
            EventKind::Delayed,
            Some("2026-12-01T10:30:00-08:00"),
            Some("Late inbound aircraft"),
        ));
        assert_eq!(
            text.as_str(),
            "UA123 SFO-JFK 1 Dec: DELAYED, now departs 10:30 (was 08:05). Reason: Late inbound aircraft"
        );
        assert_eq!(text.encoding(), Encoding::Gsm7);
    }

    #[test]
    fn the_new_time_is_shown_in_the_origins_local_time() {
        // 18:30Z is 10:30 in San Francisco.
        let text = SmsText::for_alert(&message(
            EventKind::Delayed,
            Some("2026-12-01T18:30:00Z"),
            None,
        ));
        assert_eq!(
            text.as_str(),
            "UA123 SFO-JFK 1 Dec: DELAYED, now departs 10:30 (was 08:05)."
        );
    }

    #[test]
    fn a_delay_past_midnight_names_the_new_day() {
        let text = SmsText::for_alert(&message(
            EventKind::Delayed,
            Some("2026-12-02T01:15:00-08:00"),
            None,
        ));
        assert_eq!(
            text.as_str(),
            "UA123 SFO-JFK 1 Dec: DELAYED, now departs 2 Dec 01:15 (was 08:05)."
        );
    }

    #[test]
    fn a_cancellation_reads_plainly() {
        let text = SmsText::for_alert(&message(EventKind::Cancelled, None, Some("Crew shortage")));
        assert_eq!(
            text.as_str(),
            "UA123 SFO-JFK 1 Dec: CANCELLED. Reason: Crew shortage"
        );
    }

    #[test]
    fn every_text_is_one_segment_and_keeps_the_facts() {
        let long_latin = "Air traffic control restrictions at the destination airport due to severe thunderstorms, followed by a crew duty time limit and a late inbound aircraft from Denver";
        let cases: &[(&str, &str)] = &[
            ("long latin", long_latin),
            ("one long word", &"x".repeat(500)),
            ("extension chars", &"[maintenance]{check}~".repeat(20)),
            ("typographic", "Crew’s “rest” — required… by law"),
            ("accents", "Grève du personnel de l’aéroport, reprise prévue à 14h"),
            ("chinese", "由于天气原因，航班延误。机组人员正在等待空中交通管制的放行许可，预计延误两个小时以上。"),
            ("chinese long", &"航班延误".repeat(125)),
            ("emoji", "Late inbound aircraft ✈️"),
            ("mostly emoji", "✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️✈️"),
            ("cyrillic", "Задержка из-за погодных условий в аэропорту назначения и позднего прибытия самолёта"),
            ("greek in gsm", "ΔΦΓΛΩΠΨΣΘΞ"),
        ];
        let events = [
            (EventKind::Delayed, Some("2026-12-02T01:15:00-08:00")),
            (EventKind::Delayed, Some("2026-12-01T10:30:00-08:00")),
            (EventKind::Cancelled, None),
        ];
        for (name, reason) in cases {
            for (event, estimated) in events {
                let m = message(event, estimated, Some(reason));
                let text = SmsText::for_alert(&m);
                assert_one_segment(&text, name);
                assert!(
                    text.as_str().starts_with(&facts(&m)),
                    "{name}: facts cut in {:?}",
                    text.as_str()
                );
            }
        }
    }

    #[test]
    fn long_reasons_are_cut_at_a_word_with_an_ellipsis() {
        let m = message(
            EventKind::Delayed,
            Some("2026-12-01T10:30:00-08:00"),
            Some("Air traffic control restrictions at the destination airport due to severe thunderstorms and a late inbound aircraft"),
        );
        let text = SmsText::for_alert(&m);
        assert_eq!(text.encoding(), Encoding::Gsm7);
        assert!(text.as_str().ends_with("..."), "{:?}", text.as_str());
        assert!(!text.as_str().contains("thunderstorms and a late"));
        assert_eq!(
            text.as_str().len(),
            Encoding::Gsm7.length(text.as_str()).unwrap()
        );
    }

    #[test]
    fn non_latin_reasons_are_sent_as_ucs2_within_70() {
        let m = message(EventKind::Cancelled, None, Some("由于天气原因取消"));
        let text = SmsText::for_alert(&m);
        assert_eq!(text.encoding(), Encoding::Ucs2);
        assert!(text.as_str().ends_with("由于天气原因取消"));
    }

    #[test]
    fn an_emoji_is_dropped_rather_than_the_reason() {
        let m = message(
            EventKind::Delayed,
            Some("2026-12-01T10:30:00-08:00"),
            Some("Late inbound aircraft ✈️"),
        );
        let text = SmsText::for_alert(&m);
        assert_eq!(text.encoding(), Encoding::Gsm7);
        assert!(
            text.as_str().ends_with("Reason: Late inbound aircraft"),
            "{:?}",
            text.as_str()
        );
    }

    #[test]
    fn typographic_punctuation_does_not_force_ucs2() {
        let m = message(EventKind::Cancelled, None, Some("Crew’s “rest” — required"));
        let text = SmsText::for_alert(&m);
        assert_eq!(text.encoding(), Encoding::Gsm7);
        assert!(text.as_str().ends_with("Crew's \"rest\" - required"));
    }

    #[test]
    fn extension_characters_count_twice() {
        assert_eq!(Encoding::Gsm7.length("[a]"), Some(5));
        assert_eq!(Encoding::Gsm7.length("€"), Some(2));
        assert_eq!(Encoding::Gsm7.length("中"), None);
        assert_eq!(Encoding::Ucs2.length("✈️"), Some(2));
        assert_eq!(Encoding::Ucs2.length("😀"), Some(2));
    }
}
