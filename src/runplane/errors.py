"""Domain errors: what the services, the broker and the controller refuse, and why.

They carry no HTTP status. Only ``runplane.api`` maps them onto a wire shape (RunPod's JSON
for v1 and the job API today, problem+json for REST v2 later), so a rule reads the same
wherever it is enforced and is tested without an HTTP stack.
"""

from __future__ import annotations

import math


class DomainError(Exception):
    """A refusal the caller can act on; ``field`` names the input to blame, when one is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Invalid(DomainError):
    """The input breaks a rule (a bad value, a missing field, an unknown reference)."""


class Unauthorized(DomainError):
    """No credential, or one that is not (or no longer) valid."""


class Forbidden(DomainError):
    """A valid credential that may not do this (e.g. a worker's on another endpoint)."""


class NotFound(DomainError):
    """No such resource, or one the caller may not see: the two are not told apart."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident} not found")
        self.kind = kind
        self.ident = ident


class Conflict(DomainError):
    """The resource's current state forbids the change (in use, already exists, ...)."""


class TooLarge(DomainError):
    """One item larger than a limit could ever admit (413): sending it again cannot help,
    unlike :class:`RateLimited`; it must be made smaller or split."""


class RateLimited(DomainError):
    """Too many requests, or a quota reached: 429 with ``Retry-After`` (whole seconds)."""

    def __init__(self, retry_after_s: float, message: str = "rate limit exceeded") -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"{message}; retry after {self.retry_after} s")

    @property
    def retry_after(self) -> int:
        """The ``Retry-After`` header's whole seconds (at least 1)."""
        return max(1, math.ceil(self.retry_after_s))


class Unavailable(DomainError):
    """The server cannot do this now, through no fault of the request (the store cannot
    write: disk full, I/O error): 503 with ``Retry-After``. Nothing was acknowledged."""

    def __init__(self, message: str, retry_after_s: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def retry_after(self) -> int:
        """The ``Retry-After`` header's whole seconds (at least 1)."""
        return max(1, math.ceil(self.retry_after_s))
