"""The launcher of one container worker: pull the image if it is missing, make the container,
then become its attached engine client.

Run by the container runtime as ``python -I -S launch.py <plan.json>``, by path (standard
library only: it starts in ~10 ms and never imports the server, this package included). Its
stdout/stderr is the worker's log, so the pull's output and then the container's own output
land there, in order.
It keeps the pid the runtime started (``exec``), so the parent-death signal set on it and the
runtime's ``waitpid`` carry over to the engine's client, whose exit code is the container's.

Every engine command runs with this process's own environment, the server's (less its
settings), and nothing of the user's: their env reaches the container through the env file
and, for values a file cannot hold, podman secrets made from this process's standard input.

The plan (written by the runtime, mode 0600, deleted once read) holds:
``exists`` (argv answering 0 when the image is present; null when the runtime knows it is),
``pull`` (argv), ``pull_env`` (runplane's variables pointing the engine at a credentials
file, if any), ``auth`` (files to delete once pulled), ``state`` and ``pull_log`` (where the
phase and the pull's output go), ``env_file``, ``run`` (the ``docker run`` or ``podman
create`` argv) and, with podman, ``podman``: the worker's own network to create first (argv or
null), the ``secrets`` to create and remove once the container is initialised, and the door to
the server to open in the container's network (``forward``: ``forward.py``) before it is
started (``podman start --attach``).
The state file holds one word: ``pulling``, ``failed``, ``creating`` or ``running``;
``running`` is followed by the size of the log when the container's own output starts there
(a restarted server's follower, ``follow.py``, counts the lines relayed since from it).
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
    podman = plan.get("podman")
    if podman is None:  # docker: one attached run
        _put(state, f"running {start}")
        os.execv(run[0], run)
    _put(state, "creating")
    _create(plan, podman, run)
    sys.stdout.flush()
    try:
        start = os.fstat(sys.stdout.fileno()).st_size
    except OSError:
        start = 0
    _put(state, f"running {start}")
    os.execv(run[0], [run[0], "start", "--attach", podman["name"]])


def _step(argv: list, stdin: str | None = None) -> int:
    """Run one engine command; its errors go to the log (the worker's reason reads them),
    what it prints on success (an id) does not."""
    done = subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          stdin=None if stdin is not None else subprocess.DEVNULL, text=True,
                          errors="replace", check=False)
    if done.returncode != 0:
        sys.stdout.write(done.stderr)
        sys.stdout.flush()
    return done.returncode


def _create(plan: dict, podman: dict, run: list) -> None:
    """Make the container (podman): its network, its secrets, ``create``, ``init`` (its
    namespaces exist, its command has not started), the door to the server in its network.
    A failure removes what was made and exits with the engine's code and its error."""
    binary, name = run[0], podman["name"]
    network = podman.get("network")
    if network and _step(network) != 0:
        # Already there (a worker id started again, a leftover): used as it is.
        if _step([binary, "network", "exists", network[-1]]) != 0:
            sys.exit(125)
    secrets = [s for s, _ in podman.get("secrets", ())]
    code = 0
    try:
        for secret, value in podman.get("secrets", ()):
            code = code or _step([*podman["secret_create"], secret, "-"], stdin=value)
        code = code or _step(run) or _step([binary, "init", name])
    finally:
        # The values are in the container's own config once it is initialised.
        if secrets:
            _step([binary, "secret", "rm", *secrets])
    if code == 0 and podman.get("forward"):
        code = _forward(binary, name, podman["forward"])
    if code != 0:
        _step([binary, "rm", "--force", name])
        sys.exit(code)


def _forward(binary: str, name: str, forward: dict) -> int:
    """Start ``forward.py`` on the container's network and wait until it listens."""
    pid = subprocess.run([binary, "inspect", "--format", "{{.State.Pid}}", name],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         check=False).stdout.strip()
    if not pid.isdigit() or pid == "0":
        print(f"Error: runplane: container {name} has no process to open the server's port in",
              flush=True)
        return 125
    read, write = os.pipe()
    subprocess.Popen(
        [sys.executable, "-I", "-S", forward["script"], f"/proc/{pid}/ns/net", pid,
         str(os.getpid()), forward["host"], str(forward["inside"]), forward["host"],
         str(forward["port"]), str(write)],
        stdin=subprocess.DEVNULL, pass_fds=(write,))
    os.close(write)
    with os.fdopen(read, "rb") as r:
        said = r.read(4096).decode(errors="replace")
    if said != "ready":
        print(f"Error: runplane: the server's port in container {name}: "
              f"{said or 'the forwarder exited'}", flush=True)
        return 125
    return 0


def _with_accelerator(run: list, plan: dict) -> list:
    """``run`` with runplane's SDK accelerator mounted and first on PYTHONPATH, before the
    template's PYTHONPATH or, without one, the image's own (read from the image). The value
    goes into the env file (a podman secret when it has a newline), never on a command line."""
    acc = plan["accelerator"]
    base = acc.get("pythonpath")
    if base is None:
        probe = subprocess.run(
            [run[0], "image", "inspect", "--format", "{{json .Config.Env}}", "--",
             plan["image"]],
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
    extra = ["--volume", acc["mount"]]
    if ("\n" in path or "\r" in path) and plan.get("podman") is None:
        print("Error: runplane: the image's PYTHONPATH has a newline, which docker cannot pass",
              flush=True)
        sys.exit(125)
    if "\n" in path or "\r" in path:
        secret = f"{plan['podman']['name']}-pythonpath"
        plan["podman"].setdefault("secrets", []).append([secret, path])
        extra += ["--secret", f"{secret},type=env,target=PYTHONPATH"]
    else:
        with open(plan["env_file"], "a") as f:  # a later line wins over the template's
            f.write(f"PYTHONPATH={path}\n")
    return [*run[:at], *extra, *run[at:]]


if __name__ == "__main__":
    main()
