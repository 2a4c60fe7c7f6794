#!/usr/bin/env bash
# Packages the stack for the stage `ci`, offline, and checks it:
#
#   tests/deploy/package.sh
#
# 1. renders nothing: copies tests/deploy/params.ci.json (a rendered
#    infra/templates/serverless-params.json.mustache) to .deploy/ci/params.json;
# 2. `npm ci` when node_modules is missing (Serverless Framework v3, pinned in package-lock.json);
# 3. `npx serverless package --stage ci`: no AWS account or credentials needed. Twice: first with
#    "ReservedConcurrency" true and "Watching" false, then as params.ci.json has them
#    (ReservedConcurrency false, the default; Watching true), which is the template left in
#    .serverless and checked in full;
# 4. tests/deploy/check_params.py, on both: reserved concurrency only when asked for (the five
#    documented values), none by default; the sms, alerts and watch functions' on-failure
#    destination is the dead-letter queue; the flight events go from flights to watch, and
#    flights announces registrations only when watching is on (its topic variable empty when
#    off);
# 5. tests/deploy/check_api.py: the template against openapi.yaml, and the roles (watch outside
#    the VPC, publishing nothing; flights publishing to the flight events topic only); and
#    tests/deploy/gateway_responses.py: the packaged API's gateway responses are problem+json
#    whatever API Gateway puts in their variables;
# 6. scripts/lint-cfn.sh --serverless: cfn-lint (+ serverless rules) and checkov.
#
# The Lambda zips must exist: build them first with scripts/build.sh (cargo lambda build
# --release --output-format zip). FLIGHTWATCH_LAMBDA_DIR names their directory, as for
# scripts/build.sh (default target/lambda). It may hold cargo
# lambda's layout, <dir>/<name>/bootstrap.zip, or flat <dir>/<name>.zip files. Serverless v3
# names each function's S3 object after the artifact's base name, so serverless.yml wants
# <name>.zip: the cargo lambda layout is linked into a temporary directory under those names,
# and the build directory is left as it is.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/common.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"
root="$(fw_root)"
cd "$root"

stage=ci
functions=(flights alerts sms watch migrate)
artifacts="${FLIGHTWATCH_LAMBDA_DIR:-target/lambda}"
[[ $artifacts == /* ]] || artifacts="$root/$artifacts"

staged="$(mktemp -d)"
trap 'rm -rf "$staged"' EXIT
missing=()
for fn in "${functions[@]}"; do
  if [[ -f $artifacts/$fn.zip ]]; then
    ln -s "$artifacts/$fn.zip" "$staged/$fn.zip"
  elif [[ -f $artifacts/$fn/bootstrap.zip ]]; then
    ln -s "$artifacts/$fn/bootstrap.zip" "$staged/$fn.zip"
  else
    missing+=("$artifacts/$fn/bootstrap.zip")
  fi
done
if ((${#missing[@]})); then
  fw_log "missing Lambda artifacts: ${missing[*]}"
  fw_log "build them with: FLIGHTWATCH_LAMBDA_DIR=${artifacts} scripts/build.sh"
  fw_log "or point FLIGHTWATCH_LAMBDA_DIR at the directory that holds them"
  exit 1
fi

mkdir -p ".deploy/$stage"
params=".deploy/$stage/params.json"

# No update checks, telemetry or notifications: there is no network but package registries.
export SLS_TELEMETRY_DISABLED=1 SLS_TRACKING_DISABLED=1 SLS_NOTIFICATIONS_MODE=off
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
if [[ ! -d node_modules ]]; then
  fw_log "npm ci"
  npm ci --no-audit --no-fund
fi

python=python3
[[ -x $HOME/.cache/flightwatch/venv/bin/python ]] && python="$HOME/.cache/flightwatch/venv/bin/python"
template=.serverless/cloudformation-template-update-stack.json

# package RESERVED WATCHING: packages with params.ci.json's ReservedConcurrency set to RESERVED
# and its Watching to WATCHING (each true or false), and checks the template follows the params
# (check_params.py).
package() {
  fw_log "params: tests/deploy/params.ci.json with ReservedConcurrency $1, Watching $2 -> $params"
  "$python" -c 'import json, sys
p = json.load(open(sys.argv[1]))
p["ReservedConcurrency"] = sys.argv[3] == "true"
p["Watching"] = sys.argv[4] == "true"
json.dump(p, open(sys.argv[2], "w"), indent=2)' tests/deploy/params.ci.json "$params" "$1" "$2"
  fw_log "serverless package --stage $stage (artifacts: $artifacts)"
  rm -f "$template"
  npx --no-install serverless package --stage "$stage" --param="artifacts=$staged"
  [[ -f $template ]] || { fw_log "serverless wrote no $template"; exit 1; }
  fw_log "check $template against $params"
  "$python" tests/deploy/check_params.py "$template" "$params"
}
package true false
# Last: the template the checks below and scripts/test.sh's lint see (params.ci.json's own values).
package false true

fw_log "check the API and the roles in $template"
"$python" tests/deploy/check_api.py "$template"
fw_log "render the gateway responses of $template with hostile values"
"$python" tests/deploy/gateway_responses.py "$template"

if [[ -x scripts/lint-cfn.sh ]]; then
  scripts/lint-cfn.sh --serverless "$template"
else
  # Until scripts/lint-cfn.sh exists: the same two linters, each from its own venv (checkov pins
  # an older boto3 than moto in ~/.cache/flightwatch/venv wants).
  cache="$HOME/.cache/flightwatch"
  fw_log "cfn-lint (+ serverless rules) $template"
  rc=0
  "$cache/cfn-venv/bin/cfn-lint" --append-rules cfn_lint_serverless.rules --template "$template" || rc=$?
  # Exit code bits: 1 could not run, 2 errors, 4 warnings, 8 informational. Warnings pass.
  if ((rc & 3)); then fw_log "cfn-lint: errors"; exit 1; fi
  fw_log "checkov $template"
  "$cache/checkov-venv/bin/checkov" -f "$template" --framework cloudformation --compact --quiet --skip-download
fi
fw_log "package.sh: $template packaged and checked"
