"""The network a container worker joins (``[container] network``), decided without I/O.

``private`` (the default, podman): each worker on a network of its own, made for it and
removed with it (``podman network create --opt isolate=true``: a bridge no other network's
containers reach, no DNS server of its own). Its container reaches the outside world through
the host's NAT and the server through one door (``forward.py``): the address of
``public_url`` on the container's own loopback, forwarded to the same address on the host.
Nothing else of the host's loopback, and no other worker's ports: the only ports published
are the template's (at ``publish_ip``) and a load-balancing worker's (on loopback, where only
the server reaches them).

``host`` (the operator's explicit choice): the host's network, shared by every container: a
container reaches every service on the host's loopback and may bind any free port of the
host. Any other name: that engine network, shared by the containers on it
(docs/containers.md, docs/security.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from runplane.providers.base import ImageError

PRIVATE = "private"


@dataclass(frozen=True)
class Door:
    """The server's address (``host``:``port``, as ``public_url`` names it) and the port it
    has on the container's loopback (``inside``: the same unless the container declares it)."""

    host: str
    port: int
    inside: int

    def plan(self, script: str) -> dict[str, object]:
        return {"host": self.host, "port": self.port, "inside": self.inside, "script": script}


def loopback_address(server_url: str) -> tuple[str, int] | None:
    """(host, port) of ``server_url`` when it is on this host's loopback (a container on its
    own network needs a door to reach it); None when a container reaches it as any other
    address (or there is none)."""
    if not server_url:
        return None
    parts = urlsplit(server_url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    if host == "localhost":
        return "127.0.0.1", port
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host, port
    except ValueError:
        pass
    return None


def door_for(server: tuple[str, int] | None, declared: Iterable[int]) -> Door | None:
    """The door for a container declaring the ports ``declared``: the server's own port inside
    unless one of them is it (the app listening there would find it taken), then the next
    port up that none is."""
    if server is None:
        return None
    host, port = server
    taken = set(declared)
    inside = port
    while inside in taken:
        inside = inside + 1 if inside < 65535 else 1024
    return Door(host, port, inside)


def rewrite_server_urls(env: Mapping[str, str], server_url: str, door: Door) -> dict[str, str]:
    """``env`` with the URLs that start with ``server_url`` pointed at the door's port (only
    when it moved: usually nothing changes)."""
    if door.inside == door.port or not server_url:
        return dict(env)
    base = server_url.rstrip("/")
    parts = urlsplit(base)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    moved = f"{parts.scheme}://{host}:{door.inside}"
    return {k: moved + v[len(base):] if v == base or v.startswith(base + "/") else v
            for k, v in env.items()}


def network_create(binary: str, name: str, labels: Mapping[str, str]) -> list[str]:
    """The argv that makes a worker's own network."""
    argv = [binary, "network", "create", "--opt", "isolate=true", "--disable-dns"]
    for key, value in sorted(labels.items()):
        argv.append(f"--label={key}={value}")
    return [*argv, name]


def check_engine(engine: str, network: str, multiline: Iterable[str]) -> None:
    """ImageError when the engine cannot run a container as configured: a private network
    and values an env file cannot hold need podman (docker has no per-container door before
    the command starts, and no secrets outside a swarm)."""
    if engine == "podman":
        return
    if network == PRIVATE:
        raise ImageError(
            '[container] network = "private" (a network of its own per worker) needs podman; '
            'with docker, name a docker network and a public_url its containers can reach, '
            'or choose the host\'s network (network = "host"): docs/containers.md')
    names = sorted(multiline)
    if names:
        raise ImageError(f"env {', '.join(names)}: a value with a newline cannot be passed to a "
                         "docker container (podman passes it as a secret): remove the newline")
