"""Mounts every router on the app; the single list of what the server serves."""

from __future__ import annotations

from fastapi import FastAPI


def include_routers(app: FastAPI) -> None:
    from runplane.api import health
    from runplane.api.v1 import billing, endpoints, networkvolumes, pods, registry, templates

    app.include_router(health.router)
    for v1 in (templates, endpoints, networkvolumes, registry, billing, pods):
        app.include_router(v1.router)
