#!/usr/bin/env bash
# One command from nothing to the whole test suite passing.
set -euo pipefail
cd "$(dirname "$0")/.."
# ray: the Ray provider's tests start a real multi-node Ray cluster on this host (tests/ray);
# the extra is ~25 s to install once, and the default install (no extra) never imports it.
# simulate: matplotlib, for the simulator's plots (tests/unit/test_simulate_report.py).
scripts/bootstrap.sh "test,sdk,ray,simulate"
# The dashboard tests drive Debian's chromium; install it when we can (root), quietly, once.
if [ "$(id -u)" = 0 ] && ! command -v chromium >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "test.sh: could not install chromium; the dashboard tests will be skipped" >&2
fi
# RunPod's JS SDK runs on Debian's node (tests/compat/test_js_sdk.py installs the SDK itself
# from npm into ~/.cache/runplane-test); install node and npm when we can (root), once.
if [ "$(id -u)" = 0 ] && ! { command -v node >/dev/null && command -v npm >/dev/null; }; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null) \
        || echo "test.sh: could not install nodejs/npm; the JS SDK test will be skipped" >&2
fi
# Container tests run a locally built image through podman: set podman up and build the image
# when we can (root) and those tests are among the selected ones; quick once cached.
want_podman=1
for arg in "$@"; do
    case "$arg" in -*) ;; *) want_podman=0 ;; esac
done
for arg in "$@"; do
    case "$arg" in *container*|tests|tests/|tests/e2e|tests/e2e/|tests/providers*|tests/unit|tests/unit/) want_podman=1 ;; esac
done
if [ "$want_podman" = 1 ] && [ "$(id -u)" = 0 ]; then
    scripts/setup_podman.sh \
        || echo "test.sh: podman set-up failed; the container tests will be skipped" >&2
fi
# tests/security runs workers as the unprivileged user a root server uses by default.
scripts/setup_worker_user.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
