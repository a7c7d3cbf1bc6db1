"""The import structure of runplane, read from the code (scripts/architecture.py): no cycle
between modules, no import that points up the layers, no module over the size limit, no
file-name prefix back where a package replaced it, and the picture in docs/architecture.md
drawn from the code as it is."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
# ~400 lines a module (the style guide); past this a module is doing more than one thing.
MAX_LINES = 400


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("architecture", ROOT / "scripts" /
                                                  "architecture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


arch = _tool()


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return arch.imports()


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    assert arch.cycles(graph) == []


def test_no_upward_imports(graph: dict[str, set[str]]) -> None:
    assert arch.upward(graph) == []


def test_every_package_has_a_layer(graph: dict[str, set[str]]) -> None:
    for module in graph:
        arch.layer_of(arch.package_of(module))  # KeyError names the one missing


@pytest.mark.parametrize("module, target, problem", [
    ("runplane.services.pods", "runplane.api.errors", "upward"),
    ("runplane.broker.webhooks", "runplane.services.jobs", "upward"),
    ("runplane.broker.book", "runplane.controller.reconcile", "upward"),
    ("runplane.providers.local", "runplane.broker.models", "upward"),
    ("runplane.api.app", "runplane.web.routes", None),  # one group: the HTTP surface
    ("runplane.server", "runplane.api.app", None),
])
def test_the_rule_itself(module: str, target: str, problem: str | None) -> None:
    found = arch.upward({module: {target}})
    assert (problem in found[0]) if problem else found == []


def test_the_checker_finds_a_cycle() -> None:
    assert arch.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_too_long() -> None:
    long = {name: n for name, path in arch.modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


# File-name prefixes that stood in for folders, now packages: (folder, glob of the old
# files, the package that replaced them). Extend as more move: api/lb_*.py (-> api/lb/) and
# providers/runtimes/container*.py (-> providers/runtimes/container/) still exist and are
# moved by their own changes; each adds its row then.
OLD_PREFIXES = [
    ("providers", "ray_*.py", "providers/ray/"),
    ("services", "billing*.py", "services/billing/"),
]


def _prefixed(package: Path) -> list[str]:
    return sorted(str(path.relative_to(package)) for folder, pattern, _ in OLD_PREFIXES
                  for path in (package / folder).glob(pattern))


def test_no_old_prefix_comes_back() -> None:
    found = _prefixed(arch.PACKAGE)
    assert found == [], f"{found}: these belong in their packages ({OLD_PREFIXES})"


def test_the_prefix_check_finds_one(tmp_path: Path) -> None:
    (tmp_path / "providers").mkdir()
    (tmp_path / "services" / "billing").mkdir(parents=True)
    for name in ("providers/ray_pump.py", "providers/local.py", "services/billing_v2.py",
                 "services/billing/records.py"):
        (tmp_path / name).touch()
    assert _prefixed(tmp_path) == ["providers/ray_pump.py", "services/billing_v2.py"]


def test_the_documented_picture_is_the_code(graph: dict[str, set[str]]) -> None:
    assert arch.documented() == arch.mermaid(graph), (
        "docs/architecture.md is out of date: run `python scripts/architecture.py --write`")
