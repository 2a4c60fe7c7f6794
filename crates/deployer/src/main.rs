//! `flightwatch-deploy`: the deployment steps that are not `sls deploy` — the infra stack, the
//! configuration, the database — and their tear-down, in reverse. `scripts/deploy.sh` and
//! `scripts/remove.sh` run them in order around Serverless.

mod configure;
mod database;
mod dead_letters;
mod delivery_status;
mod functions;
mod preflight;
mod stack;

use std::path::PathBuf;

use anyhow::Context;
use aws_sdk_cloudformation::types::StackStatus;
use clap::{Parser, Subcommand};
use configure::FunctionSettings;
use preflight::Account as _;
use stack::StackSpec;

#[derive(Parser)]
#[command(version, about = "Deploys and removes a flightwatch stage")]
struct Cli {
    /// The repository root (templates are read from infra/).
    #[arg(long, default_value = ".", global = true)]
    root: PathBuf,
    /// AWS region (default: the SDK's, e.g. AWS_REGION).
    #[arg(long, global = true)]
    region: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks, before anything is created, what the stage needs of the account and region:
    /// credentials, API Gateway's CloudWatch role, Lambda concurrency, SMS readiness (warnings),
    /// two zones where the SNS endpoint is offered. Fails (exit 1) with what to do.
    Preflight {
        #[arg(long)]
        stage: String,
        /// The stage will reserve the concurrency `serverless.yml` sets.
        #[arg(long, env = "FLIGHTWATCH_RESERVED_CONCURRENCY")]
        reserved_concurrency: bool,
        /// Create API Gateway's CloudWatch Logs role and set it on the account if it has none
        /// (an account-wide setting, hence opt-in).
        #[arg(long, env = "FLIGHTWATCH_CREATE_CLOUDWATCH_ROLE")]
        create_cloudwatch_role: bool,
    },
    /// Lists the stage's dead letters (phones masked); with --redrive, puts them back on the
    /// alerts topic as a first attempt and removes them from the queue.
    DeadLetters {
        #[arg(long)]
        stage: String,
        #[arg(long)]
        redrive: bool,
    },
    /// Exits 0 when the stack exists (in any state), 1 when it does not.
    HasStack { name: String },
    /// Creates or updates the infra stack `flightwatch-<stage>-infra`, printing its events.
    Infra {
        #[arg(long)]
        stage: String,
        #[arg(long, default_value = "infra/infra.yaml")]
        template: PathBuf,
        /// Extra template parameters, `Key=Value`.
        #[arg(long = "parameter", value_parser = key_value)]
        parameters: Vec<(String, String)>,
    },
    /// Uploads each database function's JDBC properties and the watch function's settings
    /// (encrypted), and writes `.deploy/<stage>/params.json`. The watch function's AeroAPI key is
    /// read from FLIGHTWATCH_AEROAPI_KEY (unset: watching off) and never printed.
    Configure {
        #[arg(long)]
        stage: String,
        #[arg(long, default_value = "arm64", value_parser = ["arm64", "x86_64"])]
        architecture: String,
        #[arg(long, default_value = "")]
        sms_sender_id: String,
        /// Steady requests per second allowed by the usage plan.
        #[arg(long, default_value_t = 50)]
        throttle_rate: u32,
        /// Burst of requests allowed by the usage plan.
        #[arg(long, default_value_t = 100)]
        throttle_burst: u32,
        /// Requests per month allowed by the usage plan.
        #[arg(long, default_value_t = 1_000_000)]
        monthly_quota: u32,
        /// Reserve the concurrency `serverless.yml` sets for each function (off by default:
        /// it needs an account quota above 100 plus the reservation).
        #[arg(long, env = "FLIGHTWATCH_RESERVED_CONCURRENCY")]
        reserved_concurrency: bool,
    },
    /// Applies the migrations and provisions each function's database user.
    Database {
        #[arg(long)]
        stage: String,
        /// Provision over this admin URL instead of through the in-VPC `migrate` function.
        #[arg(long, env = "FLIGHTWATCH_DEPLOY_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// With --database-url: require TLS of the function users (always required in AWS).
        #[arg(long)]
        require_tls: bool,
    },
    /// Deploys the REST API's current definition to its stage. CloudFormation creates the API
    /// deployment only once, so without this a changed `openapi.yaml` would never go live.
    ApiDeployment {
        #[arg(long)]
        stage: String,
    },
    /// Rehearsal only: deploys the packaged functions' stack where `sls deploy` cannot go.
    Functions {
        #[arg(long)]
        stage: String,
        #[arg(long, default_value = ".serverless")]
        packaged: PathBuf,
        /// Where scripts/build.sh put the `<function>.zip` artifacts.
        #[arg(long, env = "FLIGHTWATCH_LAMBDA_DIR", default_value = "target/lambda")]
        artifacts: PathBuf,
    },
    /// Empties the functions' deployment bucket and deletes their stack: what `sls remove` does,
    /// for when it cannot (the rehearsal, or an infra stack already gone).
    RemoveFunctions {
        #[arg(long)]
        stage: String,
    },
    /// Empties the config bucket and deletes the infra stack (the database leaves a final snapshot).
    Remove {
        #[arg(long)]
        stage: String,
    },
}

