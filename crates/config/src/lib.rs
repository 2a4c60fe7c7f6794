//! The one place that turns configuration into settings: each Lambda binary's typed settings
//! from its environment (`functions`), and the database's from a `DATABASE_URL` or the
//! JDBC-style properties file the deployment writes (`jdbc.url`, `jdbc.username`,
//! `jdbc.password`, pool settings). The password is a secret: it is never logged or printed.

mod functions;

pub use functions::{
    aeroapi_key, alerts_per_flight_per_day, feed_url, sms_per_second, AlertsSettings, ConfigSource,
    FeedSettings, FlightsSettings, SmsSettings, TopicArn, WatchSettings,
};

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions, MySqlSslMode};
use sqlx::MySqlPool;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("line {line}: expected `key=value`")]
    Syntax { line: usize },
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{key} is not valid: {why}")]
    Invalid { key: &'static str, why: String },
    #[error("set the environment variable {0}")]
    MissingEnv(&'static str),
}

/// An environment variable that must be set (and not empty).
pub fn required_env(name: &'static str) -> Result<String, ConfigError> {
    optional_env(name).ok_or(ConfigError::MissingEnv(name))
}

/// An environment variable that may be unset; empty counts as unset.
pub fn optional_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// How to reach the database and how many connections to keep. The password is held apart from
/// sqlx's connect options (whose `Debug` prints it) and joins them only in the pool.
#[derive(Clone)]
pub struct DatabaseSettings {
    /// Everything but the password.
    options: MySqlConnectOptions,
    password: Option<SecretString>,
    /// One connection per Lambda execution environment: an environment serves one request at a
    /// time, and RDS connections are the scarce resource.
    pub max_connections: u32,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("host", &self.options.get_host())
            .field("port", &self.options.get_port())
            .field("database", &self.options.get_database())
            .field("username", &self.options.get_username())
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl DatabaseSettings {
    /// From a `mysql://user:password@host:port/db?ssl-mode=...` URL.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let invalid = |why: String| ConfigError::Invalid {
            key: "DATABASE_URL",
            why,
        };
        let mut url = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        let password = url
            .password()
            .map(|p| {
                percent_encoding::percent_decode_str(p)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .map(SecretString::from);
        url.set_password(None)
            .map_err(|()| invalid("cannot hold a password".into()))?;
        let options =
            MySqlConnectOptions::from_str(url.as_str()).map_err(|e| invalid(e.to_string()))?;
        Ok(Self::with_options(options, password))
    }

    fn with_options(options: MySqlConnectOptions, password: Option<SecretString>) -> Self {
        Self {
            options,
            password,
            max_connections: 1,
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(300),
        }
    }

    /// From the JDBC-style properties file:
    ///
    /// ```text
    /// jdbc.url=jdbc:mysql://host:3306/flightwatch?sslMode=REQUIRED
    /// jdbc.username=flights
    /// jdbc.password=...
    /// pool.maxConnections=1
    /// ```
    pub fn from_jdbc_properties(text: &str) -> Result<Self, ConfigError> {
        let props = parse_properties(text)?;
        let url = props
            .get("jdbc.url")
            .ok_or(ConfigError::Missing("jdbc.url"))?;
        let invalid = |why: &str| ConfigError::Invalid {
            key: "jdbc.url",
            why: why.to_owned(),
        };
        let rest = url
            .strip_prefix("jdbc:mysql://")
            .or_else(|| url.strip_prefix("jdbc:mariadb://"))
            .ok_or_else(|| invalid("must start with jdbc:mysql://"))?;
        let (authority, path_query) = rest
            .split_once('/')
            .ok_or_else(|| invalid("must name a database: jdbc:mysql://host:3306/flightwatch"))?;
        let (database, query) = path_query.split_once('?').unwrap_or((path_query, ""));
        if database.is_empty() {
            return Err(invalid(
                "must name a database: jdbc:mysql://host:3306/flightwatch",
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| invalid("port must be a number"))?,
            ),
            None => (authority, 3306),
        };
        if host.is_empty() {
            return Err(invalid("must name a host"));
        }
        let mut options = MySqlConnectOptions::new()
            .host(host)
            .port(port)
            .database(database);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslMode" | "ssl-mode" | "sslmode" => {
                    options = options.ssl_mode(ssl_mode(v).map_err(|why| invalid(&why))?)
                }
                "useSSL" if v.eq_ignore_ascii_case("true") => {
                    options = options.ssl_mode(MySqlSslMode::Required)
                }
                "useSSL" => options = options.ssl_mode(MySqlSslMode::Disabled),
                "serverSslCert" | "sslCa" => options = options.ssl_ca(v),
                // JDBC driver knobs with no meaning here are ignored rather than refused.
                _ => {}
            }
        }
        let username = props
            .get("jdbc.username")
            .ok_or(ConfigError::Missing("jdbc.username"))?;
        options = options.username(username);
        let password = props
            .get("jdbc.password")
            .map(|p| SecretString::from(p.clone()));
        let mut settings = Self::with_options(options, password);
        if let Some(v) = props.get("pool.maxConnections") {
            settings.max_connections = number(v, "pool.maxConnections")?.max(1);
        }
        if let Some(v) = props.get("pool.connectTimeoutSeconds") {
            settings.connect_timeout =
                Duration::from_secs(number(v, "pool.connectTimeoutSeconds")?.into());
        }
        if let Some(v) = props.get("pool.idleTimeoutSeconds") {
            settings.idle_timeout =
                Duration::from_secs(number(v, "pool.idleTimeoutSeconds")?.into());
        }
        Ok(settings)
    }

    /// A pool that connects on first use: a cold start does not wait for the database unless the
    /// request needs it.
    pub fn pool(&self) -> MySqlPool {
        MySqlPoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(0)
            .acquire_timeout(self.connect_timeout)
            .idle_timeout(self.idle_timeout)
            .connect_lazy_with(self.connect_options_with_password())
    }

    /// Where and as whom to connect, without the password: safe to inspect and print.
    pub fn connect_options(&self) -> &MySqlConnectOptions {
        &self.options
    }

    /// The connect options with the password in: for connecting, never for keeping.
    pub fn connect_options_with_password(&self) -> MySqlConnectOptions {
        match &self.password {
            Some(p) => self.options.clone().password(p.expose_secret()),
            None => self.options.clone(),
        }
    }
}

