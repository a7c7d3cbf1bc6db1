#!/usr/bin/env bash
# The unprivileged user a root server runs worker and pod processes as ([security]
# worker_user, default runplane-worker; docs/security.md): a system user with its own home,
# no login shell, no groups but its own. Idempotent; does nothing unless run as root.
#
#     scripts/setup_worker_user.sh [name]
set -euo pipefail
name="${1:-runplane-worker}"
if [ "$(id -u)" != 0 ]; then
    echo "setup_worker_user: not root: workers run as the server's own user" >&2
    exit 0
fi
if id -u "$name" >/dev/null 2>&1; then
    exit 0
fi
home="/var/lib/$name"
nologin=$(command -v nologin || echo /usr/sbin/nologin)
useradd --system --user-group --create-home --home-dir "$home" --shell "$nologin" \
    --comment "runplane workers" "$name"
chmod 0700 "$home"
echo "setup_worker_user: created $name (home $home)" >&2
