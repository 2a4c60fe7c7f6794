//! moto server, the AWS emulator the AWS tests run against (scripts/test.sh starts it and sets
//! `AWS_ENDPOINT_URL`). Each test makes its own topics and buckets, named uniquely.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sns::config::Credentials;
use serde_json::Value;

/// The emulator's address.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL must point at a moto server; scripts/test.sh starts one")
}

/// SDK configuration for the emulator, whatever credentials the environment has.
pub async fn sdk() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(flightwatch_aws::http_client())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .load()
        .await
}

/// An S3 client for the emulator (path-style: moto serves no bucket subdomains).
pub fn s3(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// A fresh, uniquely named topic.
pub async fn topic(sdk: &SdkConfig, prefix: &str) -> String {
    let name = unique(prefix);
    aws_sdk_sns::Client::new(sdk)
        .create_topic()
        .name(name)
        .send()
        .await
        .expect("create topic")
        .topic_arn()
        .expect("topic arn")
        .to_owned()
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// moto's view of everything it holds.
pub async fn data() -> Value {
    reqwest::get(format!("{}/moto-api/data.json", endpoint()))
        .await
        .expect("moto answers")
        .json()
        .await
        .expect("moto data is JSON")
}

/// The SMS moto recorded for one phone number, oldest first.
pub async fn sms_to(phone: &str) -> Vec<String> {
    data().await["sns"]["SMS"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|s| s["phone_number"] == phone)
                .filter_map(|s| s["message"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The messages published to a topic, oldest first.
pub async fn topic_messages(topic_arn: &str) -> Vec<String> {
    data().await["sns"]["Topic"]
        .as_array()
        .and_then(|topics| topics.iter().find(|t| t["arn"] == topic_arn))
        .and_then(|t| t["sent_notifications"].as_array())
        .map(|sent| {
            sent.iter()
                .filter_map(|n| n[1].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
