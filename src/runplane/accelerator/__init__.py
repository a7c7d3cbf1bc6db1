"""The accelerator of unmodified runpod SDK workers, as the server sees it.

What runs in the worker is the directory ``site/`` (standard library only; see
``site/runplane_accelerator/__init__.py``): it goes first on a worker's ``PYTHONPATH`` so its
``sitecustomize`` loads before the handler. Here: where that directory is on this host and in
a container, the switch, and how a worker's report reads on the worker (``includeWorkers``,
the dashboard). ``docs/workers.md`` says why this route and not the SDK's realtime mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

# The directory to put first on PYTHONPATH.
SITE_DIR = Path(__file__).resolve().parent / "site"
# Where the container runtime mounts it (read-only).
CONTAINER_DIR = "/opt/runplane/accelerator"
# The environment switch: "0" turns the accelerator off (template env, the shell of
# `runplane worker run`); the server sets it to "0" for every worker when its own
# `accelerator` setting is off, and to "1" by default.
SWITCH = "RUNPLANE_ACCELERATOR"
# The job-take query parameters of a worker's report.
REPORT_STATE, REPORT_SDK = "runplane_accelerator", "runplane_sdk"

_OFF = frozenset({"0", "off", "false", "no"})


def enabled(env: Mapping[str, str]) -> bool:
    """Whether a worker with this environment is to be accelerated."""
    return env.get(SWITCH, "1").strip().lower() not in _OFF


def with_site(env: Mapping[str, str], site_dir: str, base: str | None = None) -> dict[str, str]:
    """``env`` with ``site_dir`` first on PYTHONPATH (before ``base``, default the env's own)
    when it is to be accelerated; unchanged otherwise."""
    out = dict(env)
    if not enabled(env):
        return out
    rest = env.get("PYTHONPATH") if base is None else base
    out["PYTHONPATH"] = f"{site_dir}:{rest}" if rest else site_dir
    return out


def describe(state: str | None, sdk: str | None) -> str:
    """How a worker's report reads on the worker (empty or ``None``: it made none)."""
    if not state:
        return "off (not loaded: disabled, or not a Python SDK worker)"
    version = f"runpod {sdk}" if sdk else "runpod"
    if state == "on":
        return f"on ({version})"
    if state == "off-unknown-sdk":
        return f"off: {version}'s job loop is not one runplane knows; the SDK's own loop runs"
    return f"off: the accelerator failed to patch {version}; the SDK's own loop runs"
