//! The configuration a stage runs with, rendered from Mustache templates (as the original
//! deployment did) and the infra stack's outputs: each function's JDBC properties file and the
//! watch function's settings (its FlightAware AeroAPI key), uploaded to the encrypted config
//! bucket, and the parameters file `serverless.yml` reads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use flightwatch_mysql::provision::{FunctionUser, Role};
use rand::distr::{Alphanumeric, SampleString};
use secrecy::{ExposeSecret, SecretString};

/// The functions that talk to the database, with their database user names.
pub const DATABASE_FUNCTIONS: [(Role, &str); 2] =
    [(Role::Flights, "flights"), (Role::Alerts, "alerts")];

pub fn render(template: &Path, values: &HashMap<String, String>) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("reading {}", template.display()))?;
    let compiled =
        mustache::compile_str(&text).with_context(|| format!("parsing {}", template.display()))?;
    compiled
        .render_to_string(values)
        .with_context(|| format!("rendering {}", template.display()))
}

/// Where a function's properties file lives in the config bucket.
pub fn config_key(stage: &str, function: &str) -> String {
    format!("{stage}/{function}.properties")
}

/// Each database function's user: the password already in its config file when there is one (a
/// redeploy must not lock running functions out), a new random one otherwise.
pub async fn function_users(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    stage: &str,
) -> anyhow::Result<Vec<FunctionUser>> {
    let mut users = Vec::new();
    for (role, name) in DATABASE_FUNCTIONS {
        let existing = match s3
            .get_object()
            .bucket(bucket)
            .key(config_key(stage, name))
            .send()
            .await
        {
            Ok(object) => {
                let bytes = object.body.collect().await?.into_bytes();
                let props = flightwatch_config::parse_properties(std::str::from_utf8(&bytes)?)?;
                props.get("jdbc.password").cloned()
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => None,
            // Anything else (access denied, KMS, throttling) must not mint a new password that no
            // config file holds: that would lock the running functions out.
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "reading s3://{bucket}/{}: {}",
                    config_key(stage, name),
                    aws_sdk_s3::error::DisplayErrorContext(e)
                ))
            }
        };
        let password = existing.unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::rng(), 32));
        users.push(FunctionUser {
            role,
            username: name.to_owned(),
            password,
        });
    }
    Ok(users)
}

/// Renders and uploads each database function's properties file, encrypted with the stage's key.
pub async fn upload_function_configs(
    s3: &aws_sdk_s3::Client,
    root: &Path,
    outputs: &HashMap<String, String>,
    stage: &str,
    users: &[FunctionUser],
) -> anyhow::Result<()> {
    let bucket = output(outputs, "ConfigBucketName")?;
    for user in users {
        let mut values = outputs.clone();
        values.insert("Stage".into(), stage.into());
        values.insert("Username".into(), user.username.clone());
        values.insert("Password".into(), user.password.clone());
        let text = render(
            &root.join("infra/templates/jdbc.properties.mustache"),
            &values,
        )?;
        let key = config_key(stage, &user.username);
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(ByteStream::from(text.into_bytes()))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id(outputs.get("TopicKeyArn").cloned())
            .send()
            .await
            .with_context(|| format!("uploading s3://{bucket}/{key}"))?;
        println!("uploaded s3://{bucket}/{key} (SSE-KMS)");
    }
    Ok(())
}

/// The function whose settings file holds the AeroAPI key (`<stage>/watch.properties`).
pub const WATCH_FUNCTION: &str = "watch";
/// The deployer's environment variable the AeroAPI key is given in: a secret, never printed.
pub const AEROAPI_KEY_ENV: &str = "FLIGHTWATCH_AEROAPI_KEY";
/// `watch.properties` without a key: the function starts, and watches nothing.
const NO_AEROAPI_KEY: &str = "# no AeroAPI key: watching is off\n";

/// The AeroAPI key from [`AEROAPI_KEY_ENV`]: `None` when it is unset or empty (watching off).
pub fn aeroapi_key_from_env() -> anyhow::Result<Option<SecretString>> {
    match std::env::var(AEROAPI_KEY_ENV) {
        Ok(value) => aeroapi_key(value),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("{AEROAPI_KEY_ENV} is not valid UTF-8 (its value is not shown)")
        }
    }
}

/// Checks a key given as `value`, which no error repeats: it must fit on the one line of
/// `aeroapi.key=...` as given (the properties parser trims values and reads a line each).
fn aeroapi_key(value: String) -> anyhow::Result<Option<SecretString>> {
    let key = SecretString::from(value);
    let text = key.expose_secret();
    if text.is_empty() {
        return Ok(None);
    }
    if text.trim() != text || text.chars().any(char::is_control) {
        anyhow::bail!(
            "{AEROAPI_KEY_ENV} must be one line with no leading or trailing whitespace (its value \
             is not shown)"
        );
    }
    Ok(Some(key))
}

