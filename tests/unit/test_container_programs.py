"""The container runtime's three programs run by path (``python -I -S <file>``): the paths the
runtime hands the interpreter name files that exist, and those files import the standard
library only (they start without the server's package on the path, some beside a container)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from runplane.providers.runtimes.container import adopt, plan, runtime


def test_the_paths_run_by_the_runtime_are_its_programs() -> None:
    paths = {runtime.LAUNCHER, adopt.FOLLOWER, adopt.FORWARDER, plan.FORWARDER}
    assert {p.name for p in paths} == {"launch.py", "follow.py", "forward.py"}
    assert all(p.is_file() and p.parent == Path(runtime.__file__).parent for p in paths)


def _imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." if node.level else (node.module or "").split(".")[0])
    return found


def test_the_programs_import_the_standard_library_only() -> None:
    for path in (runtime.LAUNCHER, adopt.FOLLOWER, adopt.FORWARDER):
        outside = _imported(path) - set(sys.stdlib_module_names)
        assert outside == set(), f"{path.name} imports {outside}"
