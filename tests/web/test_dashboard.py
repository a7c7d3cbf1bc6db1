"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against a real
``runplane serve`` with real runpod SDK workers started by the autoscaler.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``; scripts/test.sh installs it when run
as root) and the ``playwright`` Python package; never downloads a browser. The endpoint page
under load is saved to ``test-artifacts/endpoint-under-load.png``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.scaling_kit import fast_server, final, run, wait_for

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test.sh does, as "
                "root)", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
expect = playwright_api.expect

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]

# A streaming handler that logs through the SDK's logger: with RUNPOD_ENDPOINT_ID set, the SDK
# writes JSON lines carrying the job id ("requestId"), which the job page filters on.
HANDLER = '''
import time
import runpod

log = runpod.RunPodLogger()


def handler(job):
    inp = job["input"]
    log.info(f"working on item {inp.get('n')}", request_id=job["id"])
    for i in range(inp.get("chunks", 2)):
        time.sleep(inp.get("sleep", 0.2))
        yield {"chunk": i, "n": inp.get("n")}


runpod.serverless.start({"handler": handler, "return_aggregate_stream": True})
'''


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = fast_server(tmp_path_factory.mktemp("web"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def template_id(srv: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    app = tmp_path_factory.mktemp("worker")
    (app / "handler.py").write_text(HANDLER)
    with srv.client() as c:
        r = c.post("/v1/templates", json={
            "name": "web-streamer", "imageName": f"local:{app}", "isServerless": True,
            "dockerStartCmd": [sys.executable, "-u", "handler.py"],
            "env": {"RUNPOD_LOG_LEVEL": "INFO"},
        })
        assert r.status_code == 200, r.text
        return r.json()["id"]


def make_endpoint(srv: LiveServer, template_id: str, **fields: Any) -> str:
    body = {"name": "web", "templateId": template_id, "computeType": "CPU", "vcpuCount": 1,
            "workersMin": 0, "workersMax": 2, "idleTimeout": 5, "scalerType": "REQUEST_COUNT",
            "scalerValue": 1, **fields}
    with srv.client() as c:
        r = c.post("/v1/endpoints", json=body)
        assert r.status_code == 200, r.text
        return r.json()["id"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def open_page(browser: Any, srv: LiveServer, key: str | None, path: str = "/") -> Any:
    """A fresh browser context (its own localStorage), logged in with ``key`` when given."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    if key:
        context.add_init_script(f"localStorage.setItem('runplane.apiKey', {json.dumps(key)})")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(srv.url + path)
    return page


def refreshes(page: Any) -> int:
    return int(page.evaluate("window.runplane.refreshes"))


def wait_refreshes(page: Any, n: int = 2) -> None:
    """Wait until the page has polled the server ``n`` more times (live, without reload)."""
    start = refreshes(page)
    # Functions, not expressions: the page's CSP forbids the eval an expression needs.
    page.wait_for_function(f"() => window.runplane.refreshes >= {start + n}", timeout=20_000)


def chart_has_data(name: str) -> str:
    return f"() => document.querySelector('[data-chart={name}]').dataset.nonzero === 'true'"


def test_login_shows_the_server_error_then_lists_endpoints(
        srv: LiveServer, template_id: str, browser: Any) -> None:
    eid = make_endpoint(srv, template_id, name="listed-endpoint")
    page = open_page(browser, srv, None)
    key = page.locator("#login-key")
    key.fill("not-a-key")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).not_to_be_empty()
    with httpx.Client() as c:  # the page shows the server's own words
        message = c.get(f"{srv.url}/v1/endpoints",
                        headers={"Authorization": "Bearer not-a-key"}).json()["message"]
    expect(page.locator("#login-error")).to_have_text(message)
    expect(key).to_have_value("not-a-key")

    key.fill(srv.user_key)
    page.get_by_role("button", name="Log in").click()
    row = page.locator(f'#endpoints-table tr[data-endpoint-id="{eid}"]')
    expect(row).to_contain_text("listed-endpoint")
    expect(row.locator(".queue-depth")).to_have_text("0")
    assert page.evaluate("localStorage.getItem('runplane.apiKey')") == srv.user_key

    # Jobs arrive: the list's queue depth follows without a reload (workersMax 0 keeps them).
    with srv.client() as c:
        c.patch(f"/v1/endpoints/{eid}", json={"workersMax": 0}).raise_for_status()
        boot = page.evaluate("window.runplane.bootId")
        for i in range(3):
            run(c, eid, {"n": i})
        expect(row.locator(".queue-depth")).to_have_text("3", timeout=15_000)
        assert page.evaluate("window.runplane.bootId") == boot
        c.post(f"/v2/{eid}/purge-queue").raise_for_status()

    # A hidden tab stops polling; showing it again resumes at once.
    set_hidden = ("h => { Object.defineProperty(document, 'hidden', {value: h, configurable: true});"
                  " document.dispatchEvent(new Event('visibilitychange')); }")
    page.evaluate(set_hidden, True)
    before = refreshes(page)
    page.wait_for_timeout(4500)
    assert refreshes(page) <= before + 1  # at most the poll that was already in flight
    expect(page.locator("#live")).to_have_attribute("data-state", "paused")
    page.evaluate(set_hidden, False)
    wait_refreshes(page, 1)

    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#login-key")).to_be_visible()
    assert not page.errors, page.errors


def test_endpoint_page_under_load(srv: LiveServer, template_id: str, browser: Any) -> None:
    eid = make_endpoint(srv, template_id, name="sdxl-under-load", workersMax=3)
    page = open_page(browser, srv, srv.user_key, f"/#/endpoints/{eid}")
    expect(page.locator("#endpoint-page h1")).to_have_text("sdxl-under-load")
    boot = page.evaluate("window.runplane.bootId")

    with srv.client() as c:
        # Jobs long enough that a worker is running most of the time: the SDK idles ~1 s between
        # jobs, and a page polling every ~2 s could otherwise keep sampling the idle moments.
        jobs = [run(c, eid, {"n": i, "sleep": 1.5, "chunks": 2}) for i in range(15)]
        # Workers appear and run jobs while the rest wait in the queue: all without reload.
        expect(page.locator('#queue-table tr[data-job-id]').first).to_be_visible(timeout=15_000)
        running = page.locator('#workers-table tr[data-state="RUNNING"]')
        expect(running.first).to_be_visible(timeout=60_000)
        expect(running.first.locator("td").nth(5).locator("a")).to_be_visible(timeout=20_000)
        page.wait_for_function(chart_has_data("requests"), timeout=20_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "endpoint-under-load.png"), full_page=True)

        for j in jobs:
            assert final(c, eid, j, timeout=120)["status"] == "COMPLETED"
    # The queue drains, finished jobs are listed, every plot has had data.
    expect(page.locator('#queue-table tr[data-job-id]')).to_have_count(0, timeout=15_000)
    expect(page.locator("#recent-table tbody tr").first).to_be_visible(timeout=15_000)
    for chart in ("delay", "execution", "coldstarts", "workers"):
        page.wait_for_function(chart_has_data(chart), timeout=20_000)
    assert page.evaluate("window.runplane.bootId") == boot  # never reloaded
    assert refreshes(page) > 3
    assert not page.errors, page.errors


def test_settings_save_and_show_the_servers_error_by_the_field(
        srv: LiveServer, template_id: str, browser: Any) -> None:
    eid = make_endpoint(srv, template_id, name="editable", workersMax=2)
    page = open_page(browser, srv, srv.user_key, f"/#/endpoints/{eid}")
    form = page.locator("#settings-form")
    expect(form.locator("#field-workersMax")).to_have_value("2")

    # Valid: saved on the server, shown as saved.
    form.locator("#field-workersMax").fill("4")
    form.locator("#field-idleTimeout").fill("30")
    form.locator("#field-name").fill("edited")
    form.locator("#settings-save").click()
    expect(page.locator("#settings-status")).to_contain_text("Saved")
    with srv.client() as c:
        ep = c.get(f"/v1/endpoints/{eid}").json()
    assert (ep["workersMax"], ep["idleTimeout"], ep["name"]) == (4, 30, "edited")
    expect(page.locator("#endpoint-page h1")).to_have_text("edited")

    # Invalid: workersMin > workersMax. The server's message next to that field; typed kept,
    # through live refreshes too.
    form.locator("#field-workersMin").fill("9")
    form.locator("#settings-save").click()
    err = page.locator("#error-workersMin")
    with srv.client() as c:
        r = c.patch(f"/v1/endpoints/{eid}", json={"workersMin": 9})
    assert r.status_code == 400 and r.json()["field"] == "workersMin"
    expect(err).to_have_text(r.json()["message"])
    expect(form.locator("#field-workersMin")).to_have_class("invalid")
    wait_refreshes(page, 2)
    expect(form.locator("#field-workersMin")).to_have_value("9")
    expect(err).to_have_text(r.json()["message"])
    ARTIFACTS.mkdir(exist_ok=True)
    form.screenshot(path=str(ARTIFACTS / "endpoint-settings-error.png"))

    # A value of the wrong type is judged by the server too, and kept as typed.
    form.locator("#field-workersMin").fill("0")
    form.locator("#field-idleTimeout").fill("soon")
    form.locator("#settings-save").click()
    expect(page.locator("#error-idleTimeout")).to_contain_text("idleTimeout")
    expect(page.locator("#error-workersMin")).to_be_empty()
    expect(form.locator("#field-idleTimeout")).to_have_value("soon")
    with srv.client() as c:
        assert c.get(f"/v1/endpoints/{eid}").json()["idleTimeout"] == 30  # nothing changed
    assert not page.errors, page.errors


def test_job_page_shows_input_output_stream_timings_and_its_log(
        srv: LiveServer, template_id: str, browser: Any) -> None:
    eid = make_endpoint(srv, template_id, name="job-page")
    with srv.client() as c:
        job = run(c, eid, {"n": 42, "chunks": 3, "sleep": 0.1})
        done = final(c, eid, job, timeout=90)
    assert done["status"] == "COMPLETED", done
    page = open_page(browser, srv, srv.user_key, f"/#/jobs/{job}")
    expect(page.locator("#job-status")).to_contain_text("completed")
    expect(page.locator("#job-input")).to_contain_text('"n": 42')
    expect(page.locator("#job-output")).to_contain_text('"chunk": 2')
    expect(page.locator("#job-stream li")).to_have_count(3)
    facts = page.locator("#job-facts")
    expect(facts).to_contain_text(done["workerId"])
    expect(facts).to_contain_text("Execution time")
    logs = page.locator("#job-logs")
    expect(logs).to_contain_text("working on item 42", timeout=15_000)
    assert '"requestId"' not in logs.inner_text()  # the job's messages, not raw JSON lines
    page.locator(f'a[href="#/endpoints/{eid}"]').first.click()
    expect(page.locator("#endpoint-page")).to_be_visible()
    assert not page.errors, page.errors


def test_machines_page_shows_capacity_to_admins(srv: LiveServer, browser: Any) -> None:
    page = open_page(browser, srv, srv.admin_key, "/#/machines")
    card = page.locator("#machines-list .machine").first
    expect(card).to_be_visible()
    expect(card.locator('[data-meter="vcpus"]')).to_contain_text("/")
    expect(card.locator('[data-meter="memory"]')).to_be_visible()

    page = open_page(browser, srv, srv.user_key, "/#/machines")
    expect(page.locator("#machines-page .banner")).to_contain_text("admin")
    assert not page.errors, page.errors


def test_another_users_endpoint_is_not_found(srv: LiveServer, template_id: str,
                                              browser: Any) -> None:
    eid = make_endpoint(srv, template_id, name="alices")
    page = open_page(browser, srv, srv.other_key, f"/#/endpoints/{eid}")
    expect(page.locator("#refresh-error")).to_contain_text(f"endpoint {eid} not found")
    expect(page.locator("#settings-form")).to_be_hidden()
    expect(page.locator("#workers-table")).to_be_hidden()
    assert not page.errors, page.errors


def test_endpoint_page_runs_the_what_if_on_its_newest_hour(srv: LiveServer, template_id: str,
                                                        browser: Any) -> None:
    eid = make_endpoint(srv, template_id, name="what-if")
    page = open_page(browser, srv, srv.user_key, f"/#/endpoints/{eid}")
    page.locator("#whatif-run").click()
    expect(page.locator("#whatif-note")).to_contain_text("nothing to replay")
    with srv.client() as c:
        for i in range(3):
            r = c.post(f"/v2/{eid}/runsync", json={"input": {"chunks": 1}}, timeout=90)
            assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text
    page.locator("#whatif-run").click()
    table = page.locator("#whatif-table")
    expect(table).to_contain_text("Current", timeout=60_000)
    expect(table).to_contain_text("Queue wait p95")
    expect(page.locator("#whatif-note")).to_contain_text("3 jobs")
    expect(page.locator("#whatif-suggestion")).to_contain_text("Suggested")
    assert not page.errors, page.errors
