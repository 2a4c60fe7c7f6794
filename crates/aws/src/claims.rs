//! The sms function's own record of the recipients it has taken on: one empty S3 object per
//! message recipient, written with `If-None-Match: *`, so that of two deliveries of one message
//! only the first claims each recipient (S3 answers the second `412 Precondition Failed`). The
//! bucket's lifecycle rule deletes claims after a few days, longer than SNS and Lambda keep
//! retrying a message.

use async_trait::async_trait;
use aws_sdk_s3::error::ProvideErrorMetadata;
use flightwatch_domain::ports::{BusError, SmsClaims};
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
    async fn claim(&self, message: &AlertMessage, index: usize) -> Result<bool, BusError> {
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(Self::key(message, index))
            .if_none_match("*")
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b""))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
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
                Ok(false)
            }
            Err(e) => Err(BusError(crate::describe(&e).into())),
        }
    }
}
