//! The alerts bus in-process: what SNS does in AWS, minus the network. A publish returns once the
//! message is accepted; delivery to the sms handler happens on its own task, in an SNS event
//! envelope, like an SNS → Lambda subscription.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use flightwatch_delivery::Texting;
use flightwatch_domain::ports::{AlertBus, BusError};
use flightwatch_domain::AlertMessage;

use crate::LOCAL_TOPIC_ARN;

#[derive(Default)]
pub struct InProcessBus {
    // Set once after construction: the sms handler republishes retries onto this same bus.
    subscriber: OnceLock<Texting>,
}

impl InProcessBus {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn subscribe(&self, texting: Texting) {
        if self.subscriber.set(texting).is_err() {
            tracing::warn!("the local bus already has its subscriber");
        }
    }
}

#[async_trait]
impl AlertBus for InProcessBus {
    async fn publish(&self, message: &AlertMessage) -> Result<(), BusError> {
        let texting = self
            .subscriber
            .get()
            .cloned()
            .ok_or_else(|| BusError("the sms function is not subscribed".into()))?;
        let event = flightwatch_delivery::sns_event(LOCAL_TOPIC_ARN, std::slice::from_ref(message))
            .map_err(|e| BusError(Box::new(e)))?;
        // A republished retry waits a little, as it would between Lambda invocations.
        let wait = Duration::from_millis(500 * u64::from(message.attempt.saturating_sub(1)));
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if let Err(e) = flightwatch_delivery::handle(&texting, event).await {
                tracing::error!(error = %e, "sms invocation failed");
            }
        });
        Ok(())
    }
}
