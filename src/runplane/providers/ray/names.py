"""Whose a Ray worker actor is: its name, and the owner it carries.

Worker actors are detached (they outlive the server that started them, so its next run can
take them over), which makes them findable by anyone on the cluster. Their name ties each to
the server that made it: ``runplane-<owner>-<worker id>-<run>-<n>``, where the *owner* is a
random token kept in the server's data dir (``<data_dir>/ray-owner``, made on first use).
A path or host name would not do: two servers on different hosts may both use
``/var/lib/runplane``, and a server in a Kubernetes pod gets a new host name on every restart,
while its data dir (a volume) stays. So two servers sharing a cluster and a namespace never
adopt or remove each other's actors. ``<run>`` is random per server run and ``<n>`` counts the
run's actors: a pod started again never collides with its previous actor's name while Ray
forgets it, in this run or the next.

Nothing here imports ray.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

_PREFIX = "runplane-"


def owner_of(data_dir: Path) -> str:
    """The data dir's owner token (12 hex), made and kept on first use."""
    path = data_dir / "ray-owner"
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    # O_EXCL: two processes on the same data dir at once agree on the first one's token.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return path.read_text().strip() or token
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def actor_name(owner: str, worker_id: str, run: str, serial: int) -> str:
    """The name of one worker's (or pod's) actor."""
    return f"{_PREFIX}{owner}-{worker_id}-{run}-{serial}"


def is_owned(name: str, owner: str) -> bool:
    """Whether the actor named ``name`` was made by a server with this owner token."""
    return name.startswith(f"{_PREFIX}{owner}-")


def leftovers(named: Iterable[Mapping[str, str]], owner: str,
              keep: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """(namespace, name) of every actor in ``named`` (``ray.util.list_named_actors(
    all_namespaces=True)``) that this owner made and that is not in ``keep`` (this run's
    actors, the taken-over ones included): what a previous run left and nobody took over."""
    return sorted((a["namespace"], a["name"]) for a in named
                  if is_owned(a["name"], owner) and (a["namespace"], a["name"]) not in keep)
