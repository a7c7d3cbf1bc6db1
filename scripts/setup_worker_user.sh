#!/usr/bin/env bash
# The unprivileged user a root server runs worker and pod processes as ([security]
# worker_user, default runplane-worker; docs/security.md): a system user with its own home,
# no login shell, no groups but its own. Idempotent; does nothing unless run as root.
#
#     scripts/setup_worker_user.sh [name]
#
# Workers run the project's Python (.venv/bin/python, as the demo and the quickstart do). When
# that interpreter lies under a directory the user cannot enter (a pyenv under /root, mode
# 0700), the user is given traverse-only access (an ACL entry "x" for that user alone: no
# listing, no reading of anything not already world-readable) on each such directory, with
# the acl package installed if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:-runplane-worker}"
say() { echo "setup_worker_user: $*" >&2; }
if [ "$(id -u)" != 0 ]; then
    say "not root: workers run as the server's own user"
    exit 0
fi
if ! id -u "$name" >/dev/null 2>&1; then
    home="/var/lib/$name"
    nologin=$(command -v nologin || echo /usr/sbin/nologin)
    useradd --system --user-group --create-home --home-dir "$home" --shell "$nologin" \
        --comment "runplane workers" "$name"
    chmod 0700 "$home"
    say "created $name (home $home)"
fi
uid=$(id -u "$name"); gid=$(id -g "$name")
as_worker() { setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"; }

python=".venv/bin/python"
[ -e "$python" ] || exit 0
target=$(readlink -f "$python")
as_worker test -x "$target" 2>/dev/null && exit 0
if ! command -v setfacl >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq acl >/dev/null) \
        || { say "cannot install acl: give $name access to $target by hand"; exit 0; }
fi
# From / down: each directory the user cannot enter once its parents are open to it.
dir=""
IFS=/ read -ra parts <<< "$(dirname "$target")"
for part in "${parts[@]}"; do
    [ -n "$part" ] || continue
    dir="$dir/$part"
    if ! as_worker test -x "$dir" 2>/dev/null; then
        setfacl -m "u:$name:x" "$dir"
        say "$name may now traverse $dir (to run $target)"
    fi
done
