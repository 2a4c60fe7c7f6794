//! Each Lambda binary's settings, typed, read from the environment `serverless.yml` gives it and
//! checked once at start: a bad value stops the cold start with what is wrong, instead of
//! failing the first request that needs it.

use secrecy::{ExposeSecret, SecretString};

use crate::{optional_env, required_env, ConfigError};

/// Where a database function's settings come from: `DATABASE_URL` when set (local use, a
/// secret: it carries the password), otherwise the JDBC-style properties file in S3.
#[derive(Clone)]
pub enum ConfigSource {
    Url(SecretString),
    S3 { bucket: String, key: String },
}

impl std::fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(_) => f.write_str("Url([redacted])"),
            Self::S3 { bucket, key } => write!(f, "S3(s3://{bucket}/{key})"),
        }
    }
}

impl Eq for ConfigSource {}

impl PartialEq for ConfigSource {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Url(a), Self::Url(b)) => a.expose_secret() == b.expose_secret(),
            (Self::S3 { bucket, key }, Self::S3 { bucket: b, key: k }) => bucket == b && key == k,
            _ => false,
        }
    }
}

impl ConfigSource {
    pub fn url(url: impl Into<String>) -> Self {
        Self::Url(SecretString::from(url.into()))
    }

    /// `DATABASE_URL`, or `FLIGHTWATCH_CONFIG_BUCKET` and `FLIGHTWATCH_CONFIG_KEY`.
    pub fn from_env() -> Result<Self, ConfigError> {
        if let Some(url) = optional_env("DATABASE_URL") {
            return Ok(Self::url(url));
        }
        match (
            optional_env("FLIGHTWATCH_CONFIG_BUCKET"),
            optional_env("FLIGHTWATCH_CONFIG_KEY"),
        ) {
            (Some(bucket), Some(key)) => Ok(Self::S3 { bucket, key }),
            _ => Err(ConfigError::MissingEnv(
                "DATABASE_URL, or FLIGHTWATCH_CONFIG_BUCKET and FLIGHTWATCH_CONFIG_KEY,",
            )),
        }
    }
}

/// An SNS topic's ARN (`arn:<partition>:sns:<region>:<account>:<name>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicArn(String);

impl TopicArn {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let parts: Vec<&str> = raw.split(':').collect();
        let ok = matches!(parts.as_slice(),
            ["arn", partition, "sns", region, account, name]
                if partition.starts_with("aws")
                    && !region.is_empty()
                    && account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && !name.is_empty());
        ok.then(|| Self(raw.to_owned()))
            .ok_or("must be an SNS topic ARN, arn:aws:sns:<region>:<account>:<name>")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn topic(name: &'static str) -> Result<TopicArn, ConfigError> {
    TopicArn::parse(&required_env(name)?).map_err(|why| ConfigError::Invalid {
        key: name,
        why: why.to_owned(),
    })
}

/// The flights function.
#[derive(Clone, Debug)]
pub struct FlightsSettings {
    pub database: ConfigSource,
    /// `FLIGHTWATCH_FLIGHT_EVENTS_TOPIC_ARN`: where registrations are announced, for the watch
    /// function; `None`: not announced.
    pub flight_events_topic: Option<TopicArn>,
}

impl FlightsSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        const TOPIC: &str = "FLIGHTWATCH_FLIGHT_EVENTS_TOPIC_ARN";
        Ok(Self {
            database: ConfigSource::from_env()?,
            flight_events_topic: optional_env(TOPIC)
                .map(|arn| {
                    TopicArn::parse(&arn).map_err(|why| ConfigError::Invalid {
                        key: TOPIC,
                        why: why.to_owned(),
                    })
                })
                .transpose()?,
        })
    }
}

/// The alerts function.
#[derive(Clone, Debug)]
pub struct AlertsSettings {
    pub database: ConfigSource,
    pub alerts_topic: TopicArn,
    /// `None`: the domain's default.
    pub alerts_per_flight_per_day: Option<u32>,
    /// The sms function's budget: what the relay hands out per pass follows it.
    pub sms_per_second: Option<std::num::NonZeroU32>,
    /// FlightAware pushes: off unless configured.
    pub flightaware: Option<FeedSettings>,
}

