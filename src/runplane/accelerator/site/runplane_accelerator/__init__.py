"""runplane's accelerator for unmodified runpod SDK workers.

Loaded at interpreter start-up by the ``sitecustomize`` next to this package, which runplane
puts first on the ``PYTHONPATH`` of its workers (processes, containers, Ray, ``runplane worker
run``). It does nothing in a process that is not an SDK worker (no ``RUNPOD_WEBHOOK_GET_JOB``)
or when ``RUNPLANE_ACCELERATOR`` is ``0``. Otherwise it waits, without importing anything of
the SDK, for the first ``import runpod``; then it reads the SDK's job loop from disk
(``fingerprint.py``), and:

- when the code is one it knows (``known.py``), it patches ``JobScaler`` as the SDK's
  ``rp_scale`` module is executed (``loop.py``: events instead of the 1 s and 0.1 s waits),
  and ``rp_http``'s result post (``delivery.py``: a result that cannot reach the server, as
  while it restarts, is sent again instead of dropped);
- otherwise it leaves the SDK alone and says so in one line on stderr (the worker's log).

Either way it tells the server through a query parameter on the job-take URL
(``runplane_accelerator=on|off-unknown-sdk|off-error``, ``runplane_sdk=<version>``), which
the server shows on the worker. Python 3.8+, standard library only: it runs in the user's
interpreter, never imports runplane.
"""

from __future__ import annotations

import os
import sys
from typing import Any

SWITCH = "RUNPLANE_ACCELERATOR"
_SCALE = "runpod.serverless.modules.rp_scale"
_HTTP = "runpod.serverless.modules.rp_http"
_OFF_VALUES = ("0", "off", "false", "no")


def _say(text: str) -> None:
    sys.stderr.write(f"runplane accelerator: {text}\n")
    sys.stderr.flush()


def _sdk_version(package_dir: str) -> str:
    try:
        from importlib.metadata import version

        return version("runpod")
    except Exception:  # noqa: BLE001, S110 - no metadata: the version file below
        pass
    try:  # the SDK's own version file, when the distribution's metadata is missing
        with open(os.path.join(package_dir, "version.py")) as f:
            for line in f:
                if line.startswith("__version__"):
                    return line.split("=", 1)[1].strip().strip("'\"")
    except OSError:
        pass
    return "unknown"


def _report(state: str, sdk: str) -> None:
    url = os.environ.get("RUNPOD_WEBHOOK_GET_JOB")
    if url is not None:
        sep = "&" if "?" in url else "?"
        os.environ["RUNPOD_WEBHOOK_GET_JOB"] = (
            f"{url}{sep}runplane_accelerator={state}&runplane_sdk={sdk}")


class _PatchingLoader:
    """Runs the SDK's own loader for one of its modules, then patches the module it made."""

    def __init__(self, inner: Any, fullname: str) -> None:
        self._inner = inner
        self._fullname = fullname

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._inner.exec_module(module)
        if self._fullname == _HTTP:
            try:
                from runplane_accelerator import delivery

                delivery.install(module)
            except Exception as exc:  # noqa: BLE001 - never break the worker
                _say(f"results are posted once, as the SDK does ({exc!r})")
            return
        try:
            from runplane_accelerator import loop

            loop.install(module)
        except Exception as exc:  # noqa: BLE001 - never break the worker: its own loop runs
            _say(f"off: could not patch the SDK's job loop ({exc!r}); the SDK's own loop runs")
            rp_job = sys.modules.get("runpod.serverless.modules.rp_job")
            url = getattr(rp_job, "JOB_GET_URL", None)
            if rp_job is not None and isinstance(url, str):
                rp_job.JOB_GET_URL = url.replace(  # type: ignore[attr-defined]
                    "runplane_accelerator=on", "runplane_accelerator=off-error")


class _Finder:
    """A ``sys.meta_path`` finder that only looks: it lets the usual finders find everything."""

    def __init__(self) -> None:
        self.decided = False
        # The SDK's modules still to patch as they are loaded (known SDKs only).
        self.patch: set[str] = set()

    def _others(self, fullname: str, path: Any, target: Any) -> Any:
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname == "runpod" and not self.decided:
            self.decided = True
            spec = self._others(fullname, path, target)
            if spec is not None and spec.submodule_search_locations:
                self._decide(next(iter(spec.submodule_search_locations)))
            return None  # the usual finders load it
        if fullname in self.patch:
            self.patch.discard(fullname)
            spec = self._others(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, fullname)
            return spec
        return None

    def _decide(self, package_dir: str) -> None:
        from runplane_accelerator.fingerprint import fingerprint
        from runplane_accelerator.known import KNOWN

        sdk = _sdk_version(package_dir)
        try:
            with open(os.path.join(package_dir, "serverless", "modules", "rp_scale.py")) as f:
                print_ = fingerprint(f.read())
        except OSError:
            print_ = None
        if print_ in KNOWN:
            self.patch = {_SCALE, _HTTP}
            _report("on", sdk)
            _say(f"on (runpod {sdk}: its job loop waits on events, not timers, and a result "
                 "is sent again while the server restarts)")
        else:
            _report("off-unknown-sdk", sdk)
            _say(f"off: the job loop of runpod {sdk} is not one runplane knows "
                 f"(fingerprint {print_}); the SDK's own loop runs")


def install() -> None:
    """Arm the accelerator for this process (see the module docstring)."""
    if os.environ.get("RUNPOD_WEBHOOK_GET_JOB") is None:
        return  # not a worker (a tool, a subprocess of the handler, ...)
    if os.environ.get(SWITCH, "1").strip().lower() in _OFF_VALUES:
        return
    if "runpod" in sys.modules:
        return  # imported before start-up finished: too late to patch cleanly
    sys.meta_path.insert(0, _Finder())
