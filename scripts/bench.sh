#!/usr/bin/env bash
# Prints the figures that matter on Lambda and locally:
#   1. cold start (exec to first /next on a Runtime API) and memory of each Lambda binary, each
#      as a ratio to a hello-world lambda_runtime binary run alternately with it (release build
#      for this machine's architecture; bench/coldstart.py);
#   2. request latency and throughput of the local stack, on SQLite and on MariaDB
#      (release build; bench/load.py);
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
cargo build --quiet --release --locked -p hello-lambda -p flights -p alerts -p sms -p flightwatch-local

echo
python3 bench/coldstart.py "$CARGO_TARGET_DIR/release" 20

tmp=$(mktemp -d)
pid=""
cleanup() {
  [[ -z "$pid" ]] || kill "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# load_test LABEL: the local stack (release) with the current environment, then bench/load.py.
load_test() {
  local port
  port=$(fw_free_port)
  PORT=$port FLIGHTWATCH_API_KEY=bench-key FLIGHTWATCH_SMS_OUTBOX="$tmp/sms-$1.jsonl" RUST_LOG=warn \
    "$CARGO_TARGET_DIR/release/flightwatch-local" >"$tmp/$1.log" 2>&1 &
  pid=$!
  fw_wait_http "http://127.0.0.1:$port/health" 60 "$pid"
  echo
  echo "local stack on $1 (release build, in-process bus, SMS to a file)"
  python3 bench/load.py "http://127.0.0.1:$port" "$n"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
}

(unset DATABASE_URL; export FLIGHTWATCH_DATA_DIR="$tmp/data"; load_test SQLite)
if fw_mariadb_ensure >/dev/null 2>&1; then
  fw_mariadb_app_user >/dev/null 2>&1
  db="flightwatch_bench_$$"
  mariadb -uroot -e "CREATE DATABASE $db"
  (export DATABASE_URL="${DATABASE_URL%/*}/$db"; load_test MariaDB)
  mariadb -uroot -e "DROP DATABASE $db"
fi

if compgen -G "target/lambda/*.zip" >/dev/null; then
  echo
  echo "deployable artifacts (scripts/build.sh)"
  for zip in target/lambda/*.zip; do
    printf '%-28s %6.1f MiB\n' "$zip" "$(du -k "$zip" | cut -f1 | awk '{print $1 / 1024}')"
  done
fi