/// A flight-status provider's pushes (`POST /feeds/flightaware`).
#[derive(Clone, Debug)]
pub struct FeedSettings {
    /// `FLIGHTWATCH_FLIGHTAWARE_TOKEN`: the token the provider's endpoint URL carries, at least
    /// 32 characters.
    pub token: SecretString,
    /// `FLIGHTWATCH_DELAY_THRESHOLD_MINUTES` (1 to 720, default 15): a new departure at least
    /// this much later than scheduled is a delay.
    pub delay_threshold: std::time::Duration,
}

impl FeedSettings {
    /// `None` when no token is set: the feed is off.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        const TOKEN: &str = "FLIGHTWATCH_FLIGHTAWARE_TOKEN";
        const THRESHOLD: &str = "FLIGHTWATCH_DELAY_THRESHOLD_MINUTES";
        let Some(token) = optional_env(TOKEN) else {
            return Ok(None);
        };
        if token.len() < 32
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::Invalid {
                key: TOKEN,
                why: "must be at least 32 letters, digits, - or _ (a long random secret)".into(),
            });
        }
        let minutes = match optional_env(THRESHOLD) {
            None => 15,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|m| (1..=720).contains(m))
                .ok_or(ConfigError::Invalid {
                    key: THRESHOLD,
                    why: "must be a whole number of minutes from 1 to 720".into(),
                })?,
        };
        Ok(Some(Self {
            token: SecretString::from(token),
            delay_threshold: std::time::Duration::from_secs(60 * minutes),
        }))
    }
}

impl AlertsSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            database: ConfigSource::from_env()?,
            alerts_topic: topic("FLIGHTWATCH_ALERTS_TOPIC_ARN")?,
            alerts_per_flight_per_day: alerts_per_flight_per_day()?,
            sms_per_second: sms_per_second()?,
            flightaware: FeedSettings::from_env()?,
        })
    }
}

/// `FLIGHTWATCH_SMS_PER_SECOND`: the origination identity's SMS budget, 1 to 1000 messages a
/// second; read by the sms function (its pace), the alerts function (how much one relay pass
/// hands out) and the local stack.
pub fn sms_per_second() -> Result<Option<std::num::NonZeroU32>, ConfigError> {
    const KEY: &str = "FLIGHTWATCH_SMS_PER_SECOND";
    optional_env(KEY)
        .map(|v| {
            v.parse::<std::num::NonZeroU32>()
                .ok()
                .filter(|n| n.get() <= 1000)
                .ok_or(ConfigError::Invalid {
                    key: KEY,
                    why: "must be a whole number from 1 to 1000".into(),
                })
        })
        .transpose()
}

/// `FLIGHTWATCH_ALERTS_PER_FLIGHT_PER_DAY`: how many alerts (each texting every passenger) one
/// flight may have in 24 hours, 1 to 100; read by the alerts function and the local stack.
pub fn alerts_per_flight_per_day() -> Result<Option<u32>, ConfigError> {
    const KEY: &str = "FLIGHTWATCH_ALERTS_PER_FLIGHT_PER_DAY";
    optional_env(KEY)
        .map(|v| {
            v.parse::<u32>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or(ConfigError::Invalid {
                    key: KEY,
                    why: "must be a whole number from 1 to 100".into(),
                })
        })
        .transpose()
}

/// The watch function: off (it acknowledges its events and does nothing) unless both the feed's
/// token and an AeroAPI key are configured.
#[derive(Clone, Debug)]
pub struct WatchSettings {
    /// The properties file (`aeroapi.key=...`) in S3: `FLIGHTWATCH_CONFIG_BUCKET` and
    /// `FLIGHTWATCH_CONFIG_KEY`. Read on the first event; the key is a secret.
    pub config_bucket: String,
    pub config_key: String,
    /// `FLIGHTWATCH_AEROAPI_URL`: AeroAPI's base URL; `None`, the real one.
    pub aeroapi_url: Option<String>,
    /// Where AeroAPI is to deliver: `FLIGHTWATCH_FEED_URL` with the token of
    /// `FLIGHTWATCH_FLIGHTAWARE_TOKEN`; `None` when no token is set (the feed is off).
    pub feed_url: Option<SecretString>,
}

impl WatchSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let feed_url = match FeedSettings::from_env()? {
            None => None,
            Some(feed) => Some(feed_url(
                &required_env("FLIGHTWATCH_FEED_URL")?,
                &feed.token,
            )?),
        };
        Ok(Self {
            config_bucket: required_env("FLIGHTWATCH_CONFIG_BUCKET")?,
            config_key: required_env("FLIGHTWATCH_CONFIG_KEY")?,
            aeroapi_url: optional_env("FLIGHTWATCH_AEROAPI_URL"),
            feed_url,
        })
    }
}

