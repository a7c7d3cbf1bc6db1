#!/usr/bin/env bash
# One command from nothing to the whole test suite passing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh "test,sdk"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
