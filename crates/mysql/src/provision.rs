//! Database provisioning at deploy time, run as the RDS admin user from inside the VPC: both
//! functions' migrations, then one database user per function, granted only its own tables (and,
//! for alerts, the two read-only views onto flights data).

use sqlx::MySqlPool;

/// Which function a database user belongs to; decides its grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Flights,
    Alerts,
}

impl Role {
    /// (privileges, object) pairs: nothing beyond what the function's queries do.
    fn grants(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Flights => &[
                ("SELECT, INSERT, UPDATE", "flights"),
                ("SELECT, INSERT, UPDATE", "passengers"),
            ],
            Self::Alerts => &[
                ("SELECT, INSERT, UPDATE", "alerts"),
                // UPDATE: the delivery ledger's states, from the sms function's reports.
                ("SELECT, INSERT, UPDATE", "alert_recipients"),
                ("SELECT, INSERT, UPDATE", "alert_outbox"),
                // The SMS budget's schedule, reserved by each hand-out.
                ("SELECT, UPDATE", "sms_pace"),
                // DELETE: the relay expires keys after their retention.
                ("SELECT, INSERT, UPDATE, DELETE", "idempotency_keys"),
                ("SELECT", "flight_schedules"),
                ("SELECT", "passenger_phones"),
            ],
        }
    }
}

/// A function's database user. Names and passwords are restricted to characters that need no
/// quoting, because MySQL cannot bind them as parameters in `CREATE USER`.
#[derive(Clone, serde::Deserialize, serde::Serialize)]
pub struct FunctionUser {
    pub role: Role,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for FunctionUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionUser")
            .field("role", &self.role)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// What the in-VPC `migrate` function receives from the deployer: where the database is, its
/// admin credentials (read from Secrets Manager by the deployer; sent over TLS, never logged) and
/// the users to provision.
#[derive(Clone, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionRequest {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub admin_user: String,
    pub admin_password: String,
    pub users: Vec<FunctionUser>,
}

impl std::fmt::Debug for ProvisionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvisionRequest")
            .field("host", &self.host)
            .field("database", &self.database)
            .field("admin_user", &self.admin_user)
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{0} may only contain letters, digits and _ (1 to 64 characters)")]
    BadIdentifier(String),
    #[error("the password of {0} must be 20 to 64 letters and digits")]
    BadPassword(String),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Connect options that never log statements: sqlx logs statement text (at debug, and slow ones
/// at warn), and provisioning statements contain passwords.
pub fn quiet(options: sqlx::mysql::MySqlConnectOptions) -> sqlx::mysql::MySqlConnectOptions {
    use sqlx::ConnectOptions;
    options
        .log_statements(log::LevelFilter::Off)
        .log_slow_statements(log::LevelFilter::Off, std::time::Duration::from_secs(3600))
}

fn identifier(name: &str) -> Result<&str, ProvisionError> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then_some(name)
        .ok_or_else(|| ProvisionError::BadIdentifier(name.to_owned()))
}

/// Applies the migrations, then creates (or updates) each user with exactly its grants. Safe to
/// run on every deploy. Connect `admin` with `quiet` options: these statements carry passwords.
pub async fn provision(
    admin: &MySqlPool,
    database: &str,
    users: &[FunctionUser],
    require_tls: bool,
) -> Result<(), ProvisionError> {
    let database = identifier(database)?;
    crate::migrate_all(admin).await?;
    let tls = if require_tls {
        "REQUIRE SSL"
    } else {
        "REQUIRE NONE"
    };
    for user in users {
        let name = identifier(&user.username)?;
        let pw = &user.password;
        if !(20..=64).contains(&pw.len()) || !pw.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ProvisionError::BadPassword(name.to_owned()));
        }
        // Text protocol: these statements cannot be prepared. Inputs were checked above.
        sqlx::raw_sql(&format!(
            "CREATE USER IF NOT EXISTS '{name}'@'%' IDENTIFIED BY '{pw}' {tls}"
        ))
        .execute(admin)
        .await?;
        sqlx::raw_sql(&format!(
            "ALTER USER '{name}'@'%' IDENTIFIED BY '{pw}' {tls}"
        ))
        .execute(admin)
        .await?;
        // Exactly these grants: whatever an earlier version granted goes first.
        sqlx::raw_sql(&format!(
            "REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{name}'@'%'"
        ))
        .execute(admin)
        .await?;
        for (privileges, object) in user.role.grants() {
            sqlx::raw_sql(&format!(
                "GRANT {privileges} ON `{database}`.`{object}` TO '{name}'@'%'"
            ))
            .execute(admin)
            .await?;
        }
        tracing::info!(user = name, role = ?user.role, "database user provisioned");
    }
    Ok(())
}

/// Pools connected as freshly provisioned function users, with exactly the grants `provision`
/// gives: how the tests and the local stack on MySQL run with production's identities rather than
/// as the admin who set the database up.
pub struct FunctionPools {
    pub flights: MySqlPool,
    pub alerts: MySqlPool,
    users: Vec<FunctionUser>,
}

impl FunctionPools {
    /// Migrates `admin`'s database, provisions a flights and an alerts user named after it
    /// (users are server-wide: tests on other databases must not share them, and a database name
    /// used again gets the same users back, re-granted, rather than new ones piling up), and
    /// connects a pool of `max_connections` as each.
    pub async fn provision(
        admin: &MySqlPool,
        max_connections: u32,
    ) -> Result<Self, ProvisionError> {
        let database = admin
            .connect_options()
            .get_database()
            .ok_or_else(|| ProvisionError::BadIdentifier("(no database)".into()))?
            .to_owned();
        // FNV-1a of the database name: short, stable, and only letters and digits.
        let tag = database.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let password = format!("P{}", uuid::Uuid::now_v7().simple());
        let user = |role, prefix| FunctionUser {
            role,
            username: format!("{prefix}_{tag:016x}"),
            password: password.clone(),
        };
        let users = vec![user(Role::Flights, "fw_fl"), user(Role::Alerts, "fw_al")];
        provision(admin, &database, &users, false).await?;
        let connect = |u: &FunctionUser| {
            let options = (*admin.connect_options())
                .clone()
                .username(&u.username)
                .password(&u.password);
            sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(max_connections)
                .connect_lazy_with(options)
        };
        Ok(Self {
            flights: connect(&users[0]),
            alerts: connect(&users[1]),
            users,
        })
    }

    /// Closes both pools and drops the users.
    pub async fn drop_users(self, admin: &MySqlPool) -> Result<(), sqlx::Error> {
        self.flights.close().await;
        self.alerts.close().await;
        for u in &self.users {
            // Names were generated above from hex digits: nothing to quote.
            sqlx::raw_sql(&format!("DROP USER IF EXISTS '{}'@'%'", u.username))
                .execute(admin)
                .await?;
        }
        Ok(())
    }
}
