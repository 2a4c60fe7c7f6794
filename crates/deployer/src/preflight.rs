//! The preflight: what a stage needs of the account and region, checked before anything is
//! created, so that a deploy does not fail twenty minutes in (after RDS) on something that was
//! knowable at the start. Each failure says what to do.
//!
//! The facts come through a port (`Account`): the AWS adapter in production, and in tests that
//! adapter against moto for what moto serves, with a fake for what it does not (Lambda's
//! account settings, the SMS sandbox status).

use std::collections::BTreeSet;

use async_trait::async_trait;

/// What the checks look at. `Err` is "could not be read", with the reason.
pub struct Facts {
    pub caller: Result<String, String>,
    pub region: String,
    /// API Gateway's account-level CloudWatch Logs role, needed for the stage's access and
    /// execution logs.
    pub cloudwatch_role: Result<Option<String>, String>,
    /// Lambda's unreserved concurrency in this account and region.
    pub unreserved_concurrency: Result<i32, String>,
    pub sms_sandbox: Result<bool, String>,
    /// SNS's `MonthlySpendLimit` for SMS, in USD.
    pub sms_spend_limit: Result<Option<String>, String>,
    /// Zones (state `available`, not Local or Wavelength zones) of the region.
    pub zones: Result<Vec<String>, String>,
    /// Zones where the SNS interface endpoint (`com.amazonaws.<region>.sns`) is offered.
    pub sns_endpoint_zones: Result<Vec<String>, String>,
}

/// What the stage would ask of the account.
pub struct Wanted {
    /// Concurrency the stage reserves (0 when reserved concurrency is off).
    pub reserved_concurrency: i32,
}

/// Lambda keeps this much of an account's concurrency unreserved, whatever functions reserve.
pub const LAMBDA_MINIMUM_UNRESERVED: i32 = 100;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub passed: Vec<String>,
    /// Each a problem and what to do about it; any of them means nothing is created.
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
    /// Two zones where the SNS endpoint is offered, in the order they are used (A, B).
    pub zones: Option<(String, String)>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn print(&self) {
        for p in &self.passed {
            println!("  ok    {p}");
        }
        for w in &self.warnings {
            println!("  warn  {w}");
        }
        for f in &self.failures {
            println!("  FAIL  {f}");
        }
    }
}

