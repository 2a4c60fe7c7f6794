//! SNS topics between the functions: the alerts bus (alert messages to the sms function), the
//! delivery reports (the sms function's outcomes back to the alerts function) and the flight
//! events (registrations, from the flights function to the watch function).

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;
use flightwatch_domain::ports::{AlertBus, BusError, DeliveryReports, FlightAnnouncements};
use flightwatch_domain::watch::FlightRegistered;
use flightwatch_domain::{AlertMessage, DeliveryReport};

/// Publishes to one topic: alert messages on the alerts topic (the sms function is subscribed to
/// it), or delivery reports on the reports topic (the alerts function is subscribed to it).
#[derive(Clone, Debug)]
pub struct SnsTopic {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsTopic {
    pub fn from_config(sdk: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        Self::new(crate::sns_client(sdk), topic_arn)
    }

    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

fn attribute(data_type: &str, value: String) -> Result<MessageAttributeValue, BusError> {
    MessageAttributeValue::builder()
        .data_type(data_type)
        .string_value(value)
        .build()
        .map_err(|e| BusError(Box::new(e)))
}

#[async_trait]
impl AlertBus for SnsTopic {
    async fn publish(&self, message: &AlertMessage) -> Result<(), BusError> {
        let body = message.to_json();
        let out = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(body)
            // Attributes let subscribers filter (e.g. an archive of cancellations only) and
            // route retries without parsing the body.
            .message_attributes("version", attribute("Number", message.version.to_string())?)
            .message_attributes(
                "event",
                attribute("String", message.event.as_str().to_owned())?,
            )
            .message_attributes("attempt", attribute("Number", message.attempt.to_string())?)
            .send()
            .await
            .map_err(|e| BusError(crate::describe(&e).into()))?;
        tracing::debug!(
            message_id = out.message_id().unwrap_or_default(),
            part = message.part,
            "alert message on the topic"
        );
        Ok(())
    }
}

#[async_trait]
impl DeliveryReports for SnsTopic {
    async fn report(&self, report: &DeliveryReport) -> Result<(), BusError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(report.to_json())
            .message_attributes("version", attribute("Number", report.version.to_string())?)
            .send()
            .await
            .map_err(|e| BusError(crate::describe(&e).into()))?;
        Ok(())
    }
}

#[async_trait]
impl FlightAnnouncements for SnsTopic {
    async fn registered(&self, message: &FlightRegistered) -> Result<(), BusError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(message.to_json())
            .message_attributes("version", attribute("Number", message.version.to_string())?)
            .message_attributes("event", attribute("String", "REGISTERED".to_owned())?)
            .send()
            .await
            .map_err(|e| BusError(crate::describe(&e).into()))?;
        Ok(())
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
