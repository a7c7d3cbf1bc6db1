"""A replay's work, counted in steps and stoppable from outside its thread.

A replay (``engine.Run.run``) takes one step per event and per controller tick; the sweep
hands every candidate's run the same ``Budget``. A thread cannot be cancelled, so the budget
is how the server stops one: ``cancel()`` (the client left, the server is stopping) makes the
next step raise ``Cancelled``; past ``max_steps`` the next step raises ``Exhausted`` (the
what-if answers with the candidates it finished). Checking costs an attribute read and an
increment per step, against tens of microseconds for a controller tick.

``cancel_all()`` cancels every budget still alive: the SIGTERM handler calls it so that no
replay holds a stopping server up.
"""

from __future__ import annotations

import weakref


class Cancelled(Exception):
    """The replay was cancelled (``Budget.cancel``)."""


class Exhausted(Exception):
    """The replay used its budget's ``max_steps``."""


class Budget:
    """Steps taken so far (``steps``), at most ``max_steps`` (None: no cap)."""

    __slots__ = ("__weakref__", "_cancelled", "max_steps", "steps")

    def __init__(self, max_steps: int | None = None) -> None:
        self.max_steps = max_steps
        self.steps = 0
        self._cancelled = False
        _LIVE.add(self)

    def step(self) -> None:
        """Count one step; raise when cancelled or past the cap."""
        if self._cancelled:
            raise Cancelled
        if self.max_steps is not None and self.steps >= self.max_steps:
            raise Exhausted
        self.steps += 1

    def cancel(self) -> None:
        """Stop the replay at its next step (callable from any thread)."""
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled


_LIVE: weakref.WeakSet[Budget] = weakref.WeakSet()


def cancel_all() -> None:
    """Cancel every live budget (the server is stopping)."""
    for budget in list(_LIVE):
        budget.cancel()
