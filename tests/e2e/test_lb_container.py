"""Load-balancing workers as containers (podman, the e2e test image, which has FastAPI and
uvicorn with the runpod SDK): on the host network the worker gets free host ports in PORT;
on a network of its own (the default) or a shared container network it keeps its own PORT,
published on a free host port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.scaling_kit import fast_server, wait_for
from tests.e2e.test_container import IMAGE, _podman_ready

pytestmark = pytest.mark.e2e

APP = (Path(__file__).resolve().parents[2] / "examples" / "lb_worker" / "app.py").read_text()


@pytest.mark.parametrize("network", ["private", "host", "bridge"])
def test_a_container_worker_serves_through_the_proxy(network: str, tmp_path: Path) -> None:
    why = _podman_ready()
    if why:
        pytest.skip(why)
    srv = fast_server(tmp_path, RUNPLANE_CONTAINER=json.dumps({"network": network}),
                      RUNPLANE_LB=json.dumps({"health_interval_starting_s": 0.1}))
    try:
        with srv.client() as c:
            r = c.post("/v2/serverless", json={
                "name": f"lb-{network}", "type": "LOAD_BALANCER", "image": IMAGE,
                "ports": ["8000/http"], "env": {"LOAD_SECONDS": "0.5"},
                "cpu": [{"id": "cpu3c", "vcpuCount": 2}],
                "scaling": {"type": "REQUEST_COUNT", "requestCount": 2}})
            assert r.status_code == 201, r.text
            ep = r.json()["id"]
            # The app's code as its command (the image has FastAPI; its own CMD is a handler).
            tpl = r.json()["templateId"]
            assert c.patch(f"/v1/templates/{tpl}", json={
                "dockerStartCmd": ["python", "-u", "-c", APP]}).status_code == 200
            r = wait_for(lambda: (r := c.get(f"/lb/{ep}/hello", timeout=120)).status_code == 200
                         and r, 180, "an answer from the container")
            worker = r.headers["x-runpod-worker-id"]
            assert r.json()["worker"] == worker
            with c.stream("GET", f"/lb/{ep}/stream", params={"n": 3, "delay": 0.1}) as s:
                events = [ln for ln in s.iter_lines() if ln.startswith("data: ")]
            assert len(events) == 3
    finally:
        srv.stop()
