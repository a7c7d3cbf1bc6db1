"""What the broker needs to know about endpoints, cached for the hot path.

Ownership comes from the control plane's ``EndpointService.owner_of`` (cached there) when it
is available; endpoint settings (``executionTimeoutMs``) are read from the store's
``endpoints`` table and cached for a few seconds, so a change made through ``/v1`` applies to
jobs taken after that.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, select

from runplane.store.tables import endpoints

DEFAULT_EXECUTION_TIMEOUT_MS = 600_000


class EndpointDirectory:
    SETTINGS_TTL_S = 5.0

    def __init__(self, engine: Engine, services: Any = None) -> None:
        self._engine = engine
        self._services = services
        self._settings: dict[str, tuple[float, str | None, dict[str, Any]]] = {}

    def _service(self) -> Any:
        s = self._services
        if s is None:
            return None
        return getattr(s, "endpoints", None) or getattr(s, "extra", {}).get("endpoints")

    def _row(self, endpoint_id: str) -> tuple[str | None, dict[str, Any]]:
        now = time.monotonic()
        hit = self._settings.get(endpoint_id)
        if hit and now - hit[0] < self.SETTINGS_TTL_S:
            return hit[1], hit[2]
        with self._engine.connect() as conn:
            row = conn.execute(
                select(endpoints.c.user_id, endpoints.c.spec).where(endpoints.c.id == endpoint_id)
            ).first()
        owner, spec = (row[0], dict(row[1] or {})) if row else (None, {})
        if len(self._settings) > 10_000:
            self._settings.clear()
        self._settings[endpoint_id] = (now, owner, spec)
        return owner, spec

    def owner_of(self, endpoint_id: str) -> str | None:
        """The endpoint's owner, or None when it does not exist."""
        svc = self._service()
        if svc is not None:
            return svc.owner_of(endpoint_id)
        return self._row(endpoint_id)[0]

    def execution_timeout_ms(self, endpoint_id: str) -> int:
        spec = self._row(endpoint_id)[1]
        value = spec.get("executionTimeoutMs")
        return int(value) if isinstance(value, int) and value > 0 else DEFAULT_EXECUTION_TIMEOUT_MS

    def forget(self, endpoint_id: str) -> None:
        self._settings.pop(endpoint_id, None)
