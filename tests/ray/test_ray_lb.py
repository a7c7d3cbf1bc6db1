"""A load-balancing endpoint on the Ray provider: the example FastAPI worker started as a Ray
actor's process on a node, its ports chosen on that node, reached at the node's address."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.e2e.scaling_kit import wait_for
from tests.ray.conftest import RayNodes
from tests.ray.kit import log_says, ray_server

pytest.importorskip("ray")

WORKER_DIR = Path(__file__).resolve().parents[2] / "examples" / "lb_worker"


def test_requests_reach_a_worker_on_a_ray_node(ray_cluster: RayNodes, tmp_path: Path) -> None:
    srv = ray_server(tmp_path, ray_cluster.address)
    try:
        with srv.client() as c:
            r = c.post("/v1/templates", json={
                "name": "ray-lb", "imageName": f"local:{WORKER_DIR}", "isServerless": True,
                "dockerStartCmd": [sys.executable, "app.py"], "env": {"LOAD_SECONDS": "0.5"}})
            assert r.status_code == 200, r.text
            r = c.post("/v2/serverless", json={
                "name": "ray-lb", "type": "LOAD_BALANCER", "templateId": r.json()["id"],
                "cpu": [{"id": "cpu3c", "vcpuCount": 2}], "dataCenterIds": ["HOME-1"],
                "scaling": {"type": "REQUEST_COUNT", "requestCount": 1}})
            assert r.status_code == 201, r.text
            ep = r.json()["id"]
            # The CPU node offers one CPU: the endpoint's vCPUs come from the v1 view.
            assert c.patch(f"/v1/endpoints/{ep}", json={"vcpuCount": 1}).status_code == 200
            r = wait_for(lambda: (r := c.get(f"/lb/{ep}/hello", timeout=120)).status_code == 200
                         and r, 120, "an answer through the Ray worker")
            worker = r.headers["x-runpod-worker-id"]
            assert r.json()["worker"] == worker
            log_says(c, worker, f"on Ray node {ray_cluster.node_id('cpu')}")
    finally:
        srv.stop()
