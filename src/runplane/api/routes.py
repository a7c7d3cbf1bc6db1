"""Every router of the FastAPI app, in match order: what the server serves besides /v2
(which ``runplane.api.app`` routes to the job API before FastAPI sees it)."""

from __future__ import annotations

from fastapi import FastAPI

from runplane.api import graphql, health, metrics
from runplane.api.v1 import (
    billing,
    docs_page,
    endpoints,
    jobs,
    machines,
    networkvolumes,
    pods,
    registry,
    stats,
    templates,
    whatif,
    workerlogs,
)
from runplane.web import routes as web


def include_routers(app: FastAPI) -> None:
    app.include_router(health.router)
    app.include_router(docs_page.router)  # /v1/docs, every file of it served from here
    for v1 in (templates, endpoints, networkvolumes, registry, billing, pods, machines):
        app.include_router(v1.router)
    app.include_router(workerlogs.router)  # GET /v1/workers/{id}/logs (runplane extension)
    app.include_router(graphql.router)  # POST /graphql: the runpod SDK's management calls
    # Observability (runplane extensions, docs/observability.md): /metrics, endpoint stats over
    # time, job listing and the job page.
    for router in (metrics.router, stats.router, jobs.router, whatif.router):
        app.include_router(router)
    # Last: the web dashboard (GET / and /ui/...), after every API route.
    app.include_router(web.router)
