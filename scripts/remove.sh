#!/usr/bin/env bash
# Tears a flightwatch stage down, in the reverse order of scripts/deploy.sh:
#   1. the functions and the API (sls remove)
#   2. the config bucket emptied, then the infra stack deleted (RDS leaves a final snapshot)
#
#   scripts/remove.sh <stage> [--region REGION]
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

fw_log "[1/2] functions and API"
if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
  deploy remove-functions --stage "$stage"
else
  [[ -d node_modules ]] || npm ci --no-audit --no-fund
  # serverless reads the rendered parameters even to remove; recreate them when missing.
  [[ -f ".deploy/$stage/params.json" ]] || deploy configure --stage "$stage"
  npx serverless remove --stage "$stage" --region "$region"
fi

fw_log "[2/2] infra stack flightwatch-$stage-infra"
deploy remove --stage "$stage"
rm -rf ".deploy/$stage"
fw_log "stage $stage removed in ${SECONDS}s"
