"""The load balancer's pure decisions, as tables: the affinity header, the choice of worker,
what a health check's answer means, the endpoint's URLs and the worker's ports."""

from __future__ import annotations

import pytest

from runplane.controller.specs import http_ports
from runplane.lb.affinity import PREFER, STRICT, STRICT_RESUME, Affinity, BadAffinity, parse
from runplane.lb.balance import GONE, OUT, PARKED, READY, STARTING, WAIT, Candidate, Choice, choose
from runplane.lb.health import HEALTHY, INITIALIZING, UNHEALTHY, ProbeState, classify, judge
from runplane.lb.urls import base_url, endpoint_of_host
from runplane.providers.base import HttpPorts, WorkerSpec
from runplane.providers.http_ports import HttpAddress, address_of, resolve


@pytest.mark.parametrize("header, expected", [
    (None, None),
    ("", None),
    ("   ", None),
    ("w1", Affinity("w1", PREFER)),
    (" w1 ", Affinity("w1", PREFER)),
    ("strict w1", Affinity("w1", STRICT)),
    ("STRICT w1", Affinity("w1", STRICT)),
    ("strict-resume w1", Affinity("w1", STRICT_RESUME)),
])
def test_affinity_header(header: str | None, expected: Affinity | None) -> None:
    assert parse(header) == expected


@pytest.mark.parametrize("header", ["strict", "strict a b", "loose w1", "w/1", "strict ../x",
                                    "x" * 65])
def test_bad_affinity_header(header: str) -> None:
    with pytest.raises(BadAffinity):
        parse(header)


A, B, C = "a", "b", "c"


@pytest.mark.parametrize("workers, affinity, turn, expected", [
    # No affinity: the least in flight; none ready: wait.
    ([], None, 0, WAIT),
    ([Candidate(A, STARTING)], None, 0, WAIT),
    ([Candidate(A, READY, 2), Candidate(B, READY, 1)], None, 0, Choice(B)),
    ([Candidate(A, READY, 0), Candidate(B, OUT, 0), Candidate(C, PARKED, 0)], None, 0, Choice(A)),
    # Ties take turns.
    ([Candidate(A, READY, 1), Candidate(B, READY, 1), Candidate(C, READY, 3)], None, 0, Choice(A)),
    ([Candidate(A, READY, 1), Candidate(B, READY, 1), Candidate(C, READY, 3)], None, 1, Choice(B)),
    ([Candidate(A, READY, 1), Candidate(B, READY, 1), Candidate(C, READY, 3)], None, 2, Choice(A)),
    # Soft: the named worker even when busier; else the least loaded.
    ([Candidate(A, READY, 5), Candidate(B, READY, 0)], Affinity(A), 0, Choice(A)),
    ([Candidate(A, STARTING), Candidate(B, READY, 3)], Affinity(A), 0, Choice(B)),
    ([Candidate(B, READY, 3)], Affinity("gone"), 0, Choice(B)),
    ([Candidate(A, PARKED)], Affinity(A), 0, WAIT),
    # Strict: only it; waiting while it is not ready; gone when missing or out.
    ([Candidate(A, READY, 9), Candidate(B, READY, 0)], Affinity(A, STRICT), 0, Choice(A)),
    ([Candidate(A, STARTING), Candidate(B, READY, 0)], Affinity(A, STRICT), 0, WAIT),
    ([Candidate(A, PARKED), Candidate(B, READY, 0)], Affinity(A, STRICT), 0, WAIT),
    ([Candidate(B, READY)], Affinity(A, STRICT), 0, GONE),
    ([Candidate(A, OUT), Candidate(B, READY)], Affinity(A, STRICT), 0, GONE),
    # Strict-resume: a parked worker is woken first.
    ([Candidate(A, PARKED), Candidate(B, READY)], Affinity(A, STRICT_RESUME), 0,
     Choice(wait=True, resume=A)),
    ([Candidate(A, STARTING)], Affinity(A, STRICT_RESUME), 0, WAIT),
    ([Candidate(A, READY)], Affinity(A, STRICT_RESUME), 0, Choice(A)),
    # ... and a missing or leaving one may be started again (a scaled-down worker).
    ([], Affinity(A, STRICT_RESUME), 0, Choice(gone=True, restart=A)),
    ([Candidate(A, OUT)], Affinity(A, STRICT_RESUME), 0, Choice(gone=True, restart=A)),
    ([], Affinity(A, STRICT), 0, GONE),  # strict alone never starts one again
])
def test_choose(workers: list[Candidate], affinity: Affinity | None, turn: int,
                expected: Choice) -> None:
    assert choose(workers, affinity, turn) == expected


@pytest.mark.parametrize("status, kind", [
    (200, HEALTHY), (204, INITIALIZING), (500, UNHEALTHY), (404, UNHEALTHY), (201, UNHEALTHY),
    (301, UNHEALTHY), (None, UNHEALTHY)])
def test_classify(status: int | None, kind: str) -> None:
    assert classify(status) == kind


def run_checks(answers: list[int | None], unhealthy_after: int = 2) -> tuple[ProbeState, list]:
    state = ProbeState()
    out = []
    for t, status in enumerate(answers):
        v = judge(state, status, float(t), unhealthy_after, "refused")
        out.append((v.became_ready, v.cold_start_s, v.initializing, v.unhealthy))
    return state, out


