#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU (the device machine): runplane discovers the GPU
# through NVML, a GPU endpoint runs a torch matmul handler (examples/torch_matmul), and the
# script prints what includeWorkers reports (gpuTypeId, memory, CUDA version) beside the
# handler's own torch.cuda.get_device_name(). One run, well under 5 minutes.
#
# Needs: python with runplane's dependencies, runpod and torch (CUDA build) importable, as
# $PYTHON (default: .venv/bin/python if present, else python3). No network is used.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
DATA="$(mktemp -d)"
PORT="${PORT:-8765}"
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
"$PY" -m runplane serve --port "$PORT" --data-dir "$DATA" > "$DATA/server.log" 2>&1 &
SERVER=$!
KEY="$(for _ in $(seq 100); do grep -o 'rpl_[0-9a-f]*' "$DATA/server.log" && break; sleep 0.2; done | head -1)"
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done

"$PY" - "$PORT" "$KEY" "$PY" <<'PYEOF'
import json, sys, time
import httpx

port, key, python = sys.argv[1], sys.argv[2], sys.argv[3]
c = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"},
                 timeout=120)
machines = c.get("/v1/machines").json()
print("machines:", json.dumps(machines, indent=1)[:2000])
gpu_types = [g["gpuTypeId"] for m in (machines if isinstance(machines, list) else machines.get("machines", []))
             for g in m.get("gpus", []) if g.get("gpuTypeId")]
assert gpu_types, "runplane discovered no GPU"
import os
t = c.post("/v1/templates", json={
    "name": "gpu-check", "imageName": f"local:{os.getcwd()}/examples/torch_matmul",
    "isServerless": True, "dockerStartCmd": [python, "-u", "handler.py"]}).json()
ep = c.post("/v1/endpoints", json={
    "name": "gpu-check", "templateId": t["id"], "gpuTypeIds": [gpu_types[0]], "gpuCount": 1,
    "workersMax": 1, "idleTimeout": 30}).json()
print("endpoint:", ep.get("id"), ep.get("gpuTypeIds"))
for n in (1024, 4096, 8192):
    r = c.post(f"/v2/{ep['id']}/runsync", json={"input": {"n": n}}).json()
    while r.get("status") in ("IN_QUEUE", "IN_PROGRESS"):
        time.sleep(0.5)
        r = c.get(f"/v2/{ep['id']}/status/{r['id']}").json()
    print(f"job n={n}:", json.dumps(r))
workers = c.get(f"/v1/endpoints/{ep['id']}", params={"includeWorkers": "true"}).json()["workers"]
for w in workers:
    print("worker:", json.dumps({k: w.get(k) for k in
          ("id", "workerStatus", "gpu", "machine", "memoryInGb", "costPerHr", "env")}, indent=1))
PYEOF
