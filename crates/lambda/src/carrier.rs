//! The carrier's word on each SMS: SNS writes a delivery status log line per SMS sent to a phone
//! number (CloudWatch Logs groups `sns/<region>/<account>/DirectPublishToPhoneNumber` and
//! `.../Failure`, once SMS delivery status logging is on), and a subscription filter hands those
//! lines to the alerts function. Only the message id and the status are read: the line also holds
//! the destination phone, which is never logged.

use aws_lambda_events::cloudwatch_logs::LogsEvent;
use flightwatch_domain::CarrierOutcome;
use serde::Deserialize;

#[derive(Deserialize)]
struct StatusLine {
    notification: Notification,
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    message_id: String,
}

/// One delivery status log line, as SNS writes it; `None` for anything else.
pub fn outcome(line: &str) -> Option<CarrierOutcome> {
    let line: StatusLine = serde_json::from_str(line).ok()?;
    let delivered = match line.status.as_str() {
        "SUCCESS" => true,
        "FAILURE" => false,
        _ => return None,
    };
    Some(CarrierOutcome {
        message_id: line.notification.message_id,
        delivered,
    })
}

/// The outcomes in a subscription's batch, and how many lines could not be read.
pub fn outcomes(event: &LogsEvent) -> (Vec<CarrierOutcome>, usize) {
    let lines = &event.aws_logs.data.log_events;
    let read: Vec<CarrierOutcome> = lines.iter().filter_map(|e| outcome(&e.message)).collect();
    let unreadable = lines.len() - read.len();
    (read, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/../../tests/lambda/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap_or_default()
    }

    #[test]
    fn recorded_status_lines_read_as_delivered_and_undelivered() {
        let samples = fixture("sns-sms-delivery-status.jsonl");
        let read: Vec<_> = samples.lines().filter_map(outcome).collect();
        assert_eq!(
            read,
            [
                CarrierOutcome {
                    message_id: "34d9b400-c6dd-5444-820d-fbeb0f1f54cf".into(),
                    delivered: true
                },
                CarrierOutcome {
                    message_id: "1077257a-92f3-5ca3-bc97-6a915b310625".into(),
                    delivered: false
                },
            ]
        );
        assert_eq!(outcome(r#"{"status":"SUCCESS"}"#), None);
        assert_eq!(outcome("START RequestId: 1"), None);
    }

    #[test]
    fn a_subscription_batch_is_unzipped_and_read() {
        let event: LogsEvent =
            serde_json::from_str(&fixture("carrier-status.json")).unwrap_or_default();
        let (read, unreadable) = outcomes(&event);
        assert_eq!((read.len(), unreadable), (2, 0));
        assert!(read[0].delivered && !read[1].delivered);
    }
}
