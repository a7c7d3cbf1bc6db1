"""Process runtime: a template's command run as a host process.

Image convention: ``imageName`` is ``local:/abs/dir`` or ``file:///abs/dir``, the directory
holding the worker's code; it becomes the working directory. The command is the template's
``dockerEntrypoint + dockerStartCmd`` (there is no image to supply a default). Anything else
(a registry image such as ``runpod/worker:1.0``) is refused with a message saying so.

Each worker runs in its own process group (``setsid``) so that stop signals reach whatever it
spawned, writes stdout+stderr to its own log, and is killed by the kernel if the server dies
(``PR_SET_PDEATHSIG``, set by exec'ing through ``setpriv`` where available), so a crashed
server leaves no orphans holding GPUs.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from runplane.providers.base import EXITED, PARKED, RUNNING, ImageError, ProcessInfo, WorkerSpec

# Host variables a process needs to behave normally; the server's own settings stay out.
PASSTHROUGH_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
                   "SHELL", "SYSTEMROOT")
_PR_SET_PDEATHSIG = 1


def local_image_path(image: str, runner: str, where: str) -> Path:
    """``local:/abs/dir`` or ``file:///abs/dir`` -> the absolute path (not looked at); any
    other image: ImageError saying ``runner`` cannot run it and ``where`` the directory goes."""
    if image.startswith("local:"):
        raw = image[len("local:"):]
    elif image.startswith("file://"):
        raw = image[len("file://"):]
    else:
        raise ImageError(
            f"imageName {image!r} cannot be run by {runner}: use "
            f"'local:/absolute/path/to/worker/dir' (or 'file:///absolute/path'), {where}")
    path = Path(raw)
    if not path.is_absolute():
        raise ImageError(f"imageName {image!r}: the path must be absolute")
    return path


def resolve_image(image: str) -> Path:
    """``local:/abs/dir`` or ``file:///abs/dir`` -> the directory; ImageError otherwise."""
    path = local_image_path(image, "the process runtime", "pointing at the worker's code; "
                            "container images need the container runtime")
    if not path.is_dir():
        raise ImageError(f"imageName {image!r}: {path} is not a directory on this host")
    return path


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


@functools.cache
def _setpriv() -> str | None:
    """util-linux ``setpriv`` when it can set the parent-death signal, else None.

    Why: a ``preexec_fn`` makes Python fork() the whole server and run Python code in the
    child (~10 ms for a 150 MB server); without one it uses vfork (~0.2 ms). Exec'ing
    through ``setpriv --pdeathsig KILL`` keeps the guarantee (the signal survives execve)
    at the cost of one extra exec."""
    if not sys.platform.startswith("linux"):
        return None
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=5,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "--pdeathsig" in out else None


