"""Mounts every router on the app; the single list of what the server serves."""

from __future__ import annotations

from fastapi import FastAPI


def include_routers(app: FastAPI) -> None:
    from runplane.api import health

    app.include_router(health.router)
