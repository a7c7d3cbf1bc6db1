"""After a restart no job is handed out until the previous run's workers spoke (or a grace
passed): a job whose take was not stored must go back to the worker running it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from runplane.broker.rebuild import StartupQuiet
from runplane.clock import ManualClock


@dataclass
class W:
    id: str
    manual: bool = False


class Registry:
    def __init__(self, *workers: W) -> None:
        self.by_id = {w.id: w for w in workers}

    def all(self) -> list[W]:
        return list(self.by_id.values())

    def get(self, worker_id: str) -> W | None:
        return self.by_id.get(worker_id)


@pytest.mark.parametrize("workers, heard, retired, advance, quiet", [
    ((), (), (), 0, False),  # a fresh store: nothing to wait for
    ((W("a"),), (), (), 0, True),  # a worker of the previous run not heard yet
    ((W("a"),), ("a",), (), 0, False),  # it pinged
    ((W("a"), W("b")), ("a",), (), 0, True),  # one of two pinged
    ((W("a"), W("b")), ("a",), ("b",), 0, False),  # the other was retired (gone)
    ((W("a"),), (), (), 16, False),  # the grace passed
    ((W("m", manual=True),), (), (), 0, False),  # manual workers reconnect by themselves
])
def test_quiet(workers: tuple[W, ...], heard: tuple[str, ...], retired: tuple[str, ...],
               advance: float, quiet: bool) -> None:
    clock = ManualClock(1000.0)
    registry = Registry(*workers)
    q = StartupQuiet(registry, clock, grace_s=15)  # type: ignore[arg-type]
    for worker_id in heard:
        q.heard(worker_id)
    for worker_id in retired:
        del registry.by_id[worker_id]
    clock.advance(advance)
    assert (q.left_s() > 0) is quiet
