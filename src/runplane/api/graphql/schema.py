"""The executable schema: ``schema.graphql`` with each resolver module's fields bound, and one
request's execution with errors in GraphQL's ``errors`` list.

A domain error (``runplane.errors``) raised by a service becomes one error whose ``message`` is
the service's, with ``extensions.code`` (``BAD_USER_INPUT``, ``NOT_FOUND``...), the HTTP status
REST would have answered, and the input field to blame; the SDK raises its ``QueryError`` with
that message. Anything else is logged and answered as ``internal server error``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from inspect import isawaitable
from pathlib import Path
from types import CoroutineType
from typing import Any, TypeGuard

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    build_schema,
    execute,
    parse,
    validate,
)
from graphql.language import SelectionSetNode

from runplane.api.graphql import account, endpoints, pods, templates
from runplane.api.graphql.context import Context
from runplane.api.http.errors import domain_status
from runplane.errors import DomainError

SDL_PATH = Path(__file__).with_name("schema.graphql")
# The most fields one document may resolve, fragments expanded: the SDK's largest document has
# ~40 and a full introspection query ~220; aliases and fragment spreads could otherwise make a
# small body ask for millions of lists.
MAX_FIELDS = 1_000
# The most fields one document may write, checked before validation (whose cost grows with
# the square of the fields selected side by side): a full introspection query writes 67.
MAX_WRITTEN_FIELDS = 300
RESOLVER_MODULES = (account, templates, endpoints, pods)
log = logging.getLogger("runplane.graphql")

# The HTTP status REST would answer -> the code GraphQL servers conventionally use.
_CODES = {400: "BAD_USER_INPUT", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND",
          409: "CONFLICT", 429: "RATE_LIMITED", 503: "UNAVAILABLE"}


def build(resolvers: Mapping[str, Mapping[str, Callable[..., Any]]]) -> GraphQLSchema:
    """The SDL with ``resolvers`` (type name -> field name -> resolver) bound."""
    schema = build_schema(SDL_PATH.read_text())
    for type_name, fields in resolvers.items():
        owner = schema.type_map[type_name]
        assert isinstance(owner, GraphQLObjectType), type_name
        for name, resolver in fields.items():
            owner.fields[name].resolve = resolver
    void = schema.type_map["Void"]
    assert isinstance(void, GraphQLScalarType)
    void.serialize = _null  # type: ignore[method-assign]
    return schema


def _is_coroutine(value: Any) -> TypeGuard[Awaitable[Any]]:
    """What graphql-core must await: the resolvers' only awaitables are ``async def``
    coroutines. Its general check (``__await__`` on every value) is a tenth of the cost of
    listing 1,000 endpoints."""
    return type(value) is CoroutineType


def _null(value: Any) -> Any:
    return None


def _all_resolvers() -> dict[str, dict[str, Callable[..., Any]]]:
    merged: dict[str, dict[str, Callable[..., Any]]] = {}
    for module in RESOLVER_MODULES:
        for type_name, fields in module.RESOLVERS.items():
            merged.setdefault(type_name, {}).update(fields)
    return merged


SCHEMA = build(_all_resolvers())


def prepare(source: str, max_tokens: int) -> DocumentNode | list[GraphQLError]:
    """The parsed, validated document, or its errors (run in a thread: see ``run``). Parsing
    stops past ``max_tokens``; validation, whose overlapping-fields rule is quadratic in the
    fields of one selection, waits until the document's fields as written are counted."""
    try:
        document = parse(source, max_tokens=max_tokens)
    except GraphQLError as err:
        return [err]
    written = written_fields(document)
    if written > MAX_WRITTEN_FIELDS:
        return [GraphQLError(f"the document has {written} fields; at most "
                             f"{MAX_WRITTEN_FIELDS} are served per request")]
    errors = validate(SCHEMA, document)
    if errors:
        return list(errors)
    fields = field_count(document)
    if fields > MAX_FIELDS:
        return [GraphQLError(f"the document selects {fields} fields, fragments expanded; at most "
                             f"{MAX_FIELDS} are served per request")]
    return document


