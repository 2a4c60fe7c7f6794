#!/usr/bin/env bash
# The deploy/remove rehearsal, offline: scripts/deploy.sh then scripts/remove.sh against moto
# server, with the database step run over a local MariaDB (moto cannot run the in-VPC migrate
# function). Deploys twice (the second is an update), checks what was created, removes, checks
# that nothing of the stage is left. Needs AWS_ENDPOINT_URL (moto) and DATABASE_URL, as
# scripts/test.sh sets them, and the cfn-lint venv (scripts/lint-cfn.sh installs it).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/common.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"
cd "$(fw_root)"
: "${AWS_ENDPOINT_URL:?point AWS_ENDPOINT_URL at a moto server}" "${DATABASE_URL:?set DATABASE_URL}"
fw_python_tools

stage=rehearsal
tmp=$(mktemp -d)
url_re='^[a-z]+://([^:@/]+)(:([^@]*))?@([^:/?]+)(:([0-9]+))?/'
[[ "$DATABASE_URL" =~ $url_re ]] || { fw_log "cannot parse DATABASE_URL"; exit 1; }
db_user=${BASH_REMATCH[1]} db_pass=${BASH_REMATCH[3]} db_host=${BASH_REMATCH[4]} db_port=${BASH_REMATCH[6]:-3306}
db_sql() { MYSQL_PWD="$db_pass" mariadb -h "$db_host" -P "$db_port" -u "$db_user" -N -e "$1"; }
database="flightwatch_rehearsal_$$"
cleanup() {
  db_sql "DROP DATABASE IF EXISTS $database; DROP USER IF EXISTS 'flights'@'%', 'alerts'@'%'" || true
  rm -rf "$tmp"
}
trap cleanup EXIT

fw_log "the infra template as moto can take it (tests/deploy/emulator_template.py)"
"$HOME/.cache/flightwatch/cfn-venv/bin/python" tests/deploy/emulator_template.py infra/infra.yaml >"$tmp/infra.json"
db_sql "CREATE DATABASE $database"

export FLIGHTWATCH_INFRA_TEMPLATE="$tmp/infra.json"
export FLIGHTWATCH_INFRA_PARAMETERS="DatabaseDeletionProtection=false"
export FLIGHTWATCH_DEPLOY_DATABASE_URL="${DATABASE_URL%/*}/$database"
export FLIGHTWATCH_PACKAGE_FILTER=tests/deploy/emulator_functions.py
# moto's API Gateway account has no CloudWatch role, as a fresh AWS account: the preflight
# creates it, as an operator would opt in to.
export FLIGHTWATCH_CREATE_CLOUDWATCH_ROLE=true
# Serverless cannot be pointed at an emulator: remove.sh's fallback (the deployer deleting the
# functions' stack) is what runs here, the same path a failed `sls remove` takes in AWS.
export FLIGHTWATCH_SERVERLESS=false
check() { python3 tests/deploy/rehearsal_check.py "$@"; }

fw_log "remove.sh on a stage that was never deployed"
scripts/remove.sh "$stage"
check removed "$stage"

# A deploy interrupted after each step (0 preflight, 2 infra, 3 configuration, 4 functions),
# then removed: nothing of the stage may be left.
# moto keeps a deleted stack's exports when its VPC deletion reports a dependency error (a moto
# gap, see the README), so that a second creation in the same emulator is refused: each round
# starts from a reset emulator, once its removal has been checked.
moto_reset() { curl -sf -X POST "$AWS_ENDPOINT_URL/moto-api/reset" >/dev/null; }
for step in 0 2 3 4; do
  fw_log "deploy.sh stopped after step $step, then remove.sh"
  scripts/deploy.sh "$stage" --stop-after "$step"
  scripts/remove.sh "$stage"
  check removed "$stage"
  moto_reset
done

scripts/deploy.sh "$stage"
check deployed "$stage"
users=$(db_sql "SELECT COUNT(*) FROM mysql.user WHERE user IN ('flights', 'alerts')")
tables=$(db_sql "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$database'")
[[ "$users" == 2 && "$tables" -ge 8 ]] || { fw_log "FAIL database: $users users, $tables tables"; exit 1; }
fw_log "ok   the database has its tables and views and both function users"

fw_log "deploying again: an update, not a failure; now with an AeroAPI key, which nothing prints"
aeroapi_key="rehearsal-aeroapi-key-$$-0123456789abcdef"
FLIGHTWATCH_AEROAPI_KEY="$aeroapi_key" scripts/deploy.sh "$stage" 2>&1 | tee "$tmp/deploy-again.log"
FLIGHTWATCH_AEROAPI_KEY="$aeroapi_key" check deployed "$stage"
if grep -qF "$aeroapi_key" "$tmp/deploy-again.log"; then
  fw_log "FAIL the AeroAPI key is in the deploy's output"
  exit 1
fi
fw_log "ok   the AeroAPI key is in watch.properties and in no output of the deploy"

fw_log "dead letters: kept in the queue, listed masked, redriven onto the alerts topic"
"$CARGO_TARGET_DIR/debug/flightwatch-deploy" dead-letters --stage "$stage" >"$tmp/none.txt"
python3 tests/deploy/rehearsal_check.py dead-letter "$stage"
"$CARGO_TARGET_DIR/debug/flightwatch-deploy" dead-letters --stage "$stage" | tee "$tmp/listed.txt"
grep -q '+1415•••0100' "$tmp/listed.txt" && ! grep -q '14155550100' "$tmp/listed.txt" \
  || { fw_log "FAIL the dead letter is not listed, or not masked"; exit 1; }
"$CARGO_TARGET_DIR/debug/flightwatch-deploy" dead-letters --stage "$stage" --redrive
python3 tests/deploy/rehearsal_check.py redriven "$stage"

scripts/remove.sh "$stage"
check removed "$stage"
[[ ! -e ".deploy/$stage" ]] || { fw_log "FAIL .deploy/$stage is left behind"; exit 1; }
fw_log "remove.sh again: nothing to do, and no failure"
scripts/remove.sh "$stage"
check removed "$stage"
fw_log "rehearsal: interrupted deploys removed, deployed twice, dead letters redriven, removed twice; nothing of the stage left in the emulator"