/// The checks, in the order the README lists what a fresh account needs.
pub fn check(facts: &Facts, wanted: &Wanted) -> Report {
    let mut r = Report::default();
    match &facts.caller {
        Ok(who) => r
            .passed
            .push(format!("credentials: {who}, region {}", facts.region)),
        Err(e) => {
            r.failures.push(format!(
                "credentials: {e}. Configure AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY) and a region (AWS_REGION or --region)"
            ));
            // Nothing else can be read without them.
            return r;
        }
    }
    match &facts.cloudwatch_role {
        Ok(Some(role)) => r.passed.push(format!("API Gateway CloudWatch Logs role: {role}")),
        Ok(None) => r.failures.push(
            "API Gateway has no CloudWatch Logs role in this account and region, so the stage's \
             logging would fail after RDS is created. Run `flightwatch-deploy preflight <stage> \
             --create-cloudwatch-role` (or FLIGHTWATCH_CREATE_CLOUDWATCH_ROLE=true scripts/deploy.sh), \
             which creates the role flightwatch-apigateway-cloudwatch with the permissions of \
             AmazonAPIGatewayPushToCloudWatchLogs and sets it on the account"
                .into(),
        ),
        Err(e) => r.failures.push(format!(
            "API Gateway account settings could not be read ({e}): the deployer needs \
             apigateway:GET on /account"
        )),
    }
    if wanted.reserved_concurrency > 0 {
        let need = wanted.reserved_concurrency + LAMBDA_MINIMUM_UNRESERVED;
        match &facts.unreserved_concurrency {
            Ok(n) if *n >= need => r.passed.push(format!(
                "Lambda concurrency: {n} unreserved, the stage reserves {}",
                wanted.reserved_concurrency
            )),
            Ok(n) => r.failures.push(format!(
                "Lambda concurrency: the stage reserves {} and Lambda keeps {LAMBDA_MINIMUM_UNRESERVED} \
                 unreserved, so {need} must be unreserved; this account has {n}. Deploy without \
                 reserved concurrency (leave FLIGHTWATCH_RESERVED_CONCURRENCY unset), or ask for a \
                 higher quota in Service Quotas (Lambda: Concurrent executions)",
                wanted.reserved_concurrency
            )),
            Err(e) => r.failures.push(format!(
                "Lambda concurrency could not be read ({e}); it is needed because reserved \
                 concurrency is on: allow lambda:GetAccountSettings, or turn it off"
            )),
        }
    } else {
        r.passed.push(
            "Lambda concurrency: nothing reserved (FLIGHTWATCH_RESERVED_CONCURRENCY off)".into(),
        );
    }
    match &facts.sms_sandbox {
        Ok(false) => r
            .passed
            .push("SMS: the account is out of the SMS sandbox".into()),
        Ok(true) => r.warnings.push(
            "SMS: the account is in the SMS sandbox and texts only verified numbers; request \
             production access (SNS console, Text messaging (SMS), Exit SMS sandbox)"
                .into(),
        ),
        Err(e) => r
            .warnings
            .push(format!("SMS: the sandbox status could not be read ({e})")),
    }
    match &facts.sms_spend_limit {
        Ok(Some(limit)) if limit.parse::<f64>().is_ok_and(|l| l >= 10.0) => {
            r.passed.push(format!("SMS: monthly spend limit ${limit}"))
        }
        Ok(limit) => r.warnings.push(format!(
            "SMS: the monthly spend limit is ${} (new accounts: $1, a few dozen texts); once it \
             is reached SNS stops sending. Raise it with a Service Quotas request, then `aws sns \
             set-sms-attributes --attributes MonthlySpendLimit=N`",
            limit.as_deref().unwrap_or("1")
        )),
        Err(e) => r.warnings.push(format!(
            "SMS: the monthly spend limit could not be read ({e})"
        )),
    }
    match (&facts.zones, &facts.sns_endpoint_zones) {
        (Ok(zones), Ok(offered)) => match usable_zones(zones, offered) {
            Some((a, b)) => {
                r.passed.push(format!(
                    "availability zones: {a} and {b} (the SNS interface endpoint is offered there)"
                ));
                r.zones = Some((a, b));
            }
            None => r.failures.push(format!(
                "availability zones: the SNS interface endpoint is offered in fewer than two of \
                 this region's zones ({}), and the stage needs two; deploy to another region",
                zones.join(", ")
            )),
        },
        (Err(e), _) | (_, Err(e)) => r.failures.push(format!(
            "availability zones could not be read ({e}): the deployer needs \
             ec2:DescribeAvailabilityZones and ec2:DescribeVpcEndpointServices"
        )),
    }
    r
}

/// The two zones a new stage uses: the first two, by name, of the region's zones where the SNS
/// interface endpoint is offered.
pub fn usable_zones(zones: &[String], offered: &[String]) -> Option<(String, String)> {
    let offered: BTreeSet<&String> = offered.iter().collect();
    let mut usable = zones.iter().filter(|z| offered.contains(z));
    Some((usable.next()?.clone(), usable.next()?.clone()))
}

/// Reads the zones and picks two (`usable_zones`), or says why it cannot.
pub async fn pick_zones(account: &dyn Account) -> anyhow::Result<(String, String)> {
    let zones = account.zones().await.map_err(|e| anyhow::anyhow!(e))?;
    let offered = account
        .sns_endpoint_zones()
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    usable_zones(&zones, &offered).ok_or_else(|| {
        anyhow::anyhow!("fewer than two zones of this region offer the SNS interface endpoint")
    })
}

