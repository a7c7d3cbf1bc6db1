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
    # This machine's pip config names local mirrors that may be absent; pip warns once per
    # package about them, which buries real errors, so those lines are filtered out.
    {
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -e ".[$extras]"
    } 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    echo "$want" > "$stamp"
fi
