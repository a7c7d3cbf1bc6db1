"""A real ``runplane serve`` process for end-to-end tests.

The store is prepared before the server starts (users and keys written to the same SQLite
file), so tests know the keys without scraping the server's output.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from runplane.services.users import UserService
from runplane.store.db import make_engine, upgrade


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    """A server process; ``restart()`` and ``kill()`` keep the same data dir and port."""

    data_dir: Path
    port: int
    admin_key: str
    user_key: str
    other_key: str
    env: dict[str, str]
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    # Run the server through this (e.g. ``["prlimit", "--nofile=256:256", "--"]``).
    launcher: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.data_dir / "server.log", "ab")
        self.proc = subprocess.Popen(
            [*self.launcher, sys.executable, "-m", "runplane", "serve", "--port", str(self.port),
             "--data-dir", str(self.data_dir), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.data_dir / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the server's whole process group (the server and anything it started)."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Graceful stop: SIGTERM, then SIGKILL if it lingers; then the workers it left
        running (they outlive a server on purpose: its next run takes them over)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.kill()
        kill_workers_of(self.port)
        remove_networks_of(self.data_dir)

    def worker_processes(self) -> list[int]:
        """Pids of every process started as a worker of this server (by its environment)."""
        return worker_processes_of(self.port)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, key: str | None = None) -> httpx.Client:
        key = key or self.user_key
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def log(self) -> str:
        return (self.data_dir / "server.log").read_text(errors="replace")


def worker_processes_of(port: int) -> list[int]:
    """Pids of the live processes whose environment names this server as their worker API
    (the SDK's heartbeat process inherits it too): what a test leaves behind."""
    import psutil

    marker = f"127.0.0.1:{port}/"
    found = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and marker in p.environ().get(
                    "RUNPOD_WEBHOOK_PING", ""):
                found.append(p.pid)
        except psutil.Error:
            continue
    return found


def remove_networks_of(data_dir: Path) -> None:
    """Remove the podman networks of the server's containers (each worker has its own, which
    the server removes when it stops one, not when it leaves it running on purpose)."""
    if not (data_dir / "containers").is_dir() or shutil.which("podman") is None:
        return
    owner = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    names = subprocess.run(["podman", "network", "ls", "--filter", f"label=runplane.owner={owner}",
                            "--format", "{{.Name}}"], capture_output=True, text=True,
                           timeout=60, check=False).stdout.split()
    if names:
        subprocess.run(["podman", "network", "rm", "--force", *names], capture_output=True,
                       timeout=120, check=False)


def kill_workers_of(port: int) -> None:
    """SIGKILL every worker process of the server on ``port`` (test teardown)."""
    for pid in worker_processes_of(port):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def prepare_store(data_dir: Path) -> tuple[str, str, str]:
    engine = make_engine(f"sqlite:///{data_dir / 'runplane.db'}")
    upgrade(engine)
    users = UserService(engine)
    admin = users.bootstrap_admin()
    assert admin is not None
    alice = users.create_key(users.create_user("alice"))
    bob = users.create_key(users.create_user("bob"))
    engine.dispose()
    return admin.secret, alice.secret, bob.secret


def make_live_server(tmp_path: Path, extra_args: list[str] | None = None, **env: str) -> LiveServer:
    data_dir = tmp_path / "server-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    admin, alice, bob = prepare_store(data_dir)
    proc_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    port = free_port()
    return LiveServer(data_dir, port, admin, alice, bob, proc_env, extra_args or [])


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    srv = make_live_server(tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
