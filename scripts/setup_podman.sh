#!/usr/bin/env bash
# Sets up podman for runplane's container runtime and builds the test worker image.
# Idempotent and quiet once done: a second run only checks (a few hundred ms).
#
#   scripts/setup_podman.sh            # packages (as root), containers.conf, test image
#   scripts/setup_podman.sh --check    # exit 0 when podman runs containers and the image is built
#
# 1. Debian's podman + runc (+ debootstrap for the base image), installed when root.
# 2. /etc/containers/containers.conf: `default_ulimits = []` (the packaged default asks for a
#    nofile limit this kind of sandboxed kernel refuses) and runc as the OCI runtime (crun fails
#    on this kernel's cgroups). Written only when absent; an existing file is left alone.
#    A warning when podman's network backend is not netavark (private networks need it).
# 3. The test base image, with no registry: a minimal Debian root filesystem with python3 made
#    by debootstrap from the host's Debian mirror, cached as a tarball under
#    ~/.cache/runplane-test/ keyed by its parameters, then `podman import`ed.
# 4. The test worker image (tests/e2e/container_image/): the runpod SDK from PyPI plus a
#    handler; rebuilt only when its inputs change (their hash is the image's label).
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE="${RUNPLANE_TEST_SUITE:-bookworm}"
BASE_TAG="localhost/runplane-test/debian-python:${SUITE}"
IMAGE_TAG="localhost/runplane-test/worker:latest"
CACHE="${RUNPLANE_TEST_CACHE:-$HOME/.cache/runplane-test}"
CONTEXT="tests/e2e/container_image"
INCLUDE="python3,python3-venv,python3-pip,ca-certificates"
CA=/etc/ssl/certs/ca-certificates.crt

say() { echo "setup_podman: $*" >&2; }

mirror() {  # the host's Debian archive (deb822 or one-line sources)
    local m
    m=$(grep -hs -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -v security | head -1 || true)
    [ -n "$m" ] || m=$(grep -hs -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}

runpod_version() {  # the SDK version the tests run against on the host, else the latest
    .venv/bin/python -c 'from importlib.metadata import version; print(version("runpod"))' \
        2>/dev/null || true
}

image_hash() {
    { echo "$SUITE $INCLUDE $(runpod_version)"; cat "$CONTEXT"/*; } | sha256sum | cut -c1-16
}

podman_works() {
    command -v podman >/dev/null && podman run --rm --network none "$BASE_TAG" true >/dev/null 2>&1
}

image_current() {
    [ "$(podman image inspect --format '{{ index .Labels "runplane.test.hash" }}' "$IMAGE_TAG" \
        2>/dev/null)" = "$(image_hash)" ]
}

if [ "${1:-}" = "--check" ]; then
    podman_works && image_current
    exit
fi

# -- 1. packages ---------------------------------------------------------------------------
missing=()
for cmd in podman:podman runc:runc debootstrap:debootstrap docker-registry:docker-registry htpasswd:apache2-utils; do
    command -v "${cmd%%:*}" >/dev/null || [ -x "/usr/sbin/${cmd%%:*}" ] || missing+=("${cmd##*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        say "missing ${missing[*]} and not root: install them (apt-get install ${missing[*]})"
        exit 1
    fi
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# -- 2. containers.conf --------------------------------------------------------------------
if [ "$(id -u)" = 0 ] && [ ! -f /etc/containers/containers.conf ]; then
    mkdir -p /etc/containers
    cat > /etc/containers/containers.conf <<'EOF'
# Written by runplane's scripts/setup_podman.sh.
[containers]
# The packaged default (nofile=1048576) is refused by some sandboxed kernels.
default_ulimits = []

[engine]
# crun fails on cgroups of some kernels; runc works everywhere podman does.
runtime = "runc"
EOF
    say "wrote /etc/containers/containers.conf"
fi

# runplane's default [container] network = "private" (a network per worker) needs netavark,
# podman 4's default backend (CNI cannot isolate networks from each other).
backend=$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null || true)
if [ "$backend" != netavark ]; then
    say "podman's network backend is '${backend:-unknown}', not netavark: the default" \
        "[container] network = \"private\" needs it (network_backend = \"netavark\" in" \
        "containers.conf), or choose network = \"host\" (docs/containers.md)"
fi

# -- 3. base image -------------------------------------------------------------------------
if ! podman image exists "$BASE_TAG"; then
    MIRROR=$(mirror)
    key=$(echo "$SUITE $INCLUDE $MIRROR" | sha256sum | cut -c1-16)
    tarball="$CACHE/debian-$SUITE-$key.tar"
    if [ ! -s "$tarball" ]; then
        [ "$(id -u)" = 0 ] || { say "debootstrap needs root"; exit 1; }
        mkdir -p "$CACHE"
        root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
        trap 'rm -rf "$root"' EXIT
        say "debootstrap $SUITE from $MIRROR (about a minute, cached in $CACHE)"
        debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$root" "$MIRROR" \
            > "$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$root"
        trap - EXIT
    fi
    say "importing $tarball as $BASE_TAG"
    podman import --quiet "$tarball" "$BASE_TAG" >/dev/null
fi

# -- 4. test worker image ------------------------------------------------------------------
if image_current; then
    exit 0  # nothing changed since a build that ran containers
else
    version=$(runpod_version)
    say "building $IMAGE_TAG (runpod ${version:-latest} from PyPI)"
    podman build --quiet --network host --runtime runc \
        --volume "$CA:$CA:ro" \
        --build-arg "BASE=$BASE_TAG" --build-arg "RUNPOD_VERSION=${version:+==$version}" \
        --label "runplane.test.hash=$(image_hash)" \
        --tag "$IMAGE_TAG" "$CONTEXT" >/dev/null
fi
podman_works || { say "podman is installed but cannot run a container"; exit 1; }
