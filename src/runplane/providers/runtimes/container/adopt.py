"""Taking over a container a previous server run started (``ContainerRuntime.adopt``).

The container outlived its engine client (killed with the server by the parent-death
signal): the engine still runs it. Which of this server's containers still run is one
``ps`` for the whole start-up (``running_containers``); each one taken over gets a follower
(``follow.py``) in its dead client's place: the container's output to the worker's
log again, from where the old client stopped, and its exit code. A container on a network
of its own gets its door to the server back (``reopen_door``: the forwarder died with the old
run), and what runs of this server left behind besides containers, networks and secrets,
goes once the take-over is done (``remove_leftovers``).

podman and docker take the same commands here (``ps --all --filter label=... --format``,
``wait``, ``logs --follow``); only podman is tested (docs/containers.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runplane.providers.runtimes.container.engine import run_cli
from runplane.providers.runtimes.container.network import Door
from runplane.providers.runtimes.process import _setpriv

FOLLOWER = Path(__file__).with_name("follow.py")
FORWARDER = Path(__file__).with_name("forward.py")


def parse_ps(output: str) -> dict[str, str]:
    """``{name: state}`` from ``ps --format '{{.Names}}\\t{{.State}}'``, the state lower-cased:
    docker prints a word (``running``, ``paused``), podman 4.3 its status (``up 3 minutes
    ago``, ``paused``, ``exited (0) ...``)."""
    out = {}
    for line in output.splitlines():
        name, _, state = line.strip().partition("\t")
        if name:
            out[name] = state.strip().lower()
    return out


def running_containers(binary: str, owner: str) -> set[str]:
    """Names of the containers labelled with this server's ``owner`` that run (not paused:
    the engine's pause is only used for parked workers, which are not taken over)."""
    done = run_cli([binary, "ps", "--all", "--filter", f"label=runplane.owner={owner}",
                    "--format", "{{.Names}}\t{{.State}}"], timeout=60)
    if done.returncode != 0:
        return set()
    return {name for name, state in parse_ps(done.stdout).items()
            if state == "running" or state.startswith("up")}


def output_start(state_file: Path) -> int | None:
    """Where the container's own output starts in the worker's log, as the launcher recorded
    it in its state file (``running <offset>``); None when it did not (an older launcher)."""
    try:
        words = state_file.read_text().split()
    except OSError:
        return None
    return int(words[1]) if len(words) > 1 and words[0] == "running" and words[1].isdigit() \
        else None


def follow(binary: str, name: str, log_path: Path, start: int | None,
           env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start the follower of container ``name``, appending to ``log_path`` what it prints that
    the log does not hold yet (``follow.py``); like the launcher it dies with the server
    (parent-death signal) and leads its own process group."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    setpriv = _setpriv()
    argv = [sys.executable, "-I", "-S", str(FOLLOWER), binary, name, str(log_path),
            "" if start is None else str(start), setpriv or ""]
    if setpriv:
        argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
    with open(log_path, "a+b") as log:
        # On a line of its own: a line the dead client relayed in part ends here.
        log.seek(0, os.SEEK_END)
        broken = False
        if log.tell():
            log.seek(-1, os.SEEK_END)
            broken = log.read(1) != b"\n"
        log.write((b"\n" if broken else b"") + f"--- runplane: server restarted: following "
                  f"container {name} again\n".encode())
        log.flush()
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env)


def reopen_door(binary: str, name: str, door: Door, log_path: Path,
                env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """Open container ``name``'s door to the server again (``forward.py``, as the launcher
    did; it dies with this server); None when the container has no process."""
    pid = run_cli([binary, "inspect", "--format", "{{.State.Pid}}", name]).stdout.strip()
    if not pid.isdigit() or pid == "0":
        return None
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", str(FORWARDER), f"/proc/{pid}/ns/net", pid,
             str(os.getpid()), door.host, str(door.inside), door.host, str(door.port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env)


def remove_leftovers(binary: str, owner: str, run_id: str, in_use: set[str]) -> None:
    """Remove the networks and secrets this server's previous runs left (podman): networks
    of its containers that are gone, secrets a launcher killed half-way did not remove."""
    nets = run_cli([binary, "network", "ls", "--filter", f"label=runplane.owner={owner}",
                    "--format", "{{.Name}}\t{{.Labels}}"], timeout=60)
    # Not this run's: a worker starting now has made its network before its container.
    stale = [name for name, _, labels in (ln.partition("\t") for ln in nets.stdout.splitlines())
             if name and name not in in_use and f"runplane.run={run_id}" not in labels]
    if nets.returncode == 0 and stale:
        run_cli([binary, "network", "rm", *stale], timeout=120)
    # podman 4.3 lists secrets by name only: their labels are read with inspect.
    names = run_cli([binary, "secret", "ls", "--filter", "name=runplane-", "--format",
                     "{{.Name}}"], timeout=60).stdout.split()
    if not names:
        return
    labels = run_cli([binary, "secret", "inspect", "--format",
                      "{{.Spec.Name}}\t{{.Spec.Labels}}", *names], timeout=60)
    mine = [line.split("\t")[0] for line in labels.stdout.splitlines()
            if f"runplane.owner:{owner}" in line and f"runplane.run:{run_id}" not in line]
    if mine:
        run_cli([binary, "secret", "rm", *mine], timeout=60)
