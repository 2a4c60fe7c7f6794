//! The sms function's own record of the recipients it has taken on: one S3 object per message
//! recipient, created with `If-None-Match: *` and holding a token of the claim, so that of two
//! deliveries of one message only the first claims each recipient (S3 answers the second
//! `412 Precondition Failed`), and then overwritten with the provider's message id once the SMS
//! went, so a later delivery can report it sent. The bucket's lifecycle rule deletes claims after a few days, longer than SNS and
//! Lambda keep retrying a message.

use async_trait::async_trait;
use flightwatch_domain::ports::{BusError, Claim, SmsClaims};
use flightwatch_domain::AlertMessage;

use crate::{S3Objects, Written};

/// How a claim's body starts until the SMS's message id replaces it (claims made before tokens
/// were empty).
const CLAIM_PREFIX: &str = "claim ";

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
        // A token of this claim as the body: if S3 created the object but its answer was lost,
        // the runtime's retry meets 412, and finding its own token says the claim is ours.
        let token = format!("{CLAIM_PREFIX}{}", uuid::Uuid::now_v7());
        match self.objects.create(&key, token.clone().into_bytes()).await {
            Ok(Written::Created) => Ok(Claim::New),
            // Taken: by this claim, or another whose claimant may have recorded the SMS sent.
            Ok(Written::Exists) => {
                let body = self
                    .objects
                    .get(&key)
                    .await
                    .map_err(|e| BusError(e.into()))?;
                Ok(read_claim(&String::from_utf8_lossy(&body), &token))
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

/// What a taken claim's body says, to the claim whose token is `token`.
fn read_claim(body: &str, token: &str) -> Claim {
    let body = body.trim();
    if body == token {
        Claim::New
    } else if body.is_empty() || body.starts_with(CLAIM_PREFIX) {
        Claim::Taken(None)
    } else {
        Claim::Taken(Some(body.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_reads_as_ours_taken_or_sent() {
        let ours = "claim 0190a0b0-0000-7000-8000-000000000001";
        // Our own create, whose answer was lost and whose retry met 412.
        assert_eq!(read_claim(ours, ours), Claim::New);
        assert_eq!(
            read_claim("claim 0190a0b0-0000-7000-8000-000000000002", ours),
            Claim::Taken(None)
        );
        assert_eq!(
            read_claim("", ours),
            Claim::Taken(None),
            "claims before tokens"
        );
        assert_eq!(
            read_claim("sns-message-1\n", ours),
            Claim::Taken(Some("sns-message-1".into()))
        );
    }
}
