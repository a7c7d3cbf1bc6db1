"""The local provider and process runtime, with real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from runplane.config import MachineSettings
from runplane.providers.base import EXITED, PARKED, RUNNING, ImageError, WorkerSpec
from runplane.providers.local import LocalProvider
from runplane.providers.runtimes.process import resolve_image


@pytest.fixture
def provider(tmp_path: Path) -> LocalProvider:
    return LocalProvider(MachineSettings(), tmp_path)


def spec(provider: LocalProvider, tmp_path: Path, wid: str, code: str, **kw: object) -> WorkerSpec:
    return WorkerSpec(
        id=wid, image=f"local:{tmp_path}", command=[sys.executable, "-u", "-c", code],
        env={"GREETING": "hi", **kw.pop("env", {})}, log_path=provider.log_path(wid), **kw,  # type: ignore[arg-type]
    )


async def wait_exit(provider: LocalProvider, wid: str) -> None:
    while provider.get(wid).state != EXITED:  # type: ignore[union-attr]
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("image", ["runpod/worker:1", "local:relative/dir", "local:/no/such/dir"])
def test_unrunnable_images_are_refused_with_a_reason(image: str) -> None:
    with pytest.raises(ImageError) as err:
        resolve_image(image)
    assert image in str(err.value)


def test_file_url_and_local_prefix(tmp_path: Path) -> None:
    assert resolve_image(f"file://{tmp_path}") == tmp_path
    assert resolve_image(f"local:{tmp_path}") == tmp_path


async def test_env_cwd_gpus_and_log(provider: LocalProvider, tmp_path: Path) -> None:
    code = ("import os; print(os.getcwd(), os.environ['GREETING'], "
            "repr(os.environ['CUDA_VISIBLE_DEVICES']), 'RUNPLANE_SECRET' in os.environ)")
    os.environ["RUNPLANE_SECRET"] = "x"
    try:
        provider.start(spec(provider, tmp_path, "w1", code, gpu_indices=(1, 3)))
    finally:
        del os.environ["RUNPLANE_SECRET"]
    await wait_exit(provider, "w1")
    info = provider.get("w1")
    assert info is not None and info.exit_code == 0
    assert f"{tmp_path} hi '1,3' False" in provider.logs("w1")


async def test_exit_code_is_reported(provider: LocalProvider, tmp_path: Path) -> None:
    provider.start(spec(provider, tmp_path, "w2", "import sys; print('boom'); sys.exit(3)"))
    await wait_exit(provider, "w2")
    assert provider.get("w2").exit_code == 3  # type: ignore[union-attr]
    assert "boom" in provider.logs("w2")
    provider.forget("w2")
    assert provider.get("w2") is None


async def test_stop_is_sigterm_then_sigkill(provider: LocalProvider, tmp_path: Path) -> None:
    polite = ("import signal, sys, time\n"
              "signal.signal(signal.SIGTERM, lambda *a: (print('bye', flush=True), sys.exit(0)))\n"
              "print('UP'.lower() + '!', flush=True)\ntime.sleep(60)")
    stubborn = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "print('UP'.lower() + '!', flush=True)\ntime.sleep(60)")
    provider.start(spec(provider, tmp_path, "polite", polite))
    provider.start(spec(provider, tmp_path, "stubborn", stubborn))
    for wid in ("polite", "stubborn"):
        while "up!" not in provider.logs(wid):
            await asyncio.sleep(0.02)
    info = await provider.stop("polite", grace_s=10)
    assert info is not None and info.exit_code == 0 and "bye" in provider.logs("polite")
    info = await provider.stop("stubborn", grace_s=0.3)
    assert info is not None and info.exit_code == -9


async def test_stop_reaches_the_whole_process_group(provider: LocalProvider, tmp_path: Path) -> None:
    code = ("import subprocess, sys, time\n"
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "print('CHILD'.lower(), c.pid, flush=True)\ntime.sleep(60)")
    provider.start(spec(provider, tmp_path, "tree", code))
    while "child " not in provider.logs("tree"):
        await asyncio.sleep(0.02)
    child = int(provider.logs("tree").split("child ")[-1].split()[0])
    await provider.stop("tree", grace_s=2)
    await asyncio.sleep(0.1)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


async def status_becomes(pid: int, *wanted: str) -> bool:
    for _ in range(250):
        if psutil.Process(pid).status() in wanted:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_park_and_resume(provider: LocalProvider, tmp_path: Path) -> None:
    info = provider.start(spec(provider, tmp_path, "p", "import time\nprint('ON'.lower())\nwhile True: time.sleep(0.01)"))
    while "on\n" not in provider.logs("p"):
        await asyncio.sleep(0.02)
    provider.park("p")
    assert provider.get("p").state == PARKED  # type: ignore[union-attr]
    assert await status_becomes(info.pid, psutil.STATUS_STOPPED)  # signals land asynchronously
    provider.resume("p")
    assert provider.get("p").state == RUNNING  # type: ignore[union-attr]
    assert await status_becomes(info.pid, psutil.STATUS_RUNNING, psutil.STATUS_SLEEPING)
    provider.park("p")  # a parked worker still stops
    assert (await provider.stop("p", grace_s=5)).state == EXITED  # type: ignore[union-attr]


async def test_resuming_a_parked_worker_that_died_says_so(provider: LocalProvider,
                                                         tmp_path: Path) -> None:
    """FlashBoot: the controller resumes another parked worker instead of waiting on a dead one."""
    info = provider.start(spec(provider, tmp_path, "d", "import time\nwhile True: time.sleep(1)"))
    assert not provider.park_blocks("d")  # a signal: done in the event loop, no thread
    provider.park("d")
    assert await status_becomes(info.pid, psutil.STATUS_STOPPED)
    os.killpg(info.pid, signal.SIGKILL)
    while provider.get("d").state != EXITED:  # type: ignore[union-attr]
        await asyncio.sleep(0.02)
    with pytest.raises(ProcessLookupError, match="exited while parked"):
        provider.resume("d")


@pytest.mark.parametrize("parked", [False, True])
def test_workers_die_with_the_process_that_started_them(tmp_path: Path, parked: bool) -> None:
    """``outlive=False`` (inside a Ray actor): a parent killed with SIGKILL leaves nothing of
    the worker behind, neither the worker nor what it forked (the SDK's heartbeat process),
    running or parked (frozen). (The local provider's workers outlive the server on purpose:
    tests/faults/test_restarts.py.)"""
    parent = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from runplane.providers.base import WorkerSpec
        from runplane.providers.runtimes.process import ProcessRuntime
        d = Path({str(tmp_path)!r})
        runtime = ProcessRuntime(outlive=False)
        info = runtime.start(WorkerSpec(
            "w1", f"local:{{d}}", ["sh", "-c", "sleep 301 & echo $! > forked; exec sleep 300"],
            {{}}, d / "w1.log"))
        while not (d / "forked").exists() or not (d / "forked").read_text().strip():
            time.sleep(0.01)
        if {parked!r}:
            runtime.park("w1")
        print(info.pid, (d / "forked").read_text().strip(), flush=True)
        os.kill(os.getpid(), 9)
    """)
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True,
                         timeout=30, check=False)  # it SIGKILLs itself
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2, out.stdout + out.stderr
    left = pids
    for _ in range(250):
        left = [p for p in pids if _alive(p)]
        if not left:
            break
        time.sleep(0.02)
    else:
        for pid in left:
            os.kill(pid, 9)
        pytest.fail(f"{left} outlived the process that started the worker {pids}")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_missing_command_fails_to_start(provider: LocalProvider, tmp_path: Path) -> None:
    with pytest.raises(OSError):
        provider.start(WorkerSpec("w2", f"local:{tmp_path}", ["no-such-command-xyz"], {},
                                  provider.log_path("w2")))
