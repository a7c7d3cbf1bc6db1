"""/v1/billing: reports aggregated from usage records, filters, groupings, bad queries,
network volumes billed per GB-month over their lifetime, and per-user isolation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from runplane.clock import ManualClock
from runplane.config import load_settings
from runplane.server import build_services, create_app
from runplane.services.volumes import HOURS_PER_MONTH
from tests.conftest import client_for

T0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


class Env:
    def __init__(self, data_dir) -> None:  # type: ignore[no-untyped-def]
        self.clock = ManualClock(T0)
        settings = load_settings(data_dir=data_dir)
        self.services = build_services(settings, clock=self.clock)
        users = self.services.users
        self.alice = users.create_user("alice")
        self.bob = users.create_user("bob")
        admin = users.create_user("root", is_admin=True)
        self.app = create_app(self.services)
        self.keys = {n: users.create_key(u).secret
                     for n, u in (("alice", self.alice), ("bob", self.bob), ("admin", admin))}

    def record(self, user: str, **kw: object) -> None:
        base = dict(kind="endpoint", resource_id="ep1", pod_id="w1", gpu_type_id="NVIDIA A40",
                    data_center_id="EU-RO-1", template_id="t1", image_name="img:1",
                    start_at=T0 + 3600, end_at=T0 + 7200, usd_per_hr=1.0)
        self.services.billing.record_usage(user_id=user, **(base | kw))  # type: ignore[arg-type]


@pytest.fixture
async def env(data_dir) -> AsyncIterator[tuple[Env, httpx.AsyncClient]]:  # type: ignore[no-untyped-def]
    e = Env(data_dir)
    async with client_for(e, e.keys["alice"]) as c:  # type: ignore[arg-type]
        yield e, c
    e.services.engine.dispose()


WINDOW = {"startTime": "2024-01-01T00:00:00Z", "endTime": "2024-01-02T00:00:00Z"}


async def test_endpoint_report_groups_and_filters(env: tuple[Env, httpx.AsyncClient]) -> None:
    e, c = env
    e.record(e.alice)
    e.record(e.alice, resource_id="ep2", pod_id="w2", gpu_type_id="NVIDIA H200",
             data_center_id="US-TX-3", template_id="t2", image_name="img:2", usd_per_hr=4.0)
    e.record(e.bob, resource_id="ep9", usd_per_hr=100.0)

    async def report(**params: object) -> list[dict]:
        r = await c.get("/v1/billing/endpoints", params={**WINDOW, **params})
        assert r.status_code == 200, r.text
        return r.json()

    by_endpoint = await report()
    assert [(r["endpointId"], r["amount"], r["timeBilledMs"]) for r in by_endpoint] == [
        ("ep1", 1.0, 3_600_000), ("ep2", 4.0, 3_600_000)]
    assert all(r["time"] == "2024-01-01T00:00:00Z" for r in by_endpoint)
    assert [r["podId"] for r in await report(grouping="podId")] == ["w1", "w2"]
    assert [r["gpuTypeId"] for r in await report(grouping="gpuTypeId")] == [
        "NVIDIA A40", "NVIDIA H200"]
    assert [r["endpointId"] for r in await report(endpointId="ep2")] == ["ep2"]
    assert [r["endpointId"] for r in await report(gpuTypeId="NVIDIA H200")] == ["ep2"]
    assert len(await report(gpuTypeId=["NVIDIA H200", "NVIDIA A40"])) == 2
    assert [r["endpointId"] for r in await report(dataCenterId="US-TX-3")] == ["ep2"]
    assert [r["endpointId"] for r in await report(imageName="img:1")] == ["ep1"]
    assert [r["endpointId"] for r in await report(templateId="t2")] == ["ep2"]
    hourly = await report(bucketSize="hour")
    assert {r["time"] for r in hourly} == {"2024-01-01T01:00:00Z"}
    # Bob's usage is his alone; an admin sees everyone's.
    assert "ep9" not in {r["endpointId"] for r in await report(endpointId="ep9")}
    async with client_for(e, e.keys["admin"]) as admin:  # type: ignore[arg-type]
        r = await admin.get("/v1/billing/endpoints", params=WINDOW)
        assert {x["endpointId"] for x in r.json()} == {"ep1", "ep2", "ep9"}


async def test_pod_report(env: tuple[Env, httpx.AsyncClient]) -> None:
    e, c = env
    e.record(e.alice, kind="pod", resource_id="pod1", pod_id="pod1", usd_per_hr=2.0)
    e.record(e.alice, kind="pod", resource_id="pod2", pod_id="pod2", gpu_type_id="NVIDIA L4")
    r = await c.get("/v1/billing/pods", params=WINDOW)
    assert [(x["gpuTypeId"], x["amount"]) for x in r.json()] == [("NVIDIA A40", 2.0), ("NVIDIA L4", 1.0)]
    r = await c.get("/v1/billing/pods", params={**WINDOW, "grouping": "podId", "podId": "pod2"})
    assert [x["podId"] for x in r.json()] == ["pod2"]
    # Endpoint usage is not pod usage.
    e.record(e.alice)
    r = await c.get("/v1/billing/pods", params={**WINDOW, "gpuTypeId": "NVIDIA L4"})
    assert len(r.json()) == 1


async def test_network_volume_billed_per_gb_month_over_lifetime(
    env: tuple[Env, httpx.AsyncClient]
) -> None:
    e, c = env
    price = e.services.settings.network_volume_usd_per_gb_month
    v = (await c.post("/v1/networkvolumes",
                      json={"name": "v", "size": 100, "dataCenterId": "EU-RO-1"})).json()
    e.clock.advance(86400)  # a day at 100 GB
    await c.patch(f"/v1/networkvolumes/{v['id']}", json={"size": 200})
    e.clock.advance(43200)  # half a day at 200 GB
    await c.delete(f"/v1/networkvolumes/{v['id']}")
    e.clock.advance(86400 * 3)  # deleted: nothing more
    r = await c.get("/v1/billing/networkvolumes",
                    params={"startTime": "2024-01-01T00:00:00Z", "endTime": "2024-01-05T00:00:00Z"})
    assert r.status_code == 200
    days = r.json()
    per_hour = price / HOURS_PER_MONTH
    assert [d["time"] for d in days] == ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"]
    assert days[0]["amount"] == pytest.approx(100 * 24 * per_hour, abs=1e-6)
    assert days[1]["amount"] == pytest.approx(200 * 12 * per_hour, abs=1e-6)
    assert [d["diskSpaceBilledGb"] for d in days] == [100, 200]
    assert days[0]["highPerformanceStorageAmount"] == 0


async def test_open_volume_accrues_to_now_and_default_window(env: tuple[Env, httpx.AsyncClient]) -> None:
    e, c = env
    await c.post("/v1/networkvolumes", json={"name": "v", "size": 730, "dataCenterId": "EU-RO-1"})
    e.clock.advance(3600)
    r = await c.get("/v1/billing/networkvolumes")  # default: last 30 days, daily
    total = sum(d["amount"] for d in r.json())
    assert total == pytest.approx(730 * e.services.settings.network_volume_usd_per_gb_month / 730)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/billing/endpoints", {"bucketSize": "minute"}, "bucketSize"),
        ("/v1/billing/endpoints", {"grouping": "templateId"}, "grouping"),
        ("/v1/billing/endpoints", {"startTime": "yesterday"}, "startTime"),
        ("/v1/billing/endpoints", {"endTime": "2024-13-01"}, "endTime"),
        ("/v1/billing/endpoints", {"startTime": "2024-02-01", "endTime": "2024-01-01"}, "endTime"),
        ("/v1/billing/endpoints", {"gpuTypeId": "NVIDIA GTX 1"}, "gpuTypeId"),
        ("/v1/billing/endpoints", {"dataCenterId": "MARS-1"}, "dataCenterId"),
        ("/v1/billing/endpoints", {"bucketSize": "hour", "startTime": "2000-01-01"}, "bucketSize"),
        ("/v1/billing/pods", {"grouping": "endpointId"}, "grouping"),
        ("/v1/billing/pods", {"gpuTypeId": "nope"}, "gpuTypeId"),
        ("/v1/billing/networkvolumes", {"bucketSize": "decade"}, "bucketSize"),
    ],
)
async def test_bad_queries_are_400(
    env: tuple[Env, httpx.AsyncClient], path: str, params: dict, field: str
) -> None:
    _, c = env
    r = await c.get(path, params=params)
    assert r.status_code == 400 and r.json()["field"] == field, r.text


def test_record_usage_rejects_nonsense(data_dir) -> None:  # type: ignore[no-untyped-def]
    e = Env(data_dir)
    with pytest.raises(ValueError):
        e.record(e.alice, kind="gpu")
    with pytest.raises(ValueError):
        e.record(e.alice, start_at=T0 + 10, end_at=T0)
    e.services.engine.dispose()