class Documents:
    """Valid documents by their text: those of at most ``max_source`` characters, the newest
    first, ``max_chars`` of text in all (an AST is ~100 bytes a character: 256 K characters
    hold ~25 MB). The SDK sends the same few texts every call. Refused documents are never
    kept (their errors hold the whole AST)."""

    def __init__(self, max_chars: int = 262_144, max_source: int = 4096) -> None:
        self.max_chars, self.max_source = max_chars, max_source
        self.chars = 0
        self._docs: OrderedDict[str, DocumentNode] = OrderedDict()

    def get(self, source: str) -> DocumentNode | None:
        document = self._docs.get(source)
        if document is not None:
            self._docs.move_to_end(source)
        return document

    def put(self, source: str, document: DocumentNode) -> None:
        if len(source) > self.max_source or source in self._docs:
            return
        self._docs[source] = document
        self.chars += len(source)
        while self.chars > self.max_chars:
            oldest, _ = self._docs.popitem(last=False)
            self.chars -= len(oldest)

    def __len__(self) -> int:
        return len(self._docs)


DOCUMENTS = Documents()


def written_fields(document: DocumentNode) -> int:
    """The fields of ``document`` as written (fragments not expanded)."""
    total = 0
    stack: list[SelectionSetNode | None] = [
        d.selection_set for d in document.definitions
        if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)]
    while stack:
        selection_set = stack.pop()
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                total += 1
                stack.append(node.selection_set)
            elif isinstance(node, InlineFragmentNode):
                stack.append(node.selection_set)
    return total


def field_count(document: DocumentNode) -> int:
    """How many fields executing every operation of a (validated) ``document`` resolves, at
    most: each fragment spread counted as its fragment's fields (each fragment counted once)."""
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    memo: dict[str, int] = {}

    def count(selection_set: SelectionSetNode | None) -> int:
        total = 0
        for node in selection_set.selections if selection_set else ():
            if isinstance(node, FieldNode):
                total += 1 + count(node.selection_set)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                if name not in memo:  # validation has ruled out cycles
                    memo[name] = count(fragments[name].selection_set)
                total += memo[name]
            elif isinstance(node, InlineFragmentNode):
                total += count(node.selection_set)
        return total

    return sum(count(d.selection_set) for d in document.definitions
               if isinstance(d, OperationDefinitionNode))


async def run(source: str, context: Context, variables: dict[str, Any] | None = None,
              operation: str | None = None, max_tokens: int = 5_000) -> dict[str, Any]:
    """Execute one GraphQL request; the response body (``data`` and/or ``errors``). A
    document not already known is parsed and validated in a thread: even capped, that is
    milliseconds of CPU the event loop (every worker's job-take) should not wait for."""
    document = DOCUMENTS.get(source)
    if document is None:
        prepared = await asyncio.to_thread(prepare, source, max_tokens)
        if isinstance(prepared, list):
            return {"errors": [format_error(e) for e in prepared]}
        DOCUMENTS.put(source, prepared)
        document = prepared
    result = execute(SCHEMA, document, context_value=context, variable_values=variables,
                     operation_name=operation, is_awaitable=_is_coroutine)
    if isawaitable(result):
        result = await result
    assert isinstance(result, ExecutionResult)
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [format_error(e) for e in result.errors]
    body["data"] = result.data
    return body


def format_error(error: GraphQLError) -> dict[str, Any]:
    """One entry of ``errors``: the domain error's message and code, or a generic one."""
    out: dict[str, Any] = dict(error.formatted)
    original = error.original_error
    if isinstance(original, DomainError):
        status = domain_status(original)
        out["message"] = original.message
        extensions: dict[str, Any] = {"code": _CODES.get(status, "BAD_USER_INPUT"),
                                      "status": status}
        if original.field:
            extensions["field"] = original.field
        out["extensions"] = extensions
    elif original is not None:
        log.error("unhandled error in a GraphQL resolver", exc_info=original)
        out["message"] = "internal server error"
        out["extensions"] = {"code": "INTERNAL_SERVER_ERROR", "status": 500}
    else:  # the document: syntax, unknown fields, wrong argument types
        out["extensions"] = {"code": "GRAPHQL_VALIDATION_FAILED", "status": 400}
    return out
