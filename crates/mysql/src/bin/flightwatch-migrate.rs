//! `flightwatch-migrate`: applies both functions' migrations to the database at `DATABASE_URL`.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("flightwatch-migrate: set DATABASE_URL=mysql://user:password@host:3306/database");
        return ExitCode::from(2);
    };
    let result = async {
        let pool = sqlx::MySqlPool::connect(&url).await?;
        flightwatch_mysql::migrate_all(&pool).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    }
    .await;
    match result {
        Ok(()) => {
            eprintln!("flightwatch-migrate: migrations applied");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("flightwatch-migrate: {e}");
            ExitCode::FAILURE
        }
    }
}
