//! MySQL for the flight and alert stores: its dialect of the store's SQL (the storage logic
//! itself is `flightwatch-store`'s, shared with SQLite), each function's migrations, and the
//! deploy-time provisioning of the functions' database users.

pub mod provision;

use sqlx::migrate::MigrateError;
use sqlx::{MySql, MySqlPool};

/// The flights function's store on MySQL.
pub type MySqlFlightStore = flightwatch_store::SqlFlightStore<MySql>;
/// The alerts function's store on MySQL.
pub type MySqlAlertStore = flightwatch_store::SqlAlertStore<MySql>;

/// Applies both functions' migrations, flights first: what the local stack, the tests and the
/// deployer's migration step run.
pub async fn migrate_all(pool: &MySqlPool) -> Result<(), MigrateError> {
    let migrators = [
        sqlx::migrate!("./migrations/flights"),
        sqlx::migrate!("./migrations/alerts"),
    ];
    flightwatch_store::migrate_all(pool, migrators).await
}
