#!/usr/bin/env bash
# Creates (or refreshes) the project's virtualenv in .venv with the given extras.
# Re-installs only when pyproject.toml or the extras changed, so repeated runs are instant.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-sdk}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
fi
stamp=".venv/.runplane-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $extras"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[$extras]"
    echo "$want" > "$stamp"
fi
