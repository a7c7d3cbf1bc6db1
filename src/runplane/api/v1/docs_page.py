"""``/v1/docs``: the OpenAPI explorer, every file of it served from here.

The page shares its origin with the dashboard, whose API key lives in the browser, so it
loads nothing from elsewhere: Swagger UI's bundle and stylesheet come from the installed
``fastapi-offline`` package (its copy of swagger-ui-dist; the version is the package's,
pinned in pyproject.toml), the start-up code from here, and the Content-Security-Policy
allows this origin only ('self': a CDN host would let any file on it run with the key).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from starlette.responses import HTMLResponse, Response

# Not even inline styles: Swagger UI sets its styles from script (tests/web/test_docs_page.py
# opens an operation and "Try it out" with no violation reported).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'none'")

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>runplane API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/v1/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/v1/docs/swagger-ui-bundle.js"></script>
<script src="/v1/docs/start.js"></script>
</body>
</html>
"""

_START = """SwaggerUIBundle({url: "/v1/openapi.json", dom_id: "#swagger-ui",
  layout: "BaseLayout", deepLinking: true, persistAuthorization: false});
"""

_HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
# The package's files by the name they are served under, and their media types.
_ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
           "swagger-ui.css": "text/css; charset=utf-8"}

router = APIRouter(include_in_schema=False)


@cache
def asset(name: str) -> bytes:
    """One of Swagger UI's files, read once from the installed package."""
    return (resources.files("fastapi_offline") / "static" / name).read_bytes()


@router.get("/v1/docs")
async def docs() -> Response:
    return HTMLResponse(_PAGE, headers=_HEADERS)


@router.get("/v1/docs/start.js")
async def start_script() -> Response:
    return Response(_START, media_type="text/javascript; charset=utf-8", headers=_HEADERS)


@router.get("/v1/docs/swagger-ui-bundle.js")
async def bundle() -> Response:
    return _asset("swagger-ui-bundle.js")


@router.get("/v1/docs/swagger-ui.css")
async def stylesheet() -> Response:
    return _asset("swagger-ui.css")


def _asset(name: str) -> Response:
    # Fixed for a given install: a day's caching spares the 1.5 MB bundle on every visit.
    return Response(asset(name), media_type=_ASSETS[name],
                    headers={**_HEADERS, "Cache-Control": "public, max-age=86400"})
