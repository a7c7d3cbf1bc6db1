"""deploy/grafana/runplane.json is current, well formed, and only uses metrics the server
exposes (an empty server lists every metric family, samples or not)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_server

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "runplane.json"


def _builder():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_dashboard",
                                                  DEPLOY / "grafana" / "build_dashboard.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dashboard_json_is_current() -> None:
    assert DASHBOARD.read_text() == _builder().render(), \
        "run: python deploy/grafana/build_dashboard.py"


def test_dashboard_is_a_grafana_model() -> None:
    d = json.loads(DASHBOARD.read_text())
    assert d["uid"] == "runplane" and d["schemaVersion"] >= 36
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        if p["type"] != "row":
            assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]
            assert p["datasource"]["uid"] == "${datasource}"
    names = {v["name"] for v in d["templating"]["list"]}
    assert names == {"datasource", "endpoint"}


async def test_dashboard_uses_only_exposed_metrics(tmp_path: Path) -> None:
    srv = make_server(tmp_path / "data")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=srv.app),
                                     base_url="http://runplane.test",
                                     headers={"Authorization": f"Bearer {srv.admin_key}"}) as c:
            text = (await c.get("/metrics")).text
    finally:
        srv.services.broker.close()
        srv.services.engine.dispose()
    exposed = {f.name for f in text_string_to_metric_families(text)}
    used = set(re.findall(r"\brunplane_[a-z_]+", DASHBOARD.read_text()))
    assert used
    suffix = re.compile(r"_(bucket|sum|count|total)$")
    missing = {name for name in used if suffix.sub("", name) not in exposed and name not in exposed}
    assert not missing, missing
