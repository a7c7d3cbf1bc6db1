"""GraphQL documents (issue 23, finding 3): parsed and validated off the event loop, capped
before the costly parts, and only small valid ones cached."""

from __future__ import annotations

import asyncio
from typing import Any

from graphql import DocumentNode, parse

from runplane.api.graphql import schema
from runplane.api.graphql.schema import DOCUMENTS, MAX_WRITTEN_FIELDS, Documents, prepare


async def test_a_new_document_is_parsed_and_validated_off_the_event_loop() -> None:
    # A document that fails validation used to be parsed and validated without one await:
    # no other task ran until it was done (every worker's job-take waited).
    source = "query { " + " ".join(f"u{i}: unknownField" for i in range(200)) + " }"
    ticks = 0
    running = True

    async def ticker() -> None:
        nonlocal ticks
        while running:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    body = await schema.run(source, context=None)  # type: ignore[arg-type]  # never executed
    during = ticks - before
    running = False
    await task
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert during > 0
    assert source not in DOCUMENTS._docs  # refused: not kept


def test_the_token_cap_stops_parsing() -> None:
    source = "query { " + " ".join(f"a{i}: myself {{ id }}" for i in range(1000)) + " }"
    (error,) = prepare(source, max_tokens=500)  # type: ignore[misc]
    assert "more than 500 tokens" in error.message


def test_fields_as_written_are_capped_before_validation() -> None:
    # The same field side by side: validation's overlap rule compares every pair.
    source = "query { " + " ".join("myself { id }" for _ in range(MAX_WRITTEN_FIELDS)) + " }"
    (error,) = prepare(source, max_tokens=5000)  # type: ignore[misc]
    assert f"the document has {2 * MAX_WRITTEN_FIELDS} fields" in error.message
    ok = prepare("query { myself { id } }", max_tokens=5000)
    assert isinstance(ok, DocumentNode)


def test_the_cache_keeps_small_documents_within_its_characters() -> None:
    docs = Documents(max_chars=100, max_source=40)
    doc: Any = parse("{ a }")
    docs.put("x" * 41, doc)
    assert len(docs) == 0  # too large to keep
    for i in range(10):
        docs.put(f"{i:02d}" + "y" * 28, doc)  # 30 characters each
    assert len(docs) == 3 and docs.chars == 90
    assert docs.get("09" + "y" * 28) is doc and docs.get("00" + "y" * 28) is None
