"""A streaming runpod SDK handler (a generator): ``n`` chunks ``{"i": 0..n-1}``."""

import time

import runpod


def handler(job):
    for i in range(int(job["input"].get("n", 3))):
        time.sleep(0.05)
        yield {"i": i}


runpod.serverless.start({"handler": handler, "return_aggregate_stream": True})
