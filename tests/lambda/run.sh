#!/usr/bin/env bash
# The Lambda binaries under cargo lambda watch (see run.py). Needs DATABASE_URL and
# AWS_ENDPOINT_URL (moto) as scripts/test.sh sets them, and the Python tools venv.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"
cd "$(fw_root)"
fw_target_dir
fw_python_tools
exec python3 tests/lambda/run.py
