"""Process runtime: a template's command run as a host process.

Image convention: ``imageName`` is ``local:/abs/dir`` or ``file:///abs/dir``, the directory
holding the worker's code; it becomes the working directory. The command is the template's
``dockerEntrypoint + dockerStartCmd`` (there is no image to supply a default). Anything else
(a registry image such as ``runpod/worker:1.0``) is refused with a message saying so.

Each worker runs in its own process group (``setsid``) so that stop signals reach whatever it
spawned, and writes stdout+stderr to its own log. The group's leader is a small supervisor
(``/bin/sh``, :data:`SUPERVISOR`): it runs the worker, writes its exit code to
``<log>.exit`` and then kills whatever the worker left in the group (the SDK's forked
heartbeat process), so a crashed worker leaves no orphan holding its GPU.

By default (``outlive=True``, the local provider) workers outlive the server: a restarted
server finds each supervisor by its recorded pid and start time (:meth:`ProcessRuntime.adopt`)
and watches it like its own child. ``outlive=False`` (inside a Ray actor) has the kernel kill
the supervisor and the worker with their parent (``PR_SET_PDEATHSIG`` through ``setpriv``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from runplane.accelerator import SITE_DIR, with_site
from runplane.providers.base import EXITED, PARKED, RUNNING, ImageError, ProcessInfo, WorkerSpec
from runplane.providers.http_ports import http_data
from runplane.providers.runtimes.run_as import run_as, setpriv_path

# Host variables a process needs to behave normally; the server's own settings stay out.
PASSTHROUGH_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
                   "SHELL", "SYSTEMROOT")
_PR_SET_PDEATHSIG = 1
# The per-worker supervisor, run as ``sh -c SUPERVISOR <exit file> <command...>`` as the
# group's leader: a stop signal reaches the worker and waits for it (the trap defers it),
# the worker's exit code is written atomically, then the group is killed.
SUPERVISOR = ('trap ":" TERM INT; "$@"; code=$?; echo "$code" > "$0.tmp" && mv "$0.tmp" "$0"; '
              'trap - TERM INT; kill -KILL 0')
# The same for a worker tied to its parent (``outlive=False``): the supervisor's parent-death
# signal is HUP, which it traps to kill the whole group, so what the worker forked (the SDK's
# heartbeat process) dies with the parent too, not only the worker. The worker runs in the
# background because sh runs a trap only once its foreground command is done; ``wait`` is
# interrupted by a trapped signal, so it is repeated while the worker lives.
TIED_SUPERVISOR = ('trap ":" TERM INT; trap "kill -KILL 0" HUP; "$@" & w=$!; wait "$w"; code=$?; '
                   'while kill -0 "$w" 2>/dev/null; do wait "$w"; code=$?; done; '
                   'echo "$code" > "$0.tmp" && mv "$0.tmp" "$0"; trap - TERM INT; kill -KILL 0')


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
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGHUP)
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


def exit_file(log_path: Path) -> Path:
    """Where the supervisor writes the worker's exit code."""
    return log_path.with_suffix(".exit")


