//! SMS through SNS `Publish` to a phone number.

use async_trait::async_trait;
use aws_sdk_sns::error::SdkError;
use aws_sdk_sns::operation::publish::PublishError;
use aws_sdk_sns::types::MessageAttributeValue;
use flightwatch_domain::ports::{OutgoingSms, SendError, SmsSender};

#[derive(Clone, Debug)]
pub struct SnsSmsSender {
    client: aws_sdk_sns::Client,
    sender_id: Option<String>,
}

impl SnsSmsSender {
    /// `sender_id` is shown as the sender where carriers allow it (not in the US).
    pub fn from_config(sdk: &aws_config::SdkConfig, sender_id: Option<String>) -> Self {
        Self::new(crate::sns_client(sdk), sender_id)
    }

    pub fn new(client: aws_sdk_sns::Client, sender_id: Option<String>) -> Self {
        Self { client, sender_id }
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, SendError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| SendError::Transient(e.to_string()))
}

#[async_trait]
impl SmsSender for SnsSmsSender {
    async fn send(&self, sms: &OutgoingSms) -> Result<String, SendError> {
        let mut publish = self
            .client
            .publish()
            .phone_number(sms.to.expose())
            .message(&sms.body)
            // Transactional: delivered with priority, not subject to marketing quiet hours.
            .message_attributes("AWS.SNS.SMS.SMSType", attribute("Transactional")?);
        if let Some(id) = &self.sender_id {
            publish = publish.message_attributes("AWS.SNS.SMS.SenderID", attribute(id)?);
        }
        let out = publish.send().await.map_err(classify)?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}

/// Invalid, disabled or opted-out numbers will never succeed; throttling, 5xx, timeouts and
/// network failures may. A parameter error that is not about the phone number (a bad sender id,
/// SMS not available in the region) concerns every recipient, so it is not a reason to skip this
/// one: it is retried with the ledger's backoff and, if it persists, the recipients end `EXPIRED`
/// in the ledger, where someone will see it.
/// The provider's text can quote the number: it is redacted before it goes anywhere.
fn classify(e: SdkError<PublishError>) -> SendError {
    let text = flightwatch_domain::redact_phone_numbers(&crate::describe(&e));
    let about_the_number = |message: Option<&str>| {
        message.is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("phonenumber") || m.contains("phone number") || m.contains("opted out")
        })
    };
    match e.as_service_error() {
        Some(PublishError::EndpointDisabledException(_)) => SendError::Rejected(text),
        Some(
            err @ (PublishError::InvalidParameterException(_)
            | PublishError::InvalidParameterValueException(_)
            | PublishError::ValidationException(_)),
        ) if about_the_number(err.meta().message()) => SendError::Rejected(text),
        _ => SendError::Transient(text),
    }
}
