"""What every resolver gets: the server's parts and the caller."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLResolveInfo

from runplane.services.users import Principal
from runplane.system import Services


@dataclass(frozen=True)
class Context:
    """``info.context`` of one request."""

    services: Services
    principal: Principal
    # Counts one resource create against the caller's address (RateLimited past the limit),
    # as REST's creates are.
    count_create: Callable[[], None]


def context(info: GraphQLResolveInfo) -> Context:
    """The request's context, typed."""
    ctx: Context = info.context
    return ctx


def parts(info: GraphQLResolveInfo) -> tuple[Services, Principal]:
    """The server's parts and the caller, the two things resolvers need."""
    ctx = context(info)
    return ctx.services, ctx.principal


Json = dict[str, Any]
