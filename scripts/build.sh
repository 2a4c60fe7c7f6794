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
# ratchet, today's sizes plus a little, so that no change grows a function unnoticed; none is
# above its function's budget (issue 13: 2 MiB each, flights 1.5 MiB) except while the function
# is over that budget, and the build fails when such a function comes within it, until its
# ceiling is lowered to the budget. Lower a ceiling whenever a cut lands.
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
# KiB zipped (arm64): function ceiling budget. sms rose with its claims (the S3 client, ~270 KiB):
# the price of texting nobody twice; opt-level "z" with panic = "abort" then took 5 % off each.
# flights rose with the SNS client it announces registrations with (2788 -> 2855 KiB); watch is
# the S3 client (its key) and reqwest on the SDK's rustls. ring instead of aws-lc as the one
# crypto library then took about 155 KiB off each; logging without EnvFilter (no regex engine)
# and the SDK's credentials from the environment alone (no STS client, no profile parser)
# about 340 KiB more (flights 2701 -> 2347, sms 2299 -> 1967); S3 through two operations on the
# SDK's runtime instead of the generated client (its endpoint rules, S3 Express and its checksums'
# CRC tables) 180 to 320 KiB more (flights 2152, alerts 2309, sms 1647, watch 1731); an HTTP/1.1
# client of our own for the SDK (h2, linked twice, gone) and sqlx on the system's roots (no
# webpki-roots) 220 to 260 KiB more (flights 1894, alerts 2056, sms 1427, watch 1501, migrate 1107);
# API Gateway's responses made by flightwatch_lambda rather than lambda_http (no encoding_rs)
# 135 KiB more off each HTTP function (flights 1759, alerts 1917); SNS Publish as an operation on
# the SDK's runtime instead of the generated SNS client 170 KiB more off each function that
# publishes (flights 1588, alerts 1744, sms 1256).
limits="flights 1620 1536
alerts 1790 2048
sms 1290 2048
watch 1550 2048
migrate 1150 2048"
over=()
while read -r fn ceiling budget; do
  zip="$lambda_dir/$fn/bootstrap.zip"
  [[ -s "$zip" ]] || { fw_log "missing $zip"; exit 1; }
  # Serverless names each uploaded artifact after its file: one name per function.
  cp "$zip" "$lambda_dir/$fn.zip"
  kib=$(( ($(stat -c %s "$zip") + 1023) / 1024 ))
  fw_log "$fn: $kib KiB zipped (ceiling $ceiling KiB, issue 13's budget $budget KiB)"
  [[ $arch == arm64 ]] || continue
  if (( kib > ceiling )); then
    over+=("$fn ($kib KiB > its ceiling, $ceiling KiB)")
  elif (( ceiling > budget && kib <= budget )); then
    # Within its budget now: from here the budget binds, not a ceiling above it.
    over+=("$fn (meets its budget of $budget KiB: lower its ceiling of $ceiling KiB to it)")
  fi
done <<<"$limits"
if (( ${#over[@]} )); then
  fw_log "size limits: ${over[*]}"
  exit 1
fi
