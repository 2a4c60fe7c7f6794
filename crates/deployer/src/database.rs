//! Database users and migrations for a stage. In AWS the database is reachable only from inside
//! the VPC, so the deployer hands the work to the stage's `migrate` function there (no bastion);
//! with `--database-url` (a tunnel, or the offline rehearsal) it does the same work directly.

use std::collections::HashMap;

use anyhow::{bail, Context};
use aws_sdk_lambda::primitives::Blob;
use flightwatch_mysql::provision::{provision, FunctionUser, ProvisionRequest};

use crate::configure::output;

/// Provisions directly over `admin_url`.
pub async fn provision_direct(
    admin_url: &str,
    users: &[FunctionUser],
    require_tls: bool,
) -> anyhow::Result<()> {
    let settings = flightwatch_config::DatabaseSettings::from_url(admin_url)?;
    let database = settings
        .connect_options()
        .get_database()
        .context("the database URL must name the database")?
        .to_owned();
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .connect_with(flightwatch_mysql::provision::quiet(
            settings.connect_options_with_password(),
        ))
        .await
        .context("connecting to the database as admin")?;
    provision(&pool, &database, users, require_tls).await?;
    println!(
        "database {database}: migrations applied, users {} provisioned",
        names(users)
    );
    Ok(())
}

/// Provisions through the stage's `migrate` function inside the VPC.
pub async fn provision_in_vpc(
    sdk: &aws_config::SdkConfig,
    outputs: &HashMap<String, String>,
    function_name: &str,
    users: &[FunctionUser],
) -> anyhow::Result<()> {
    let secret = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(output(outputs, "DatabaseMasterSecretArn")?)
        .send()
        .await
        .context("reading the database admin secret")?;
    #[derive(serde::Deserialize)]
    struct Master {
        username: String,
        password: String,
    }
    let master: Master = serde_json::from_str(secret.secret_string().unwrap_or_default())
        .context("the admin secret is not the JSON RDS writes")?;
    let request = ProvisionRequest {
        host: output(outputs, "DatabaseEndpoint")?.to_owned(),
        port: output(outputs, "DatabasePort")?
            .parse()
            .context("DatabasePort")?,
        database: output(outputs, "DatabaseName")?.to_owned(),
        admin_user: master.username,
        admin_password: master.password,
        users: users.to_vec(),
    };
    let out = aws_sdk_lambda::Client::new(sdk)
        .invoke()
        .function_name(function_name)
        .payload(Blob::new(serde_json::to_vec(&request)?))
        .send()
        .await
        .with_context(|| format!("invoking {function_name}"))?;
    let payload = out
        .payload()
        .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
        .unwrap_or_default();
    if let Some(error) = out.function_error() {
        bail!("{function_name} failed ({error}): {payload}");
    }
    println!("{function_name}: {payload}");
    Ok(())
}

fn names(users: &[FunctionUser]) -> String {
    users
        .iter()
        .map(|u| u.username.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
