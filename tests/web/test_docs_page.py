"""``/v1/docs`` in a real browser (Debian's chromium, as test_dashboard.py): Swagger UI,
served from this origin only, renders the API's operations under its Content-Security-Policy
with nothing refused and nothing fetched from another host (issue 23, finding 9)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import LiveServer, make_live_server
from tests.web.test_dashboard import CHROMIUM, CHROMIUM_ARGS

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = make_live_server(tmp_path_factory.mktemp("docs"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_the_docs_load_only_from_this_origin(server: LiveServer) -> None:
    r = httpx.get(server.url + "/v1/docs")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "http" not in csp  # no other host, CDN or not
    assert "//" not in r.text  # every file it names is this server's
    for name, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")):
        asset = httpx.get(f"{server.url}/v1/docs/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]
        assert len(asset.content) > 10_000


def test_swagger_ui_renders_under_its_policy(server: LiveServer) -> None:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            problems: list[str] = []
            hosts: set[str] = set()
            page.on("console", lambda m: problems.append(m.text)
                    if m.type == "error" or "Content Security Policy" in m.text else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda req: hosts.add(urlsplit(req.url).netloc))
            page.on("response", lambda res: problems.append(f"{res.status} {res.url}")
                    if res.status >= 400 else None)
            page.goto(server.url + "/v1/docs")
            page.wait_for_selector(".opblock-summary-path", timeout=30_000)
            page.click(".opblock-summary")  # an operation opened: its schemas, its example
            page.wait_for_selector(".opblock-body", timeout=30_000)
            page.click("text=Try it out")
            page.wait_for_timeout(500)
            paths: Any = page.eval_on_selector_all(
                ".opblock-summary-path", "els => els.map(e => e.textContent)")
        finally:
            browser.close()
    assert any("/templates" in path for path in paths), paths
    assert hosts <= {f"127.0.0.1:{server.port}"}, hosts
    assert problems == []
