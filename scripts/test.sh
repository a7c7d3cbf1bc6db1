#!/usr/bin/env bash
# One command from nothing to the whole test suite passing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh "test,sdk"
# The dashboard tests drive Debian's chromium; install it when we can (root), quietly, once.
if [ "$(id -u)" = 0 ] && ! command -v chromium >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "test.sh: could not install chromium; the dashboard tests will be skipped" >&2
fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