/// The feed's URL as the provider is to call it: `base` (`https://.../feeds/flightaware`) with
/// the token. A secret, since the token is.
pub fn feed_url(base: &str, token: &SecretString) -> Result<SecretString, ConfigError> {
    let ok = (base.starts_with("https://") || base.starts_with("http://")) && !base.contains('?');
    if !ok {
        return Err(ConfigError::Invalid {
            key: "FLIGHTWATCH_FEED_URL",
            why: "must be the http(s) URL of POST /feeds/flightaware, without a query".into(),
        });
    }
    Ok(SecretString::from(format!(
        "{base}?token={}",
        token.expose_secret()
    )))
}

/// The AeroAPI key from the watch function's properties file (`aeroapi.key`); `None` when the
/// file has none (watching is off).
pub fn aeroapi_key(properties: &str) -> Result<Option<SecretString>, ConfigError> {
    Ok(crate::parse_properties(properties)?
        .remove("aeroapi.key")
        .filter(|k| !k.trim().is_empty())
        .map(|k| SecretString::from(k.trim().to_owned())))
}

/// The sms function.
#[derive(Clone, Debug)]
pub struct SmsSettings {
    /// The sms function's own bucket, where it claims each message before texting it.
    pub claims_bucket: String,
    /// Where what became of each recipient is reported (the alerts function's ledger).
    pub reports_topic: TopicArn,
    /// The SMS budget in messages a second; `None`: unpaced.
    pub sms_per_second: Option<std::num::NonZeroU32>,
    /// The alphanumeric sender id shown where countries allow one: 1 to 11 letters and digits,
    /// at least one a letter.
    pub sender_id: Option<String>,
}

impl SmsSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let sender_id = optional_env("FLIGHTWATCH_SMS_SENDER_ID");
        if let Some(id) = &sender_id {
            let ok = (1..=11).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric())
                && id.bytes().any(|b| b.is_ascii_alphabetic());
            if !ok {
                return Err(ConfigError::Invalid {
                    key: "FLIGHTWATCH_SMS_SENDER_ID",
                    why: "must be 1 to 11 letters and digits, at least one a letter".into(),
                });
            }
        }
        Ok(Self {
            claims_bucket: required_env("FLIGHTWATCH_SMS_CLAIMS_BUCKET")?,
            reports_topic: topic("FLIGHTWATCH_DELIVERY_REPORTS_TOPIC_ARN")?,
            sms_per_second: sms_per_second()?,
            sender_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_arns_are_checked_at_start() {
        assert!(TopicArn::parse("arn:aws:sns:us-east-1:123456789012:flightwatch-alerts").is_ok());
        assert!(TopicArn::parse("arn:aws-cn:sns:cn-north-1:123456789012:t").is_ok());
        assert!(TopicArn::parse("flightwatch-alerts").is_err());
        assert!(TopicArn::parse("arn:aws:sqs:us-east-1:123456789012:q").is_err());
        assert!(TopicArn::parse("arn:aws:sns:us-east-1:1234:t").is_err());
    }

    #[test]
    fn the_feed_url_carries_the_token_and_the_key_comes_from_the_properties() {
        let token = SecretString::from("t".repeat(32));
        let url = feed_url(
            "https://abc.execute-api.eu-west-1.amazonaws.com/dev/feeds/flightaware",
            &token,
        )
        .expect("valid");
        assert!(url
            .expose_secret()
            .ends_with(&format!("/feeds/flightaware?token={}", "t".repeat(32))));
        assert!(feed_url("ftp://x/feeds", &token).is_err());
        assert!(feed_url("https://x/feeds?a=b", &token).is_err());
        let key = aeroapi_key("# watching\naeroapi.key = k3y\n").expect("parses");
        assert_eq!(
            key.map(|k| k.expose_secret().to_owned()),
            Some("k3y".into())
        );
        assert!(aeroapi_key("# no AeroAPI key: watching is off\n")
            .expect("parses")
            .is_none());
    }

    #[test]
    fn a_database_url_is_a_secret_in_debug() {
        let source = ConfigSource::url("mysql://u:hunter2hunter2@db/fw");
        assert!(!format!("{source:?}").contains("hunter2"));
    }
}