def _check_command(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    """Raise FileNotFoundError like exec would, before a launcher hides it behind an exit code."""
    exe = command[0]
    found = (cwd / exe).is_file() if "/" in exe else shutil.which(exe, path=env.get("PATH"))
    if not found:
        raise FileNotFoundError(f"command not found: {exe!r} (cwd {cwd})")


def _any_child_exited() -> bool:
    """True when some child of this process has exited and is not reaped yet (or when that
    cannot be told): ``waitid`` with WNOWAIT peeks without reaping, so ``Popen.poll`` still
    sees the exit. Lets ``list()`` skip one ``waitpid`` per worker on the (usual) quiet tick."""
    try:
        return os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return False  # no children at all
    except (AttributeError, OSError):
        return True


class _Proc:
    def __init__(self, spec: WorkerSpec, popen: subprocess.Popen[bytes], started_at: float) -> None:
        self.spec = spec
        self.popen = popen
        self.started_at = started_at
        self.parked = False
        self.stopped_at: float | None = None
        self._info: ProcessInfo | None = None  # reused while nothing changed

    def info(self, poll: bool = True) -> ProcessInfo:
        code = self.popen.poll() if poll else self.popen.returncode
        if code is not None and self.stopped_at is None:
            self.stopped_at = time.time()
        state = EXITED if code is not None else (PARKED if self.parked else RUNNING)
        cached = self._info
        if cached is not None and cached.state == state and cached.exit_code == code:
            return cached
        self._info = ProcessInfo(
            id=self.spec.id, state=state, pid=self.popen.pid, started_at=self.started_at,
            exit_code=code, stopped_at=self.stopped_at, log_path=str(self.spec.log_path),
            data={"runtime": "process", "pid": self.popen.pid, "started_at": self.started_at, "pgid": self.popen.pid,
                  "gpus": list(self.spec.gpu_indices), "image": self.spec.image},
        )
        return self._info


class ProcessRuntime:
    """Starts, signals and watches worker processes on this host."""

    def __init__(self) -> None:
        self._procs: dict[str, _Proc] = {}

    def check_image(self, image: str) -> Path:
        return resolve_image(image)

    def start(self, spec: WorkerSpec) -> ProcessInfo:
        """Start the worker; raises ImageError for a bad image or command, OSError from exec."""
        if spec.id in self._procs and self._procs[spec.id].popen.poll() is None:
            raise RuntimeError(f"worker {spec.id} is already running")
        cwd = resolve_image(spec.image)
        if not spec.command:
            raise ImageError("the template has no dockerEntrypoint/dockerStartCmd; the process "
                             "runtime needs the command to run, e.g. [\"python\", \"handler.py\"]")
        env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        env.update(spec.env)
        # Pin the GPUs: an empty value hides every GPU from a CPU worker.
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in spec.gpu_indices)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "ab") as log:
            log.write(f"--- runplane: starting {spec.id}: {' '.join(spec.command)} (cwd {cwd})\n"
                      .encode())
            log.flush()
            launcher = _setpriv()
            preexec = None
            if launcher:
                _check_command(spec.command, cwd, env)
                argv = [launcher, "--pdeathsig", "KILL", "--", *spec.command]
            else:
                argv = spec.command
                preexec = _set_pdeathsig if sys.platform.startswith("linux") else None
            popen = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=preexec,  # noqa: PLW1509 - fallback only; takes no locks
            )
        proc = _Proc(spec, popen, time.time())
        self._procs[spec.id] = proc
        return proc.info()

    def _signal(self, proc: _Proc, sig: int) -> None:
        if proc.popen.poll() is not None:
            return
        try:
            os.killpg(proc.popen.pid, sig)
        except ProcessLookupError:
            pass

    async def stop(self, worker_id: str, grace_s: float) -> ProcessInfo | None:
        """SIGTERM the group, SIGKILL it after ``grace_s``; returns once the process is gone."""
        proc = self._procs.get(worker_id)
        if proc is None:
            return None
        self._signal(proc, signal.SIGTERM)
        if proc.parked:  # a stopped process only sees SIGTERM once continued
            self._signal(proc, signal.SIGCONT)
            proc.parked = False
        deadline = time.monotonic() + grace_s
        while proc.popen.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if proc.popen.poll() is None:
            self._signal(proc, signal.SIGKILL)
            while proc.popen.poll() is None:
                await asyncio.sleep(0.01)
        try:  # children the worker left behind in its group
            os.killpg(proc.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return proc.info()

    def park(self, worker_id: str) -> None:
        """SIGSTOP the whole group: the SDK's heartbeat process is frozen with the worker."""
        proc = self._procs[worker_id]
        self._signal(proc, signal.SIGSTOP)
        proc.parked = True

    def resume(self, worker_id: str) -> None:
        """SIGCONT the group; ProcessLookupError when the worker died while parked (so the
        caller resumes another one instead of waiting for this one)."""
        proc = self._procs[worker_id]
        if proc.popen.poll() is not None:
            raise ProcessLookupError(f"worker {worker_id} exited while parked "
                                     f"(exit code {proc.popen.returncode})")
        self._signal(proc, signal.SIGCONT)
        proc.parked = False

    def list(self) -> list[ProcessInfo]:
        poll = _any_child_exited()
        return [p.info(poll) for p in self._procs.values()]

    def get(self, worker_id: str) -> ProcessInfo | None:
        proc = self._procs.get(worker_id)
        return proc.info() if proc else None

    def forget(self, worker_id: str) -> None:
        proc = self._procs.get(worker_id)
        if proc is not None and proc.popen.poll() is not None:
            del self._procs[worker_id]


def read_tail(path: Path, tail_bytes: int = 65536) -> str:
    """The last ``tail_bytes`` of a log file ('' when it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - tail_bytes))
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def kill_orphan(pid: int, started_at: float) -> bool:
    """Kill a worker group left by a previous server run, if that pid is still that worker.

    The process's creation time must match the recorded start (within 2 s), so a reused pid
    belonging to something else is never signalled.
    """
    try:
        import psutil

        p = psutil.Process(pid)
        if abs(p.create_time() - started_at) > 2.0:
            return False
        os.killpg(pid, signal.SIGKILL)
        return True
    except Exception:  # noqa: BLE001 - gone, not ours, or not permitted: nothing to kill
        return False
