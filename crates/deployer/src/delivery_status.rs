//! SNS SMS delivery status logging, which tells the delivery ledger what the carrier did with
//! each SMS: SNS writes one line per SMS to CloudWatch Logs, and the functions stack subscribes
//! the alerts function to the two log groups. Both settings are the account's in the region (SNS
//! has no per-topic switch for SMS sent to phone numbers), so they are set, never unset:
//! removing a stage leaves them, as another stage or application may rely on them.

use anyhow::Context;

/// The log groups SNS writes SMS delivery status to, successes and failures.
pub fn log_groups(region: &str, account: &str) -> [String; 2] {
    let base = format!("sns/{region}/{account}/DirectPublishToPhoneNumber");
    [base.clone(), format!("{base}/Failure")]
}

/// How long the status lines are kept: the ledger has them within seconds.
const RETENTION_DAYS: i32 = 30;

/// Creates the log groups when they are missing (SNS would create them only on its first SMS,
/// after the subscription filters need them), and points SNS's SMS delivery status at them
/// with `role_arn`, logging every success as well as every failure.
pub async fn enable(
    sdk: &aws_config::SdkConfig,
    region: &str,
    account: &str,
    role_arn: &str,
) -> anyhow::Result<()> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    for group in log_groups(region, account) {
        match logs.create_log_group().log_group_name(&group).send().await {
            Ok(_) => println!("log group {group} created"),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_already_exists_exception()) =>
            {
                println!("log group {group} already there")
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "creating log group {group}: {}",
                    aws_sdk_cloudwatchlogs::error::DisplayErrorContext(e)
                ))
            }
        }
        logs.put_retention_policy()
            .log_group_name(&group)
            .retention_in_days(RETENTION_DAYS)
            .send()
            .await
            .with_context(|| format!("setting the retention of {group}"))?;
    }
    aws_sdk_sns::Client::new(sdk)
        .set_sms_attributes()
        .attributes("DeliveryStatusIAMRole", role_arn)
        .attributes("DeliveryStatusSuccessSamplingRate", "100")
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "turning on SMS delivery status logging: {}",
                aws_sdk_sns::error::DisplayErrorContext(e)
            )
        })?;
    println!("SMS delivery status logging on (role {role_arn})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_groups_are_those_sns_writes_to() {
        assert_eq!(
            log_groups("us-east-1", "123456789012"),
            [
                "sns/us-east-1/123456789012/DirectPublishToPhoneNumber",
                "sns/us-east-1/123456789012/DirectPublishToPhoneNumber/Failure",
            ]
        );
    }
}
