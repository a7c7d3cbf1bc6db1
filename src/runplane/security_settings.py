"""Settings of rate limits, quotas and host access (the ``[limits]`` and ``[security]``
groups of :class:`runplane.config.Settings`; docs/security.md lists them all).

Kept apart from ``config.py`` so the server's settings stay one readable module: these are
given to the rate limiter (``services/ratelimit.py``), the broker (queue caps, webhook
ranges), the control plane (``local:`` images) and the process runtime (the worker user).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class RouteLimit(BaseModel):
    """A job API route's limit per API key and endpoint: ``requests`` per ``window_s``, at
    most ``concurrent`` in flight (0: no cap)."""

    model_config = {"extra": "forbid"}

    requests: int = Field(ge=1)
    window_s: float = Field(default=10.0, gt=0)
    concurrent: int = Field(default=0, ge=0)


# RunPod's documented limits per endpoint (requests per 10 s, concurrent), PROTOCOL.md 2.6.
RUNPOD_JOB_API_LIMITS = {op: RouteLimit(requests=n, concurrent=c) for op, n, c in (
    ("run", 1000, 200), ("runsync", 2000, 400), ("status", 2000, 400), ("stream", 2000, 400),
    ("cancel", 100, 20), ("retry", 100, 20), ("purge-queue", 2, 0), ("health", 2000, 0),
    ("workers", 100, 0),
    # Routes RunPod's own clients use (not in its table): status-sync as status, metrics as
    # health, the OpenAI passthrough as runsync (it is one); batches as cancel.
    ("status-sync", 2000, 400), ("metrics", 2000, 0), ("openai", 2000, 400),
    ("batch", 100, 20),
    # Load-balancing endpoints' proxied requests (RunPod publishes no table for them).
    ("lb", 50_000, 2000))}


class LimitSettings(BaseModel):
    """Rate limits and quotas, 429 with Retry-After past them (docs/security.md): per API key
    and endpoint by job API route; per client address for creates, manual worker
    registrations and failed authentications; per endpoint for its queue (0: no cap)."""

    model_config = {"extra": "forbid"}

    enabled: bool = True
    job_api: dict[str, RouteLimit] = Field(default_factory=lambda: dict(RUNPOD_JOB_API_LIMITS))
    creates_per_minute: int = 120
    worker_registrations_per_minute: int = 30
    failed_auth_per_minute: int = 60
    max_queued_jobs_per_endpoint: int = 10_000
    max_queued_bytes_per_endpoint: int = 1_000_000_000
    # REST v2 per user, over RunPod's three windows (RUNPOD-2026.md: 60/min, 3,000/h,
    # 50,000/day; 0 turns a window off).
    rest_v2_per_minute: int = 60
    rest_v2_per_hour: int = 3000
    rest_v2_per_day: int = 50_000
    # /graphql per API key; a document's size and tokens, refused before it is parsed (the
    # SDK's largest is ~1 KB and ~50 tokens; a template's env is inlined at ~10 per entry).
    graphql_per_minute: int = 300
    graphql_max_document_bytes: int = Field(default=65_536, ge=1024)
    graphql_max_tokens: int = Field(default=5_000, ge=100)
    # GET /v1/endpoints/{id}/whatif per API key (and one in flight per key, whatif_concurrent
    # in all), and the bounds of its replay (simulate/whatif.py); a result is reused for
    # whatif_cache_s.
    whatif_per_minute: int = 6
    whatif_concurrent: int = Field(default=2, ge=1)
    whatif_max_span_s: float = Field(default=3600.0, gt=0)
    whatif_max_jobs: int = Field(default=2000, ge=1)
    whatif_max_steps: int = Field(default=150_000, ge=1000)
    whatif_cache_s: float = Field(default=60.0, ge=0)


class SecuritySettings(BaseModel):
    """What users may reach on this host (docs/security.md): who may run ``local:`` images
    (admins, plus these user names or ids, "*" = all) and under which directories (empty:
    anywhere); the unprivileged user worker and pod processes run as when the server is root
    ("": the server's own user); networks webhooks may reach besides public addresses."""

    model_config = {"extra": "forbid"}

    local_image_users: list[str] = Field(default_factory=list)
    local_image_roots: list[Path] = Field(default_factory=list)
    worker_user: str = "runplane-worker"
    webhook_allow_cidrs: list[str] = Field(default_factory=list)
