//! The functions' logs, in the shape Lambda expects: one line per event on stdout, JSON when the
//! function's log format is JSON (`AWS_LAMBDA_LOG_FORMAT`, set by Lambda), no timestamps (Lambda
//! adds its own), no colours.
//!
//! Not lambda_runtime's `init_default_subscriber`: its `EnvFilter` links a regular-expression
//! engine (regex-automata and regex-syntax, about 180 KiB of code) into every function for
//! filter directives that a per-target level list serves as well.
//!
//! Release builds have no `TRACE` events: the workspace builds `tracing` with
//! `release_max_level_debug`, which leaves out every trace-level call site (the SDK runtime's
//! request-by-request narration among them, 18 KiB of the flights zip), so `TRACE` logs as
//! `DEBUG` does.

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Installs the global subscriber: the level from `AWS_LAMBDA_LOG_LEVEL` (the function's
/// advanced logging setting) over `RUST_LOG` (`serverless.yml`), whose per-target levels apply
/// either way.
pub fn init_logging() {
    let format = std::env::var("AWS_LAMBDA_LOG_FORMAT").unwrap_or_default();
    let lambda_level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok();
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter(lambda_level.as_deref(), rust_log.as_deref());
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_ansi(false);
    let layer = if format.eq_ignore_ascii_case("json") {
        layer.json().with_filter(filter).boxed()
    } else {
        layer.with_filter(filter).boxed()
    };
    tracing_subscriber::registry().with(layer).init();
}

/// The filter the two settings read as: `RUST_LOG` a level (`INFO`, `debug`) or per-target
/// levels (`info,aws_smithy_runtime=warn`), Lambda's level (Lambda's `FATAL` is `ERROR`) the
/// default over it; anything unreadable is `INFO` rather than silence.
fn filter(lambda_level: Option<&str>, rust_log: Option<&str>) -> Targets {
    let targets = rust_log
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .and_then(|s| Targets::from_str(s).ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    let level = match lambda_level.map(str::trim) {
        Some(s) if s.eq_ignore_ascii_case("fatal") => Some(LevelFilter::ERROR),
        Some(s) => LevelFilter::from_str(s).ok(),
        None => None,
    };
    match level {
        Some(level) => targets.with_default(level),
        None => targets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn enabled(lambda: Option<&str>, rust_log: Option<&str>, target: &str, level: Level) -> bool {
        filter(lambda, rust_log).would_enable(target, &level)
    }

    #[test]
    fn lambda_level_names_read_in_any_case() {
        assert!(enabled(Some("DEBUG"), None, "alerts", Level::DEBUG));
        assert!(!enabled(Some("WARN"), None, "alerts", Level::INFO));
        assert!(enabled(Some("FATAL"), None, "alerts", Level::ERROR));
        assert!(!enabled(Some("FATAL"), None, "alerts", Level::WARN));
    }

    #[test]
    fn per_target_levels_apply_under_lambda_s_level_too() {
        let rust_log = Some("info,aws_smithy_runtime=warn");
        assert!(enabled(None, rust_log, "flightwatch_app", Level::INFO));
        assert!(!enabled(
            None,
            rust_log,
            "aws_smithy_runtime::client",
            Level::INFO
        ));
        assert!(enabled(
            None,
            rust_log,
            "aws_smithy_runtime::client",
            Level::WARN
        ));
        assert!(enabled(
            Some("DEBUG"),
            rust_log,
            "flightwatch_app",
            Level::DEBUG
        ));
        assert!(!enabled(
            Some("DEBUG"),
            rust_log,
            "aws_smithy_runtime::client",
            Level::INFO
        ));
    }

    #[test]
    fn no_setting_or_a_bad_one_logs_info() {
        for (lambda, rust_log) in [
            (None, None),
            (None, Some("")),
            (None, Some("loud=!")),
            (Some("loud"), None),
        ] {
            assert!(
                enabled(lambda, rust_log, "alerts", Level::INFO),
                "{lambda:?} {rust_log:?}"
            );
            assert!(
                !enabled(lambda, rust_log, "alerts", Level::DEBUG),
                "{lambda:?} {rust_log:?}"
            );
        }
    }
}
