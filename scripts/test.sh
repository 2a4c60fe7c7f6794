#!/usr/bin/env bash
# The one test command (CI runs it through .ci/run): fmt, database, clippy, tests, smoke
# test of the local stack, OpenAPI validation.
#
# Environment:
#   FLIGHTWATCH_SKIP_LINT=1  skip cargo fmt and clippy (quick local runs)
#   DATABASE_URL             use this server instead of setting up a local MariaDB
#   FLIGHTWATCH_TARGET_DIR   cargo build cache (default ~/.cache/flightwatch/target)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$(fw_root)"
fw_target_dir
done_steps=()

if [[ "${FLIGHTWATCH_SKIP_LINT:-}" == 1 ]]; then
  fw_log "FLIGHTWATCH_SKIP_LINT=1: skipping cargo fmt and clippy"
else
  fw_log "cargo fmt --check"
  cargo fmt --all --check
  done_steps+=(fmt)
fi

if [[ -n "${DATABASE_URL:-}" ]]; then
  fw_log "using the caller's DATABASE_URL"
else
  fw_mariadb_ensure
  fw_mariadb_app_user
fi
export DATABASE_URL

if [[ "${FLIGHTWATCH_SKIP_LINT:-}" != 1 ]]; then
  fw_log "cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  done_steps+=(clippy)
fi

fw_log "cargo test"
cargo test --workspace --locked
done_steps+=(tests)

fw_log "smoke test of the local stack"
scripts/smoke.sh
done_steps+=(smoke)

fw_log "validating openapi.yaml"
validator=openapi-spec-validator
if ! command -v "$validator" >/dev/null; then
  venv="$HOME/.cache/flightwatch/venv"
  validator="$venv/bin/openapi-spec-validator"
  if [[ ! -x "$validator" ]]; then
    fw_log "installing openapi-spec-validator into $venv"
    [[ -x "$venv/bin/pip" ]] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q openapi-spec-validator
  fi
fi
"$validator" openapi.yaml
done_steps+=(openapi)

fw_log "all passed (${done_steps[*]}) in ${SECONDS}s"
