#!/usr/bin/env bash
# Lints CloudFormation templates with cfn-lint and checkov.
#
#   scripts/lint-cfn.sh [--serverless] TEMPLATE...
#
# --serverless adds the cfn-lint-serverless rules (for SAM/Serverless-generated templates).
# cfn-lint errors fail; its warnings and informational findings are printed but pass. Any failed
# checkov check fails: suppress a finding in the template itself, on the resource, with
#   Metadata: { checkov: { skip: [ { id: CKV_AWS_nn, comment: "why" } ] } }
#
# The tools live in two venvs under ~/.cache/flightwatch, installed when missing: cfn-lint (+ the
# serverless rules) in cfn-venv, checkov alone in checkov-venv. checkov pins an older boto3 than
# moto (in ~/.cache/flightwatch/venv) wants, so they never share a venv.
set -euo pipefail

# Followed with `shellcheck -x`; SC1091 is only the notice that plain `shellcheck` does not follow it.
# shellcheck source-path=SCRIPTDIR source=lib/common.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() {
  echo "usage: $0 [--serverless] TEMPLATE..." >&2
  exit 2
}

serverless=0
templates=()
while (($#)); do
  case $1 in
    --serverless) serverless=1 ;;
    -h | --help) usage ;;
    --) shift; templates+=("$@"); break ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) templates+=("$1") ;;
  esac
  shift
done
((${#templates[@]})) || usage
for t in "${templates[@]}"; do
  [[ -f $t ]] || { fw_log "no such template: $t"; exit 2; }
done

cache="$HOME/.cache/flightwatch"
cfn_venv="$cache/cfn-venv"
checkov_venv="$cache/checkov-venv"

# ensure_venv DIR IMPORT... -- PIP_SPEC...: creates DIR and pip-installs the specs unless every
# Python module named before -- already imports in it.
ensure_venv() {
  local venv=$1 modules=() specs=()
  shift
  while (($#)) && [[ $1 != -- ]]; do modules+=("$1"); shift; done
  shift
  specs=("$@")
  if [[ -x $venv/bin/python ]] && "$venv/bin/python" -c "import $(IFS=,; echo "${modules[*]}")" 2>/dev/null; then
    return 0
  fi
  fw_log "installing ${specs[*]} into $venv"
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${specs[@]}"
}

ensure_venv "$cfn_venv" cfnlint cfn_lint_serverless -- 'cfn-lint>=1,<2' 'cfn-lint-serverless>=0.3,<1'
ensure_venv "$checkov_venv" checkov -- 'checkov>=3,<4'

cfn_lint_args=()
((serverless)) && cfn_lint_args+=(--append-rules cfn_lint_serverless.rules)

failed=0
summary=()
for t in "${templates[@]}"; do
  # cfn-lint's exit code is a bit mask: 2 errors, 4 warnings, 8 informational; 1 means it could
  # not run at all (bad arguments, unreadable template, a crash).
  fw_log "cfn-lint $t"
  rc=0
  "$cfn_venv/bin/cfn-lint" "${cfn_lint_args[@]}" --template "$t" || rc=$?
  if ((rc & 1)) || ((rc & 2)); then
    lint="FAILED (errors)"
    failed=1
  elif ((rc)); then
    lint="passed with warnings (see above)"
  else
    lint="passed"
  fi

  fw_log "checkov $t"
  rc=0
  # --skip-download: no calls to the Prisma/Bridgecrew API (there is no network here, and the
  # results must not depend on it).
  "$checkov_venv/bin/checkov" -f "$t" --framework cloudformation --compact --quiet --skip-download || rc=$?
  if ((rc)); then
    checks="FAILED (exit $rc)"
    failed=1
  else
    checks="passed"
  fi
  summary+=("$t: cfn-lint ${lint}; checkov ${checks}")
done

fw_log "summary"
for line in "${summary[@]}"; do fw_log "  $line"; done
if ((failed)); then
  fw_log "lint-cfn: FAILED"
  exit 1
fi
fw_log "lint-cfn: all templates passed"