def read_exit_code(path: Path) -> int | None:
    """The exit code the supervisor wrote, or None (none written: the supervisor itself was
    killed)."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class _Foreign:
    """A supervisor a previous server run started: not this process's child, so watched by
    pid (psutil checks its start time too, so a reused pid reads as gone)."""

    def __init__(self, process: object, pid: int) -> None:
        self._process = process
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        import psutil

        if self.returncode is None:
            p = self._process
            try:
                alive = p.is_running() and p.status() != psutil.STATUS_ZOMBIE  # type: ignore[attr-defined]
            except psutil.Error:
                alive = False
            if not alive:
                self.returncode = -signal.SIGKILL  # what the supervisor's own kill gives
        return self.returncode


class _Proc:
    def __init__(self, spec: WorkerSpec, popen: subprocess.Popen[bytes] | _Foreign,
                 started_at: float, supervised: bool = True) -> None:
        self.spec = spec
        self.popen = popen
        self.started_at = started_at
        self.supervised = supervised
        self.parked = False
        self.stopped_at: float | None = None
        self.exit_code: int | None = None
        self._info: ProcessInfo | None = None  # reused while nothing changed

    def info(self, poll: bool = True) -> ProcessInfo:
        code = self.popen.poll() if poll else self.popen.returncode
        if code is not None and self.stopped_at is None:
            self.stopped_at = time.time()
            # The supervisor's own exit is its final kill: the worker's code is in its file.
            written = read_exit_code(exit_file(self.spec.log_path)) if self.supervised else None
            self.exit_code = code if written is None else written
        code = self.exit_code if code is not None else None
        state = EXITED if code is not None else (PARKED if self.parked else RUNNING)
        cached = self._info
        if cached is not None and cached.state == state and cached.exit_code == code:
            return cached
        self._info = ProcessInfo(
            id=self.spec.id, state=state, pid=self.popen.pid, started_at=self.started_at,
            exit_code=code, stopped_at=self.stopped_at, log_path=str(self.spec.log_path),
            data={"runtime": "process", "pid": self.popen.pid, "started_at": self.started_at, "pgid": self.popen.pid,
                  "gpus": list(self.spec.gpu_indices), "image": self.spec.image,
                  "supervised": self.supervised, **http_data(self.spec)},
        )
        return self._info


class ProcessRuntime:
    """Starts, signals and watches worker processes on this host."""

    def __init__(self, outlive: bool = True, worker_user: str = "") -> None:
        self._procs: dict[str, _Proc] = {}
        self.outlive = outlive
        # Whom workers run as when the server is root (run_as.py; "" = the server's user).
        self.worker_user = worker_user
        self._foreign = 0  # adopted supervisors (not children: list() polls them)

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
        user = run_as(self.worker_user)
        drop = user.argv(setpriv_path()) if user else []
        env = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        if user:
            env.update(user.env())
        env.update(spec.env)
        env = with_site(env, str(SITE_DIR))  # the SDK accelerator first on its PYTHONPATH
        # Pin the GPUs: an empty value hides every GPU from a CPU worker.
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in spec.gpu_indices)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "ab") as log:
            log.write(f"--- runplane: starting {spec.id}: {' '.join(spec.command)} (cwd {cwd})\n"
                      .encode())
            log.flush()
            _check_command(spec.command, cwd, env)
            exit_path = exit_file(spec.log_path)
            exit_path.unlink(missing_ok=True)
            # Not outliving the server: the supervisor hears of its parent's death (HUP) and
            # kills its group; the worker also dies with the supervisor.
            launcher = None if self.outlive else _setpriv()
            tied = [launcher, "--pdeathsig", "HUP", "--"] if launcher else []
            pdeath = [launcher, "--pdeathsig", "KILL", "--"] if launcher else []
            preexec = _set_pdeathsig if not self.outlive and not launcher \
                and sys.platform.startswith("linux") else None
            supervisor = SUPERVISOR if self.outlive else TIED_SUPERVISOR
            argv = [*tied, "/bin/sh", "-c", supervisor, str(exit_path), *pdeath, *drop,
                    *spec.command]
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
        if not self.outlive:
            # The tied supervisor only waits: it runs on, so that its parent's death (HUP; a
            # stopped process would only hear SIGKILL) still kills the frozen group.
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.popen.pid, signal.SIGCONT)
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

    def adopt(self, spec: WorkerSpec, data: dict[str, object]) -> ProcessInfo | None:
        """Watch a supervised worker a previous server run started (``data`` is its recorded
        ``ProcessInfo.data``), if that supervisor still runs; None when it is gone (its exit
        code, if it wrote one, is in :func:`exit_file`)."""
        import psutil

        pid, started_at = data.get("pid"), data.get("started_at")
        if not data.get("supervised") or not isinstance(pid, int) \
                or not isinstance(started_at, (int, float)):
            return None
        try:
            process = psutil.Process(pid)
            if abs(process.create_time() - started_at) > 2.0 \
                    or process.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            return None
        proc = _Proc(spec, _Foreign(process, pid), float(started_at))
        self._procs[spec.id] = proc
        self._foreign += 1
        return proc.info()

    def list(self) -> list[ProcessInfo]:
        poll = bool(self._foreign) or _any_child_exited()
        return [p.info(poll) for p in self._procs.values()]

    def get(self, worker_id: str) -> ProcessInfo | None:
        proc = self._procs.get(worker_id)
        return proc.info() if proc else None

    def forget(self, worker_id: str) -> None:
        proc = self._procs.get(worker_id)
        if proc is not None and proc.popen.poll() is not None:
            del self._procs[worker_id]
            if isinstance(proc.popen, _Foreign):
                self._foreign -= 1


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
