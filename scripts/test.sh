#!/usr/bin/env bash
# The one test command (CI runs it through .ci/run): fmt, database, moto, clippy, tests, smoke
# test of the local stack, the Lambda binaries under cargo lambda, the deployment (template lint,
# release build, sls package checks, a deploy/remove rehearsal against moto), OpenAPI validation.
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

fw_python_tools
fw_moto_start
trap 'kill "$FW_MOTO_PID" 2>/dev/null || true' EXIT

if [[ "${FLIGHTWATCH_SKIP_LINT:-}" != 1 ]]; then
  fw_log "cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  done_steps+=(clippy)
fi

fw_log "the Lambda binaries link MySQL only, never the SQLite adapter"
if cargo tree --locked -e normal -p flights -p alerts -p sms | grep -i sqlite; then
  fw_log "a Lambda binary depends on SQLite"
  exit 1
fi
# idna without a Unicode back end (Cargo.toml says why): a plain `cargo update` would lift it.
idna_adapter=$(cargo tree --locked -e normal -p flights -i idna_adapter --depth 0)
if [[ $idna_adapter != "idna_adapter v1.0."* ]]; then
  fw_log "idna_adapter is not pinned at 1.0.x: cargo update -p idna_adapter --precise 1.0.0"
  exit 1
fi
done_steps+=(lambda-deps)

fw_log "cargo test"
cargo test --workspace --locked
done_steps+=(tests)

fw_log "smoke test of the local stack, as a newcomer runs it (SQLite) and on MySQL"
scripts/smoke.sh sqlite
scripts/smoke.sh mysql
done_steps+=(smoke)

fw_log "openapi.yaml against the handlers: schemathesis on the local stack"
tests/api/conformance.sh
done_steps+=(conformance)

fw_log "the local stack killed (SIGKILL) mid fan-out and started again on the same data"
tests/local/sigkill.sh
done_steps+=(sigkill)

fw_log "the Lambda binaries under cargo lambda watch"
tests/lambda/run.sh
done_steps+=(lambda)

fw_log "deployment as code: infra template lint (cfn-lint, checkov)"
scripts/lint-cfn.sh infra/infra.yaml
done_steps+=(infra-lint)

fw_log "deployment as code: tests of the API checks (API key per operation, gateway responses)"
python3 tests/deploy/test_check_api.py
done_steps+=(api-checks)

fw_log "deployment as code: release build of the Lambda artifacts"
scripts/build.sh
fw_log "deployment as code: sls package, the API against openapi.yaml, template lint"
tests/deploy/package.sh
done_steps+=(package)

fw_log "deployment as code: deploy.sh and remove.sh rehearsed against moto"
tests/deploy/rehearsal.sh
done_steps+=(rehearsal)

fw_log "validating openapi.yaml"
openapi-spec-validator openapi.yaml
done_steps+=(openapi)

fw_log "all passed (${done_steps[*]}) in ${SECONDS}s"
