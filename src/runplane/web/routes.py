"""Serves the dashboard: ``GET /`` is the single page, ``GET /ui/...`` its static files.

The page is plain HTML, CSS and ES modules (no build step); it logs in with an API key kept in
the browser and reads everything through the public ``/v1`` and ``/v2`` APIs, so these routes
carry no data and need no key. Only files under ``static/`` are served: anything else,
``..`` included, is a 404 (Starlette's ``HTTPException``, which the app's error handlers answer
in the API's JSON error shape: web/ sits below api/ and imports nothing of it).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response

STATIC = Path(__file__).resolve().parent / "static"

router = APIRouter(include_in_schema=False)

# Module scripts must be served as JavaScript; don't depend on the host's mime.types.
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".md": "text/plain; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
    ".png": "image/png",
}
# Revalidate every time (ETag/Last-Modified make that cheap): an upgraded server is picked up.
# The page holds an API key: it runs only its own files, talks only to this server and is
# never framed by another site.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer"}


def _file(path: Path) -> Response:
    return FileResponse(path, media_type=_TYPES.get(path.suffix, "application/octet-stream"),
                        headers=_HEADERS)


@router.get("/")
async def index() -> Response:
    return _file(STATIC / "index.html")


@router.get("/ui/{path:path}")
async def static_file(path: str) -> Response:
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC) or not target.is_file():
        raise HTTPException(404, f"no such dashboard file: {path}")
    return _file(target)
