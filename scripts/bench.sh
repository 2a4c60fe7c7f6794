#!/usr/bin/env bash
# Prints the figures that matter on Lambda and locally:
#   1. cold start (exec to first /next on a Runtime API) and memory of each Lambda binary, each
#      as a ratio to a hello-world lambda_runtime binary run alternately with it (release build
#      for this machine's architecture; bench/coldstart.py);
#   2. request latency and throughput of the local stack, on SQLite and on MariaDB
#      (release build; bench/load.py), and each request's SQL floor: the time sqlx took for the
#      statements it issued, from a second run with every statement logged;
#   3. the deployable artifacts' sizes, when scripts/build.sh has made them.
#
#   scripts/bench.sh [N]     N requests per endpoint (default 300)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$(fw_root)"
fw_target_dir
n=${1:-300}

fw_log "release build (host architecture)"
cargo build --quiet --release --locked -p hello-lambda -p flights -p alerts -p sms -p watch -p flightwatch-local \
  -p flightwatch-mysql

echo
python3 bench/coldstart.py "$CARGO_TARGET_DIR/release" 20

tmp=$(mktemp -d)
pid=""
cleanup() {
  [[ -z "$pid" ]] || kill "$pid" 2>/dev/null || true
  [[ -z "${FW_MOTO_PID:-}" ]] || kill "$FW_MOTO_PID" 2>/dev/null || true
  if [[ -n "${bench_db:-}" ]]; then
    mariadb -uroot -e "DROP DATABASE IF EXISTS ${bench_db}_latency; DROP DATABASE IF EXISTS ${bench_db}_floor" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# First responses to realistic events, each function connected as its own database user, with
# moto for S3 (settings) and SNS (SMS): bench/firstresponse.py.
if fw_mariadb_ensure >/dev/null 2>&1; then
  fw_mariadb_app_user >/dev/null 2>&1
  fw_python_tools
  fw_moto_start
  db="flightwatch_first_$$"
  mariadb -uroot -e "CREATE DATABASE $db"
  pw_f=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  pw_a=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '[{"role":"flights","username":"bench_flights","password":"%s"},{"role":"alerts","username":"bench_alerts","password":"%s"}]' \
    "$pw_f" "$pw_a" >"$tmp/users.json"
  DATABASE_URL="${DATABASE_URL%/*}/$db" "$CARGO_TARGET_DIR/release/flightwatch-migrate" --users "$tmp/users.json"
  echo
  BENCH_DATABASE_URL_FLIGHTS="mysql://bench_flights:$pw_f@127.0.0.1:3306/$db" \
    BENCH_DATABASE_URL_ALERTS="mysql://bench_alerts:$pw_a@127.0.0.1:3306/$db" \
    "$HOME/.cache/flightwatch/venv/bin/python" bench/firstresponse.py "$CARGO_TARGET_DIR/release" 10
  mariadb -uroot -e "DROP DATABASE $db; DROP USER IF EXISTS 'bench_flights'@'%', 'bench_alerts'@'%'"
fi

# stack LABEL PASS RUST_LOG: the local stack (release) on PASS's own data (a SQLite directory, or a
# MariaDB database when DATABASE_URL names a server), logging at RUST_LOG to $tmp/LABEL-PASS.log.
stack() {
  local port
  port=$(fw_free_port)
  if [[ -n "${DATABASE_URL:-}" ]]; then
    mariadb -uroot -e "CREATE DATABASE ${bench_db}_$2"
    export DATABASE_URL="${DATABASE_URL%/*}/${bench_db}_$2"
  else
    export FLIGHTWATCH_DATA_DIR="$tmp/data-$1-$2"
  fi
  PORT=$port FLIGHTWATCH_API_KEY=bench-key FLIGHTWATCH_SMS_OUTBOX="$tmp/sms-$1-$2.jsonl" RUST_LOG=$3 NO_COLOR=1 \
    "$CARGO_TARGET_DIR/release/flightwatch-local" >"$tmp/$1-$2.log" 2>&1 &
  pid=$!
  url="http://127.0.0.1:$port"
  fw_wait_http "$url/health" 60 "$pid"
}
stop_stack() {
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
}

# load_test LABEL: bench/load.py against the local stack, then again on fresh data with every SQL
# statement logged, for each request's floor (the time of its own statements).
load_test() {
  # Run in a subshell: its own trap stops the stack it started, should anything fail.
  trap '[[ -z "$pid" ]] || kill "$pid" 2>/dev/null || true' EXIT
  stack "$1" latency warn
  echo
  echo "local stack on $1 (release build, in-process bus, SMS to a file)"
  python3 bench/load.py "$url" "$n" --save "$tmp/$1.json"
  stop_stack
  stack "$1" floor "warn,flightwatch_api=info,sqlx=debug,tower_http=debug"
  echo
  echo "each request's SQL floor on $1 (a second run on fresh data, every statement logged)"
  python3 bench/load.py "$url" "$n" --sql-log "$tmp/$1-floor.log" --against "$tmp/$1.json"
  stop_stack
}

bench_db="flightwatch_bench_$$"
(unset DATABASE_URL; load_test SQLite)
if fw_mariadb_ensure >/dev/null 2>&1; then
  fw_mariadb_app_user >/dev/null 2>&1
  (load_test MariaDB)
fi

if compgen -G "target/lambda/*.zip" >/dev/null; then
  echo
  echo "deployable artifacts (scripts/build.sh)"
  for zip in target/lambda/*.zip; do
    printf '%-28s %6.1f MiB\n' "$zip" "$(du -k "$zip" | cut -f1 | awk '{print $1 / 1024}')"
  done
fi