/// Where the facts come from.
#[async_trait]
pub trait Account: Send + Sync {
    async fn caller(&self) -> Result<String, String>;
    async fn cloudwatch_role(&self) -> Result<Option<String>, String>;
    async fn unreserved_concurrency(&self) -> Result<i32, String>;
    async fn sms_sandbox(&self) -> Result<bool, String>;
    async fn sms_spend_limit(&self) -> Result<Option<String>, String>;
    async fn zones(&self) -> Result<Vec<String>, String>;
    async fn sns_endpoint_zones(&self) -> Result<Vec<String>, String>;
}

/// Reads every fact; a credentials failure stops there (the rest would only repeat it).
pub async fn gather(account: &dyn Account, region: &str, wanted: &Wanted) -> Facts {
    fn unread<T>() -> Result<T, String> {
        Err("not read: no credentials".to_owned())
    }
    let caller = account.caller().await;
    if caller.is_err() {
        return Facts {
            caller,
            region: region.to_owned(),
            cloudwatch_role: unread(),
            unreserved_concurrency: unread(),
            sms_sandbox: unread(),
            sms_spend_limit: unread(),
            zones: unread(),
            sns_endpoint_zones: unread(),
        };
    }
    Facts {
        caller,
        region: region.to_owned(),
        cloudwatch_role: account.cloudwatch_role().await,
        unreserved_concurrency: if wanted.reserved_concurrency > 0 {
            account.unreserved_concurrency().await
        } else {
            Err("not needed".into())
        },
        sms_sandbox: account.sms_sandbox().await,
        sms_spend_limit: account.sms_spend_limit().await,
        zones: account.zones().await,
        sns_endpoint_zones: account.sns_endpoint_zones().await,
    }
}

/// The real account, through the AWS SDK.
pub struct AwsAccount {
    pub region: String,
    pub sts: aws_sdk_sts::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub sns: aws_sdk_sns::Client,
    pub ec2: aws_sdk_ec2::Client,
}

impl AwsAccount {
    pub fn new(sdk: &aws_config::SdkConfig, region: &str) -> Self {
        Self {
            region: region.to_owned(),
            sts: aws_sdk_sts::Client::new(sdk),
            apigateway: aws_sdk_apigateway::Client::new(sdk),
            lambda: aws_sdk_lambda::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            ec2: aws_sdk_ec2::Client::new(sdk),
        }
    }
}

fn why<E: std::error::Error>(e: E) -> String {
    flightwatch_domain::error_chain(&e)
}

#[async_trait]
impl Account for AwsAccount {
    async fn caller(&self) -> Result<String, String> {
        let me = self.sts.get_caller_identity().send().await.map_err(why)?;
        Ok(format!(
            "account {} as {}",
            me.account().unwrap_or("?"),
            me.arn().unwrap_or("?")
        ))
    }

    async fn cloudwatch_role(&self) -> Result<Option<String>, String> {
        let account = self.apigateway.get_account().send().await.map_err(why)?;
        Ok(account
            .cloudwatch_role_arn()
            .filter(|a| !a.is_empty())
            .map(str::to_owned))
    }

    async fn unreserved_concurrency(&self) -> Result<i32, String> {
        let settings = self
            .lambda
            .get_account_settings()
            .send()
            .await
            .map_err(why)?;
        settings
            .account_limit()
            .and_then(|l| l.unreserved_concurrent_executions())
            .ok_or_else(|| "Lambda did not say".to_owned())
    }

    async fn sms_sandbox(&self) -> Result<bool, String> {
        let status = self
            .sns
            .get_sms_sandbox_account_status()
            .send()
            .await
            .map_err(why)?;
        Ok(status.is_in_sandbox())
    }

