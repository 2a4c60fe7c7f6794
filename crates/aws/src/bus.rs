//! SNS topics between the functions: the alerts bus (alert messages to the sms function), the
//! delivery reports (the sms function's outcomes back to the alerts function) and the flight
//! events (registrations, from the flights function to the watch function).

use async_trait::async_trait;
use flightwatch_domain::ports::{AlertBus, BusError, DeliveryReports, FlightAnnouncements};
use flightwatch_domain::watch::FlightRegistered;
use flightwatch_domain::{AlertMessage, DeliveryReport};

use crate::sns::{Publish, Sns};

/// Publishes to one topic: alert messages on the alerts topic (the sms function is subscribed to
/// it), or delivery reports on the reports topic (the alerts function is subscribed to it).
#[derive(Clone, Debug)]
pub struct SnsTopic {
    sns: Sns,
    topic_arn: String,
}

impl SnsTopic {
    pub fn from_config(sdk: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        Self {
            sns: Sns::new(sdk),
            topic_arn: topic_arn.into(),
        }
    }

    async fn send(&self, message: Publish) -> Result<String, BusError> {
        self.sns
            .publish(message)
            .await
            .map_err(|e| BusError(Box::new(e)))
    }
}

#[async_trait]
impl AlertBus for SnsTopic {
    async fn publish(&self, message: &AlertMessage) -> Result<(), BusError> {
        // Attributes let subscribers filter (e.g. an archive of cancellations only) and route
        // retries without parsing the body.
        let publish = Publish::to_topic(&self.topic_arn, message.to_json())
            .number("version", message.version)
            .text("event", message.event.as_str())
            .number("attempt", message.attempt);
        let message_id = self.send(publish).await?;
        tracing::debug!(
            message_id,
            part = message.part,
            "alert message on the topic"
        );
        Ok(())
    }
}

#[async_trait]
impl DeliveryReports for SnsTopic {
    async fn report(&self, report: &DeliveryReport) -> Result<(), BusError> {
        let publish =
            Publish::to_topic(&self.topic_arn, report.to_json()).number("version", report.version);
        self.send(publish).await.map(drop)
    }
}

#[async_trait]
impl FlightAnnouncements for SnsTopic {
    async fn registered(&self, message: &FlightRegistered) -> Result<(), BusError> {
        let publish = Publish::to_topic(&self.topic_arn, message.to_json())
            .number("version", message.version)
            .text("event", "REGISTERED");
        self.send(publish).await.map(drop)
    }
}

/// A topic whose SDK configuration and client are built on the first publish, not at
/// cold start: most of the alerts function's invocations (`GET /alerts`, delivery reports, a
/// relay pass with nothing due) never publish, and building them (the credential chain, the TLS
/// client and its roots) is most of the function's start-up time.
#[derive(Debug)]
pub struct LazySnsTopic {
    topic_arn: String,
    topic: tokio::sync::OnceCell<SnsTopic>,
}

impl LazySnsTopic {
    pub fn new(topic_arn: impl Into<String>) -> Self {
        Self {
            topic_arn: topic_arn.into(),
            topic: tokio::sync::OnceCell::new(),
        }
    }

    async fn topic(&self) -> &SnsTopic {
        self.topic
            .get_or_init(|| async {
                SnsTopic::from_config(&crate::sdk_config().await, self.topic_arn.as_str())
            })
            .await
    }
}

#[async_trait]
impl AlertBus for LazySnsTopic {
    async fn publish(&self, message: &AlertMessage) -> Result<(), BusError> {
        self.topic().await.publish(message).await
    }
}

#[async_trait]
impl FlightAnnouncements for LazySnsTopic {
    async fn registered(&self, message: &FlightRegistered) -> Result<(), BusError> {
        self.topic().await.registered(message).await
    }
}