/// The text of `<stage>/watch.properties`: `aeroapi.key=<key>`, or only a comment without a key.
pub fn watch_properties(key: Option<&SecretString>) -> SecretString {
    match key {
        Some(key) => SecretString::from(format!("aeroapi.key={}\n", key.expose_secret())),
        None => SecretString::from(NO_AEROAPI_KEY),
    }
}

/// Uploads the watch function's settings file, encrypted with the stage's key. Only whether a
/// key is set is printed, never the key.
pub async fn upload_watch_config(
    s3: &aws_sdk_s3::Client,
    outputs: &HashMap<String, String>,
    stage: &str,
    aeroapi_key: Option<&SecretString>,
) -> anyhow::Result<()> {
    let bucket = output(outputs, "ConfigBucketName")?;
    let key = config_key(stage, WATCH_FUNCTION);
    let text = watch_properties(aeroapi_key);
    s3.put_object()
        .bucket(bucket)
        .key(&key)
        .body(ByteStream::from(text.expose_secret().as_bytes().to_vec()))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .set_ssekms_key_id(outputs.get("TopicKeyArn").cloned())
        .send()
        .await
        .with_context(|| format!("uploading s3://{bucket}/{key}"))?;
    let what = if aeroapi_key.is_some() {
        "with the AeroAPI key"
    } else {
        "without an AeroAPI key: watching is off"
    };
    println!("uploaded s3://{bucket}/{key} (SSE-KMS, {what})");
    Ok(())
}

/// Settings of the functions' stack that are not infra outputs.
pub struct FunctionSettings {
    pub region: String,
    pub architecture: String,
    pub sms_sender_id: String,
    pub throttle_rate: u32,
    pub throttle_burst: u32,
    pub monthly_quota: u32,
    /// Whether the functions reserve concurrency (see `serverless.yml`).
    pub reserved_concurrency: bool,
    /// Whether watching is on: the deploy has an AeroAPI key. Only then does the flights function
    /// announce registrations on the flight events topic (see `serverless.yml`).
    pub watching: bool,
}

/// The text of `.deploy/<stage>/params.json`, checked to be JSON.
fn render_serverless_params(
    root: &Path,
    outputs: &HashMap<String, String>,
    stage: &str,
    settings: &FunctionSettings,
) -> anyhow::Result<String> {
    let mut values = outputs.clone();
    for (k, v) in [
        ("Stage", stage.to_owned()),
        ("Region", settings.region.clone()),
        ("Architecture", settings.architecture.clone()),
        ("SmsSenderId", settings.sms_sender_id.clone()),
        ("ThrottleRateLimit", settings.throttle_rate.to_string()),
        ("ThrottleBurstLimit", settings.throttle_burst.to_string()),
        ("QuotaLimit", settings.monthly_quota.to_string()),
        (
            "ReservedConcurrency",
            settings.reserved_concurrency.to_string(),
        ),
        ("Watching", settings.watching.to_string()),
    ] {
        values.insert(k.into(), v);
    }
    let text = render(
        &root.join("infra/templates/serverless-params.json.mustache"),
        &values,
    )?;
    // A rendering that is not valid JSON would only fail later, inside serverless.
    serde_json::from_str::<serde_json::Value>(&text)
        .context("the rendered parameters are not valid JSON")?;
    Ok(text)
}

/// Writes `.deploy/<stage>/params.json`, which `serverless.yml` reads: no AWS lookups at package
/// time, so `sls package` works offline.
pub fn write_serverless_params(
    root: &Path,
    outputs: &HashMap<String, String>,
    stage: &str,
    settings: &FunctionSettings,
) -> anyhow::Result<PathBuf> {
    let text = render_serverless_params(root, outputs, stage, settings)?;
    let dir = root.join(".deploy").join(stage);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("params.json");
    std::fs::write(&path, text)?;
    println!("wrote {}", path.display());
    Ok(path)
}

pub fn output<'a>(outputs: &'a HashMap<String, String>, key: &str) -> anyhow::Result<&'a str> {
    outputs
        .get(key)
        .map(String::as_str)
        .with_context(|| format!("the infra stack has no output {key}"))
}

