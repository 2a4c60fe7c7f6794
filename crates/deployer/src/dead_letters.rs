//! The stage's dead letters: the functions' failed asynchronous invocations (an sms message that
//! could not be read, a report the ledger could not record, a flight event the watch function
//! could not hand to the flight-status provider), kept 14 days in an encrypted SQS
//! queue (the functions' on-failure destination, and subscribed to the dead-letter topic). Listed
//! with phones masked; alert messages redriven onto the alerts topic as they were.

use anyhow::Context;
use flightwatch_domain::ports::AlertBus;
use flightwatch_domain::AlertMessage;
use serde_json::Value;

/// One message of the queue, read.
pub struct DeadLetter {
    pub receipt_handle: String,
    pub message_id: String,
    /// How it got there: `dead-letter topic`, or the failed invocation's function and `errorType`.
    pub origin: String,
    /// The alert messages it carries (none when it cannot be read).
    pub alerts: Vec<AlertMessage>,
}

/// Reads a queue body: a dead-letter topic message (an alert message, raw or in SNS's envelope),
/// or a Lambda on-failure destination record whose request was the SNS event.
pub fn parse_body(body: &str) -> (String, Vec<AlertMessage>) {
    if let Ok(message) = AlertMessage::parse(body) {
        return ("dead-letter topic".into(), vec![message]);
    }
    let Ok(record) = serde_json::from_str::<Value>(body) else {
        return ("unreadable".into(), Vec::new());
    };
    if let Some(inner) = record.get("Message").and_then(Value::as_str) {
        if let Ok(message) = AlertMessage::parse(inner) {
            return ("dead-letter topic".into(), vec![message]);
        }
    }
    let error = record
        .pointer("/responsePayload/errorType")
        .and_then(Value::as_str)
        .or_else(|| {
            record
                .pointer("/requestContext/condition")
                .and_then(Value::as_str)
        })
        .unwrap_or("failed invocation");
    // arn:aws:lambda:<region>:<account>:function:flightwatch-<stage>-<function>[:<qualifier>]
    let function = record
        .pointer("/requestContext/functionArn")
        .and_then(Value::as_str)
        .and_then(|arn| arn.split(':').nth(6))
        .and_then(|name| name.rsplit('-').next())
        .filter(|name| !name.is_empty())
        .unwrap_or("a function's");
    let alerts = record
        .pointer("/requestPayload/Records")
        .and_then(Value::as_array)
        .map(|records| {
            records
                .iter()
                .filter_map(|r| r.pointer("/Sns/Message").and_then(Value::as_str))
                .filter_map(|m| AlertMessage::parse(m).ok())
                .collect()
        })
        .unwrap_or_default();
    (format!("{function} invocation failed ({error})"), alerts)
}

/// Receives up to `max` messages, hiding each for `hide_seconds` (0 to only look).
pub async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    max: usize,
    hide_seconds: i32,
) -> anyhow::Result<Vec<DeadLetter>> {
    let mut letters: Vec<DeadLetter> = Vec::new();
    while letters.len() < max {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10.min(i32::try_from(max - letters.len()).unwrap_or(10)))
            .visibility_timeout(hide_seconds)
            .wait_time_seconds(0)
            .send()
            .await
            .with_context(|| format!("reading {queue_url}"))?;
        let mut fresh = 0;
        for m in out.messages() {
            let id = m.message_id().unwrap_or_default().to_owned();
            // Only looking, the same messages come back at once: stop at the first repeat.
            if letters.iter().any(|l| l.message_id == id) {
                continue;
            }
            fresh += 1;
            let (origin, alerts) = parse_body(m.body().unwrap_or_default());
            letters.push(DeadLetter {
                receipt_handle: m.receipt_handle().unwrap_or_default().to_owned(),
                message_id: id,
                origin,
                alerts,
            });
        }
        if fresh == 0 {
            break;
        }
    }
    Ok(letters)
}

