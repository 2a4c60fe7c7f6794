#!/usr/bin/env bash
# The local stack killed (SIGKILL) in the middle of a 1000-passenger fan-out, then started
# again on the same data: every passenger must end texted exactly once or visibly failed
# (tests/local/sigkill.py). Needs the debug flightwatch-local binary (cargo build -p
# flightwatch-local); scripts/test.sh runs it.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/common.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"
cd "$(fw_root)"
fw_target_dir
bin="$CARGO_TARGET_DIR/debug/flightwatch-local"
if [[ ! -x "$bin" ]]; then
  fw_log "$bin is missing: build it with cargo build -p flightwatch-local"
  exit 1
fi
exec python3 tests/local/sigkill.py "$bin"
