//! `flightwatch-migrate`: applies both functions' migrations to the database at `DATABASE_URL`
//! (an admin's URL). With `--users FILE` (a JSON list of `{"role", "username", "password"}`) it
//! also provisions those function users with exactly their grants, as the deployer does in AWS:
//! how the local Lambda tests run the functions under their production identities.

use std::process::ExitCode;

use flightwatch_mysql::provision::{provision, quiet, FunctionUser};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("flightwatch-migrate: set DATABASE_URL=mysql://user:password@host:3306/database");
        return ExitCode::from(2);
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let users_file = match args.as_slice() {
        [] => None,
        [flag, file] if flag == "--users" => Some(file.clone()),
        _ => {
            eprintln!("usage: flightwatch-migrate [--users users.json]");
            return ExitCode::from(2);
        }
    };
    let result = async {
        let options: sqlx::mysql::MySqlConnectOptions = url.parse()?;
        let database = options
            .get_database()
            .ok_or("DATABASE_URL must name the database")?
            .to_owned();
        let pool = sqlx::MySqlPool::connect_with(quiet(options)).await?;
        match users_file {
            None => flightwatch_mysql::migrate_all(&pool).await?,
            Some(file) => {
                let users: Vec<FunctionUser> =
                    serde_json::from_str(&std::fs::read_to_string(file)?)?;
                provision(&pool, &database, &users, false).await?;
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .await;
    match result {
        Ok(()) => {
            eprintln!("flightwatch-migrate: done");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("flightwatch-migrate: {e}");
            ExitCode::FAILURE
        }
    }
}
