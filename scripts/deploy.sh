#!/usr/bin/env bash
# Deploys (or updates) a whole flightwatch stage with one command:
#   0. the preflight: what the stage needs of the account, checked before anything is created
#   1. builds the Lambda binaries (scripts/build.sh)
#   2. creates/updates the infra stack flightwatch-<stage>-infra, printing its events
#   3. uploads each database function's JDBC properties and the watch function's settings
#      (encrypted), and renders .deploy/<stage>/params.json
#   4. deploys the functions and the API with Serverless (sls deploy)
#   5. applies the migrations and provisions the functions' database users from inside the VPC
#
#   scripts/deploy.sh <stage> [--region REGION] [--arch arm64|x86_64] [--stop-after N]
#
# Needs AWS credentials (the standard AWS_* variables or a profile). Deploying twice is an update;
# a deploy stopped part of the way (--stop-after N, a failure, Ctrl-C) is finished by running it
# again, or undone by scripts/remove.sh.
# With AWS_ENDPOINT_URL set (an emulator such as moto), step 4 deploys the packaged template with
# the deployer instead, since sls deploy cannot be pointed at an emulator.
# Environment: FLIGHTWATCH_RESERVED_CONCURRENCY=true (reserve the concurrency serverless.yml
# sets; off by default), FLIGHTWATCH_CREATE_CLOUDWATCH_ROLE=true (let the preflight create API
# Gateway's account-wide CloudWatch Logs role when missing), FLIGHTWATCH_INFRA_TEMPLATE (default
# infra/infra.yaml), FLIGHTWATCH_INFRA_PARAMETERS ("Key=Value ..." for the infra template),
# FLIGHTWATCH_SMS_SENDER_ID, FLIGHTWATCH_DEPLOY_DATABASE_URL (provision over this admin URL, e.g.
# through a tunnel, instead of the in-VPC function), FLIGHTWATCH_AEROAPI_KEY (the FlightAware
# AeroAPI key the watch function uses, written to <stage>/watch.properties in the config bucket,
# never printed; unset: watching is off, on every deploy without it), FLIGHTWATCH_FLIGHTAWARE_TOKEN
# (the feed token, in the alerts and watch functions' environment), FLIGHTWATCH_AEROAPI_URL (another
# AeroAPI base URL for the watch function, e.g. a fake provider; unset: the real one);
# emulator only: FLIGHTWATCH_PACKAGE_FILTER (a command run on .serverless/ before deploying it).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$(fw_root)"

stage=${1:-}
[[ "$stage" =~ ^[a-z][a-z0-9-]{0,15}$ ]] || {
  fw_log "usage: scripts/deploy.sh <stage> [--region REGION] [--arch arm64|x86_64]  (stage: a-z, 0-9, -)"
  exit 2
}
shift
region=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
arch=arm64
stop_after=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --region) region=${2:?}; shift 2 ;;
    --arch) arch=${2:?}; shift 2 ;;
    --stop-after) stop_after=${2:?}; shift 2 ;;
    *) fw_log "unknown option $1"; exit 2 ;;
  esac
done
export AWS_REGION=$region SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off
fw_target_dir

cargo build --quiet --locked -p flightwatch-deployer
deploy() { "$CARGO_TARGET_DIR/debug/flightwatch-deploy" --region "$region" "$@"; }
stop_here() {
  if [[ "$1" -ge "$stop_after" ]]; then
    fw_log "stopped after step $1 as asked: run scripts/deploy.sh $stage again to finish"
    exit 0
  fi
}

fw_log "[0/5] preflight"
deploy preflight --stage "$stage"
stop_here 0

fw_log "[1/5] building the Lambda binaries ($arch)"
scripts/build.sh --arch "$arch"
stop_here 1

fw_log "[2/5] infra stack flightwatch-$stage-infra"
infra_args=(--stage "$stage" --template "${FLIGHTWATCH_INFRA_TEMPLATE:-infra/infra.yaml}")
for p in ${FLIGHTWATCH_INFRA_PARAMETERS:-}; do infra_args+=(--parameter "$p"); done
deploy infra "${infra_args[@]}"
stop_here 2

fw_log "[3/5] configuration"
deploy configure --stage "$stage" --architecture "$arch" --sms-sender-id "${FLIGHTWATCH_SMS_SENDER_ID:-}"
stop_here 3

fw_log "[4/5] functions and API (serverless)"
[[ -d node_modules ]] || npm ci --no-audit --no-fund
if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
  npx serverless package --stage "$stage" --region "$region"
  # Rehearsal hook: the emulator's own limits may need the packaged template adapted.
  if [[ -n "${FLIGHTWATCH_PACKAGE_FILTER:-}" ]]; then "$FLIGHTWATCH_PACKAGE_FILTER" .serverless; fi
  deploy functions --stage "$stage"
else
  npx serverless deploy --stage "$stage" --region "$region"
  # CloudFormation deploys the API once; this makes a changed openapi.yaml live every time.
  deploy api-deployment --stage "$stage"
fi
stop_here 4

fw_log "[5/5] database users and migrations"
deploy database --stage "$stage"

fw_log "stage $stage deployed in ${SECONDS}s"
fw_log "API key value: aws apigateway get-api-key --include-value --api-key <ApiKeyId output of flightwatch-$stage>"
