#!/usr/bin/env bash
# Tears a flightwatch stage down, in the reverse order of scripts/deploy.sh, from whatever state
# it is in (never deployed, half deployed, already half removed, a stack stuck in DELETE_FAILED
# or ROLLBACK_FAILED); running it twice is harmless:
#   1. the functions and the API: `serverless remove`; if that fails or cannot run (the infra
#      stack it reads its parameters from is gone), the deployer deletes their stack directly
#   2. the config bucket emptied, then the infra stack deleted, retried from a failed state; what
#      is left (the database's final snapshot, anything that would not delete) is listed
#
#   scripts/remove.sh <stage> [--region REGION]
#
# Environment: FLIGHTWATCH_SERVERLESS, the Serverless command (default `npx serverless`).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$(fw_root)"

stage=${1:-}
[[ "$stage" =~ ^[a-z][a-z0-9-]{0,15}$ ]] || {
  fw_log "usage: scripts/remove.sh <stage> [--region REGION]"
  exit 2
}
shift
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --region) region=${2:?}; shift 2 ;;
    *) fw_log "unknown option $1"; exit 2 ;;
  esac
done
export AWS_REGION=$region SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off
fw_target_dir
cargo build --quiet --locked -p flightwatch-deployer
deploy() { "$CARGO_TARGET_DIR/debug/flightwatch-deploy" --region "$region" "$@"; }
read -r -a serverless <<<"${FLIGHTWATCH_SERVERLESS:-npx serverless}"

sls_remove() {
  [[ -d node_modules || -n "${FLIGHTWATCH_SERVERLESS:-}" ]] || npm ci --no-audit --no-fund || return 1
  # serverless reads the rendered parameters even to remove; they need the infra stack.
  [[ -f ".deploy/$stage/params.json" ]] || deploy configure --stage "$stage" || return 1
  "${serverless[@]}" remove --stage "$stage" --region "$region"
}

fw_log "[1/2] functions and API (stack flightwatch-$stage)"
if deploy has-stack "flightwatch-$stage"; then
  if ! sls_remove; then
    fw_log "serverless remove did not finish: deleting the functions' stack with the deployer"
    deploy remove-functions --stage "$stage"
  fi
else
  fw_log "no functions stack: nothing to remove"
fi

fw_log "[2/2] infra stack flightwatch-$stage-infra"
deploy remove --stage "$stage"
rm -rf ".deploy/$stage"
fw_log "stage $stage removed in ${SECONDS}s"
