"""A GPU worker: a torch matmul on the GPU runplane pinned it to (CUDA_VISIBLE_DEVICES).

Send it ``{"input": {"n": 4096}}``; it answers the device name, the time of one n x n matmul
and the checksum of the result.
"""

import os
import time

import runpod
import torch


def handler(job):
    n = int((job.get("input") or {}).get("n", 4096))
    device = torch.device("cuda")
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.cuda.synchronize()
    start = time.perf_counter()
    c = a @ b
    torch.cuda.synchronize()
    return {
        "device": torch.cuda.get_device_name(0),
        "cudaVisibleDevices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "matmulMs": round((time.perf_counter() - start) * 1000, 3),
        "checksum": float(c.sum().item()),
    }


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
