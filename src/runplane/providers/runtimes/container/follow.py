"""The follower of one container a previous server run started: its output to the worker's
log again, and its exit code as this process's own.

When the server dies, the launcher's engine client (``podman run --rm``, attached) dies with it
(the parent-death signal) but the container runs on under the engine. A restarted server that
takes the container over (``ContainerRuntime.adopt``) starts this in the launcher's place, with
the same parent-death signal and its stdout/stderr appended to the worker's log:

    python -I -S follow.py <engine> <name> <log> <start> [<setpriv>]

It ends when the container does, and relays its output:

- ``<engine> wait <name>`` prints the exit code once the container ends. Started first, while
  the container still exists: a ``--rm`` container is removed right after it ends, and a wait
  asked after that finds no such container (podman 4.3, checked).
- The output is read from the engine's log file of the container (``k8s-file`` with podman,
  ``json-file`` with docker: their defaults), opened at once, so it can still be read to its
  end after the container is removed, and polled until ``wait`` returns. The lines the
  worker's log already holds are skipped and the rest appended, so what the container printed
  while no server listened is in the log too, and nothing twice. How many to skip is counted
  in the worker's log from ``<start>`` (where the container's output began, recorded by the
  launcher; empty: after the last ``--- runplane: starting`` line), leaving out runplane's
  own ``--- runplane:`` lines. Why not the engine's clients: ``logs --follow`` of podman 4.3
  often loses the last lines of a ``--rm`` container (the ones a crash's traceback is in);
  ``attach`` misses what was printed before it attached and exits 0 whatever the container's
  code; ``--since`` the worker log's last write repeats lines (the engine stamps a line after
  relaying it, ~3 ms later). With another log driver (journald) ``logs --follow`` is the
  fallback, its last lines at risk.

The engine clients run with the parent-death signal (``setpriv``, when given), so a server
that dies again leaves none behind. The exit code is the one ``wait`` printed; when the engine
could not say (the container ended before ``wait`` asked), it is 137, as a killed container's,
and the log says why. Standard library only: it never imports the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import BinaryIO

# The exit code reported when the engine cannot tell the container's (as a SIGKILLed one's).
UNKNOWN_EXIT = 137
# How long the fallback's ``logs --follow`` may still run after the container ended.
LOGS_DRAIN_S = 10.0
# How often the engine's log file is read while the container runs.
POLL_S = 0.05
OURS = b"--- runplane: "


def exit_code_of(wait_output: str) -> int | None:
    """The container's exit code from ``<engine> wait``'s output (its last line), or None."""
    lines = [ln.strip() for ln in wait_output.splitlines() if ln.strip()]
    if not lines:
        return None
    try:
        return int(lines[-1])
    except ValueError:
        return None


def relayed_lines(log: BinaryIO, start: int | None) -> int:
    """How many of the container's output lines ``log`` holds: the lines from ``start`` (or,
    None, after the last ``--- runplane: starting`` line), runplane's own left out."""
    if start is not None:
        log.seek(start)
    count = 0
    for line in log:
        if start is None and line.startswith(OURS + b"starting "):
            count = 0
        elif not line.startswith(OURS) and line.endswith(b"\n"):
            count += 1
    return count


def entry_text(driver: str, entry: bytes) -> bytes:
    """What one line of the engine's log file says the container wrote: ``k8s-file``
    (``<time> <stream> <F|P> <text>``; F ends a line, P is part of one) or ``json-file``
    (``{"log": "<text, newline included>", ...}``)."""
    if driver == "json-file":
        try:
            return str(json.loads(entry).get("log", "")).encode()
        except (ValueError, AttributeError):
            return b""
    parts = entry.split(b" ", 3)
    if len(parts) < 3:
        return b""
    text = parts[3] if len(parts) > 3 else b""
    return text if parts[2].startswith(b"P") else text + b"\n"


class Relay:
    """Writes the container's output to ``out``, its first ``skip`` lines left out."""

    def __init__(self, skip: int, out: BinaryIO) -> None:
        self.skip = skip
        self.out = out

    def write(self, data: bytes) -> None:
        while self.skip > 0 and data:
            end = data.find(b"\n")
            if end < 0:
                return
            data = data[end + 1:]
            self.skip -= 1
        if data:
            self.out.write(data)
            self.out.flush()  # the worker's log is read live


def log_file(engine: str, name: str, pdeath: list[str]) -> tuple[str, str] | None:
    """(driver, path) of the container's engine log file when it is one this reads."""
    path_field = "{{.LogPath}}" if "docker" in os.path.basename(engine) \
        else "{{.HostConfig.LogConfig.Path}}"
    done = subprocess.run([*pdeath, engine, "inspect", "--format",
                           "{{.HostConfig.LogConfig.Type}}|" + path_field, name],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    driver, _, path = done.stdout.strip().partition("|")
    if done.returncode != 0 or driver not in ("k8s-file", "json-file") or not path:
        return None
    return driver, path


def follow_file(source: BinaryIO, driver: str, relay: Relay, ended: threading.Event) -> None:
    """Relay the engine's log file as it grows, until ``ended`` and then to its end."""
    pending = b""
    quiet_after_end = 0  # reads that found nothing once the container ended
    while quiet_after_end < 2:  # twice: a last write may trail the exit by a moment
        ended_before = ended.is_set()
        chunk = source.read()
        if chunk:
            pending += chunk
            *entries, pending = pending.split(b"\n")
            for entry in entries:
                relay.write(entry_text(driver, entry))
            continue
        if ended_before:
            quiet_after_end += 1
        time.sleep(POLL_S) if ended_before else ended.wait(POLL_S)


def follow_logs(engine: str, name: str, pdeath: list[str], relay: Relay,
                ended: threading.Event) -> None:
    """The fallback: ``<engine> logs --follow`` (both streams through one pipe, in order)."""
    logs = subprocess.Popen([*pdeath, engine, "logs", "--follow", name],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = logs.stdout
    assert out is not None

    def read() -> None:
        for line in out:
            relay.write(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    ended.wait()
    reader.join(LOGS_DRAIN_S)
    if reader.is_alive():
        logs.kill()
        reader.join(LOGS_DRAIN_S)
    logs.wait()


def main() -> None:
    engine, name, log_path, start = sys.argv[1:5]
    setpriv = sys.argv[5] if len(sys.argv) > 5 else ""
    pdeath = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
    with open(log_path, "rb") as log:
        relay = Relay(relayed_lines(log, int(start) if start.isdigit() else None),
                      sys.stdout.buffer)
    wait = subprocess.Popen([*pdeath, engine, "wait", name], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace")
    source = None
    found = log_file(engine, name, pdeath)
    if found is not None:
        try:  # held open: readable to its end after the engine removed it
            source = open(found[1], "rb")  # noqa: SIM115 - read by the thread below
        except OSError:
            source = None
    ended = threading.Event()
    if source is not None and found is not None:
        reading = threading.Thread(target=follow_file, args=(source, found[0], relay, ended),
                                   daemon=True)
    else:
        reading = threading.Thread(target=follow_logs, args=(engine, name, pdeath, relay, ended),
                                   daemon=True)
    reading.start()
    out, err = wait.communicate()
    code = exit_code_of(out) if wait.returncode == 0 else None
    ended.set()
    reading.join()
    sys.stdout.flush()
    if code is None:
        why = (err.strip().splitlines() or [f"{engine} wait exited with {wait.returncode}"])[-1]
        print(f"--- runplane: container {name} ended; its exit code is unknown ({why})",
              flush=True)
        sys.exit(UNKNOWN_EXIT)
    sys.exit(code)


if __name__ == "__main__":
    main()
