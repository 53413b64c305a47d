#!/usr/bin/env bash
# Run the test suite (unit tests + notebook regression). Extra arguments go to pytest.
#   ./run_tests.sh                 # everything
#   ./run_tests.sh tests/test_data.py -k split
set -euo pipefail
source "$(dirname "$0")/scripts/venv.sh"
cd "$REPO"
source "$REPO/scripts/offline_data.sh"
exec "$PY" -m pytest "$@"
