"""A vLLM-style OpenAI worker without a model: it echoes, in OpenAI's response shapes.

runplane (like RunPod) turns ``/v2/{endpointId}/openai/v1/<route>`` into a job whose input is
``{"openai_route": "/v1/chat/completions", "openai_input": <the request body>}``. This
handler reads those two keys as RunPod's worker-vllm does and answers:

- ``/v1/models``: one model, ``echo``;
- ``/v1/chat/completions``: the last user message back as the assistant's reply;
- ``/v1/completions``: the prompt back.

With ``"stream": true`` it is a generator of raw SSE strings (``data: {...chunk...}\\n\\n``,
one per word, then ``data: [DONE]\\n\\n``), as worker-vllm streams; otherwise it yields the
whole response once. ``return_aggregate_stream`` makes a non-streamed job's output that one
response. Bad input is answered with vLLM's error object (``{"object": "error", "code": 400}``),
which the passthrough turns into that HTTP status.

Point the ``openai`` client at it::

    client = OpenAI(base_url="http://127.0.0.1:8000/v2/<ENDPOINT_ID>/openai/v1",
                    api_key="<YOUR_KEY>")
    client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])

``ECHO_TOKEN_DELAY_S`` (default 0) pauses between streamed words, to watch them arrive.
"""

import asyncio
import json
import os
import time

import runpod

MODEL = "echo"
TOKEN_DELAY_S = float(os.environ.get("ECHO_TOKEN_DELAY_S", "0"))


def error(message, code=400):
    return {"object": "error", "message": message, "type": "BadRequestError", "param": None,
            "code": code}


def sse(obj):
    return "data: " + json.dumps(obj) + "\n\n"


def usage(prompt, completion):
    p, c = len(prompt.split()), len(completion.split())
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def chat_reply(body):
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None, None
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    content = (users or messages)[-1].get("content", "")
    if isinstance(content, list):  # content parts: keep the text ones
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    prompt = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
    return prompt, str(content)


def words(text, limit):
    out = text.split(" ")
    return out[:limit] if isinstance(limit, int) and limit > 0 else out


async def handler(job):
    job_input = job["input"]
    route = job_input.get("openai_route")
    body = job_input.get("openai_input") or {}
    created = int(time.time())
    rid = job["id"]
    if route == "/v1/models":
        yield {"object": "list", "data": [{"id": MODEL, "object": "model", "created": created,
                                           "owned_by": "runplane"}]}
        return
    if route == "/v1/chat/completions":
        prompt, reply = chat_reply(body)
        if reply is None:
            yield error("messages: a non-empty list is required")
            return
        kind, prefix = "chat.completion", "chatcmpl-"
    elif route == "/v1/completions":
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            prompt = " ".join(map(str, prompt))
        if not isinstance(prompt, str):
            yield error("prompt: a string is required")
            return
        reply, kind, prefix = prompt, "text_completion", "cmpl-"
    else:
        yield error(f"Invalid route: {route}", 404)
        return
    model = body.get("model") or MODEL
    tokens = words(reply, body.get("max_tokens"))
    text = " ".join(tokens)
    chat = kind == "chat.completion"
    if not body.get("stream"):
        choice = ({"index": 0, "message": {"role": "assistant", "content": text},
                   "finish_reason": "stop", "logprobs": None} if chat else
                  {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None})
        yield {"id": prefix + rid, "object": kind, "created": created, "model": model,
               "choices": [choice], "usage": usage(prompt, text)}
        return
    head = {"id": prefix + rid, "object": kind + (".chunk" if chat else ""), "created": created,
            "model": model}
    if chat:
        yield sse({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": None}]})
    for i, token in enumerate(tokens):
        piece = token if i == 0 else " " + token
        if TOKEN_DELAY_S:
            await asyncio.sleep(TOKEN_DELAY_S)
        choice = ({"index": 0, "delta": {"content": piece}, "finish_reason": None} if chat
                  else {"index": 0, "text": piece, "finish_reason": None, "logprobs": None})
        yield sse({**head, "choices": [choice]})
    last = ({"index": 0, "delta": {}, "finish_reason": "stop"} if chat
            else {"index": 0, "text": "", "finish_reason": "stop", "logprobs": None})
    tail = sse({**head, "choices": [last]})
    if (body.get("stream_options") or {}).get("include_usage"):
        tail += sse({**head, "choices": [], "usage": usage(prompt, text)})
    yield tail + "data: [DONE]\n\n"


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler, "return_aggregate_stream": True})
