//! The sms function's own record of the recipients it has taken on: one S3 object per message
//! recipient, created empty with `If-None-Match: *`, so that of two deliveries of one message only
//! the first claims each recipient (S3 answers the second `412 Precondition Failed`), and then
//! overwritten with the provider's message id once the SMS went, so a later delivery can report
//! it sent. The bucket's lifecycle rule deletes claims after a few days, longer than SNS and
//! Lambda keep retrying a message.

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use flightwatch_domain::ports::{BusError, Claim, SmsClaims};
use flightwatch_domain::AlertMessage;

#[derive(Clone, Debug)]
pub struct S3Claims {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Claims {
    pub fn from_config(sdk: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        Self {
            client: crate::s3_client(sdk),
            bucket: bucket.into(),
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
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_none_match("*")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b""))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Claim::New),
            // Taken already; a concurrent conditional write on the same key may also be refused
            // with 409 ConditionalRequestConflict while the first is in flight.
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 412 | 409))
                    || matches!(
                        e.code(),
                        Some("PreconditionFailed" | "ConditionalRequestConflict")
                    ) =>
            {
                // Taken: did the claimant record the SMS as sent?
                let got = self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| BusError(crate::describe(&e).into()))?;
                let body = got
                    .body
                    .collect()
                    .await
                    .map_err(|e| BusError(Box::new(e)))?
                    .into_bytes();
                let message_id = String::from_utf8_lossy(&body).trim().to_owned();
                Ok(Claim::Taken((!message_id.is_empty()).then_some(message_id)))
            }
            Err(e) => Err(BusError(crate::describe(&e).into())),
        }
    }

    async fn record_sent(
        &self,
        message: &AlertMessage,
        index: usize,
        message_id: &str,
    ) -> Result<(), BusError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(Self::key(message, index))
            .body(aws_sdk_s3::primitives::ByteStream::from(
                message_id.as_bytes().to_vec(),
            ))
            .send()
            .await
            .map_err(|e| BusError(crate::describe(&e).into()))?;
        Ok(())
    }
}
