//! The functions' logs, in the shape Lambda expects: one line per event on stdout, JSON when the
//! function's log format is JSON (`AWS_LAMBDA_LOG_FORMAT`, set by Lambda), no timestamps (Lambda
//! adds its own), no colours.
//!
//! Not lambda_runtime's `init_default_subscriber`: its `EnvFilter` links a regular-expression
//! engine (regex-automata and regex-syntax, about 180 KiB of code) into every function for
//! filter directives that a per-target level list serves as well.

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Installs the global subscriber; the level comes from `AWS_LAMBDA_LOG_LEVEL` (the function's
/// advanced logging setting) or else `RUST_LOG` (`serverless.yml`).
pub fn init_logging() {
    let format = std::env::var("AWS_LAMBDA_LOG_FORMAT").unwrap_or_default();
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let filter = filter(level.as_deref());
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

/// The filter a level setting reads as: a level (`INFO`, `debug`) or per-target levels
/// (`info,aws_smithy_runtime=warn`); Lambda's `FATAL` is `ERROR`; anything unreadable is `INFO`
/// rather than silence.
fn filter(setting: Option<&str>) -> Targets {
    let default = || Targets::new().with_default(LevelFilter::INFO);
    match setting.map(str::trim) {
        None | Some("") => default(),
        Some(s) if s.eq_ignore_ascii_case("fatal") => {
            Targets::new().with_default(LevelFilter::ERROR)
        }
        Some(s) => Targets::from_str(s).unwrap_or_else(|_| default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn enabled(setting: Option<&str>, target: &str, level: Level) -> bool {
        filter(setting).would_enable(target, &level)
    }

    #[test]
    fn lambda_level_names_read_in_any_case() {
        assert!(enabled(Some("DEBUG"), "alerts", Level::DEBUG));
        assert!(!enabled(Some("WARN"), "alerts", Level::INFO));
        assert!(enabled(Some("FATAL"), "alerts", Level::ERROR));
        assert!(!enabled(Some("FATAL"), "alerts", Level::WARN));
    }

    #[test]
    fn per_target_levels_apply() {
        let setting = Some("info,aws_smithy_runtime=warn");
        assert!(enabled(setting, "flightwatch_app", Level::INFO));
        assert!(!enabled(setting, "aws_smithy_runtime::client", Level::INFO));
        assert!(enabled(setting, "aws_smithy_runtime::client", Level::WARN));
    }

    #[test]
    fn no_setting_or_a_bad_one_logs_info() {
        for setting in [None, Some(""), Some("loud=!")] {
            assert!(enabled(setting, "alerts", Level::INFO), "{setting:?}");
            assert!(!enabled(setting, "alerts", Level::DEBUG), "{setting:?}");
        }
    }
}
