"""A client that hangs up on a load-balancing endpoint's stream: the proxy ends the request
on the worker too (an endless server-sent event stream would otherwise keep the worker busy,
and counted in flight, until the 5.5-minute processing limit)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.e2e.scaling_kit import fast_server, wait_for
from tests.e2e.test_load_balancing import LB, LIMITS, make_lb

pytestmark = pytest.mark.e2e


def test_a_client_that_hangs_up_on_a_stream_ends_it_on_the_worker(tmp_path: Path) -> None:
    srv = fast_server(tmp_path, RUNPLANE_LB=json.dumps(LB), RUNPLANE_LIMITS=LIMITS)
    try:
        c = srv.client()
        ep = make_lb(c, workers={"min": 1, "max": 1})
        wait_for(lambda: c.get(f"/lb/{ep}/hello", timeout=90).status_code == 200, 60,
                 "the worker")

        def in_progress() -> int:
            return int(c.get(f"/v2/{ep}/health").json()["jobs"]["inProgress"])

        # An event every 0.5 s for 5 minutes: one is read, then the client hangs up.
        with httpx.stream("GET", f"{srv.url}/lb/{ep}/stream", params={"n": 600, "delay": 0.5},
                          headers={"Authorization": f"Bearer {srv.user_key}"},
                          timeout=30) as s:
            lines = s.iter_lines()  # (kept: a dropped line iterator closes the connection)
            while not next(lines).startswith("data: "):
                pass
            wait_for(lambda: in_progress() == 1, 10, "the stream counted in flight")
            assert next(lines) == ""  # still streaming: the event's blank line
        wait_for(lambda: in_progress() == 0, 10, "the stream to end on the worker")
        # The endpoint serves on as before.
        assert c.get(f"/lb/{ep}/hello").status_code == 200
    finally:
        srv.stop()
