#!/usr/bin/env bash
# Builds the Lambda binaries (flights, alerts, sms, watch, and the deploy-time migrate) for
# provided.al2023 with cargo-lambda (zig links against an old glibc): release profile (fat LTO,
# opt-level z, stripped), target/lambda/<function>/bootstrap.zip, copied to
# target/lambda/<function>.zip — the artifacts serverless.yml deploys.
#
#   scripts/build.sh [--arch arm64|x86_64]    (default arm64: cheaper per ms, starts faster)
#
# Environment: FLIGHTWATCH_LAMBDA_DIR overrides where the zips go (default target/lambda).
#
# Fails when an arm64 zip exceeds its ceiling below, after printing every size. The ceilings are a
# ratchet, today's sizes plus a little (never above the function's budget, issue 13: 2 MiB each,
# flights 1.5 MiB), so that no change grows a function unnoticed. Lower a ceiling whenever a cut
# lands.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$(fw_root)"
fw_target_dir

arch=arm64
while [[ $# -gt 0 ]]; do
  case "$1" in
    --arch) arch=${2:?--arch needs arm64 or x86_64}; shift 2 ;;
    *) fw_log "usage: scripts/build.sh [--arch arm64|x86_64]"; exit 2 ;;
  esac
done
case "$arch" in
  arm64) triple=aarch64-unknown-linux-gnu flag=--arm64 ;;
  x86_64) triple=x86_64-unknown-linux-gnu flag=--x86-64 ;;
  *) fw_log "unknown architecture $arch (arm64 or x86_64)"; exit 2 ;;
esac

fw_python_tools # cargo-lambda and zig
if ! rustup target list --installed | grep -qx "$triple"; then
  fw_log "adding the Rust target $triple"
  rustup target add "$triple"
fi

lambda_dir=${FLIGHTWATCH_LAMBDA_DIR:-target/lambda}
rm -rf "$lambda_dir"
mkdir -p "$lambda_dir"
fw_log "building flights, alerts, sms, watch and migrate for $arch (release) into $lambda_dir"
# One function at a time: built together, Cargo would unify their features, and each would link
# every client any of them calls (flights: S3 and SNS; watch: S3 and its HTTPS client). Only the function packages:
# the workspace's SQLite adapter never enters their build.
for fn in flights alerts sms watch migrate; do
  cargo lambda build --release "$flag" --output-format zip --lambda-dir "$lambda_dir" -p "$fn"
done
# KiB zipped (arm64): function ceiling budget. The history, each step measured on these zips, is
# in the README ("Figures"): one crypto library (ring), logging without a regex engine, the SDK's
# credentials from the environment, S3 and SNS as operations on the SDK's runtime instead of the
# generated clients, an HTTP/1.1 client (no h2), API Gateway's responses without encoding_rs, no
# Unicode back end for idna, no trace-level logging in release builds: flights 2938 -> 1524 KiB.
limits="flights 1536 1536
alerts 1730 2048
sms 1280 2048
watch 1480 2048
migrate 1140 2048"
over=()
while read -r fn ceiling budget; do
  zip="$lambda_dir/$fn/bootstrap.zip"
  [[ -s "$zip" ]] || { fw_log "missing $zip"; exit 1; }
  # Serverless names each uploaded artifact after its file: one name per function.
  cp "$zip" "$lambda_dir/$fn.zip"
  kib=$(( ($(stat -c %s "$zip") + 1023) / 1024 ))
  fw_log "$fn: $kib KiB zipped (ceiling $ceiling KiB, issue 13's budget $budget KiB)"
  [[ $arch == arm64 ]] || continue
  if (( ceiling > budget )); then
    over+=("$fn (its ceiling, $ceiling KiB, is above its budget, $budget KiB)")
  elif (( kib > ceiling )); then
    over+=("$fn ($kib KiB > its ceiling, $ceiling KiB)")
  fi
done <<<"$limits"
if (( ${#over[@]} )); then
  fw_log "size limits: ${over[*]}"
  exit 1
fi
