"""What a worker is given: its credential and the environment the runpod SDK reads.

The credential is ``rpw_`` + 160 random bits, shown once and stored only as a SHA-256 hash
(``workers.token_hash``). The environment carries the four ``RUNPOD_WEBHOOK_*`` URL
templates (each with a ``?``, PROTOCOL.md 1.3), the worker id, the credential and the ping
interval, so that an unmodified SDK worker talks to this server.
"""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import quote

from runplane.accelerator import SWITCH

TOKEN_PREFIX = "rpw_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_hex(20)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def worker_env(
    public_url: str, ping_interval_ms: int, endpoint_id: str, worker_id: str, token: str,
    gpu: str = "", accelerator: bool = True,
) -> dict[str, str]:
    """Every RUNPOD_* variable an unmodified SDK worker needs (PROTOCOL.md section 5):
    ``public_url`` is the server's base URL as workers reach it. ``accelerator`` off sets
    the accelerator's switch off (on, it is left to the template's env)."""
    q = f"?gpu={quote(gpu, safe='')}"
    ep = f"{public_url}/v2/{endpoint_id}"
    interval = max(1000, (int(ping_interval_ms) // 1000) * 1000)
    env = {
        "RUNPOD_WEBHOOK_GET_JOB": f"{ep}/job-take/$ID{q}",
        "RUNPOD_WEBHOOK_POST_OUTPUT": f"{ep}/job-done/$RUNPOD_POD_ID/$ID{q}",
        "RUNPOD_WEBHOOK_POST_STREAM": f"{ep}/job-stream/$RUNPOD_POD_ID/$ID{q}",
        "RUNPOD_WEBHOOK_PING": f"{ep}/ping/$RUNPOD_POD_ID{q}",
        "RUNPOD_POD_ID": worker_id,
        "RUNPOD_POD_HOSTNAME": worker_id,
        "RUNPOD_AI_API_KEY": token,
        "RUNPOD_ENDPOINT_ID": endpoint_id,
        "RUNPOD_PING_INTERVAL": str(interval),
        # Built-in fitness checks dial 8.8.8.8: they kill every worker on a host without
        # internet. Handlers' own registered checks still run.
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
    }
    if not gpu:
        env["RUNPOD_SKIP_GPU_CHECK"] = "true"
    if not accelerator:
        env[SWITCH] = "0"
    return env
