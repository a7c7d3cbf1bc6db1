"""Image references and pulls (pure): parsing and qualifying ``imageName``, registry
credentials as an engine's auth file, and what a pull's output says (progress, failure)."""

from __future__ import annotations

import base64
import re

from runplane.providers.base import ImageError

# docker's reference grammar, loosely: [registry[:port]/]path[:tag][@digest], lowercase path;
# it starts with a letter or digit, so no reference reads as an engine's option (\Z: ``$``
# would also match before a final newline).
_REFERENCE = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9][a-zA-Z0-9.-]*(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[a-z0-9]+:[a-fA-F0-9]{32,}))?\Z"
)


def is_container_image(image: str) -> bool:
    """Everything but the process runtime's ``local:``/``file://`` directories."""
    return not image.startswith(("local:", "file://"))


def parse_reference(image: str) -> dict[str, str | None]:
    """The image's registry, path, tag and digest; ImageError when it is not a reference."""
    m = _REFERENCE.match(image)
    if not image or m is None:
        raise ImageError(f"imageName {image!r} is not a container image reference "
                         "(e.g. 'runpod/worker-v1-vllm:stable' or 'ghcr.io/org/img:tag'); "
                         "a directory on this host is 'local:/absolute/path'")
    parts = m.groupdict()
    registry = parts["registry"]
    # "user/img": the first part is a Docker Hub namespace unless it looks like a host.
    if registry is not None and not ("." in registry or ":" in registry or registry == "localhost"):
        if registry != registry.lower() or "." in registry:
            raise ImageError(f"imageName {image!r} is not a container image reference: "
                             "repository names are lowercase")
        parts["path"] = f"{registry}/{parts['path']}"
        parts["registry"] = None
    return parts


def qualify(image: str) -> str:
    """A fully qualified reference: short Docker Hub names as docker would read them
    (``ubuntu`` -> ``docker.io/library/ubuntu:latest``), since podman refuses short names
    without configured search registries."""
    p = parse_reference(image)
    registry = p["registry"] or "docker.io"
    path = p["path"] or ""
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    out = f"{registry}/{path}"
    if p["tag"]:
        out += f":{p['tag']}"
    elif not p["digest"]:
        out += ":latest"
    if p["digest"]:
        out += f"@{p['digest']}"
    return out


def auth_config(image: str, username: str, password: str) -> dict[str, object]:
    """A docker ``config.json`` / podman ``auth.json`` holding one registry's credentials."""
    registry = parse_reference(image)["registry"] or "docker.io"
    keys = [registry]
    if registry == "docker.io":
        keys.append("https://index.docker.io/v1/")  # the key docker looks Docker Hub up by
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"auths": {k: {"auth": token} for k in keys}}


_PODMAN_BLOB = re.compile(r"^Copying blob (?:sha256:)?([0-9a-f]{6,})")
_DOCKER_LAYER = re.compile(r"^([0-9a-f]{12}): (.+)$")


def pull_progress(image: str, lines: list[str]) -> str:
    """What a pull's output says so far, for the worker's reason while it is Initializing:
    ``pulling <image>: 2 of 5 layers done`` (docker), ``pulling <image>: copying layer 3``
    (podman prints each layer as it starts), or the latest step."""
    blobs: list[str] = []
    layers: dict[str, str] = {}
    step = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if m := _PODMAN_BLOB.match(line):
            if m.group(1) not in blobs:
                blobs.append(m.group(1))
            step = f"copying layer {len(blobs)}"
            if line.endswith(" done") or "skipped" in line:
                step += " (done)"
        elif line.startswith("Copying config"):
            step = f"copied {len(blobs)} layers, copying config"
        elif line.startswith(("Writing manifest", "Storing signatures")):
            step = f"copied {len(blobs)} layers, storing the image"
        elif m := _DOCKER_LAYER.match(line):
            layers[m.group(1)] = m.group(2)
            done = sum(1 for s in layers.values()
                       if s.startswith(("Pull complete", "Already exists")))
            step = f"{done} of {len(layers)} layers done"
        elif line.startswith("Trying to pull") or line.endswith("Pulling from " + line.split()[-1]):
            step = "contacting the registry"
    return f"pulling {image}" + (f": {step}" if step else "")


def pull_failure(image: str, lines: list[str], code: int | None) -> str:
    """The reason a failed pull gives: the engine's last error line, credentials never
    included (engines do not print them; a URL's userinfo is cut anyway)."""
    errors = [ln.strip() for ln in lines if ln.strip().lower().startswith("error")]
    last = errors[-1] if errors else next((ln.strip() for ln in reversed(lines) if ln.strip()
                                           and not ln.startswith("--- runplane")), "")
    last = re.sub(r"://[^/@\s]+@", "://", last)
    detail = f": {last}" if last else f" (exit code {code})"
    return f"pulling image {image} failed{detail}"
