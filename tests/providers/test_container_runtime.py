"""The container runtime with real podman and the test image (scripts/setup_podman.sh)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runplane.config import ContainerSettings, MachineSettings
from runplane.providers.base import (
    EXITED,
    PARKED,
    RUNNING,
    ContainerOptions,
    ImageError,
    WorkerSpec,
)
from runplane.providers.local import LocalProvider
from runplane.providers.runtimes.container_engine import (
    EngineUnavailable,
    probe_engine,
)
from tests.container_kit import frozen, podman_state

IMAGE = "localhost/runplane-test/worker:latest"


def _ready() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed: run scripts/setup_podman.sh as root"
    ok = subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True,
                        check=False, timeout=60).returncode == 0
    return None if ok else f"{IMAGE} is not built: run scripts/setup_podman.sh as root"


needs_podman = pytest.mark.skipif(bool(_ready()), reason=_ready() or "")


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[LocalProvider]:
    p = LocalProvider(MachineSettings(), tmp_path, container=ContainerSettings(engine="podman"))
    yield p
    for info in p.list():
        if info.state != EXITED:
            asyncio.run(p.stop(info.id, 0))


def spec(p: LocalProvider, wid: str, script: str, env: dict[str, str] | None = None,
         **kw: object) -> WorkerSpec:
    return WorkerSpec(wid, IMAGE, [], env or {}, p.log_path(wid),
                      container=ContainerOptions(cmd=("sh", "-c", script)), **kw)  # type: ignore[arg-type]


async def until(probe, what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not probe():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_engine_none_refuses_images_with_a_reason(tmp_path: Path) -> None:
    p = LocalProvider(MachineSettings(), tmp_path, container=ContainerSettings(engine="none"))
    with pytest.raises(ImageError, match='engine = "none"'):
        p.check_image("runpod/worker:1")
    assert p.needs_command(f"local:{tmp_path}") and not p.needs_command("runpod/worker:1")


def test_a_docker_client_without_its_daemon_is_not_an_engine() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True, check=False,
                                        timeout=60).returncode == 0:
        pytest.skip("needs a docker client whose daemon does not answer")
    with pytest.raises(EngineUnavailable, match="docker is installed but cannot run containers"):
        probe_engine(ContainerSettings(engine="docker"))


@needs_podman
async def test_env_volume_and_exit_code(provider: LocalProvider, tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "seed").write_text("x")
    env = {"GREETING": "hi there", "RUNPOD_AI_API_KEY": "worker-secret-123",
           "RUNPLANE_VOLUME_PATH": str(vol), "RUNPLANE_VOLUME_MOUNT_PATH": "/runpod-volume"}
    script = ('echo "g=$GREETING"; env | grep -c ^RUNPLANE_ || true; ls /runpod-volume; '
              'touch /runpod-volume/made; sleep 1; exit 3')
    info = provider.start(spec(provider, "c1", script, env))
    assert info.state == RUNNING and info.data["runtime"] == "container"
    # The worker's key is in no command line (it travels in a 0600 env file).
    assert b"worker-secret-123" not in Path(f"/proc/{info.pid}/cmdline").read_bytes()
    await until(lambda: provider.get("c1").state == EXITED, "the exit")  # type: ignore[union-attr]
    done = provider.get("c1")
    assert done is not None and done.exit_code == 3 and done.reason is None
    log = provider.logs("c1")
    assert "g=hi there\n0\nseed\n" in log, log
    assert (vol / "made").exists()
    provider.forget("c1")
    assert not list((tmp_path / "containers").glob("c1.*"))


@needs_podman
async def test_missing_command_is_a_reason(provider: LocalProvider) -> None:
    provider.start(WorkerSpec("c2", IMAGE, [], {}, provider.log_path("c2"),
                              container=ContainerOptions(cmd=("no-such-binary",))))
    await until(lambda: provider.get("c2").state == EXITED, "the exit")  # type: ignore[union-attr]
    info = provider.get("c2")
    assert info is not None and info.exit_code
    assert info.reason and "could not" in info.reason and "no-such-binary" in info.reason + \
        provider.logs("c2"), info.reason


@needs_podman
async def test_stop_is_graceful_then_a_kill(provider: LocalProvider) -> None:
    provider.start(spec(provider, "polite", "trap 'echo got TERM; exit 0' TERM; "
                                            "echo ready; while true; do sleep 0.1; done"))
    provider.start(spec(provider, "stubborn", "trap '' TERM; echo ready; "
                                              "while true; do sleep 0.1; done"))
    for wid in ("polite", "stubborn"):
        await until(lambda w=wid: "ready" in provider.logs(w), f"{wid} to start")
    polite, stubborn = await asyncio.gather(provider.stop("polite", 30), provider.stop("stubborn", 1))
    assert polite is not None and polite.exit_code == 0 and "got TERM" in provider.logs("polite")
    assert stubborn is not None and stubborn.exit_code == 137  # SIGKILL after the grace period
    assert podman_state("runplane-polite") == "gone" and podman_state("runplane-stubborn") == "gone"


@needs_podman
async def test_park_and_resume_pause_the_container(provider: LocalProvider) -> None:
    provider.start(spec(provider, "p1", "echo ready; while true; do echo tick; sleep 0.1; done"))
    await until(lambda: "ready" in provider.logs("p1"), "the start")
    provider.park("p1")
    assert provider.get("p1").state == PARKED  # type: ignore[union-attr]
    assert frozen("runplane-p1")
    logged = provider.logs("p1").count("\n")
    await asyncio.sleep(0.5)
    assert provider.logs("p1").count("\n") == logged  # frozen: it prints nothing more
    provider.resume("p1")
    assert provider.get("p1").state == RUNNING  # type: ignore[union-attr]
    assert not frozen("runplane-p1") and podman_state("runplane-p1") == "running"
    provider.park("p1")  # a parked worker still stops
    info = await provider.stop("p1", 1)
    assert info is not None and info.state == EXITED and podman_state("runplane-p1") == "gone"


@needs_podman
async def test_a_restarted_server_removes_only_its_own_orphans(tmp_path: Path) -> None:
    config = ContainerSettings(engine="podman")
    first = LocalProvider(MachineSettings(), tmp_path / "a", container=config)
    other = LocalProvider(MachineSettings(), tmp_path / "b", container=config)
    loop_script = "echo ready; while true; do sleep 0.1; done"
    a = first.start(spec(first, "orphan1", loop_script))
    other.start(spec(other, "other1", loop_script))
    await until(lambda: "ready" in first.logs("orphan1") and "ready" in other.logs("other1"),
                "both to start")
    first.park("orphan1")  # frozen when the server dies: a cgroup-v1 freeze survives a kill
    os.killpg(a.pid, signal.SIGKILL)  # the server died: its engine client goes, not the container
    await until(lambda: first.get("orphan1").state == EXITED, "the client to die")  # type: ignore[union-attr]
    assert podman_state("runplane-orphan1") == "running" and frozen("runplane-orphan1")

    again = LocalProvider(MachineSettings(), tmp_path / "a", container=config)
    kept = again.start(spec(again, "new1", loop_script))
    assert again.containers.cleanup_orphans() == ["runplane-orphan1"] or \
        podman_state("runplane-orphan1") == "gone"  # the start-up thread may have been first
    await until(lambda: podman_state("runplane-orphan1") == "gone", "the orphan to be removed")
    assert podman_state("runplane-other1") == "running"  # another server's
    assert again.get(kept.id).state == RUNNING  # type: ignore[union-attr]
    await asyncio.gather(again.stop("new1", 0), other.stop("other1", 0))
