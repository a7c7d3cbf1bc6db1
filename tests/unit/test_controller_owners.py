"""The controller's shared records have one owner (issue 24): the workers it tracks and what
it says about each endpoint live in ``controller/records.py`` and are written only through its
methods (the ``Controller`` holds the only ``Records``), and nothing reads them through the
controller object but its narrow ``Controller.readings`` (and its parts' read-only
``tracked``). Read from the source, like tests/unit/test_layers.py."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "runplane"
OWNER = PACKAGE / "controller" / "records.py"

# A write into a tracked set or the endpoint states: item assignment, deletion, or a
# mutating dict method, on any name ending in "tracked" or "states".
WRITE = re.compile(r"(tracked|states)\s*\[[^\]]+\]\s*=(?!=)"
                   r"|del\s+[\w.]*(tracked|states)\s*\["
                   r"|(tracked|states)\s*\.\s*(pop|popitem|setdefault|clear|update)\s*\(")
# The records read through the controller object from outside its package.
READ = re.compile(r"\bcontroller\s*\.\s*(_?tracked|_?states)\b")


def _sources() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text() for p in sorted(PACKAGE.rglob("*.py"))}


def _hits(pattern: re.Pattern[str], text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if pattern.search(line)]


def test_only_the_controller_writes_its_records() -> None:
    found = {name: hits for name, text in _sources().items()
             if name != str(OWNER.relative_to(PACKAGE)) and (hits := _hits(WRITE, text))}
    assert found == {}, "write through Records' methods (track, forget, state_of, ...)"


def test_readers_outside_the_controller_use_its_readings() -> None:
    found = {name: hits for name, text in _sources().items()
             if name != str(OWNER.relative_to(PACKAGE)) and (hits := _hits(READ, text))}
    assert found == {}, "read Controller.readings, not the records"


def test_the_checks_find_one() -> None:
    assert _hits(WRITE, "        tracked[row.id] = w") != []
    assert _hits(WRITE, "        self._tracked.pop(w.id, None)") != []
    assert _hits(WRITE, "            del self.states[gone]") != []
    assert _hits(WRITE, "    if tracked[wid] == w:") == []
    assert _hits(READ, "            st = controller.states.get(ep)") != []
    assert _hits(READ, "    t = self.controller.tracked.get(w.id)") != []
    assert _hits(READ, "    controller.desired_workers(ep)") == []
