"""Mounts every router on the app; the single list of what the server serves."""

from __future__ import annotations

from fastapi import FastAPI


def include_routers(app: FastAPI) -> None:
    from runplane.api import health
    from runplane.api.v1 import (
        billing, endpoints, machines, networkvolumes, pods, registry, templates,
    )

    from runplane.api import v2

    # First: the job API is the hot path, matched before the /v1 routes.
    app.mount("/v2", v2.app)
    app.include_router(health.router)
    for v1 in (templates, endpoints, networkvolumes, registry, billing, pods, machines):
        app.include_router(v1.router)
    from runplane.api.v1 import workerlogs

    app.include_router(workerlogs.router)  # GET /v1/workers/{id}/logs (runplane extension)

    # Observability (runplane extensions, docs/observability.md): /metrics, endpoint stats over
    # time, job listing and the job page.
    from runplane.api import metrics
    from runplane.api.v1 import jobs, stats

    for router in (metrics.router, stats.router, jobs.router):
        app.include_router(router)

    # Last: the web dashboard (GET / and /ui/...), after every API route.
    from runplane.web import routes as web

    app.include_router(web.router)
