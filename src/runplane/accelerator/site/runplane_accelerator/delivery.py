"""Results that reach the server across its restarts.

The SDK posts a job's result once (``rp_http._transmit``: aiohttp_retry's three tries, which
retry a 5xx answer but not a connection that failed) and drops it when the post cannot
connect or its kept-alive connection turns out to be closed ("Server disconnected"). That is
what a worker meets when its result is ready while its server restarts: runplane's workers
outlive the server (docs/operator.md), so the job itself went on, but its result is lost and
the job runs again, a retry counted.

``install(module)`` (the SDK's ``rp_http``, just executed) wraps ``_transmit`` so that a
job-done post that fails to reach the server (refused, reset, closed before an answer) is
sent again, backing off from 50 ms to 2 s, for up to ``RESEND_FOR_S``: a restarted server
takes it (its broker kept the job and the worker's credential), and a job-done the server
already took is answered idempotently, so sending it twice is safe. An answer, whatever its
status, ends it as before (the SDK retries 5xx itself). Stream posts (``JOB_STREAM_URL``) are
left as they are: a repeated one could show a chunk twice.

Standard library only at import; aiohttp (the SDK's own) is imported by ``install``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from types import ModuleType
from typing import Any

# How long a result is sent again while the server cannot be reached: a restart or an upgrade
# of the server, not a server gone for good.
RESEND_FOR_S = 300.0
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 2.0


def install(module: ModuleType) -> None:
    """Wrap ``module._transmit`` (see the module docstring); ValueError when the module is
    not the ``rp_http`` this was written against (its job-done URL has no ``$ID``)."""
    from aiohttp import ClientConnectionError

    original = module._transmit
    done_url = str(getattr(module, "JOB_DONE_URL", ""))
    if "$ID" not in done_url:
        raise ValueError("the SDK's job-done URL has no $ID: not a worker runplane started")
    # The job-done URL up to the job id; a stream post's (job-stream) differs before it.
    prefix = done_url.split("$ID", 1)[0]

    async def _transmit(client_session: Any, url: str, job_data: Any) -> Any:
        if not url.startswith(prefix):
            return await original(client_session, url, job_data)
        deadline = time.monotonic() + RESEND_FOR_S
        delay = FIRST_BACKOFF_S
        said = False
        while True:
            try:
                return await original(client_session, url, job_data)
            except ClientConnectionError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                if not said:
                    said = True
                    sys.stderr.write(f"runplane accelerator: a result did not reach the server "
                                     f"({type(exc).__name__}: {exc}); sending it again until "
                                     f"the server takes it\n")
                    sys.stderr.flush()
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    _transmit.__wrapped__ = original  # type: ignore[attr-defined]
    module._transmit = _transmit  # type: ignore[attr-defined]
