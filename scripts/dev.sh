#!/usr/bin/env bash
# Runs the whole flightwatch system locally on http://127.0.0.1:${PORT:-3000}.
#
# With nothing set up but Rust it keeps its data in an embedded SQLite file
# (.flightwatch/flightwatch.db, created on first run, kept across restarts).
#
#   scripts/dev.sh            SQLite (default), or DATABASE_URL when it is set
#   scripts/dev.sh --mysql    the local MariaDB: started (or installed with apt) and set up
#
# Environment:
#   PORT                    HTTP port (default 3000, listens on 127.0.0.1)
#   DATABASE_URL            mysql://user:password@host:3306/db or sqlite://path/to/file.db
#   FLIGHTWATCH_DATA_DIR    where the default SQLite file lives (default .flightwatch)
#   FLIGHTWATCH_API_KEY     value expected in the x-api-key header (403 without it)
#   FLIGHTWATCH_SMS_OUTBOX  file the SMS are appended to, one JSON per line
#                           (default .flightwatch/sms-outbox.jsonl)
#   FLIGHTWATCH_CONFIG_BUCKET, FLIGHTWATCH_CONFIG_KEY
#                           read the JDBC properties file from S3 instead (with AWS_ENDPOINT_URL)
#   FLIGHTWATCH_ALERTS_TOPIC_ARN
#                           the AWS path: alerts on this SNS topic, SMS through SNS Publish
#                           (set AWS_ENDPOINT_URL to a moto server; see README)
#   RUST_LOG                log filter, e.g. info or flightwatch_api=debug
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$(fw_root)"
fw_target_dir

if [[ "${1:-}" == --mysql ]]; then
  shift
  # Separate statements (not &&) so that set -e applies inside the functions.
  fw_mariadb_ensure
  fw_mariadb_app_user
fi

fw_log "flightwatch will listen on http://127.0.0.1:${PORT:-3000}"
if [[ -n "${FLIGHTWATCH_ALERTS_TOPIC_ARN:-}" ]]; then
  fw_log "alerts go to $FLIGHTWATCH_ALERTS_TOPIC_ARN; SMS through SNS at ${AWS_ENDPOINT_URL:-AWS}"
else
  fw_log "SMS are written to ${FLIGHTWATCH_SMS_OUTBOX:-.flightwatch/sms-outbox.jsonl}"
fi
exec cargo run --quiet -p flightwatch-local --bin flightwatch-local -- "$@"