    async fn sms_spend_limit(&self) -> Result<Option<String>, String> {
        let attributes = self
            .sns
            .get_sms_attributes()
            .attributes("MonthlySpendLimit")
            .send()
            .await
            .map_err(why)?;
        Ok(attributes
            .attributes()
            .and_then(|a| a.get("MonthlySpendLimit"))
            .cloned())
    }

    async fn zones(&self) -> Result<Vec<String>, String> {
        use aws_sdk_ec2::types::AvailabilityZoneState;
        let out = self
            .ec2
            .describe_availability_zones()
            .send()
            .await
            .map_err(why)?;
        let mut zones: Vec<String> = out
            .availability_zones()
            .iter()
            .filter(|z| z.state() == Some(&AvailabilityZoneState::Available))
            .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
            .filter_map(|z| z.zone_name().map(str::to_owned))
            .collect();
        zones.sort();
        Ok(zones)
    }

    async fn sns_endpoint_zones(&self) -> Result<Vec<String>, String> {
        let service = format!("com.amazonaws.{}.sns", self.region);
        let out = self
            .ec2
            .describe_vpc_endpoint_services()
            .service_names(&service)
            .send()
            .await
            .map_err(why)?;
        Ok(out
            .service_details()
            .iter()
            .filter(|d| d.service_name() == Some(service.as_str()))
            .flat_map(|d| d.availability_zones().iter().cloned())
            .collect())
    }
}

/// The role API Gateway writes CloudWatch Logs with, created and set on the account when the
/// operator asks for it (`--create-cloudwatch-role`): an account-wide setting, so never silently.
pub async fn create_cloudwatch_role(
    iam: &aws_sdk_iam::Client,
    apigateway: &aws_sdk_apigateway::Client,
) -> anyhow::Result<String> {
    use aws_sdk_apigateway::types::{Op, PatchOperation};
    const NAME: &str = "flightwatch-apigateway-cloudwatch";
    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let arn = match iam.get_role().role_name(NAME).send().await {
        Ok(found) => found.role().map(|r| r.arn().to_owned()),
        Err(_) => None,
    };
    let arn = match arn {
        Some(arn) => arn,
        None => {
            let created = iam
                .create_role()
                .role_name(NAME)
                .assume_role_policy_document(TRUST)
                .description("API Gateway writes access and execution logs (flightwatch)")
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("creating IAM role {NAME}: {}", why(e)))?;
            created
                .role()
                .map(|r| r.arn().to_owned())
                .ok_or_else(|| anyhow::anyhow!("IAM created {NAME} without an ARN"))?
        }
    };
    // What AWS's managed AmazonAPIGatewayPushToCloudWatchLogs grants, inline: the role says
    // what it may do without a lookup.
    const LOGS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:DescribeLogGroups","logs:DescribeLogStreams","logs:PutLogEvents","logs:GetLogEvents","logs:FilterLogEvents"],"Resource":"*"}]}"#;
    iam.put_role_policy()
        .role_name(NAME)
        .policy_name("push-to-cloudwatch-logs")
        .policy_document(LOGS)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("granting {NAME} its logs permissions: {}", why(e)))?;
    // A new role takes a few seconds to be usable by API Gateway (IAM is eventually consistent).
    let mut last = String::new();
    for attempt in 0..12 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
        let set = apigateway
            .update_account()
            .patch_operations(
                PatchOperation::builder()
                    .op(Op::Replace)
                    .path("/cloudwatchRoleArn")
                    .value(&arn)
                    .build(),
            )
            .send()
            .await;
        match set {
            Ok(_) => return Ok(arn),
            Err(e) => last = why(e),
        }
    }
    anyhow::bail!("setting {arn} as API Gateway's CloudWatch role: {last}")
}

