"""What a FastAPI route of any surface (/v1, REST v2, GraphQL) reaches the server's parts
through."""

from __future__ import annotations

from fastapi import Request

from runplane.system import Services


def services(request: Request) -> Services:
    """The server's parts (``runplane.api.app`` puts them on each FastAPI app's state)."""
    parts: Services = request.app.state.services
    return parts
