"""REST v2 against a real ``runplane serve`` and real ``runpod`` SDK workers: an endpoint
created inline through /v2/serverless serves jobs at its requestUrls, its live workers and
rollout come from the real processes, and a worker's logs stream as SSE while it runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.scaling_kit import fast_server, wait_for

pytestmark = pytest.mark.e2e

HANDLER = '''
import os
import runpod


def handler(job):
    print(f"v2 handler saw {job['input']!r} mode={os.environ.get('MODE')}", flush=True)
    return {"mode": os.environ.get("MODE")}


runpod.serverless.start({"handler": handler})
'''
LIMITS = json.dumps({"rest_v2_per_minute": 1_000_000, "rest_v2_per_hour": 1_000_000})


def _workers(c: httpx.Client, ep: str) -> dict[str, Any]:
    r = c.get(f"/v2/serverless/{ep}/workers")
    assert r.status_code == 200, r.text
    return r.json()


def test_v2_endpoint_serves_jobs_streams_logs_and_rolls_out(tmp_path: Path) -> None:
    app = tmp_path / "worker"
    app.mkdir()
    (app / "handler.py").write_text(HANDLER)
    srv = fast_server(tmp_path / "srv", RUNPLANE_LIMITS=LIMITS)
    try:
        with srv.client() as c:
            r = c.post("/v2/serverless", json={
                "name": "live", "type": "QUEUE", "image": f"local:{app}",
                "args": f"{sys.executable} handler.py", "env": {"MODE": "one"},
                "cpu": [{"id": "cpu3c", "vcpuCount": 2}], "workers": {"min": 1, "max": 1},
                "scaling": {"type": "QUEUE_DELAY", "queueDelay": 1}})
            assert r.status_code == 201, r.text
            ep = r.json()
            job = c.post(ep["requestUrls"]["runSync"], json={"input": {"n": 1}}, timeout=120)
            assert job.status_code == 200 and job.json()["output"] == {"mode": "one"}, job.text
            ready = wait_for(lambda: [w for w in _workers(c, ep["id"])["workers"]
                                      if w["status"] in ("IDLE", "RUNNING")], 60, "a ready worker")
            worker = ready[0]
            assert worker["version"] == 0 and not worker["isStale"] and worker["startedAt"]
            # The logs stream while the worker runs: a job sent now shows up in the stream.
            url = f"/v2/serverless/{ep['id']}/workers/{worker['id']}/logs"
            with c.stream("GET", url, params={"source": "container", "tail": 0},
                          timeout=60) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                assert c.post(f"/v2/{ep['id']}/run", json={"input": {"n": 2}}).status_code == 200
                seen = ""
                for chunk in stream.iter_text():
                    seen += chunk
                    if "v2 handler saw {'n': 2}" in seen:
                        break
            assert seen.startswith("id: ") and '"source":"container"' in seen
            # A change is a release; the controller replaces the stale worker, and the
            # rollout reaches every worker.
            assert c.patch(f"/v2/serverless/{ep['id']}", json={"env": {"MODE": "two"}}).json()[
                "env"] == {"MODE": "two"}

            def rolled_out() -> dict[str, Any] | None:
                body = c.get(f"/v2/serverless/{ep['id']}/releases").json()
                rollout = body["rollout"]
                return body if rollout["workersTotal"] and rollout["percentOnLatest"] == 100 \
                    else None

            body = wait_for(rolled_out, 90, "the new release on every worker")
            assert body["endpointVersion"] == 1 and body["releases"][0]["workerCount"] >= 1
            job = c.post(ep["requestUrls"]["runSync"], json={"input": {"n": 3}}, timeout=120)
            assert job.json()["output"] == {"mode": "two"}
            # The catalog sees this host's CPUs.
            cpus = c.get("/v2/catalog/cpus/cpu3c",
                         params={"include": "AVAILABILITY", "product": "SERVERLESS"}).json()
            assert cpus["availability"] in ("LOW", "MEDIUM", "HIGH")
    finally:
        srv.stop()
