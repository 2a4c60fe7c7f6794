//! The `migrate` Lambda: invoked by the deployer (never by API Gateway or a schedule) to apply the
//! migrations and provision the functions' database users from inside the VPC, where the
//! database is, so no bastion is needed.

use flightwatch_mysql::provision::{provision, quiet, ProvisionRequest};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions, MySqlSslMode};

async fn handle(event: LambdaEvent<ProvisionRequest>) -> Result<Value, Error> {
    let req = event.payload;
    let options = quiet(
        MySqlConnectOptions::new()
            .host(&req.host)
            .port(req.port)
            .database(&req.database)
            .username(&req.admin_user)
            .password(&req.admin_password)
            .ssl_mode(MySqlSslMode::Required),
    );
    let pool = MySqlPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    provision(&pool, &req.database, &req.users, true).await?;
    pool.close().await;
    let users: Vec<&str> = req.users.iter().map(|u| u.username.as_str()).collect();
    Ok(json!({"migrated": true, "users": users}))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    flightwatch_lambda::init_logging();
    lambda_runtime::run(service_fn(handle)).await
}
