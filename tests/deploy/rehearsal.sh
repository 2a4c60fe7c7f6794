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
scripts/deploy.sh "$stage"
python3 tests/deploy/rehearsal_check.py deployed "$stage"
users=$(db_sql "SELECT COUNT(*) FROM mysql.user WHERE user IN ('flights', 'alerts')")
tables=$(db_sql "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$database'")
[[ "$users" == 2 && "$tables" -ge 8 ]] || { fw_log "FAIL database: $users users, $tables tables"; exit 1; }
fw_log "ok   the database has its tables and views and both function users"

fw_log "deploying again: an update, not a failure"
scripts/deploy.sh "$stage"
python3 tests/deploy/rehearsal_check.py deployed "$stage"

scripts/remove.sh "$stage"
python3 tests/deploy/rehearsal_check.py removed "$stage"
[[ ! -e ".deploy/$stage" ]] || { fw_log "FAIL .deploy/$stage is left behind"; exit 1; }
fw_log "rehearsal: deployed twice and removed, nothing of the stage left in the emulator"
