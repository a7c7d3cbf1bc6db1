"""Worker benchmarks: what runplane adds to a cold start, and what a reconcile tick costs.

1. Cold start. The same runpod SDK handler (its first line records ``time.time()``) is
   started two ways, alternately, ``--runs`` times each:

   - by hand: the worker command launched with ``subprocess.Popen`` and the RUNPOD_* variables
     pointing at a tiny HTTP server on loopback that hands it a job on its first job-take;
     measured from launch to the handler's first line;
   - through runplane: a ``runplane serve`` process with an endpoint scaled to zero
     (workersMin 0, idleTimeout 1 s); measured from sending the job (``/runsync``) to the
     handler's first line, so it includes the durable submit, the controller noticing the job, placing and
     registering the worker, and starting the process. Before each run the endpoint is back
     at zero workers and the previous worker process is gone.

   runplane adds = median(through runplane) - median(by hand).

1c. Container cold start (``--container-runs``, when podman and the test image of
   scripts/setup_podman.sh are there): the same handler in that image (the runpod SDK
   inside), alternately by hand (``podman run --network host --init`` with the RUNPOD_*
   variables, handler mounted read-only; launch to the handler's first line) and through
   runplane (an endpoint on the image, the handler in its network volume at
   /runpod-volume, ``dockerStartCmd`` running it; job sent to the handler's first line).
   Shown against the process worker of 1.

1e. FlashBoot (``--revivals``, 50): an endpoint with ``flashboot: true`` whose one worker is
   parked (SIGSTOP, after idleTimeout 1 s) before each job; measured from sending the job
   (``/runsync``) to the job's start as the server records it (the job-take response carrying
   it was written: ``jobs.started_at``, what RunPod's delayTime measures) and to the handler's
   first line. The same worker process every time (checked). Shown against the cold start of 1.

1d. Ray provider (``--ray-runs``, when ray is installed): a Ray cluster started here with
   Ray's own test utility (a head offering nothing and one CPU node: real raylets, on this
   host) and two servers side by side, one ``--provider local`` and one ``--provider ray
   --ray-address ...``, each with the endpoint of 1b; a cold start on each, alternately. The
   Ray worker's extra is the actor: a Ray worker process started on the node, which then
   starts the handler's process.

2. Reconcile tick: the real controller over a real store in this process, 1,000 endpoints
   (500 with workersMin 1, each holding one real worker process, ``sleep``), timed per tick
   with ``controller.last_tick_ms`` once every worker is started.

Prints one table.

    .venv/bin/python benchmarks/cold_start.py [--runs 20] [--ticks 200]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx

ROOT = Path(__file__).resolve().parents[1]

HANDLER = '''import time


def handler(job):
    t = time.time()  # the handler's first line: the job has started
    return {"t": t, "pid": __import__("os").getpid()}


import runpod  # noqa: E402

runpod.serverless.start({"handler": handler})
'''
# What a worker's environment holds besides the RUNPOD_* variables (as the process runtime).
HOST_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
TEMPLATE_ENV = {"RUNPOD_LOG_LEVEL": "WARN"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def column(runs: dict[str, list[dict[str, float]]], way: str, key: str,
           since: str | None = None) -> list[float]:
    """One measure of every run made ``way``: its ``key`` time, counted from ``since``."""
    return [r[key] - (r[since] if since else 0.0) for r in runs[way]]


def median_p90(xs: list[float]) -> tuple[float, float]:
    ordered = sorted(xs)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


# -- 1a. by hand ------------------------------------------------------------------------------


class _JobServer(BaseHTTPRequestHandler):
    """The job-take target of a hand-launched worker: one job, then nothing."""

    protocol_version = "HTTP/1.1"
    outputs: ClassVar[dict[str, Any]] = {}
    handed: ClassVar[dict[str, float]] = {}  # worker -> when its first job-take arrived
    done = threading.Event()

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, body: bytes = b"") -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker was killed while its long-poll was held

    def do_GET(self) -> None:
        worker = self.path.split("/")[4].split("?")[0] if self.path.count("/") >= 4 else ""
        if "/job-take/" in self.path and worker not in self.handed:
            self.handed[worker] = time.time()
            self._send(200, json.dumps({"id": f"job-{worker}", "input": {}}).encode())
        elif "/job-take" in self.path or "/job-stop/" in self.path:
            time.sleep(2)  # a long-poll with nothing to give
            self._send(204)
        else:  # ping
            self._send(200, b'{"status":"ok"}')

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(200, b'{"status":"ok"}')
        if "/job-done/" in self.path:
            type(self).outputs[self.path.split("/")[5].split("?")[0]] = json.loads(body)["output"]
            type(self).done.set()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a killed worker drops its held long-polls: expected, not worth a traceback


def by_hand(app: Path, port: int, n: int) -> dict[str, float]:
    """Launch the worker command; ms from launch to the handler's first line (``total``),
    to the process existing (``spawn``), to its first job-take (``take``)."""
    worker = f"hand{n}"
    base = f"http://127.0.0.1:{port}/v2/ep"
    env = {k: os.environ[k] for k in HOST_ENV if k in os.environ} | TEMPLATE_ENV | {
        "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?gpu=",
        "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=",
        "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=",
        "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID?gpu=",
        "RUNPOD_POD_ID": worker, "RUNPOD_POD_HOSTNAME": worker, "RUNPOD_AI_API_KEY": "k",
        "RUNPOD_ENDPOINT_ID": "ep", "RUNPOD_PING_INTERVAL": "10000",
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true", "RUNPOD_SKIP_GPU_CHECK": "true",
        "CUDA_VISIBLE_DEVICES": "",
    }
    _JobServer.done.clear()
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-u", "handler.py"], cwd=app, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    spawned = time.time()
    try:
        if not _JobServer.done.wait(60):
            raise RuntimeError("the hand-launched worker never finished its job")
        return {"total": (_JobServer.outputs[f"job-{worker}"]["t"] - t0) * 1000,
                "spawn": (spawned - t0) * 1000, "take": (_JobServer.handed[worker] - t0) * 1000}
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


# -- 1b. through runplane ---------------------------------------------------------------------


def start_runplane(data_dir: Path, port: int,
                   args: tuple[str, ...] = ()) -> tuple[subprocess.Popen[bytes], str]:
    """``runplane serve`` over a store prepared here; returns the process and a user key."""
    sys.path.insert(0, str(ROOT / "src"))
    from runplane.services.users import UserService
    from runplane.store.db import make_engine, upgrade

    config = data_dir / "runplane.toml"
    if not config.exists():  # the user "bench" is no admin: let it run local: images
        config.write_text('[security]\nlocal_image_users = ["bench"]\n')
    engine = make_engine(f"sqlite:///{data_dir / 'runplane.db'}")
    upgrade(engine)
    users = UserService(engine)
    key = users.create_key(users.create_user("bench")).secret
    engine.dispose()
    # shutdown "drain": the workers go with the server (the default keeps them running
    # for the next server; a benchmark's server never comes back).
    env = {**os.environ, "RUNPLANE_CONTROLLER": json.dumps(
        {"stop_grace_s": 0.5, "shutdown": "drain", "drain_timeout_s": 5})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "runplane", "serve", "--port", str(port), "--data-dir",
         str(data_dir), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, key
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("runplane serve did not start")


def make_endpoint(c: httpx.Client, app: Path, flashboot: bool = False) -> str:
    """A CPU endpoint on the handler; idle workers stop (cold starts) unless ``flashboot``."""
    t = c.post("/v1/templates", json={
        "name": "cold-start", "imageName": f"local:{app}", "isServerless": True,
        "dockerStartCmd": [sys.executable, "-u", "handler.py"], "env": TEMPLATE_ENV})
    t.raise_for_status()
    e = c.post("/v1/endpoints", json={
        "name": "cold-start", "templateId": t.json()["id"], "computeType": "CPU",
        "vcpuCount": 1, "workersMin": 0, "workersMax": 1, "idleTimeout": 1,
        "scalerType": "REQUEST_COUNT", "scalerValue": 1, "flashboot": flashboot})
    e.raise_for_status()
    return e.json()["id"]


def wait_scaled_to_zero(c: httpx.Client, endpoint_id: str, pid: int | None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        gone = pid is None or not os.path.exists(f"/proc/{pid}")
        workers = c.get(f"/v1/endpoints/{endpoint_id}", params={"includeWorkers": "true"})
        if gone and workers.json()["workers"] == []:
            return
        time.sleep(0.2)
    raise RuntimeError("the endpoint did not scale back to zero")


def through_runplane(c: httpx.Client, endpoint_id: str, db: Path) -> tuple[dict[str, float], int]:
    """A job for an endpoint at zero workers; ms to the handler's first line (``total``), to
    the worker process existing (``spawn``), to its first job-take (``take``, from the
    store's worker row), and the job's delayTime; plus the worker's pid."""
    t0 = time.time()
    # runsync, not /run + polling: the client stays idle (as by hand) instead of stealing
    # CPU from the booting worker on a small machine.
    r = c.post(f"/v2/{endpoint_id}/runsync", params={"wait": 60000}, json={"input": {}},
               timeout=90)
    r.raise_for_status()
    s = r.json()
    if s["status"] != "COMPLETED":
        raise RuntimeError(f"job ended {s}")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        started, took = conn.execute(
            "SELECT started_at, first_take_at FROM workers WHERE id = ?",
            (s["workerId"],)).fetchone()
    return {"total": (s["output"]["t"] - t0) * 1000, "spawn": (started - t0) * 1000,
            "take": (took - t0) * 1000, "delay": float(s["delayTime"])}, s["output"]["pid"]


def cold_start(runs: int, tmp: Path) -> dict[str, list[dict[str, float]]]:
    app = tmp / "app"
    app.mkdir()
    (app / "handler.py").write_text(HANDLER)
    (tmp / "rp").mkdir()
    hand_port = free_port()
    httpd = _QuietServer(("127.0.0.1", hand_port), _JobServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = free_port()
    server, key = start_runplane(tmp / "rp", port)
    out: dict[str, list[dict[str, float]]] = {"hand": [], "runplane": []}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          headers={"Authorization": f"Bearer {key}"}) as c:
            endpoint_id = make_endpoint(c, app)
            by_hand(app, hand_port, -1)  # warm the page cache for both
            pid = None
            for i in range(runs):
                out["hand"].append(by_hand(app, hand_port, i))
                wait_scaled_to_zero(c, endpoint_id, pid)
                timing, pid = through_runplane(c, endpoint_id, tmp / "rp" / "runplane.db")
                out["runplane"].append(timing)
                print(f"  run {i + 1}/{runs}: by hand {out['hand'][-1]['total']:.0f} ms, "
                      f"runplane {timing['total']:.0f} ms", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(30)
        httpd.shutdown()
    return out


# -- 1e. FlashBoot revivals --------------------------------------------------------------------


def _state(pid: int) -> str:
    """The process state letter of /proc/<pid>/stat (T: stopped)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def wait_parked(c: httpx.Client, endpoint_id: str, pid: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = c.get(f"/v1/endpoints/{endpoint_id}", params={"includeWorkers": "true"}).json()
        if [w["workerStatus"] for w in body["workers"]] == ["PARKED"] and _state(pid) == "T":
            return
        time.sleep(0.1)
    raise RuntimeError("the worker was not parked")


def revivals(n: int, tmp: Path) -> list[dict[str, float]]:
    """``n`` jobs, each for an endpoint whose only worker is parked: ms from sending the job to
    its start on the server (``start``) and to the handler's first line (``total``)."""
    app = tmp / "flash-app"
    app.mkdir()
    (app / "handler.py").write_text(HANDLER)
    (tmp / "rp-flash").mkdir()
    port = free_port()
    server, key = start_runplane(tmp / "rp-flash", port)
    db = tmp / "rp-flash" / "runplane.db"
    out: list[dict[str, float]] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          headers={"Authorization": f"Bearer {key}"}) as c:
            endpoint_id = make_endpoint(c, app, flashboot=True)
            first = c.post(f"/v2/{endpoint_id}/runsync", params={"wait": 60000},
                           json={"input": {}}, timeout=90).json()  # the one cold start
            pid = first["output"]["pid"]
            for i in range(n):
                wait_parked(c, endpoint_id, pid)
                t0 = time.time()
                r = c.post(f"/v2/{endpoint_id}/runsync", params={"wait": 60000},
                           json={"input": {}}, timeout=90)
                r.raise_for_status()
                s = r.json()
                if s["status"] != "COMPLETED" or s["output"]["pid"] != pid:
                    raise RuntimeError(f"not a revival of worker pid {pid}: {s}")
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                    (started,) = conn.execute("SELECT started_at FROM jobs WHERE id = ?",
                                              (s["id"],)).fetchone()
                out.append({"start": (started - t0) * 1000, "total": (s["output"]["t"] - t0) * 1000})
                if (i + 1) % 10 == 0:
                    print(f"  revival {i + 1}/{n}: job start {out[-1]['start']:.1f} ms, "
                          f"handler {out[-1]['total']:.1f} ms", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(30)
    return out


def p50_p95(xs: list[float]) -> tuple[float, float]:
    ordered = sorted(xs)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


# -- 1c. container cold start ----------------------------------------------------------------

IMAGE = "localhost/runplane-test/worker:latest"


def container_ready() -> str | None:
    """None when podman runs the test image, else why the container part is skipped."""
    import shutil

    if shutil.which("podman") is None:
        return "podman is not installed (scripts/setup_podman.sh)"
    if subprocess.run(["podman", "image", "exists", IMAGE], check=False).returncode != 0:
        return f"{IMAGE} is not built (scripts/setup_podman.sh)"
    return None


def container_by_hand(app: Path, port: int, n: int) -> dict[str, float]:
    """``podman run`` of the image with the worker's variables; ms from launch to the
    handler's first line (``total``) and to its first job-take (``take``)."""
    worker = f"chand{n}"
    base = f"http://127.0.0.1:{port}/v2/ep"
    env = TEMPLATE_ENV | {
        "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?gpu=",
        "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=",
        "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=",
        "RUNPOD_WEBHOOK_PING": f"{base}/ping/$RUNPOD_POD_ID?gpu=",
        "RUNPOD_POD_ID": worker, "RUNPOD_POD_HOSTNAME": worker, "RUNPOD_AI_API_KEY": "k",
        "RUNPOD_ENDPOINT_ID": "ep", "RUNPOD_PING_INTERVAL": "10000",
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true", "RUNPOD_SKIP_GPU_CHECK": "true",
    }
    env_args = [a for k, v in env.items() for a in ("--env", f"{k}={v}")]
    name = f"runplane-bench-{worker}"
    _JobServer.done.clear()
    t0 = time.time()
    proc = subprocess.Popen(
        ["podman", "run", "--rm", "--name", name, "--network", "host", "--init", "--pull", "never",
         "--volume", f"{app}:/bench:ro", *env_args, IMAGE, "python", "-u", "/bench/handler.py"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not _JobServer.done.wait(120):
            raise RuntimeError("the hand-launched container never finished its job")
        return {"total": (_JobServer.outputs[f"job-{worker}"]["t"] - t0) * 1000,
                "take": (_JobServer.handed[worker] - t0) * 1000}
    finally:
        subprocess.run(["podman", "rm", "--force", "--time", "0", name], capture_output=True,
                       check=False)
        proc.wait()


def make_container_endpoint(c: httpx.Client, data_dir: Path) -> str:
    v = c.post("/v1/networkvolumes", json={"name": "bench", "size": 1, "dataCenterId": "LOCAL-1"})
    v.raise_for_status()
    volume = v.json()["id"]
    t = c.post("/v1/templates", json={
        "name": "cold-start-container", "imageName": IMAGE, "isServerless": True,
        "dockerStartCmd": ["python", "-u", "/runpod-volume/handler.py"], "env": TEMPLATE_ENV})
    t.raise_for_status()
    e = c.post("/v1/endpoints", json={
        "name": "cold-start-container", "templateId": t.json()["id"], "computeType": "CPU",
        "vcpuCount": 1, "workersMin": 0, "workersMax": 1, "idleTimeout": 1,
        "scalerType": "REQUEST_COUNT", "scalerValue": 1, "networkVolumeId": volume,
        "flashboot": False})
    e.raise_for_status()
    # The process runtime names this directory RUNPLANE_VOLUME_PATH; containers mount it.
    folder = data_dir / "volumes" / "LOCAL-1" / volume  # <volume_root>/<dataCenterId>/<id>
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "handler.py").write_text(HANDLER)
    return e.json()["id"]


def container_gone(c: httpx.Client, endpoint_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        names = subprocess.run(["podman", "ps", "--format", "{{.Names}}"], capture_output=True,
                               text=True, check=False).stdout.split()
        workers = c.get(f"/v1/endpoints/{endpoint_id}", params={"includeWorkers": "true"})
        if workers.json()["workers"] == [] and not any(n.startswith("runplane-") and
                                                       "bench" not in n for n in names):
            return
        time.sleep(0.2)
    raise RuntimeError("the container endpoint did not scale back to zero")


def container_cold_start(runs: int, tmp: Path) -> dict[str, list[dict[str, float]]]:
    app = tmp / "capp"
    app.mkdir()
    (app / "handler.py").write_text(HANDLER)
    hand_port = free_port()
    httpd = _QuietServer(("127.0.0.1", hand_port), _JobServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = free_port()
    (tmp / "crp").mkdir()
    server, key = start_runplane(tmp / "crp", port)
    out: dict[str, list[dict[str, float]]] = {"hand": [], "runplane": []}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          headers={"Authorization": f"Bearer {key}"}) as c:
            endpoint_id = make_container_endpoint(c, tmp / "crp")
            container_by_hand(app, hand_port, -1)  # warm the page cache for both
            for i in range(runs):
                out["hand"].append(container_by_hand(app, hand_port, i))
                container_gone(c, endpoint_id)
                timing, _ = through_runplane(c, endpoint_id, tmp / "crp" / "runplane.db")
                out["runplane"].append(timing)
                print(f"  container run {i + 1}/{runs}: by hand {out['hand'][-1]['total']:.0f} ms,"
                      f" runplane {timing['total']:.0f} ms", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(30)
        httpd.shutdown()
    return out


# -- 1d. ray provider ------------------------------------------------------------------------


def ray_ready() -> str | None:
    """None when the ray extra is installed, else why the Ray part is skipped."""
    try:
        import ray.cluster_utils  # noqa: F401
    except ImportError:
        return "ray is not installed (pip install 'runplane[ray]')"
    return None


def ray_cold_start(runs: int, tmp: Path) -> dict[str, list[dict[str, float]]]:
    """Cold starts through a local-provider server and a Ray-provider server, alternately."""
    from ray.cluster_utils import Cluster

    app = tmp / "ray-app"
    app.mkdir()
    (app / "handler.py").write_text(HANDLER)
    cluster = Cluster(initialize_head=True, shutdown_at_exit=True, head_node_args={
        "num_cpus": 0, "object_store_memory": 80 * 2**20, "include_dashboard": False,
        "dashboard_port": free_port(), "dashboard_agent_listen_port": free_port()})
    servers: list[subprocess.Popen[bytes]] = []
    out: dict[str, list[dict[str, float]]] = {"local": [], "ray": []}
    try:
        cluster.add_node(num_cpus=2, object_store_memory=80 * 2**20)
        cluster.wait_for_nodes()
        clients, endpoints, pids = {}, {}, {}
        for way, args in (("local", ()), ("ray", ("--provider", "ray", "--ray-address",
                                                  cluster.address))):
            (tmp / f"rp-{way}").mkdir()
            port = free_port()
            server, key = start_runplane(tmp / f"rp-{way}", port, args)
            servers.append(server)
            clients[way] = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                        headers={"Authorization": f"Bearer {key}"})
            endpoints[way] = make_endpoint(clients[way], app)
            pids[way] = None
        for i in range(runs):
            for way in ("local", "ray"):
                c = clients[way]
                wait_scaled_to_zero(c, endpoints[way], pids[way])
                timing, pids[way] = through_runplane(c, endpoints[way],
                                                     tmp / f"rp-{way}" / "runplane.db")
                out[way].append(timing)
            print(f"  ray run {i + 1}/{runs}: local {out['local'][-1]['total']:.0f} ms, "
                  f"ray {out['ray'][-1]['total']:.0f} ms", file=sys.stderr)
        for c in clients.values():
            c.close()
    finally:
        for server in servers:
            server.terminate()
            server.wait(30)
        cluster.shutdown()
    return out


# -- 2. reconcile tick ------------------------------------------------------------------------


async def tick_cost(n_endpoints: int, n_workers: int, ticks: int, tmp: Path) -> list[float]:
    sys.path.insert(0, str(ROOT / "src"))
    from runplane.config import load_settings
    from runplane.schemas.endpoints import EndpointCreate
    from runplane.schemas.templates import TemplateCreate
    from runplane.server import build_services, create_app
    from runplane.services.users import Principal

    app = tmp / "sleeper"
    app.mkdir()
    settings = load_settings(
        data_dir=tmp / "tick", machine={"detect_gpus": False, "cpu_overcommit": 1000},
        controller={"startup_timeout_s": 1e9})
    services = build_services(settings)
    create_app(services)  # the broker and the controller, wired as in the server
    me = Principal(services.users.create_user("bench"))
    template = services.templates.create(me, TemplateCreate.model_validate({
        "name": "sleeper", "imageName": f"local:{app}", "isServerless": True,
        "dockerStartCmd": ["sleep", "3600"]}))
    for i in range(n_endpoints):
        services.endpoints.create(me, EndpointCreate.model_validate({
            "templateId": template.id, "name": f"e{i}", "computeType": "CPU", "vcpuCount": 1,
            "workersMin": 1 if i < n_workers else 0, "workersMax": 3}))
    controller = services.controller
    controller.cleanup_previous_run()
    try:
        while len(controller.tracked) < n_workers:
            await controller.tick()  # starts the workers
        if len([i for i in services.provider.list() if i.state == "running"]) != n_workers:
            raise RuntimeError("not every worker process is running")
        await controller.tick()
        out = []
        for _ in range(ticks):
            await controller.tick()
            out.append(controller.last_tick_ms)
        return out
    finally:
        await controller.shutdown()
        services.broker.close()


# -- report -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=500)
    parser.add_argument("--container-runs", type=int, default=10,
                        help="container cold starts each way (0: skip that part)")
    parser.add_argument("--revivals", type=int, default=50,
                        help="FlashBoot revivals of a parked worker (0: skip)")
    parser.add_argument("--ray-runs", type=int, default=10,
                        help="cold starts on the Ray provider and the local one (0: skip)")
    args = parser.parse_args()
    skip_containers = container_ready() if args.container_runs else "--container-runs 0"
    skip_ray = ray_ready() if args.ray_runs else "--ray-runs 0"
    with tempfile.TemporaryDirectory(prefix="runplane-cold-") as raw:
        tmp = Path(raw)
        cold = cold_start(args.runs, tmp)
        revived = revivals(args.revivals, tmp) if args.revivals else None
        boxed = container_cold_start(args.container_runs, tmp) if not skip_containers else None
        rayed = ray_cold_start(args.ray_runs, tmp) if not skip_ray else None
        ticks = asyncio.run(tick_cost(args.endpoints, args.workers, args.ticks, tmp))

    col = functools.partial(column, cold)

    hand, rp = median_p90(col("hand", "total")), median_p90(col("runplane", "total"))
    added = rp[0] - hand[0]
    paired = statistics.median(r - h for r, h in zip(col("runplane", "total"),
                                                     col("hand", "total"), strict=True))
    tick = median_p90(ticks)
    rows = [
        ("cold start by hand: launch -> handler's first line", hand, "", ""),
        ("cold start via runplane: job sent -> handler's first line", rp, "", ""),
        ("runplane adds: difference of medians (paired*)", (added, paired), "<= 50",
         "yes" if added <= 50 else "NO"),
        ("  by hand: launch -> process exists", median_p90(col("hand", "spawn")), "", ""),
        ("  runplane: job sent -> process exists", median_p90(col("runplane", "spawn")), "", ""),
        ("  by hand: process -> first job-take (SDK boot)",
         median_p90(col("hand", "take", "spawn")), "", ""),
        ("  runplane: process -> first job-take (SDK boot)",
         median_p90(col("runplane", "take", "spawn")), "", ""),
        ("  by hand: first job-take -> handler's first line",
         median_p90(col("hand", "total", "take")), "", ""),
        ("  runplane: first job-take -> handler's first line",
         median_p90(col("runplane", "total", "take")), "", ""),
        ("  runplane: job delayTime (the server's view)", median_p90(col("runplane", "delay")),
         "", ""),
        (f"reconcile tick, {args.endpoints:,} endpoints / {args.workers} workers", tick,
         "<= 10", "yes" if tick[0] <= 10 else "NO"),
    ]
    if revived is not None:
        start95 = p50_p95([r["start"] for r in revived])
        cold95 = p50_p95(col("runplane", "total"))
        rows[-1:-1] = [
            ("cold start via runplane: job sent -> handler (p50, p95)", cold95, "", ""),
            ("FlashBoot revival: job sent -> job start (p50, p95)", start95, "<= 50",
             "yes" if start95[1] <= 50 else "NO"),
            ("FlashBoot revival: job sent -> handler (p50, p95)",
             p50_p95([r["total"] for r in revived]), "", ""),
            ("  revival: job start -> handler's first line (SDK loop)",
             p50_p95([r["total"] - r["start"] for r in revived]), "", ""),
        ]
    if boxed is not None:
        bcol = functools.partial(column, boxed)

        chand, crp = median_p90(bcol("hand", "total")), median_p90(bcol("runplane", "total"))
        cpaired = statistics.median(r - h for r, h in zip(bcol("runplane", "total"),
                                                          bcol("hand", "total"), strict=True))
        rows[-1:-1] = [
            ("container cold start by hand: podman run -> first line", chand, "", ""),
            ("container cold start via runplane: job -> first line", crp, "", ""),
            ("runplane adds to a container (paired*)", (crp[0] - chand[0], cpaired), "", ""),
            ("container worker - process worker, via runplane", (crp[0] - rp[0], crp[1] - rp[1]),
             "", ""),
            ("  container by hand: podman run -> first job-take",
             median_p90(bcol("hand", "take")), "", ""),
            ("  container runplane: job sent -> launcher exists",
             median_p90(bcol("runplane", "spawn")), "", ""),
            ("  container runplane: launcher -> first job-take",
             median_p90(bcol("runplane", "take", "spawn")), "", ""),
        ]
    if rayed is not None:
        rcol = functools.partial(column, rayed)

        rlocal, rray = median_p90(rcol("local", "total")), median_p90(rcol("ray", "total"))
        rpaired = statistics.median(r - h for r, h in zip(rcol("ray", "total"),
                                                          rcol("local", "total"), strict=True))
        rows[-1:-1] = [
            ("ray pair: local provider, job -> handler's first line", rlocal, "", ""),
            ("ray pair: ray provider, job -> handler's first line", rray, "", ""),
            ("ray provider adds over local (paired*)", (rray[0] - rlocal[0], rpaired), "", ""),
            ("  ray: job sent -> actor submitted", median_p90(rcol("ray", "spawn")), "", ""),
            ("  ray: actor submitted -> first job-take",
             median_p90(rcol("ray", "take", "spawn")), "", ""),
            ("  local: process started -> first job-take",
             median_p90(rcol("local", "take", "spawn")), "", ""),
            ("  ray: first job-take -> handler's first line",
             median_p90(rcol("ray", "total", "take")), "", ""),
        ]
    print(f"\n{'measure (ms)':58} {'median':>8} {'p90*':>8} {'goal':>7} {'met':>4}")
    for name, (med, p90), goal, met in rows:
        print(f"{name:58} {med:8.1f} {p90:8.1f} {goal:>7} {met:>4}")
    print(f"({args.runs} cold starts each way, alternating; {args.ticks} ticks. *For 'runplane "
          "adds' the second column is the median of the paired differences instead of a p90.)")
    if revived is not None:
        print(f"(FlashBoot: {len(revived)} revivals of one parked worker; its rows show p50 "
              "and p95, not p90)")
    print(f"(container: {args.container_runs} cold starts each way; 'container - process' "
          "compares medians and p90s)" if boxed is not None
          else f"(container cold start skipped: {skip_containers})")
    print(f"(ray: {args.ray_runs} cold starts on each provider, alternating, one Ray CPU node "
          "on this host)" if rayed is not None else f"(ray cold start skipped: {skip_ray})")


if __name__ == "__main__":
    main()