/// The infra template's parameter for RDS deletion protection.
const PROTECTION: &str = "DatabaseDeletionProtection";

/// After a failed first creation: what the rollback left behind, if anything, and how to delete
/// it, so that nothing bills unnoticed.
async fn report_leftovers(cf: &aws_sdk_cloudformation::Client, name: &str) {
    let Ok(resources) = stack::resources(cf, name).await else {
        return;
    };
    let left: Vec<&stack::Resource> = resources
        .iter()
        .filter(|r| r.physical_id.is_some() && r.status != "DELETE_COMPLETE")
        .collect();
    if left.is_empty() {
        println!("the failed creation was rolled back: nothing of {name} is left but the stack record (deleted by the next deploy or by scripts/remove.sh)");
        return;
    }
    println!("the failed creation left these behind; scripts/remove.sh deletes them, or by hand:");
    for r in left {
        let id = r.physical_id.as_deref().unwrap_or_default();
        println!(
            "  {} {id} ({}, {}): {}",
            r.kind,
            r.logical_id,
            r.status,
            stack::how_to_delete(&r.kind, id)
        );
    }
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected Key=Value, got {s}"))
}

fn infra_stack(stage: &str) -> String {
    format!("flightwatch-{stage}-infra")
}

fn functions_stack(stage: &str) -> String {
    format!("flightwatch-{stage}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(flightwatch_aws::http_client());
    if let Some(region) = &cli.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let sdk = loader.load().await;
    let cf = aws_sdk_cloudformation::Client::new(&sdk);
    // Path-style addressing when an endpoint is overridden: emulators (and VPC endpoints by URL)
    // do not serve bucket subdomains.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build(),
    );
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());

    match cli.command {
        Command::Infra {
            stage,
            template,
            mut parameters,
        } => {
            let body = std::fs::read_to_string(cli.root.join(&template))
                .with_context(|| format!("reading {}", template.display()))?;
            let name = infra_stack(&stage);
            parameters.insert(0, ("Stage".into(), stage.clone()));
            let creating = !matches!(
                stack::status(&cf, &name).await?,
                Some(s) if !matches!(s, StackStatus::RollbackComplete | StackStatus::RollbackFailed)
            );
            let given = |key: &str| parameters.iter().any(|(k, _)| k == key);
            // Protection on:  what the operator asked for, or the template's default.
            let protect = parameters
                .iter()
                .find(|(k, _)| k == PROTECTION)
                .is_none_or(|(_, v)| v == "true");
            if creating {
                // Zones are chosen once, where the SNS endpoint is offered; updates keep them.
                if !given("AvailabilityZoneA") {
                    let account = preflight::AwsAccount::new(&sdk, &region);
                    let (a, b) = preflight::pick_zones(&account).await?;
                    println!("availability zones: {a}, {b}");
                    parameters.push(("AvailabilityZoneA".into(), a));
                    parameters.push(("AvailabilityZoneB".into(), b));
                }
                // A first creation that fails while RDS is being created must roll back
                // cleanly; deletion protection would leave it in ROLLBACK_FAILED. It is turned
                // on once the stack exists.
                parameters.retain(|(k, _)| k != PROTECTION);
                parameters.push((PROTECTION.into(), "false".into()));
            }
            let deployed = stack::deploy(
                &cf,
                StackSpec {
                    name: &name,
                    body: Some(body),
                    template_url: None,
                    parameters,
                },
            )
            .await;
            if let Err(e) = deployed {
                if creating {
                    report_leftovers(&cf, &name).await;
                }
                return Err(e);
            }
            if creating && protect {
                stack::set_parameter(&cf, &name, PROTECTION, "true").await?;
            }
            for (k, v) in stack::outputs(&cf, &infra_stack(&stage)).await? {
                println!("  {k} = {v}");
            }
        }
        Command::Configure {
            stage,
            architecture,
            sms_sender_id,
            throttle_rate,
            throttle_burst,
            monthly_quota,
            reserved_concurrency,
        } => {
            // First: a key that cannot be written fails the step before anything changes.
            let aeroapi_key = configure::aeroapi_key_from_env()?;
            let outputs = stack::outputs(&cf, &infra_stack(&stage)).await?;
            let bucket = configure::output(&outputs, "ConfigBucketName")?;
            let users = configure::function_users(&s3, bucket, &stage).await?;
            // Before the functions stack, whose subscription filters need the log groups.
            let role = configure::output(&outputs, "SmsDeliveryStatusRoleArn")?;
            let account = role.split(':').nth(4).unwrap_or_default();
            delivery_status::enable(&sdk, &region, account, role).await?;
            configure::upload_function_configs(&s3, &cli.root, &outputs, &stage, &users).await?;
            configure::upload_watch_config(&s3, &outputs, &stage, aeroapi_key.as_ref()).await?;
            let settings = FunctionSettings {
                region,
                architecture,
                sms_sender_id,
                throttle_rate,
                throttle_burst,
                monthly_quota,
                reserved_concurrency,
                // The flights function announces registrations only when watching is on.
                watching: aeroapi_key.is_some(),
            };
            configure::write_serverless_params(&cli.root, &outputs, &stage, &settings)?;
        }
        Command::Database {
            stage,
            database_url,
            require_tls,
        } => {
            let outputs = stack::outputs(&cf, &infra_stack(&stage)).await?;
            let users = configure::function_users(
                &s3,
                configure::output(&outputs, "ConfigBucketName")?,
                &stage,
            )
            .await?;
            match database_url {
                Some(url) => database::provision_direct(&url, &users, require_tls).await?,
                None => {
                    let function = format!("{}-migrate", functions_stack(&stage));
                    database::provision_in_vpc(&sdk, &outputs, &function, &users).await?
                }
            }
        }
        Command::Functions {
            stage,
            packaged,
            artifacts,
        } => {
            functions::deploy(
                &cf,
                &s3,
                &functions_stack(&stage),
                &cli.root.join(packaged),
                &cli.root.join(artifacts),
            )
            .await?;
        }
        Command::ApiDeployment { stage } => {
            let outputs = stack::outputs(&cf, &functions_stack(&stage)).await?;
            let api = configure::output(&outputs, "RestApiId")?;
            let deployment = aws_sdk_apigateway::Client::new(&sdk)
                .create_deployment()
                .rest_api_id(api)
                .stage_name(&stage)
                .description("flightwatch-deploy: openapi.yaml as deployed")
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "deploying API {api} to {stage}: {}",
                        aws_sdk_apigateway::error::DisplayErrorContext(e)
                    )
                })?;
            println!(
                "API {api} deployed to stage {stage} (deployment {})",
                deployment.id().unwrap_or_default()
            );
        }
        Command::RemoveFunctions { stage } => {
            functions::remove(&cf, &s3, &functions_stack(&stage)).await?
        }
        Command::Remove { stage } => {
            let name = infra_stack(&stage);
            let Some(state) = stack::status(&cf, &name).await? else {
                println!("stack {name} does not exist: nothing to delete");
                return Ok(());
            };
            let resources = stack::resources(&cf, &name).await?;
            // From the resources, not the outputs: a stack that failed to create has none.
            for bucket in resources.iter().filter(|r| r.kind == "AWS::S3::Bucket") {
                if let Some(id) = &bucket.physical_id {
                    let n = configure::empty_bucket(&s3, id).await?;
                    println!("emptied s3://{id} ({n} objects)");
                }
            }
            // Deletion protection guards against accidents, not against this command; the
            // stack's DeletionPolicy still takes a final snapshot of the database. Only a
            // settled stack can be updated; the others were created without protection.
            if matches!(
                state,
                StackStatus::CreateComplete
                    | StackStatus::UpdateComplete
                    | StackStatus::UpdateRollbackComplete
            ) {
                stack::set_parameter(&cf, &name, PROTECTION, "false").await?;
            }
            let kept = stack::delete_from_any_state(&cf, &name).await?;
            let databases: Vec<&stack::Resource> = resources
                .iter()
                .filter(|r| r.kind == "AWS::RDS::DBInstance" && r.physical_id.is_some())
                .collect();
            if !kept.is_empty() || !databases.is_empty() {
                println!("left behind, deliberately or because it would not delete:");
            }
            for db in databases {
                let id = db.physical_id.as_deref().unwrap_or_default();
                println!(
                    "  the final snapshot of database {id} (DeletionPolicy: Snapshot), kept \
                     deliberately: `aws rds describe-db-snapshots --db-instance-identifier {id}`; \
                     delete it with `aws rds delete-db-snapshot` when no longer needed"
                );
            }
            for k in &kept {
                println!("  {k}");
            }
        }
        Command::Preflight {
            stage,
            reserved_concurrency,
            create_cloudwatch_role,
        } => {
            let reserved = if reserved_concurrency {
                let text = std::fs::read_to_string(cli.root.join("serverless.yml"))
                    .context("reading serverless.yml")?;
                preflight::reserved_in_serverless_yml(&text)?
            } else {
                0
            };
            let wanted = preflight::Wanted {
                reserved_concurrency: reserved,
            };
            let account = preflight::AwsAccount::new(&sdk, &region);
            let mut facts = preflight::gather(&account, &region, &wanted).await;
            if create_cloudwatch_role && matches!(facts.cloudwatch_role, Ok(None)) {
                let role = preflight::create_cloudwatch_role(
                    &aws_sdk_iam::Client::new(&sdk),
                    &account.apigateway,
                )
                .await?;
                println!("created and set API Gateway's CloudWatch Logs role {role}");
                facts.cloudwatch_role = account.cloudwatch_role().await;
            }
            println!("preflight for stage {stage} in {region}:");
            let report = preflight::check(&facts, &wanted);
            report.print();
            if !report.ok() {
                anyhow::bail!(
                    "preflight: {} problem(s) above; nothing was created",
                    report.failures.len()
                );
            }
        }
        Command::DeadLetters { stage, redrive } => {
            let outputs = stack::outputs(&cf, &infra_stack(&stage)).await?;
            let queue = configure::output(&outputs, "DeadLetterQueueUrl")?;
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            if redrive {
                let bus = flightwatch_aws::SnsTopic::from_config(
                    &sdk,
                    configure::output(&outputs, "AlertsTopicArn")?,
                );
                let (redriven, kept) = dead_letters::redrive(&sqs, queue, &bus).await?;
                println!("{redriven} dead letter(s) redriven onto the alerts topic, {kept} unreadable kept");
            } else {
                let letters = dead_letters::receive(&sqs, queue, 1000, 0).await?;
                for letter in &letters {
                    for line in dead_letters::describe(letter) {
                        println!("{line}");
                    }
                }
                println!("{} dead letter(s) in {queue}", letters.len());
            }
        }
        Command::HasStack { name } => {
            if stack::status(&cf, &name).await?.is_none() {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
