//! SMS through SNS `Publish` to a phone number.

use async_trait::async_trait;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use flightwatch_domain::ports::{OutgoingSms, SendError, SmsSender};

use crate::sns::{Publish, PublishError, Sns};

#[derive(Clone, Debug)]
pub struct SnsSmsSender {
    sns: Sns,
    sender_id: Option<String>,
}

impl SnsSmsSender {
    /// `sender_id` is shown as the sender where carriers allow it (not in the US).
    pub fn from_config(sdk: &aws_config::SdkConfig, sender_id: Option<String>) -> Self {
        Self {
            sns: Sns::new(sdk),
            sender_id,
        }
    }
}

#[async_trait]
impl SmsSender for SnsSmsSender {
    async fn send(&self, sms: &OutgoingSms) -> Result<String, SendError> {
        // Transactional: delivered with priority, not subject to marketing quiet hours.
        let mut publish = Publish::to_phone(sms.to.expose(), sms.body.as_str())
            .text("AWS.SNS.SMS.SMSType", "Transactional");
        if let Some(id) = &self.sender_id {
            publish = publish.text("AWS.SNS.SMS.SenderID", id.as_str());
        }
        self.sns.publish(publish).await.map_err(classify)
    }
}

/// Invalid, disabled or opted-out numbers will never succeed; throttling, 5xx, timeouts and
/// network failures may. A parameter error that is not about the phone number (a bad sender id,
/// SMS not available in the region) concerns every recipient, so it is not a reason to skip this
/// one: it is retried with the ledger's backoff and, if it persists, the recipients end `EXPIRED`
/// in the ledger, where someone will see it.
/// The provider's text can quote the number: it is redacted before it goes anywhere.
fn classify(e: PublishError) -> SendError {
    let text = flightwatch_domain::redact_phone_numbers(&e.to_string());
    let about_the_number = e.message().is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("phonenumber") || m.contains("phone number") || m.contains("opted out")
    });
    // SNS's codes for EndpointDisabledException, InvalidParameterException,
    // InvalidParameterValueException and ValidationException.
    match e.code() {
        Some("EndpointDisabled") => SendError::Rejected(text),
        Some("InvalidParameter" | "ParameterValueInvalid" | "ValidationException")
            if about_the_number =>
        {
            SendError::Rejected(text)
        }
        _ => SendError::Transient(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::error::metadata::ErrorMetadata;

    fn refused(code: &str, message: &str) -> PublishError {
        PublishError::Refused {
            status: 400,
            meta: ErrorMetadata::builder().code(code).message(message).build(),
        }
    }

    #[test]
    fn only_the_numbers_own_refusals_reject_a_recipient() {
        let rejected = classify(refused(
            "ParameterValueInvalid",
            "Invalid parameter: PhoneNumber Reason: +14155550100 is not valid",
        ));
        let SendError::Rejected(text) = rejected else {
            panic!("a bad number is rejected: {rejected:?}");
        };
        assert!(!text.contains("4155550100"), "{text}");
        assert!(matches!(
            classify(refused("EndpointDisabled", "Endpoint is disabled")),
            SendError::Rejected(_)
        ));
        assert!(matches!(
            classify(refused("InvalidParameter", "Invalid parameter: SenderID")),
            SendError::Transient(_)
        ));
        assert!(matches!(
            classify(refused("Throttling", "Rate exceeded")),
            SendError::Transient(_)
        ));
        assert!(matches!(
            classify(PublishError::Failed("timed out".into())),
            SendError::Transient(_)
        ));
    }
}
