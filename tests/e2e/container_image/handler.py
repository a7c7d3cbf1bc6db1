"""The container tests' default worker (the image's CMD): an async runpod SDK handler.

Input: ``echo`` (returned), ``sleep`` (seconds, cancellable: async), ``write`` (a file name
created in the network volume). The output says what the worker saw of its container."""

import asyncio
import os

import runpod


async def handler(job):
    inp = job["input"]
    if inp.get("sleep"):
        await asyncio.sleep(inp["sleep"])
    volume = "/runpod-volume"
    if inp.get("write"):
        with open(os.path.join(volume, inp["write"]), "w") as f:
            f.write(os.environ["RUNPOD_POD_ID"])
    return {
        "echo": inp.get("echo"),
        "worker": os.environ.get("RUNPOD_POD_ID"),
        "in_container": os.path.exists("/run/.containerenv") or os.path.exists("/.dockerenv"),
        "greeting": os.environ.get("GREETING"),
        "runplane_env": sorted(k for k in os.environ if k.startswith("RUNPLANE_")),
        "volume": sorted(os.listdir(volume)) if os.path.isdir(volume) else None,
        "cwd": os.getcwd(),
    }


runpod.serverless.start({"handler": handler})
