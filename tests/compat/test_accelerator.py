"""runplane's SDK accelerator with real runpod SDK workers: it says what it does on the worker,
follows a concurrency_modifier changed at run time, steps aside for an SDK it does not know,
and can be turned off by the server. (Every other SDK feature runs accelerated and not in
test_sdk.py and test_sdk_old.py: their ``workers`` fixture runs each test both ways.)"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import runpod

from tests.compat.conftest import FAST_ENV, Workers, status, wait_for, worker_pods
from tests.e2e.conftest import LiveServer, make_live_server

pytestmark = pytest.mark.e2e


def sdk_endpoint(live: LiveServer, endpoint_id: str) -> runpod.Endpoint:
    runpod.api_key = live.user_key
    runpod.endpoint_url_base = f"{live.url}/v2"
    return runpod.Endpoint(endpoint_id)


def accelerator_of(live: LiveServer, endpoint_id: str) -> str:
    def reported() -> str | None:
        pods = worker_pods(live, endpoint_id)
        return pods[0]["accelerator"] if pods and pods[0].get("accelerator") else None

    return str(wait_for(reported, what="the worker's accelerator report"))


def test_the_worker_says_whether_it_runs_accelerated(live: LiveServer, workers: Workers,
                                                    new_endpoint) -> None:
    ep_id = new_endpoint()
    workers.start(ep_id, "sync")
    assert sdk_endpoint(live, ep_id).run_sync({"a": 1}, timeout=60)["echo"] == {"a": 1}
    shown = accelerator_of(live, ep_id)
    if workers.accelerated:
        assert shown == f"on (runpod {runpod.__version__})"
    else:
        assert shown.startswith("off (not loaded")


def test_concurrency_modifier_changed_at_run_time(live: LiveServer, workers: Workers,
                                                  new_endpoint, tmp_path: Path) -> None:
    knob = tmp_path / "concurrency"
    knob.write_text("1")
    ep_id = new_endpoint()
    workers.start(ep_id, "modifier", CONCURRENCY_FILE=str(knob))
    ep = sdk_endpoint(live, ep_id)
    assert ep.run_sync({"sleep": 0}, timeout=60) == {"echo": {"sleep": 0}}
    headers = {"Authorization": f"Bearer {live.user_key}"}

    def most_at_once() -> int:
        import httpx

        listed = httpx.get(f"{live.url}/v2/{ep_id}/workers", headers=headers).json()
        return max((len(w["jobs"]) for w in listed), default=0)

    jobs = [ep.run({"sleep": 1.0, "n": i}) for i in range(3)]
    wait_for(lambda: most_at_once() == 1, what="one job at a time")
    knob.write_text("3")
    # The new concurrency takes effect once the worker is empty (as in the SDK's own loop),
    # then three jobs run at once.
    more = [ep.run({"sleep": 2.0, "m": i}) for i in range(3)]
    wait_for(lambda: most_at_once() == 3, timeout=40, what="three jobs at once")
    for j in [*jobs, *more]:
        assert j.output(timeout=60)["echo"]["sleep"] in (1.0, 2.0)


def unknown_sdk(tmp: Path) -> Path:
    """A copy of the installed runpod SDK whose job loop differs from every release runplane
    knows (one wait changed), as a future release would: a directory to put on PYTHONPATH."""
    source = Path(runpod.__file__).parent
    root = tmp / "future-sdk"
    shutil.copytree(source, root / "runpod", ignore=shutil.ignore_patterns("__pycache__"))
    scale = root / "runpod" / "serverless" / "modules" / "rp_scale.py"
    text = scale.read_text()
    assert "await asyncio.sleep(1)  # don't go rapidly" in text
    scale.write_text(text.replace("await asyncio.sleep(1)  # don't go rapidly",
                                  "await asyncio.sleep(0.5)  # don't go rapidly"))
    return root


def test_an_sdk_it_does_not_know_runs_its_own_loop_and_says_so(
        live: LiveServer, workers: Workers, new_endpoint, tmp_path: Path) -> None:
    if not workers.accelerated:
        pytest.skip("only meaningful with the accelerator on")
    ep_id = new_endpoint()
    # First on the path, as a worker's own install would be (the rest is this test run's).
    path = ":".join(p for p in (str(unknown_sdk(tmp_path)), os.environ.get("PYTHONPATH")) if p)
    proc = workers.start(ep_id, "sync", PYTHONPATH=path)
    ep = sdk_endpoint(live, ep_id)
    assert ep.run_sync({"u": 1}, timeout=60)["echo"] == {"u": 1}
    job = ep.run({"u": 2})
    assert job.output(timeout=60)["echo"] == {"u": 2}
    shown = accelerator_of(live, ep_id)
    assert shown.startswith(f"off: runpod {runpod.__version__}'s job loop is not one runplane knows")
    log = (workers.tmp / f"worker-sync-{workers.procs.index(proc)}.log").read_text()
    assert "runplane accelerator: off: the job loop of runpod" in log


def test_the_server_setting_turns_it_off(tmp_path: Path) -> None:
    srv = make_live_server(tmp_path / "srv", **FAST_ENV, RUNPLANE_BROKER__ACCELERATOR="false")
    srv.start()
    workers = Workers(srv, tmp_path, accelerated=True)  # the worker's own switch is on
    try:
        with srv.client() as c:
            t = c.post("/v1/templates", json={"name": "t", "imageName": "runplane/local:.",
                                              "isServerless": True}).json()
            ep_id = c.post("/v1/endpoints", json={"templateId": t["id"], "name": "off"}).json()["id"]
        workers.start(ep_id, "sync")
        ep = sdk_endpoint(srv, ep_id)
        assert ep.run_sync({"o": 1}, timeout=60)["echo"] == {"o": 1}
        assert accelerator_of(srv, ep_id).startswith("off (not loaded")
        job = ep.run({"o": 2})
        assert job.output(timeout=60)["echo"] == {"o": 2}
        assert status(srv, ep_id, job.job_id)["status"] == "COMPLETED"
    finally:
        workers.stop_all()
        srv.stop()


def test_controller_workers_are_accelerated_unless_the_endpoint_says_not(tmp_path: Path) -> None:
    """Process workers the controller starts get the accelerator from the process runtime;
    an endpoint's env RUNPLANE_ACCELERATOR=0 (on top of its template's) turns it off."""
    from tests.e2e.scaling_kit import fast_server, final, make_endpoint, run, workers

    srv = fast_server(tmp_path / "srv")
    for name in ("on", "off"):
        (tmp_path / name).mkdir()
    try:
        with srv.client() as c:
            on, _ = make_endpoint(c, tmp_path / "on", workersMin=1)
            off, _ = make_endpoint(c, tmp_path / "off", workersMin=1,
                                   env={"RUNPLANE_ACCELERATOR": "0"})
            for ep in (on, off):
                assert final(c, ep, run(c, ep, {"x": 1}), 120)["status"] == "COMPLETED"
            shown = {ep: wait_for(lambda ep=ep: [w["accelerator"] for w in workers(c, ep)
                                                 if w.get("accelerator")], what="a report")
                     for ep in (on, off)}
            assert shown[on] == [f"on (runpod {runpod.__version__})"]
            assert shown[off][0].startswith("off (not loaded")
    finally:
        srv.stop()
