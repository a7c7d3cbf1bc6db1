"""The ports of a load-balancing worker: what its app listens on and where the server reaches it.

A load-balancing worker is any HTTP server; it reads ``PORT`` (its app) and ``PORT_HEALTH``
(its health check, often the same port). Many workers share a host, so the runtime gives
each its own ports:

- a host process (the process runtime, a container on the host network, a Ray worker on its
  node): free ports of that host, written into ``PORT`` / ``PORT_HEALTH``;
- a container on its own network: the app's own ports (``PORT``, the template's first port,
  else RunPod's 80), published on free host ports by the container runtime.

Where the server reaches it is recorded in the process's ``data["http"]`` (persisted as the
worker's ``provider_data``), and :func:`address_of` reads it back: the load balancer only ever
connects to an address from here, never to one a request names.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from yarl import URL

from runplane.providers.base import HttpPorts, WorkerSpec


@dataclass(frozen=True, slots=True)
class HttpAddress:
    """Where the server reaches a worker's app (``port``) and health check (``health_port``)."""

    host: str
    port: int
    health_port: int

    def url(self, path: str = "", health: bool = False) -> str:
        """``http://host:port`` plus ``path`` (which starts with "/" or is empty)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.health_port if health else self.port}{path}"

    def target(self, path: str, query: str = "") -> URL:
        """A client's path and query (as sent, percent-encoding kept) on this worker's app
        port: built, never parsed, so no path can name another host."""
        return URL.build(scheme="http", host=self.host, port=self.port,
                         path=path if path.startswith("/") else "/" + path,
                         query_string=query, encoded=True)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the kernel's pick; bound and released)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def resolve(spec: WorkerSpec, reach_host: str, mapped: bool, bind_host: str = "") -> WorkerSpec:
    """``spec`` with its HTTP ports settled (see the module docstring); unchanged when it is
    not a load-balancing worker. ``mapped``: a container on its own network (its own ports,
    published by the runtime); else free ports of this host (bound on ``bind_host``)."""
    http = spec.http
    if http is None:
        return spec
    if mapped:
        port, health = http.port, http.health_port
    else:
        port = free_port(bind_host or "0.0.0.0")
        health = port if http.health_port == http.port else free_port(bind_host or "0.0.0.0")
    env = {**spec.env, "PORT": str(port), "PORT_HEALTH": str(health)}
    published = list(spec.container.ports)
    for p in dict.fromkeys((port, health)):
        if not any(str(x).partition("/")[0].strip() == str(p) for x in published):
            published.append(f"{p}/http")
    return replace(spec, env=env, http=HttpPorts(port, health, reach_host, mapped),
                   container=replace(spec.container, ports=tuple(published)))


def http_data(spec: WorkerSpec) -> dict[str, Any]:
    """What a runtime records of a resolved worker in its ``ProcessInfo.data`` ({} for none)."""
    http = spec.http
    if http is None:
        return {}
    return {"http": {"host": http.host, "port": http.port, "health_port": http.health_port,
                     "mapped": http.mapped}}


def address_of(data: Mapping[str, Any]) -> HttpAddress | None:
    """Where the server reaches the worker whose provider data is ``data``; None when it
    serves no HTTP (a queue worker) or its ports are not known (yet)."""
    http = data.get("http")
    if not isinstance(http, Mapping) or not http.get("host"):
        return None
    try:
        port, health = int(http["port"]), int(http["health_port"])
        if http.get("mapped"):
            mappings = data.get("portMappings") or {}
            port, health = int(mappings[str(port)]), int(mappings[str(health)])
    except (KeyError, TypeError, ValueError):
        return None
    return HttpAddress(str(http["host"]), port, health)
