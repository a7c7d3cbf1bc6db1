"""Start-up hook of runplane's worker processes (this directory is first on their PYTHONPATH).

Arms the accelerator (``runplane_accelerator``), then runs the ``sitecustomize`` this file
shadows, if the interpreter or image has one, so that theirs still runs.
"""

import os
import sys


def _arm() -> None:
    try:
        import runplane_accelerator

        runplane_accelerator.install()
    except Exception as exc:  # noqa: BLE001 - a broken accelerator must never stop the worker
        sys.stderr.write(f"runplane accelerator: off: failed to load ({exc!r})\n")


def _chain() -> None:
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - as Python does for a failing sitecustomize
        sys.stderr.write(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{exc!r}\n")


_arm()
_chain()
