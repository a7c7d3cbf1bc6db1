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
pulled), ``state`` and ``pull_log`` (where the phase and the pull's output go), ``run`` and
``run_env`` (variables ``run`` names with ``--env NAME``: values with newlines).
The state file holds one word: ``pulling``, ``failed`` or ``running``; ``running`` is
followed by the size of the log when the container's own output starts there (a restarted
server's follower, ``container_follow.py``, counts the lines relayed since from it).
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
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.remove(path)
    run = plan["run"]
    if plan.get("accelerator"):
        run = _with_accelerator(run, plan)
    sys.stdout.flush()
    try:  # stdout is the worker's log (opened to append): its size is where the container's starts
        start = os.fstat(sys.stdout.fileno()).st_size
    except OSError:
        start = 0
    _put(state, f"running {start}")
    # Values an env file cannot hold go to the engine client as its own variables
    # (``--env NAME`` in ``run``), never on its command line.
    os.execvpe(run[0], run, {**os.environ, **plan.get("run_env", {})})


def _with_accelerator(run: list, plan: dict) -> list:
    """``run`` with runplane's SDK accelerator mounted and first on PYTHONPATH, before the
    template's PYTHONPATH or, without one, the image's own (read from the image)."""
    acc = plan["accelerator"]
    base = acc.get("pythonpath")
    if base is None:
        probe = subprocess.run(
            [run[0], "image", "inspect", "--format", "{{json .Config.Env}}", plan["image"]],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        image_env: list[str] = []
        if probe.returncode == 0:
            try:
                image_env = json.loads(probe.stdout) or []
            except ValueError:
                pass
        base = next((e.split("=", 1)[1] for e in image_env if e.startswith("PYTHONPATH=")), "")
    path = f"{acc['dir']}:{base}" if base else acc["dir"]
    at = acc["image_at"]
    return [*run[:at], "--volume", acc["mount"], "--env", f"PYTHONPATH={path}", *run[at:]]


if __name__ == "__main__":
    main()
