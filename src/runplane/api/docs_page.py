"""``/v1/docs``: the OpenAPI explorer, with its scripts pinned.

The page shares its origin with the dashboard, whose API key lives in the browser, so what it
loads is fixed: swagger-ui-dist at one exact version from the CDN with Subresource Integrity
hashes (a changed file is refused by the browser), the start-up code served from here, and a
Content-Security-Policy that allows nothing else. The hashes are those of the npm package's
files (``npm pack swagger-ui-dist@<version>``; jsDelivr serves them byte for byte).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import HTMLResponse, Response

SWAGGER_VERSION = "5.35.0"
_CDN = f"https://cdn.jsdelivr.net/npm/swagger-ui-dist@{SWAGGER_VERSION}"
_JS_SRI = "sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9"
_CSS_SRI = "sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I"

CSP = ("default-src 'none'; script-src 'self' https://cdn.jsdelivr.net; "
       "style-src https://cdn.jsdelivr.net 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>runplane API</title>
<link rel="stylesheet" href="{_CDN}/swagger-ui.css" integrity="{_CSS_SRI}" crossorigin="anonymous">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{_CDN}/swagger-ui-bundle.js" integrity="{_JS_SRI}" crossorigin="anonymous"></script>
<script src="/v1/docs/start.js"></script>
</body>
</html>
"""

_START = """SwaggerUIBundle({url: "/v1/openapi.json", dom_id: "#swagger-ui",
  layout: "BaseLayout", deepLinking: true, persistAuthorization: false});
"""

_HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

router = APIRouter(include_in_schema=False)


@router.get("/v1/docs")
async def docs() -> Response:
    return HTMLResponse(_PAGE, headers=_HEADERS)


@router.get("/v1/docs/start.js")
async def start_script() -> Response:
    return Response(_START, media_type="text/javascript; charset=utf-8", headers=_HEADERS)
