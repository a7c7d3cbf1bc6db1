"""The demo worker: a plain runpod SDK handler, run unmodified by runplane.

Send it ``{"input": {"name": "you"}}`` and it answers ``{"greeting": "Hello, you!"}``.
"""

import platform

import runpod


def handler(job):
    name = (job.get("input") or {}).get("name", "world")
    return {"greeting": f"Hello, {name}!", "worker": platform.node()}


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