/// Deletes every object version and delete marker, so the bucket can be deleted with its stack.
pub async fn empty_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<u32> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let mut removed = 0;
    loop {
        let listing = match s3.list_object_versions().bucket(bucket).send().await {
            Ok(l) => l,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.meta().code() == Some("NoSuchBucket")) =>
            {
                return Ok(removed)
            }
            Err(e) => return Err(e).with_context(|| format!("listing s3://{bucket}")),
        };
        let ids: Vec<ObjectIdentifier> = listing
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(
                listing
                    .delete_markers()
                    .iter()
                    .map(|m| (m.key(), m.version_id())),
            )
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder()
                    .key(key?)
                    .set_version_id(version.map(str::to_owned))
                    .build()
                    .ok()
            })
            .collect();
        if ids.is_empty() {
            return Ok(removed);
        }
        removed += ids.len() as u32;
        s3.delete_objects()
            .bucket(bucket)
            .delete(
                Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("emptying s3://{bucket}"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jdbc_template_renders_a_file_the_functions_can_read() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let values: HashMap<String, String> = [
            ("Stage", "dev"),
            ("DatabaseEndpoint", "db.abc.us-east-1.rds.amazonaws.com"),
            ("DatabasePort", "3306"),
            ("DatabaseName", "flightwatch"),
            ("Username", "alerts"),
            ("Password", "Zx81abcdefghijklmnopqrstuvwxyz01"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let text = render(
            &root.join("infra/templates/jdbc.properties.mustache"),
            &values,
        )
        .unwrap();
        let settings = flightwatch_config::DatabaseSettings::from_jdbc_properties(&text).unwrap();
        assert_eq!(
            settings.connect_options().get_host(),
            "db.abc.us-east-1.rds.amazonaws.com"
        );
        assert_eq!(settings.connect_options().get_username(), "alerts");
        assert_eq!(settings.max_connections, 1);
        assert!(matches!(
            settings.connect_options().get_ssl_mode(),
            sqlx::mysql::MySqlSslMode::Required
        ));
    }

    /// Rendered as the deployer renders it: the keys of the example `tests/deploy/params.ci.json`
    /// (which `tests/deploy/package.sh` packages), and `Watching` and `ReservedConcurrency` as
    /// JSON booleans, which `serverless.yml` looks up in `custom.booleans`.
    #[test]
    fn the_serverless_params_render_the_example_keys_and_watching_as_a_boolean() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let example: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            &std::fs::read_to_string(root.join("tests/deploy/params.ci.json")).unwrap(),
        )
        .unwrap();
        let outputs: HashMap<String, String> = example
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        for watching in [true, false] {
            let settings = FunctionSettings {
                region: "us-east-1".into(),
                architecture: "arm64".into(),
                sms_sender_id: String::new(),
                throttle_rate: 20,
                throttle_burst: 40,
                monthly_quota: 100_000,
                reserved_concurrency: false,
                watching,
            };
            let text = render_serverless_params(&root, &outputs, "ci", &settings).unwrap();
            let params: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&text).unwrap();
            assert_eq!(
                params.keys().collect::<Vec<_>>(),
                example.keys().collect::<Vec<_>>()
            );
            assert_eq!(params["Watching"], serde_json::Value::Bool(watching));
            assert_eq!(
                params["ReservedConcurrency"],
                serde_json::Value::Bool(false)
            );
            assert_eq!(
                params["FlightEventsTopicArn"],
                example["FlightEventsTopicArn"]
            );
        }
    }

    const KEY: &str = "Aero0123456789abcdefABCDEF0123xyz";

    /// Read back as the watch function reads it (`flightwatch_config::aeroapi_key`).
    #[test]
    fn watch_properties_hold_the_aeroapi_key_or_only_say_watching_is_off() {
        let key = aeroapi_key(KEY.into()).unwrap();
        let text = watch_properties(key.as_ref());
        let props = flightwatch_config::parse_properties(text.expose_secret()).unwrap();
        assert_eq!(props.len(), 1, "aeroapi.key only");
        let read = flightwatch_config::aeroapi_key(text.expose_secret()).unwrap();
        assert_eq!(read.as_ref().map(ExposeSecret::expose_secret), Some(KEY));

        assert!(aeroapi_key(String::new()).unwrap().is_none());
        let text = watch_properties(None);
        assert_eq!(text.expose_secret(), "# no AeroAPI key: watching is off\n");
        assert!(flightwatch_config::aeroapi_key(text.expose_secret())
            .unwrap()
            .is_none());
    }

    #[test]
    fn the_aeroapi_key_is_in_no_debug_output_or_error() {
        let key = aeroapi_key(KEY.into()).unwrap();
        assert!(!format!("{key:?}").contains(KEY));
        assert!(!format!("{:?}", watch_properties(key.as_ref())).contains(KEY));
        for bad in [
            format!(" {KEY}"),
            format!("{KEY}\n"),
            format!("{KEY}\njdbc.url=x"),
        ] {
            let e = aeroapi_key(bad).unwrap_err();
            assert!(!format!("{e:#}").contains(KEY), "{e:#}");
            assert!(format!("{e:#}").contains(AEROAPI_KEY_ENV), "{e:#}");
        }
    }
}
