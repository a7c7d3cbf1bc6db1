#!/usr/bin/env bash
# One command from nothing to a running server with a demo endpoint, on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh sdk
scripts/setup_worker_user.sh  # as root: the unprivileged user workers run as
exec .venv/bin/runplane serve --demo "$@"