/// One line per alert message, phones masked.
pub fn describe(letter: &DeadLetter) -> Vec<String> {
    if letter.alerts.is_empty() {
        return vec![format!(
            "{}  {}  (no alert message in it)",
            letter.message_id, letter.origin
        )];
    }
    letter
        .alerts
        .iter()
        .map(|a| {
            let phones: Vec<String> = a.recipients.iter().map(|p| p.masked()).collect();
            format!(
                "{}  {}  alert {} {} {} {} part {}/{} attempt {}: {}",
                letter.message_id,
                letter.origin,
                a.alert_id,
                a.flight.flight_number,
                a.flight.departure_date,
                a.event.as_str(),
                a.part,
                a.parts,
                a.attempt,
                phones.join(", ")
            )
        })
        .collect()
}

/// Puts every readable dead letter back on the alerts topic as it was (same hand-out, same
/// attempt: the sms function's claims keep anyone already texted from a second SMS, and its
/// report matches the ledger's attempt), deleting it from the queue once it is published.
/// Unreadable ones stay.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    bus: &dyn AlertBus,
) -> anyhow::Result<(u32, u32)> {
    let (mut redriven, mut kept) = (0, 0);
    loop {
        let letters = receive(sqs, queue_url, 10, 60).await?;
        if letters.is_empty() {
            return Ok((redriven, kept));
        }
        for letter in letters {
            if letter.alerts.is_empty() {
                kept += 1;
                continue;
            }
            for alert in &letter.alerts {
                bus.publish(alert).await?;
            }
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(&letter.receipt_handle)
                .send()
                .await
                .context("deleting a redriven dead letter")?;
            redriven += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALERT: &str = r#"{"version":2,"alertId":"019ac0a0-0000-7000-8000-000000000001","flight":{"flightNumber":"UA123","departureDate":"2026-12-01","origin":"SFO","destination":"JFK","scheduledDeparture":"2026-12-01T08:05:00-08:00"},"event":"CANCELLED","handout":"019ac0a0-0000-7000-8000-0000000000a1","part":1,"parts":1,"attempt":3,"recipients":["+14155550100"]}"#;

    #[test]
    fn a_dead_letter_from_the_topic_is_the_alert_message_itself() {
        let (origin, alerts) = parse_body(ALERT);
        assert_eq!(origin, "dead-letter topic");
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].attempt, 3);
    }

    #[test]
    fn a_failed_invocation_record_carries_the_sns_event_it_failed_on() {
        let record = serde_json::json!({
            "version": "1.0",
            "requestContext": {
                "condition": "RetriesExhausted",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:flightwatch-my-stage-sms:$LATEST"
            },
            "requestPayload": {"Records": [{"Sns": {"Message": ALERT}}]},
            "responsePayload": {"errorType": "NonRetryable", "errorMessage": "unreadable"}
        });
        let (origin, alerts) = parse_body(&record.to_string());
        assert_eq!(origin, "sms invocation failed (NonRetryable)");
        assert_eq!(alerts.len(), 1);
        let letter = DeadLetter {
            receipt_handle: String::new(),
            message_id: "m1".into(),
            origin,
            alerts,
        };
        let line = describe(&letter).join("\n");
        assert!(line.contains("+1415•••0100"), "{line}");
        assert!(!line.contains("5550100"), "{line}");
    }

    #[test]
    fn a_failed_invocation_of_another_function_is_listed_with_its_name_and_never_redriven() {
        let record = serde_json::json!({
            "version": "1.0",
            "requestContext": {
                "condition": "RetriesExhausted",
                "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:flightwatch-dev-watch:$LATEST"
            },
            "requestPayload": {"Records": [{"Sns": {"Message": "{\"flightId\":\"UA123-2037-12-01\"}"}}]},
            "responsePayload": {"errorType": "NotificationFailed"}
        });
        let (origin, alerts) = parse_body(&record.to_string());
        assert_eq!(origin, "watch invocation failed (NotificationFailed)");
        assert!(alerts.is_empty(), "only alert messages are redriven");
        let (origin, _) = parse_body(r#"{"responsePayload": {"errorType": "X"}}"#);
        assert_eq!(origin, "a function's invocation failed (X)");
    }
}
