//! The sms function's own record of the recipients it has taken on: one S3 object per message
//! recipient, created empty with `If-None-Match: *`, so that of two deliveries of one message only
//! the first claims each recipient (S3 answers the second `412 Precondition Failed`), and then
//! overwritten with the provider's message id once the SMS went, so a later delivery can report
//! it sent. The bucket's lifecycle rule deletes claims after a few days, longer than SNS and
//! Lambda keep retrying a message.

use async_trait::async_trait;
use flightwatch_domain::ports::{BusError, Claim, SmsClaims};
use flightwatch_domain::AlertMessage;

use crate::{S3Objects, Written};

#[derive(Clone, Debug)]
pub struct S3Claims {
    objects: S3Objects,
}

impl S3Claims {
    pub fn from_config(sdk: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        Self {
            objects: S3Objects::new(sdk, bucket),
        }
    }

    /// Where a recipient's claim lives: by alert, hand-out and place in the message (no
    /// personal data in keys; a message never changes, so the place is the recipient's).
    pub fn key(message: &AlertMessage, index: usize) -> String {
        format!("claims/{}/{}/{index}", message.alert_id, message.handout)
    }
}

#[async_trait]
impl SmsClaims for S3Claims {
    async fn claim(&self, message: &AlertMessage, index: usize) -> Result<Claim, BusError> {
        let key = Self::key(message, index);
        match self.objects.create(&key, Vec::new()).await {
            Ok(Written::Created) => Ok(Claim::New),
            // Taken: did the claimant record the SMS as sent?
            Ok(Written::Exists) => {
                let body = self
                    .objects
                    .get(&key)
                    .await
                    .map_err(|e| BusError(e.into()))?;
                let message_id = String::from_utf8_lossy(&body).trim().to_owned();
                Ok(Claim::Taken((!message_id.is_empty()).then_some(message_id)))
            }
            Err(e) => Err(BusError(e.into())),
        }
    }

    async fn record_sent(
        &self,
        message: &AlertMessage,
        index: usize,
        message_id: &str,
    ) -> Result<(), BusError> {
        self.objects
            .put(&Self::key(message, index), message_id.as_bytes().to_vec())
            .await
            .map_err(|e| BusError(e.into()))
    }
}