/// How much concurrency a stage reserves when reservation is on, read from `serverless.yml`'s
/// `custom.concurrency.'true'` (each value a number or `${param:name, N}`): the same numbers
/// Serverless will deploy.
pub fn reserved_in_serverless_yml(text: &str) -> anyhow::Result<i32> {
    let doc: serde_norway::Value = serde_norway::from_str(text)?;
    let concurrency = doc
        .get("custom")
        .and_then(|c| c.get("concurrency"))
        .and_then(|c| c.get("true"))
        .and_then(serde_norway::Value::as_mapping)
        .ok_or_else(|| anyhow::anyhow!("serverless.yml has no custom.concurrency.'true'"))?;
    let mut total = 0;
    for (name, value) in concurrency {
        let n = match value {
            serde_norway::Value::Number(n) => n.as_i64(),
            serde_norway::Value::String(s) => s
                .trim_end_matches('}')
                .rsplit([',', ' '])
                .next()
                .and_then(|d| d.trim().parse().ok()),
            _ => None,
        };
        let n = n.ok_or_else(|| {
            anyhow::anyhow!("custom.concurrency.{name:?} in serverless.yml is not a number")
        })?;
        total += i32::try_from(n)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Facts {
        Facts {
            caller: Ok("account 123456789012 as arn:aws:iam::123456789012:user/ops".into()),
            region: "us-east-1".into(),
            cloudwatch_role: Ok(Some("arn:aws:iam::123456789012:role/logs".into())),
            unreserved_concurrency: Ok(1000),
            sms_sandbox: Ok(false),
            sms_spend_limit: Ok(Some("100".into())),
            zones: Ok(vec![
                "us-east-1a".into(),
                "us-east-1b".into(),
                "us-east-1c".into(),
            ]),
            sns_endpoint_zones: Ok(vec!["us-east-1b".into(), "us-east-1c".into()]),
        }
    }

    const RESERVING: Wanted = Wanted {
        reserved_concurrency: 26,
    };

    #[test]
    fn a_ready_account_passes_and_gets_two_zones_where_the_endpoint_is_offered() {
        let r = check(&good(), &RESERVING);
        assert!(r.ok(), "{r:?}");
        assert!(r.warnings.is_empty(), "{r:?}");
        assert_eq!(r.zones, Some(("us-east-1b".into(), "us-east-1c".into())));
    }

    #[test]
    fn each_condition_fails_or_warns_with_what_to_do() {
        type Case = (&'static str, fn(&mut Facts), bool, &'static str);
        let cases: [Case; 7] = [
            (
                "no credentials",
                |f| f.caller = Err("expired token".into()),
                true,
                "Configure AWS credentials",
            ),
            (
                "no CloudWatch role",
                |f| f.cloudwatch_role = Ok(None),
                true,
                "--create-cloudwatch-role",
            ),
            (
                "low concurrency",
                |f| f.unreserved_concurrency = Ok(50),
                true,
                "Service Quotas",
            ),
            (
                "SMS sandbox",
                |f| f.sms_sandbox = Ok(true),
                false,
                "Exit SMS sandbox",
            ),
            (
                "default spend limit",
                |f| f.sms_spend_limit = Ok(None),
                false,
                "MonthlySpendLimit",
            ),
            (
                "one endpoint zone",
                |f| f.sns_endpoint_zones = Ok(vec!["us-east-1a".into()]),
                true,
                "another region",
            ),
            (
                "zones unreadable",
                |f| f.zones = Err("denied".into()),
                true,
                "ec2:DescribeAvailabilityZones",
            ),
        ];
        for (name, break_it, fails, advice) in cases {
            let mut facts = good();
            break_it(&mut facts);
            let r = check(&facts, &RESERVING);
            let said = if fails { &r.failures } else { &r.warnings };
            assert_eq!(r.ok(), !fails, "{name}: {r:?}");
            assert!(said.iter().any(|s| s.contains(advice)), "{name}: {said:?}");
        }
    }

    #[test]
    fn concurrency_is_not_asked_for_when_nothing_is_reserved() {
        let mut facts = good();
        facts.unreserved_concurrency = Err("GetAccountSettings not allowed".into());
        let r = check(
            &facts,
            &Wanted {
                reserved_concurrency: 0,
            },
        );
        assert!(r.ok(), "{r:?}");
    }

    #[test]
    fn the_reservation_is_read_from_serverless_yml() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let text = std::fs::read_to_string(root.join("serverless.yml")).unwrap_or_default();
        let total = reserved_in_serverless_yml(&text).unwrap_or_default();
        assert!(total > 0, "serverless.yml reserves {total}");
        let yml = "custom:\n  concurrency:\n    'true':\n      a: ${param:a, 10}\n      b: 5\n";
        assert_eq!(reserved_in_serverless_yml(yml).unwrap_or_default(), 15);
    }

    /// moto for what it serves; the two facts it cannot give (Lambda's account settings, the
    /// SMS sandbox) injected, as their real calls are in `AwsAccount`.
    struct OnMoto {
        real: AwsAccount,
        unreserved: Result<i32, String>,
        sandbox: Result<bool, String>,
    }

    #[async_trait]
    impl Account for OnMoto {
        async fn caller(&self) -> Result<String, String> {
            self.real.caller().await
        }
        async fn cloudwatch_role(&self) -> Result<Option<String>, String> {
            self.real.cloudwatch_role().await
        }
        async fn unreserved_concurrency(&self) -> Result<i32, String> {
            self.unreserved.clone()
        }
        async fn sms_sandbox(&self) -> Result<bool, String> {
            self.sandbox.clone()
        }
        async fn sms_spend_limit(&self) -> Result<Option<String>, String> {
            self.real.sms_spend_limit().await
        }
        async fn zones(&self) -> Result<Vec<String>, String> {
            self.real.zones().await
        }
        async fn sns_endpoint_zones(&self) -> Result<Vec<String>, String> {
            self.real.sns_endpoint_zones().await
        }
    }

    #[tokio::test]
    async fn against_moto_a_missing_role_fails_until_the_operator_opts_in_to_creating_it() {
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            "set AWS_ENDPOINT_URL to a moto server (scripts/test.sh does)"
        );
        let sdk = flightwatch_aws::sdk_config().await;
        let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
        let account = OnMoto {
            real: AwsAccount::new(&sdk, &region),
            unreserved: Ok(1000),
            sandbox: Ok(false),
        };
        // A fresh account: no role.
        account
            .real
            .apigateway
            .update_account()
            .patch_operations(
                aws_sdk_apigateway::types::PatchOperation::builder()
                    .op(aws_sdk_apigateway::types::Op::Replace)
                    .path("/cloudwatchRoleArn")
                    .value("")
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("resetting the role: {}", why(e)));
        let facts = gather(&account, &region, &RESERVING).await;
        let r = check(&facts, &RESERVING);
        assert!(!r.ok());
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("--create-cloudwatch-role")),
            "{r:?}"
        );
        assert_eq!(
            r.zones.as_ref().map(|z| z.0.starts_with(&region)),
            Some(true),
            "{r:?}"
        );

        let role =
            create_cloudwatch_role(&aws_sdk_iam::Client::new(&sdk), &account.real.apigateway)
                .await
                .unwrap_or_else(|e| panic!("{e:#}"));
        let r = check(&gather(&account, &region, &RESERVING).await, &RESERVING);
        assert!(r.ok(), "{r:?}");
        assert!(r.passed.iter().any(|p| p.contains(&role)), "{r:?}");

        let short = OnMoto {
            unreserved: Ok(99),
            sandbox: Err("GetSMSSandboxAccountStatus is not available".into()),
            ..account
        };
        let r = check(&gather(&short, &region, &RESERVING).await, &RESERVING);
        assert!(
            r.failures.iter().any(|f| f.contains("Service Quotas")),
            "{r:?}"
        );
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("sandbox status could not be read")),
            "{r:?}"
        );
    }
}
