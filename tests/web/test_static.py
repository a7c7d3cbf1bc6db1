"""The dashboard's files are served at / and /ui/ without touching the API's routes."""

from __future__ import annotations

import httpx

from runplane.web.routes import STATIC


async def test_index_and_assets(anon: httpx.AsyncClient) -> None:
    r = await anon.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/app.js">' in r.text
    for path, kind in [("/ui/app.js", "text/javascript"), ("/ui/views/endpoint.js", "text/javascript"),
                       ("/ui/app.css", "text/css"), ("/ui/vendor/uPlot.esm.js", "text/javascript"),
                       ("/ui/vendor/uPlot.min.css", "text/css")]:
        r = await anon.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith(kind), (path, r.headers["content-type"])
        assert r.headers["cache-control"] == "no-cache"


async def test_only_static_files_are_served(anon: httpx.AsyncClient) -> None:
    for path in ["/ui/nope.js", "/ui/../routes.py", "/ui/%2e%2e/routes.py", "/ui/views"]:
        r = await anon.get(path)
        assert r.status_code == 404, path
        assert r.json()["status"] == 404


async def test_api_routes_are_untouched(anon: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    assert (await anon.get("/healthz")).status_code == 200
    assert (await anon.get("/v1/endpoints")).status_code == 401
    assert (await client.get("/v1/endpoints")).json() == []
    r = await client.get("/v1/no-such-thing")
    assert r.status_code == 404 and r.json()["message"] == "no such route"
    r = await client.delete("/v1/endpoints")  # wrong method on an API route: still a 405
    assert r.status_code == 405
    r = await anon.post("/")  # the page is GET only
    assert r.status_code == 405


def test_every_static_file_is_package_data() -> None:
    """pyproject's package-data ("web/**/*") must ship every file the page loads."""
    import glob
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["runplane"]
    pkg = STATIC.parents[1]
    shipped = {Path(p) for pat in patterns for p in glob.glob(str(pkg / pat), recursive=True)}
    files = {p for p in STATIC.rglob("*") if p.is_file()}
    assert files and files <= shipped, files - shipped
