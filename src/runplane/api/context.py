"""What a FastAPI route reaches the server's parts through."""

from __future__ import annotations

from fastapi import Request

from runplane.api.shapes.workers import WorkerShapes
from runplane.system import Services


def services(request: Request) -> Services:
    """The server's parts (``runplane.api.app`` puts them on the FastAPI app's state)."""
    parts: Services = request.app.state.services
    return parts


def worker_shapes(request: Request) -> WorkerShapes:
    """The app's rendered workers (``includeWorkers``), kept while their records live."""
    shapes: WorkerShapes = request.app.state.worker_shapes
    return shapes
