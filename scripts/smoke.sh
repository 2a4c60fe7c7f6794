#!/usr/bin/env bash
# Black-box smoke test of the local stack, run the way a newcomer would: scripts/dev.sh on a
# free port with its own data and SMS outbox, exercised with curl.
#
#   scripts/smoke.sh sqlite   the default, zero-setup run: no DATABASE_URL, an embedded SQLite
#                             file in a temp dir; also checks the data survives a restart
#   scripts/smoke.sh mysql    DATABASE_URL's server and credentials (a local MariaDB is set up if
#                             it is unset), in a throwaway database flightwatch_smoke_<pid>
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$(fw_root)"
mode=${1:-sqlite}
case "$mode" in
  sqlite | mysql) ;;
  *) fw_log "usage: scripts/smoke.sh [sqlite|mysql]"; exit 2 ;;
esac

if [[ "$mode" == mysql && -z "${DATABASE_URL:-}" ]]; then
  fw_mariadb_ensure
  fw_mariadb_app_user
fi
if [[ "$mode" == mysql ]]; then

# Credentials from DATABASE_URL, to create and drop the throwaway database.
url_re='^[a-z]+://([^:@/]+)(:([^@]*))?@([^:/?]+)(:([0-9]+))?/'
if [[ ! "$DATABASE_URL" =~ $url_re ]]; then
  fw_log "cannot parse DATABASE_URL (expected mysql://user:password@host:port/db)"
  exit 1
fi
db_user=${BASH_REMATCH[1]} db_pass=${BASH_REMATCH[3]} db_host=${BASH_REMATCH[4]} db_port=${BASH_REMATCH[6]:-3306}
db_pass=$(printf '%b' "${db_pass//%/\\x}") # percent-decode
db_sql() { MYSQL_PWD="$db_pass" mariadb -h "$db_host" -P "$db_port" -u "$db_user" -e "$1"; }

smoke_db="flightwatch_smoke_$$"
url_base=${DATABASE_URL%%\?*}
smoke_url="${url_base%/*}/$smoke_db${DATABASE_URL#"$url_base"}"
fi
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
api_key=smoke-key
tmp=$(mktemp -d)
log="$tmp/dev.log"
outbox="$tmp/sms-outbox.jsonl"
pid=""
passed=0
failed=0