fn number(v: &str, key: &'static str) -> Result<u32, ConfigError> {
    v.parse().map_err(|_| ConfigError::Invalid {
        key,
        why: "must be a whole number".to_owned(),
    })
}

fn ssl_mode(v: &str) -> Result<MySqlSslMode, String> {
    Ok(match v.to_ascii_uppercase().replace('-', "_").as_str() {
        "DISABLED" => MySqlSslMode::Disabled,
        "PREFERRED" => MySqlSslMode::Preferred,
        "REQUIRED" => MySqlSslMode::Required,
        "VERIFY_CA" => MySqlSslMode::VerifyCa,
        "VERIFY_IDENTITY" => MySqlSslMode::VerifyIdentity,
        other => return Err(format!("sslMode {other} is not one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY")),
    })
}

/// Java-style `.properties`, the subset deployments write: `key=value` or `key: value` lines,
/// `#`/`!` comments, blank lines.
pub fn parse_properties(text: &str) -> Result<HashMap<String, String>, ConfigError> {
    let mut props = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .or_else(|| line.split_once(':'))
            .ok_or(ConfigError::Syntax { line: i + 1 })?;
        props.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(props)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# written by the deployer\n\
        jdbc.url=jdbc:mysql://db.internal:3307/flightwatch?sslMode=REQUIRED&characterEncoding=UTF-8\n\
        jdbc.username=alerts\n\
        jdbc.password=s3cr3t=with=equals\n\
        pool.maxConnections=2\n";

    #[test]
    fn the_password_is_in_no_debug_output_and_reaches_the_connection() {
        for s in [
            DatabaseSettings::from_jdbc_properties(GOOD).unwrap(),
            DatabaseSettings::from_url("mysql://alerts:s3cr3t%3Dwith%3Dequals@db:3306/fw").unwrap(),
        ] {
            assert!(!format!("{s:?}").contains("s3cr3t"), "{s:?}");
            assert!(!format!("{:?}", s.connect_options()).contains("s3cr3t"));
            let with = format!("{:?}", s.connect_options_with_password());
            assert!(
                with.contains("s3cr3t=with=equals"),
                "the pool connects with it"
            );
        }
    }

    #[test]
    fn jdbc_properties_become_connect_options() {
        let s = DatabaseSettings::from_jdbc_properties(GOOD).unwrap();
        let o = s.connect_options();
        assert_eq!(o.get_host(), "db.internal");
        assert_eq!(o.get_port(), 3307);
        assert_eq!(o.get_database(), Some("flightwatch"));
        assert_eq!(o.get_username(), "alerts");
        assert!(matches!(o.get_ssl_mode(), MySqlSslMode::Required));
        assert_eq!(s.max_connections, 2);
        assert_eq!(
            s.password.as_ref().unwrap().expose_secret(),
            "s3cr3t=with=equals"
        );
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let s = DatabaseSettings::from_jdbc_properties(GOOD).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn one_connection_per_environment_by_default() {
        let s =
            DatabaseSettings::from_jdbc_properties("jdbc.url=jdbc:mysql://h/db\njdbc.username=u\n")
                .unwrap();
        assert_eq!(s.max_connections, 1);
        assert_eq!(s.connect_options().get_port(), 3306);
    }

    #[test]
    fn malformed_files_say_what_is_wrong() {
        let cases = [
            ("jdbc.username=u\n", "jdbc.url is missing"),
            (
                "jdbc.url=mysql://h/db\njdbc.username=u",
                "jdbc.url is not valid: must start with jdbc:mysql://",
            ),
            (
                "jdbc.url=jdbc:mysql://h:x/db\njdbc.username=u",
                "jdbc.url is not valid: port must be a number",
            ),
            (
                "jdbc.url=jdbc:mysql://h/\njdbc.username=u",
                "must name a database",
            ),
            (
                "jdbc.url=jdbc:mysql://h/db?sslMode=SOMETIMES\njdbc.username=u",
                "sslMode SOMETIMES",
            ),
            ("jdbc.url=jdbc:mysql://h/db\n", "jdbc.username is missing"),
            (
                "jdbc.url=jdbc:mysql://h/db\njdbc.username=u\nnonsense\n",
                "line 3: expected `key=value`",
            ),
            (
                "jdbc.url=jdbc:mysql://h/db\njdbc.username=u\npool.maxConnections=many",
                "pool.maxConnections is not valid",
            ),
        ];
        for (text, want) in cases {
            let err = DatabaseSettings::from_jdbc_properties(text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
