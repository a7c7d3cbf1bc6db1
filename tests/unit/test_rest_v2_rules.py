"""Pure rules behind REST v2: availability levels from machine loads, billing windows,
release diffs, SSH key checks, and the SSE log stream over a real file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runplane.api.rest_v2.log_stream import LogQuery, log_events, parse_query
from runplane.catalog.machines import Gpu, Machine
from runplane.clock import Clock
from runplane.controller.scheduler import MachineLoad
from runplane.errors import Invalid
from runplane.services.availability import Availability, Scope, level
from runplane.services.billing.breakdowns import resolve_window
from runplane.services.releases import diff
from runplane.services.ssh_keys import normalized

A40 = "NVIDIA A40"


def machine(mid: str, dc: str, gpus: int, cuda: str = "12.4", secure: bool = True,
            cpus: int = 16) -> Machine:
    return Machine(id=mid, name=mid, cpu_type="x", cpu_count=cpus, memory_in_gb=64,
                   disk_in_gb=100, data_center_id=dc, location="", secure_cloud=secure,
                   support_public_ip=False, cost_per_gpu_hr=0.5, cost_per_vcpu_hr=0.01,
                   gpus=[Gpu(i, A40, 48, cuda) for i in range(gpus)])


@pytest.mark.parametrize(("units", "expected"), [(0, "NONE"), (1, "LOW"), (2, "MEDIUM"),
                                                 (3, "MEDIUM"), (4, "HIGH"), (40, "HIGH")])
def test_levels(units: int, expected: str) -> None:
    assert level(units) == expected


def test_gpu_availability_counts_free_gpus_per_data_center_and_cuda() -> None:
    busy = MachineLoad(machine("m1", "US-TX-3", 4, "12.4"), used_gpus={0, 1, 2})
    free = MachineLoad(machine("m2", "EU-RO-1", 8, "12.8"))
    community = MachineLoad(machine("m3", "EU-RO-1", 8, secure=False))
    avail = Availability(lambda: [busy, free, community])
    one = avail.gpu(A40, 1, Scope())
    assert one.data_centers == {"US-TX-3": "LOW", "EU-RO-1": "HIGH"}
    assert one.cuda_versions == {"12.4": True, "12.8": True}
    four = avail.gpu(A40, 4, Scope())
    assert four.data_centers == {"US-TX-3": "NONE", "EU-RO-1": "MEDIUM"}
    assert four.cuda_versions == {"12.4": False, "12.8": True}
    assert avail.gpu(A40, 1, Scope(min_cuda="12.5")).data_centers == {"US-TX-3": "NONE",
                                                                      "EU-RO-1": "HIGH"}
    assert avail.gpu(A40, 1, Scope(cuda_versions=frozenset({"12.4"}))).cuda_versions == \
        {"12.4": True}
    assert avail.gpu(A40, 1, Scope(placeable=False)).availability == "NONE"
    assert avail.gpu("NVIDIA H200", 1, Scope()).availability == "NONE"
    offer = avail.offer(A40)
    assert (offer.secure_max, offer.community_max, offer.secure_price) == (8, 8, 0.5)
    assert avail.gpu_types_in("US-TX-3") == {A40: "LOW"}


def test_cpu_availability_by_free_vcpus() -> None:
    avail = Availability(lambda: [MachineLoad(machine("m", "US-TX-3", 0, cpus=8),
                                              used_vcpus=4)])
    assert avail.cpu(2, Scope()) == ("MEDIUM", {"US-TX-3": "MEDIUM"})
    assert avail.cpu(8, Scope()) == ("NONE", {"US-TX-3": "NONE"})


NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("args", "start", "end"), [
    (("day", None, None, 3), "2026-11-29T00:00", "2026-12-02T00:00"),
    (("hour", None, None, 1), "2026-12-01T10:00", "2026-12-01T11:00"),
    (("day", "2026-11-03T05:00:00Z", "2026-11-05T00:00:00Z", None),
     "2026-11-03T00:00", "2026-11-05T00:00"),
    (("day", "2026-11-03T00:00:00Z", "2026-11-05T01:00:00Z", None),
     "2026-11-03T00:00", "2026-11-06T00:00"),
    (("month", None, None, 2), "2026-11-01T00:00", "2027-01-01T00:00"),
])
def test_billing_windows_snap_to_buckets(args: tuple, start: str, end: str) -> None:
    lo, hi = resolve_window(NOW, *args)
    assert (lo.strftime("%Y-%m-%dT%H:%M"), hi.strftime("%Y-%m-%dT%H:%M")) == (start, end)


@pytest.mark.parametrize("args", [("day", "2026-01-01T00:00:00Z", None, 2),
                                  ("day", "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", None),
                                  ("hour", "2020-01-01T00:00:00Z", None, None),
                                  ("day", "yesterday", None, None)])
def test_bad_billing_windows(args: tuple) -> None:
    with pytest.raises(Invalid):
        resolve_window(NOW, *args)


def test_release_diff() -> None:
    assert diff(None, {"a": 1}) == [{"field": "a", "old": None, "new": 1}]
    assert diff({"a": 1, "b": [1]}, {"a": 1, "b": [2]}) == [{"field": "b", "old": [1], "new": [2]}]
    assert diff({"a": 1}, {"a": 1}) == []


def test_ssh_keys() -> None:
    key = "ssh-ed25519 AAAA me@host"
    assert normalized([f"  {key} ", key]) == [key]
    for bad in ("AAAA only", "rsa AAAA x", "ssh-rsa"):
        with pytest.raises(Invalid):
            normalized([bad])


class FixedClock(Clock):
    def now(self) -> float:
        return NOW

    def monotonic(self) -> float:
        return 0.0


def _append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


async def collect(path: Path, q: LogQuery, running: list[bool]) -> list[str]:
    out = []
    async for event in log_events(path, [(NOW - 60, "started")], q, lambda: running[0],
                                  FixedClock()):
        out.append(event.decode())
        if len(out) == 4 and running[0]:
            await asyncio.to_thread(_append, path, "late line\n")
            running[0] = False
    return out


async def test_log_stream_tails_follows_and_resumes(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runplane.api.rest_v2.log_stream.POLL_S", 0.01)
    path = tmp_path / "w.log"
    path.write_text("one\ntwo\nthree\npartial")
    events = await collect(path, parse_query(None, 3, None, None), [True])
    lines = [e.split('"line":"')[1].split('"')[0] for e in events]
    assert lines == ["started", "one", "two", "three", "partiallate line"]
    assert events[0].startswith("id: ") and '"source":"system"' in events[0]
    resume = events[2].split("\n")[0][4:]  # after "two"
    again = await collect(path, parse_query("container", 100, None, resume), [False])
    assert [e.split('"line":"')[1].split('"')[0] for e in again] == ["three", "partiallate line"]
    since = await collect(path, parse_query("container", 100, "2999-01-01T00:00:00Z", None), [False])
    assert since == []
    with pytest.raises(Invalid):
        parse_query("stdout", 1, None, None)
    await asyncio.sleep(0)
