"""The ``openai`` Python client, unmodified (only its base URL and key set), against
runplane's OpenAI passthrough and a real runpod SDK worker running examples/openai_echo."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.compat.conftest import Workers, status, wait_for
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

ECHO = Path(__file__).resolve().parents[2] / "examples" / "openai_echo" / "handler.py"


@pytest.fixture
def client(live: LiveServer, workers: Workers, new_endpoint) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    ep = new_endpoint()
    workers.start(ep, "", script=ECHO, ECHO_TOKEN_DELAY_S="0.05")
    return openai.OpenAI(base_url=f"{live.url}/v2/{ep}/openai/v1", api_key=live.user_key,
                         timeout=60, max_retries=0)


def test_chat_completion_and_completion(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="echo", messages=[{"role": "system", "content": "be brief"},
                                {"role": "user", "content": "hello there, runplane"}])
    assert reply.object == "chat.completion" and reply.model == "echo"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "hello there, runplane"
    assert reply.choices[0].finish_reason == "stop" and reply.usage.completion_tokens == 3
    text = client.completions.create(model="echo", prompt="one two three", max_tokens=2)
    assert text.choices[0].text == "one two"
    assert [m.id for m in client.models.list()] == ["echo"]


def test_chat_completion_streaming(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="echo", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "a stream of six words here"}])
    pieces, usage, finish = [], None, None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            finish = choice.finish_reason or finish
    assert "".join(pieces) == "a stream of six words here"
    assert len(pieces) == 6 and finish == "stop" and usage.completion_tokens == 6
    # Completions stream too.
    streamed = client.completions.create(model="echo", prompt="x y", stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == "x y"


def test_errors_reach_the_client_as_its_own_exceptions(client: openai.OpenAI,
                                                      live: LiveServer) -> None:
    # The handler's error object (vLLM's shape) is the HTTP status.
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="echo", messages=[])
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="echo", messages=[], stream=True)
    bad = openai.OpenAI(base_url=str(client.base_url), api_key="rp_not_a_key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    other = openai.OpenAI(base_url=f"{live.url}/v2/nosuchendpoint/openai/v1",
                          api_key=live.user_key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.models.list()


def test_a_client_that_goes_away_cancels_its_job(client: openai.OpenAI, live: LiveServer) -> None:
    endpoint_id = str(client.base_url).split("/v2/")[1].split("/")[0]
    stream = client.chat.completions.create(
        model="echo", stream=True, messages=[{"role": "user", "content": " ".join(["w"] * 400)}])
    first = next(iter(stream))
    job_id = first.id.removeprefix("chatcmpl-")  # the echo handler names them after the job
    assert status(live, endpoint_id, job_id)["status"] == "IN_PROGRESS"
    stream.close()
    wait_for(lambda: status(live, endpoint_id, job_id)["status"] == "CANCELLED",
             what="the abandoned request's job cancelled")
