"""A load-balancing worker: a plain FastAPI app, no runpod SDK (docs/load-balancing.md).

It listens on ``PORT`` (runplane gives each worker its own) and answers its health check on
``PORT_HEALTH`` at ``HEALTH_CHECK_PATH`` (default ``/ping``): 204 while it is "loading" (for
``LOAD_SECONDS``, default 1, standing in for a model load), then 200. Routes:

- ``GET /hello``: who answered (``RUNPOD_POD_ID``, the worker id) and the request's headers;
- ``POST /echo``: the body back, with its size;
- ``GET /stream?n=5&delay=0.2``: a server-sent event stream, one event every ``delay`` s;
- ``GET /sleep?s=1``: answers after ``s`` seconds (keeps a request in flight);
- ``POST /sick``: from now on the health check answers 500 (an unhealthy worker);
- ``WS /ws``: echoes every message back, prefixed with the worker id.

Run it under runplane with a LOAD_BALANCER endpoint whose template is
``imageName: local:<this directory>``, ``dockerStartCmd: ["python", "app.py"]``.
"""

import asyncio
import os
import time

import uvicorn
from fastapi import FastAPI, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

WORKER = os.environ.get("RUNPOD_POD_ID", "local")
HOST = os.environ.get("HOST", "0.0.0.0")
READY_AT = time.monotonic() + float(os.environ.get("LOAD_SECONDS", "1"))
state = {"sick": False}
app = FastAPI()


@app.get(os.environ.get("HEALTH_CHECK_PATH", "/ping"))
async def ping() -> Response:
    if state["sick"]:
        return Response(status_code=500)
    return Response(status_code=200 if time.monotonic() >= READY_AT else 204)


@app.get("/hello")
async def hello(request: Request) -> dict:
    return {"worker": WORKER, "headers": dict(request.headers)}


@app.post("/echo")
async def echo(request: Request) -> Response:
    body = await request.body()
    return Response(body, media_type="application/octet-stream",
                    headers={"X-Echo-Size": str(len(body))})


@app.get("/stream")
async def stream(n: int = 5, delay: float = 0.2) -> StreamingResponse:
    async def events():
        for i in range(n):
            yield f"data: {{\"i\": {i}, \"worker\": \"{WORKER}\", \"t\": {time.time()}}}\n\n"
            await asyncio.sleep(delay)

    return StreamingResponse(events(), media_type="text/event-stream")


@app.get("/sleep")
async def sleep(s: float = 1.0) -> dict:
    await asyncio.sleep(s)
    return {"worker": WORKER, "slept": s}


@app.post("/sick")
async def sick() -> dict:
    state["sick"] = True
    return {"worker": WORKER, "sick": True}


@app.websocket("/ws")
async def ws(socket: WebSocket) -> None:
    await socket.accept()
    try:
        while True:
            text = await socket.receive_text()
            await socket.send_text(f"{WORKER}: {text}")
    except WebSocketDisconnect:
        pass


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "80"))
    health = int(os.environ.get("PORT_HEALTH", str(port)))
    if health != port:  # a separate health port: the same app on both
        config = uvicorn.Config(app, host=HOST, port=port, log_level="warning")
        health_config = uvicorn.Config(app, host=HOST, port=health, log_level="warning")

        async def both() -> None:
            await asyncio.gather(uvicorn.Server(config).serve(),
                                 uvicorn.Server(health_config).serve())

        asyncio.run(both())
    else:
        uvicorn.run(app, host=HOST, port=port, log_level="warning")
