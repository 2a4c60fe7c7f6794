#!/usr/bin/env bash
# openapi.yaml against the handlers: schemathesis generates valid and invalid requests from the
# spec and checks every answer against it (documented status, content type, response schema and
# headers, no 5xx, invalid input rejected, valid input accepted, the API key enforced). It runs the
# local stack binary (built by `cargo run` in scripts/smoke.sh, or `cargo build -p
# flightwatch-local`) on a free port with a fresh SQLite database, and registers the flight of the
# spec's examples so that the examples hit an existing resource. Settings and the reasons for
# them: schemathesis.toml and hooks.py beside this file. Extra arguments go to `schemathesis run`
# (e.g. --include-operation-id reportFlightEvent).
#
# Environment:
#   FLIGHTWATCH_CONFORMANCE_EXAMPLES  test cases per operation and phase (default 30)
#   FLIGHTWATCH_CONFORMANCE_SEED      schemathesis seed (default 8)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"
root=$(fw_root)
cd "$root"
fw_target_dir
bin="$CARGO_TARGET_DIR/debug/flightwatch-local"
if [[ ! -x "$bin" ]]; then
  fw_log "$bin is missing: build it with cargo build -p flightwatch-local"
  exit 1
fi
fw_schemathesis

port=$(fw_free_port)
base="http://127.0.0.1:$port"
# The stack's key; schemathesis.toml sends it through openapi.yaml's security scheme.
export FLIGHTWATCH_API_KEY=conformance-key
api_key=$FLIGHTWATCH_API_KEY
tmp=$(mktemp -d)
pid=""
cleanup() {
  local rc=$?
  if [[ -n "$pid" ]]; then
    kill -INT "$pid" 2>/dev/null || true # graceful shutdown, as on Ctrl-C
    for _ in {1..50}; do
      if kill -0 "$pid" 2>/dev/null; then sleep 0.2; else break; fi
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if ((rc != 0)); then
    fw_log "conformance failed; server log ($tmp/stack.log):"
    tail -n 50 "$tmp/stack.log" >&2 || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

fw_log "starting $bin on $base (SQLite in $tmp/data)"
(
  unset DATABASE_URL FLIGHTWATCH_CONFIG_BUCKET FLIGHTWATCH_ALERTS_TOPIC_ARN
  export PORT=$port FLIGHTWATCH_DATA_DIR="$tmp/data" \
    FLIGHTWATCH_SMS_OUTBOX="$tmp/sms-outbox.jsonl" \
    FLIGHTWATCH_FLIGHTAWARE_TOKEN=conformance-feed-token-0123456789abcdef \
    RUST_LOG=${RUST_LOG:-warn}
  exec "$bin"
) >"$tmp/stack.log" 2>&1 &
pid=$!
fw_wait_http "$base/health" 60 "$pid"

# The flight of openapi.yaml's examples (UA123-2037-12-01), so that the example requests of
# GET /flights/{flightId} and POST /notifications find it.
status=$(curl -sS -o "$tmp/register.json" -w '%{http_code}' "$base/flights" \
  -H "x-api-key: $api_key" -H 'content-type: application/json' -d '{
  "flightNumber": "UA123", "origin": "SFO", "destination": "JFK",
  "scheduledDeparture": "2037-12-01T08:05:00-08:00", "scheduledArrival": "2037-12-01T16:40:00-05:00",
  "passengers": [{"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+14155550100"}]}')
if [[ "$status" != 201 ]]; then
  fw_log "registering the example flight answered $status: $(cat "$tmp/register.json")"
  exit 1
fi

export SCHEMATHESIS_HOOKS="$root/tests/api/hooks.py"
fw_log "schemathesis $("$FW_SCHEMATHESIS" --version | awk '{print $NF}') against $base"
cd "$tmp"
"$FW_SCHEMATHESIS" --config-file "$root/tests/api/schemathesis.toml" run "$root/openapi.yaml" \
  --url "$base" \
  --mode all \
  --max-examples "${FLIGHTWATCH_CONFORMANCE_EXAMPLES:-30}" \
  --seed "${FLIGHTWATCH_CONFORMANCE_SEED:-8}" \
  --workers 1 \
  --continue-on-failure \
  --output-sanitize false \
  --no-color "$@"
