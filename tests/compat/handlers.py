"""Handlers for the compatibility tests, run by the real runpod SDK as a worker process:
``python handlers.py KIND``. Each run appends a JSON line to $RECORD_FILE (if set)."""

import asyncio
import json
import os
import sys
import time

import runpod

RECORD = os.environ.get("RECORD_FILE")


def record(job, tag="ran"):
    if RECORD:
        line = json.dumps({"id": job["id"], "tag": tag, "worker": os.environ.get("RUNPOD_POD_ID")})
        with open(RECORD, "a") as f:
            f.write(line + "\n")


def sync_handler(job):
    record(job)
    inp = job["input"]
    if inp.get("progress"):
        runpod.serverless.progress_update(job, "half way")
        time.sleep(inp["progress"])
    if inp.get("sleep"):
        time.sleep(inp["sleep"])
    if inp.get("raise"):
        raise ValueError(inp["raise"])
    if inp.get("refresh"):
        return {"refresh_worker": True, "echo": inp}
    if inp.get("nan"):
        return {"value": float("nan")}
    return {"echo": inp, "s3": job.get("s3Config"), "webhook": job.get("webhook")}


async def async_handler(job):
    record(job)
    try:
        await asyncio.sleep(job["input"].get("sleep", 0))
    except asyncio.CancelledError:
        record(job, "cancelled")
        raise
    return {"echo": job["input"]}


def gen_handler(job):
    record(job)
    for i in range(job["input"].get("n", 3)):
        yield f"chunk{i}"


def pausing_gen_handler(job):
    """Two chunks ``pause`` seconds apart (longer than the SDK's 10 s /stream timeout)."""
    record(job)
    yield "before"
    time.sleep(job["input"]["pause"])
    yield "after"


async def agen_handler(job):
    record(job)
    for i in range(job["input"].get("n", 3)):
        await asyncio.sleep(0.05)
        yield {"i": i}


def file_concurrency(current):
    """A concurrency_modifier that follows a number in $CONCURRENCY_FILE (changed at run time)."""
    try:
        with open(os.environ["CONCURRENCY_FILE"]) as f:
            return int(f.read().strip() or current)
    except (OSError, ValueError):
        return current


CONFIGS = {
    "sync": {"handler": sync_handler},
    "async": {"handler": async_handler},
    "concurrent": {"handler": async_handler, "concurrency_modifier": lambda current: 4},
    "gen": {"handler": gen_handler},
    "pausing_gen": {"handler": pausing_gen_handler},
    "agen": {"handler": agen_handler},
    "agen_aggregate": {"handler": agen_handler, "return_aggregate_stream": True},
    "refresh": {"handler": sync_handler, "refresh_worker": True},
    "modifier": {"handler": async_handler, "concurrency_modifier": file_concurrency},
}

if __name__ == "__main__":
    kind = sys.argv[1]
    sys.argv = sys.argv[:1]
    runpod.serverless.start(CONFIGS[kind])