@pytest.mark.parametrize("answers, last, healthy, events", [
    # Not listening yet, then loading (204 at t=2), then ready at t=4: cold start 2 s.
    ([None, None, 204, 204, 200], (True, 2.0, False, False), True,
     [(False, None, False, False)] * 2 + [(False, None, True, False)]),
    # Ready at once: no 204, no cold start of RunPod's kind.
    ([200], (True, None, False, False), True, []),
    # Two failures in a row after it answered: unhealthy (once).
    ([200, 500, 500], (False, None, False, True), False, []),
    ([200, None, None], (False, None, False, True), False, []),
    # A failure then a 200: counted again from zero, not unhealthy.
    ([200, 500, 200, 500], (False, None, False, False), False, []),
    # A 500 while loading is a failure too (RunPod: anything else is unhealthy).
    ([204, 503, 503], (False, None, False, True), False, []),
    # Past the limit nothing more is reported.
    ([200, 500, 500, 500], (False, None, False, False), False, []),
])
def test_health_checks(answers: list[int | None], last: tuple, healthy: bool,
                       events: list) -> None:
    state, out = run_checks(answers)
    assert out[-1] == last
    assert state.healthy is healthy
    assert out[:len(events)] == events


@pytest.mark.parametrize("api, domain, expected", [
    ("http://127.0.0.1:8000", "", "http://127.0.0.1:8000/lb/ep1"),
    ("https://rp.example.com/", "", "https://rp.example.com/lb/ep1"),
    ("https://rp.example.com", "lb.example.com", "https://ep1.lb.example.com"),
    ("http://10.0.0.1:8000", "lb.test", "http://ep1.lb.test"),
])
def test_base_url(api: str, domain: str, expected: str) -> None:
    assert base_url("ep1", api, domain) == expected


@pytest.mark.parametrize("host, domain, expected", [
    ("ep1.lb.example.com", "lb.example.com", "ep1"),
    ("EP1.LB.example.com:8443", "lb.example.com", "ep1"),
    ("ep1.lb.example.com.", "lb.example.com", "ep1"),
    ("lb.example.com", "lb.example.com", None),
    ("a.b.lb.example.com", "lb.example.com", None),
    ("ep1.other.com", "lb.example.com", None),
    ("evillb.example.com", "lb.example.com", None),
    ("ep1.lb.example.com", "", None),
    ("", "lb.example.com", None),
])
def test_endpoint_of_host(host: str, domain: str, expected: str | None) -> None:
    assert endpoint_of_host(host, domain) == expected


@pytest.mark.parametrize("fields, expected", [
    ({}, HttpPorts(80, 80)),
    ({"ports": ["8000/http", "22/tcp"]}, HttpPorts(8000, 8000)),
    ({"env": {"PORT": "5000"}, "ports": ["8000/http"]}, HttpPorts(5000, 5000)),
    ({"env": {"PORT": "5000", "PORT_HEALTH": "5001"}}, HttpPorts(5000, 5001)),
    ({"env": {"PORT": "nope", "PORT_HEALTH": "99999"}}, HttpPorts(80, 80)),
])
def test_requested_ports(fields: dict, expected: HttpPorts) -> None:
    assert http_ports(fields) == expected


def spec(http: HttpPorts | None) -> WorkerSpec:
    from pathlib import Path
    return WorkerSpec("w1", "local:/x", ["x"], {"PORT": "1"}, Path("/tmp/w1.log"), http=http)


def test_host_ports_are_free_ports_in_the_environment() -> None:
    one = resolve(spec(HttpPorts(8000, 8000)), "127.0.0.1", mapped=False, bind_host="127.0.0.1")
    assert one.http is not None and one.http.port == one.http.health_port != 8000
    assert one.env["PORT"] == one.env["PORT_HEALTH"] == str(one.http.port)
    two = resolve(spec(HttpPorts(8000, 8001)), "127.0.0.1", mapped=False, bind_host="127.0.0.1")
    assert two.http is not None and two.http.port != two.http.health_port
    assert address_of({"http": {"host": "127.0.0.1", "port": two.http.port,
                                "health_port": two.http.health_port}}) == \
        HttpAddress("127.0.0.1", two.http.port, two.http.health_port)


def test_mapped_ports_keep_the_apps_own_and_are_published() -> None:
    s = resolve(spec(HttpPorts(8000, 8000)), "127.0.0.1", mapped=True)
    assert s.env["PORT"] == "8000" and "8000/http" in s.container.ports
    data = {"http": {"host": "127.0.0.1", "port": 8000, "health_port": 8000, "mapped": True},
            "portMappings": {"8000": 41234}}
    assert address_of(data) == HttpAddress("127.0.0.1", 41234, 41234)
    assert address_of({**data, "portMappings": {}}) is None  # not published (yet)


@pytest.mark.parametrize("data", [{}, {"http": None}, {"http": {"host": ""}},
                                  {"http": {"host": "h", "port": "x", "health_port": 1}}])
def test_no_address(data: dict) -> None:
    assert address_of(data) is None


def test_queue_workers_are_left_as_they_are() -> None:
    s = spec(None)
    assert resolve(s, "127.0.0.1", mapped=False) is s


@pytest.mark.parametrize("path, query, target", [
    ("/v1/chat", "", "http://127.0.0.1:9000/v1/chat"),
    ("/a%2Fb", "x=1&y=%20", "http://127.0.0.1:9000/a%2Fb?x=1&y=%20"),
    # Paths that would name another host if parsed stay paths on the worker.
    ("//evil.example/x", "", "http://127.0.0.1:9000//evil.example/x"),
    ("/@evil.example/x", "", "http://127.0.0.1:9000/@evil.example/x"),
    ("/http://evil.example/", "", "http://127.0.0.1:9000/http://evil.example/"),
    ("x", "", "http://127.0.0.1:9000/x"),
])
def test_requests_only_reach_the_workers_own_address(path: str, query: str, target: str) -> None:
    url = HttpAddress("127.0.0.1", 9000, 9001).target(path, query)
    assert (url.host, url.port) == ("127.0.0.1", 9000)
    assert str(url) == target