cleanup() {
  local rc=$?
  if [[ -n "$pid" ]]; then
    # dev.sh runs in its own process group (setsid): stop it and anything cargo started.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    (sleep 10 && kill -KILL -- "-$pid" 2>/dev/null) &
    local killer=$!
    wait "$pid" 2>/dev/null || true
    kill "$killer" 2>/dev/null || true
  fi
  if ((rc != 0)); then
    fw_log "smoke failed; server log ($log):"
    cat "$log" >&2 || true
  fi
  if [[ "$mode" == mysql ]]; then db_sql "DROP DATABASE IF EXISTS $smoke_db" || true; fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

if [[ "$mode" == mysql ]]; then
  fw_log "creating database $smoke_db"
  db_sql "CREATE DATABASE $smoke_db"
  export DATABASE_URL=$smoke_url
else
  # Nothing but Rust: no database URL at all, the data directory in the temp dir.
  unset DATABASE_URL FLIGHTWATCH_CONFIG_BUCKET
  export FLIGHTWATCH_DATA_DIR="$tmp/data"
fi
export PORT=$port FLIGHTWATCH_API_KEY=$api_key FLIGHTWATCH_SMS_OUTBOX=$outbox
export RUST_LOG=${RUST_LOG:-info}

# start_stack: runs scripts/dev.sh in the background (own process group) and waits for /health.
start_stack() {
  fw_log "starting scripts/dev.sh ($mode) on port $port (log: $log)"
  if command -v setsid >/dev/null; then
    setsid scripts/dev.sh >>"$log" 2>&1 &
  else
    scripts/dev.sh >>"$log" 2>&1 &
  fi
  pid=$!
  fw_log "waiting for $base/health (the first run compiles; up to 600 s)"
  fw_wait_http "$base/health" 600 "$pid"
}

# stop_stack: stops dev.sh and whatever cargo started under it.
stop_stack() {
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
}

start_stack

# call [--no-key] METHOD PATH [BODY]: sets status, ctype and body of the response.
call() {
  local args=(-sS --max-time 30 -o "$tmp/body" -w '%{http_code} %{content_type}')
  if [[ "$1" == --no-key ]]; then shift; else args+=(-H "x-api-key: $api_key"); fi
  args+=(-X "$1" -H 'content-type: application/json')
  if [[ $# -ge 3 ]]; then args+=(--data "$3"); fi
  rm -f "$tmp/body"
  local out
  out=$(curl "${args[@]}" "$base$2") || out="000 "
  status=${out%% *} ctype=${out#* }
  body=$(cat "$tmp/body" 2>/dev/null || true)
}

# check NAME PROBLEM: records a check; an empty PROBLEM means it passed.
check() {
  if [[ -z "$2" ]]; then
    passed=$((passed + 1))
    fw_log "ok   $1"
  else
    failed=$((failed + 1))
    fw_log "FAIL $1:$2"
  fi
}

# expect_status NAME STATUS [NEEDLE...]: the last response has STATUS and its body contains
# every NEEDLE (a NEEDLE starting with ! must not appear). Prints the body on mismatch.
expect_status() {
  local name=$1 want=$2 needle problem=""
  shift 2
  [[ "$status" == "$want" ]] || problem+=" expected HTTP $want, got $status;"
  for needle in "$@"; do
    if [[ "$needle" == !* ]]; then
      [[ "$body" != *"${needle#!}"* ]] || problem+=" body contains ${needle#!};"
    else
      [[ "$body" == *"$needle"* ]] || problem+=" body lacks $needle;"
    fi
  done
  check "$name" "$problem"
  if [[ -n "$problem" ]]; then echo "body: $body" >&2; fi
}

flight='{"flightNumber":"ua123","origin":"SFO","destination":"JFK","scheduledDeparture":"2037-12-01T08:05:00-08:00","scheduledArrival":"2037-12-01T16:40:00-05:00","passengers":[{"name":"Ada Lovelace","email":"ada@example.com","phone":"+14155550100"},{"name":"Grace Hopper","email":"grace@example.com","phone":"+14155550101"}]}'
delay='{"flightNumber":"UA123","departureDate":"2037-12-01","event":"DELAYED","reason":"Late inbound aircraft","estimatedDeparture":"2037-12-01T10:30:00-08:00"}'

call --no-key POST /flights "$flight"
expect_status "POST /flights without x-api-key is refused" 403

call POST /flights "$flight"
expect_status "POST /flights registers UA123" 201 '"flightId":"UA123-2037-12-01"'

call GET /flights/UA123-2037-12-01
expect_status "GET /flights/UA123-2037-12-01 masks phones" 200 '!5550100'

call POST /notifications "$delay"
expect_status "POST /notifications fans out to both passengers" 202 '"recipients":2'

for ((i = 0; i < 10; i++)); do
  lines=$(wc -l <"$outbox" 2>/dev/null || echo 0)
  ((lines < 2)) || break
  sleep 1
done
problem=""
((lines == 2)) || problem+=" expected 2 lines in the outbox, got $((lines));"
grep -F '"to":"+14155550100"' "$outbox" 2>/dev/null | grep -qF 'now departs 10:30 (was 08:05)' ||
  problem+=" no SMS to +14155550100 saying 'now departs 10:30 (was 08:05)';"
check "SMS outbox has both texts" "$problem"
if [[ -n "$problem" && -f "$outbox" ]]; then cat "$outbox" >&2; fi

call GET '/alerts?flightNumber=UA123'
expect_status "GET /alerts?flightNumber=UA123" 200
items=$(grep -o '"event":' <<<"$body" | wc -l)
check "GET /alerts lists one alert" "$( ((items == 1)) || echo " expected 1 item, got $((items)): $body")"

call POST /flights '{}'
expect_status "POST /flights {} is a 400" 400
check "POST /flights {} is problem+json" \
  "$([[ "$ctype" == application/problem+json* ]] || echo " content-type is '$ctype'")"

if [[ "$mode" == sqlite ]]; then
  stop_stack
  start_stack
  call GET /flights/UA123-2037-12-01
  expect_status "the SQLite data survives a restart" 200 '"passengerCount":2'
  check "the SQLite file is where FLIGHTWATCH_DATA_DIR says" \
    "$([[ -s "$FLIGHTWATCH_DATA_DIR/flightwatch.db" ]] || echo " no $FLIGHTWATCH_DATA_DIR/flightwatch.db")"
fi

fw_log "smoke ($mode): $passed passed, $failed failed"
((failed == 0))
