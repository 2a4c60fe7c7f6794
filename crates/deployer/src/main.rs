//! `flightwatch-deploy`: the deployment steps that are not `sls deploy` — the infra stack, the
//! configuration, the database — and their tear-down, in reverse. `scripts/deploy.sh` and
//! `scripts/remove.sh` run them in order around Serverless.

mod config;
mod database;
mod functions;
mod stack;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::FunctionSettings;
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
    /// Uploads each function's JDBC properties (encrypted) and writes `.deploy/<stage>/params.json`.
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
    /// Rehearsal only: removes the functions' stack deployed by `functions`.
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
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &cli.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let sdk = loader.load().await;
    let cf = aws_sdk_cloudformation::Client::new(&sdk);
    let s3 = flightwatch_aws::s3_client(&sdk);
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
            parameters.insert(0, ("Stage".into(), stage.clone()));
            stack::deploy(
                &cf,
                StackSpec {
                    name: &infra_stack(&stage),
                    body: Some(body),
                    template_url: None,
                    parameters,
                },
            )
            .await?;
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
        } => {
            let outputs = stack::outputs(&cf, &infra_stack(&stage)).await?;
            let bucket = config::output(&outputs, "ConfigBucketName")?;
            let users = config::function_users(&s3, bucket, &stage).await?;
            config::upload_function_configs(&s3, &cli.root, &outputs, &stage, &users).await?;
            let settings = FunctionSettings {
                region,
                architecture,
                sms_sender_id,
                throttle_rate,
                throttle_burst,
                monthly_quota,
            };
            config::write_serverless_params(&cli.root, &outputs, &stage, &settings)?;
        }
        Command::Database {
            stage,
            database_url,
            require_tls,
        } => {
            let outputs = stack::outputs(&cf, &infra_stack(&stage)).await?;
            let users =
                config::function_users(&s3, config::output(&outputs, "ConfigBucketName")?, &stage)
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
            let api = config::output(&outputs, "RestApiId")?;
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
            if stack::status(&cf, &name).await?.is_some() {
                let outputs = stack::outputs(&cf, &name).await?;
                if let Some(bucket) = outputs.get("ConfigBucketName") {
                    let n = config::empty_bucket(&s3, bucket).await?;
                    println!("emptied s3://{bucket} ({n} objects)");
                }
                // Deletion protection guards against accidents, not against this command; the
                // stack's DeletionPolicy still takes a final snapshot of the database.
                stack::set_parameter(&cf, &name, "DatabaseDeletionProtection", "false").await?;
            }
            stack::delete(&cf, &name).await?;
        }
    }
    Ok(())
}
