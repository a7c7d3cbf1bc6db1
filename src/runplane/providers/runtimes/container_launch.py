"""The launcher of one container worker: pull the image if it is missing, then become
``podman run`` / ``docker run``.

Run by the container runtime as ``python -I -S container_launch.py <plan.json>`` (standard
library only: it starts in ~10 ms and never imports the server). Its stdout/stderr is the
worker's log, so the pull's output and then the container's own output land there, in order.
It keeps the pid the runtime started (``exec``), so the parent-death signal set on it and the
runtime's ``waitpid`` carry over to the engine's client, whose exit code is the container's.

The plan (written by the runtime, mode 0600) holds:
``exists`` (argv answering 0 when the image is present; null when the runtime knows it is),
``pull`` (argv), ``pull_env``
(variables pointing the engine at a credentials file, if any), ``auth`` (files to delete once
pulled), ``state`` and ``pull_log`` (where the phase and the pull's output go), and ``run``.
The state file holds one word: ``pulling``, ``failed`` or ``running``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys


def _put(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _pull(plan: dict) -> int:
    """Pull, copying each output line to the log and the pull log; the engine's exit code."""
    env = {**os.environ, **plan.get("pull_env", {})}
    with open(plan["pull_log"], "a", buffering=1) as pull_log:
        proc = subprocess.Popen(plan["pull"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, text=True, errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            pull_log.write(line)
        return proc.wait()


def main() -> None:
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    try:
        os.remove(sys.argv[1])
    except OSError:
        pass
    state = plan["state"]
    try:
        present = plan["exists"] is None or subprocess.run(
            plan["exists"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, check=False).returncode == 0
        if not present:
            _put(state, "pulling")
            print(f"--- runplane: pulling {plan['image']}", flush=True)
            code = _pull(plan)
            if code != 0:
                _put(state, "failed")
                print(f"--- runplane: pulling {plan['image']} failed (exit code {code})", flush=True)
                sys.exit(code)
    finally:
        for path in plan.get("auth", ()):
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else (
                os.path.exists(path) and os.remove(path))
    _put(state, "running")
    sys.stdout.flush()
    os.execvp(plan["run"][0], plan["run"])


if __name__ == "__main__":
    main()
