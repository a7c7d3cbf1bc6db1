"""The container runtime with real podman and the test image (scripts/setup_podman.sh)."""

from __future__ import annotations

import asyncio
import contextlib
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
    HttpPorts,
    ImageError,
    WorkerSpec,
)
from runplane.providers.local import LocalProvider
from runplane.providers.runtimes.container.engine import (
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
        p.forget(info.id)  # what it made goes with it (a private network)


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
    # A parked worker is not taken over (controller.restart): its container is a leftover.
    assert again.containers.cleanup_orphans() == ["runplane-orphan1"]
    assert podman_state("runplane-orphan1") == "gone"
    assert podman_state("runplane-other1") == "running"  # another server's
    assert again.get(kept.id).state == RUNNING  # type: ignore[union-attr]
    await asyncio.gather(again.stop("new1", 0), other.stop("other1", 0))


def _followers(name: str) -> list[int]:
    """Live processes following container ``name`` (the follower and its engine clients)."""
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = p.info["cmdline"] or []
        if name in cmd and any(a.endswith("/follow.py") or a in ("wait", "logs") for a in cmd):
            with contextlib.suppress(psutil.Error):
                if p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p.pid)
    return found


def _engine_log(name: str) -> str:
    return subprocess.run(["podman", "logs", name], capture_output=True, text=True,
                          check=False).stdout


def _remove(names: list[str]) -> None:
    subprocess.run(["podman", "rm", "--force", *names], capture_output=True, check=False)


@needs_podman
async def test_a_restarted_server_takes_over_its_running_containers(tmp_path: Path) -> None:
    """Issue 14: a container outlives its server (only the engine client dies with it); the
    next run adopts it: its output, later and meanwhile, reaches the log once, it parks and
    resumes, the orphan sweep spares it, and it ends with its own exit code (its last line
    logged) or by ``stop``; nothing of it is left once forgotten."""
    config = ContainerSettings(engine="podman")
    vol = tmp_path / "vol"
    vol.mkdir()
    env = {"RUNPLANE_VOLUME_PATH": str(vol), "RUNPLANE_VOLUME_MOUNT_PATH": "/runpod-volume"}
    first = LocalProvider(MachineSettings(), tmp_path / "a", container=config)
    script = ('echo ready; said=0; while [ ! -e /runpod-volume/end ]; do '
              'if [ -e /runpod-volume/say ] && [ $said = 0 ]; then echo "said meanwhile"; said=1; '
              'fi; if [ -e /runpod-volume/again ] && [ $said = 1 ]; then echo "said again"; '
              'said=2; fi; sleep 0.05; done; echo "after the restart"; exit 5')
    polite = "trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 0.1; done"
    kept_id, stopped_id = (f"{what}-{tmp_path.name[-12:]}".lower() for what in ("kept", "stopped"))
    names = [f"runplane-{kept_id}", f"runplane-{stopped_id}"]
    try:
        recorded = {
            kept_id: first.start(spec(first, kept_id, script, env, http=HttpPorts(80, 80))),
            stopped_id: first.start(spec(first, stopped_id, polite)),
        }
        await until(lambda: all("ready" in first.logs(w) for w in recorded), "both to start")
        for info in recorded.values():  # the server died: its engine clients with it
            os.killpg(info.pid, signal.SIGKILL)  # type: ignore[arg-type]
        await until(lambda: all(first.get(w).state == EXITED for w in recorded),  # type: ignore[union-attr]
                    "the clients to die")
        assert [podman_state(n) for n in names] == ["running", "running"]
        (vol / "say").touch()  # printed while no client relays its output
        await until(lambda: "said meanwhile" in _engine_log(names[0]), "the container to print")

        again = LocalProvider(MachineSettings(), tmp_path / "a", container=config)
        kept = again.adopt(kept_id, recorded[kept_id].data, again.log_path(kept_id))
        assert kept is not None and kept.state == RUNNING, kept
        for key in ("container", "image", "http", "portMappings", "gpus"):
            assert kept.data[key] == recorded[kept_id].data[key], key
        assert kept.data["http"]["port"] and kept.data["portMappings"]  # type: ignore[index]
        stopped = again.adopt(stopped_id, recorded[stopped_id].data, again.log_path(stopped_id))
        assert stopped is not None and stopped.state == RUNNING
        # Gone (or another server's: the same listing, by owner label): not taken over.
        assert again.adopt("ghost", {**recorded[stopped_id].data, "container": "runplane-ghost"},
                           again.log_path("ghost")) is None
        again.remove_leftovers()  # the orphan sweep spares what was taken over
        assert again.containers.cleanup_orphans() == []
        await until(lambda: "said meanwhile" in again.logs(kept_id), "the output made meanwhile")
        assert again.logs(kept_id).count("ready") == 1  # what the dead client relayed, once

        # The server dies again (its followers with it) and a third run takes over.
        for info in (kept, stopped):
            os.killpg(info.pid, signal.SIGKILL)  # type: ignore[arg-type]
        await until(lambda: all(i.state == EXITED for i in again.list()), "the followers to die")
        (vol / "again").touch()
        await until(lambda: "said again" in _engine_log(names[0]), "the container to print")
        again = LocalProvider(MachineSettings(), tmp_path / "a", container=config)
        assert again.adopt(kept_id, recorded[kept_id].data, again.log_path(kept_id)) is not None
        assert again.adopt(stopped_id, recorded[stopped_id].data,
                           again.log_path(stopped_id)) is not None
        await until(lambda: "said again" in again.logs(kept_id), "the output made meanwhile")
        output = [ln for ln in again.logs(kept_id).splitlines() if not ln.startswith("---")]
        assert output == ["ready", "said meanwhile", "said again"], output

        again.park(kept_id)
        assert again.get(kept_id).state == PARKED and frozen(names[0])  # type: ignore[union-attr]
        again.resume(kept_id)
        assert again.get(kept_id).state == RUNNING and not frozen(names[0])  # type: ignore[union-attr]
        assert {i.id for i in again.list()} == {kept_id, stopped_id}

        (vol / "end").touch()
        await until(lambda: again.get(kept_id).state == EXITED, "its own exit")  # type: ignore[union-attr]
        done = again.get(kept_id)
        assert done is not None and done.exit_code == 5 and done.reason is None, done
        assert again.logs(kept_id).endswith("said again\nafter the restart\n")
        info = await again.stop(stopped_id, 30)
        assert info is not None and info.state == EXITED and info.exit_code == 0, info
        assert again.logs(stopped_id).endswith("again\ngot TERM\n")
        for wid, name in zip((kept_id, stopped_id), names, strict=True):
            again.forget(wid)
            assert again.get(wid) is None and podman_state(name) == "gone"
            assert _followers(name) == []
        assert not list((tmp_path / "a" / "containers").glob("*.env"))  # the old run's secrets
    finally:
        _remove(names)
