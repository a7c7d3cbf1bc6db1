#!/usr/bin/env python3
"""runplane's import structure, read from the code: layers, upward imports, cycles, the picture.

    python scripts/architecture.py          # print the package graph (Mermaid) and any problem
    python scripts/architecture.py --write  # also rewrite the picture in docs/architecture.md

Every ``import`` of a runplane module is read with :mod:`ast` (those inside functions and
``if TYPE_CHECKING:`` blocks too: a type is a dependency). ``tests/unit/test_layers.py`` fails
on a cycle between modules, on an import that points up the layers below, on a picture in
docs/architecture.md that no longer matches the code, and on RunPod's Pod JSON built anywhere
but ``api/shapes/`` (:func:`writers_of`, :func:`wire_named`). Standard library only.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "runplane"
DOC = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- packages:begin -->", "<!-- packages:end -->"

# Lowest first. A module may import its own package and anything in a lower layer; packages
# that share a layer may import each other only when they are one group. Top-level modules
# (runplane.clock, ...) are packages of their own.
LAYERS: list[tuple[str, ...]] = [
    ("runplane", "clock", "ids", "errors", "worker_state", "config", "security_settings",
     "accelerator"),  # vocabulary
    ("store",),  # tables and migrations
    ("catalog",),  # GPU types, data centers, machines
    ("schemas",),  # the wire models
    ("providers",),  # where processes run
    ("broker",),  # the job plane
    ("lb",),  # load-balancing endpoints: routes, balancing, health checks
    ("controller",),  # the worker plane
    ("simulate",),  # what-if autoscaling: the controller on a virtual clock
    ("services",),  # the control plane's rules
    ("observability",),  # metrics and stats fed by the planes
    ("system",),  # the bundle of a server's parts
    ("web",),  # the dashboard's files (the api app serves them; they know nothing of it)
    ("api",),  # HTTP: routes, wire formats, RunPod's JSON (api/shapes)
    ("server",),  # the composition root
    ("cli", "__main__"),  # the command line
]
# config's [limits] and [security] groups live in security_settings (config imports them).
GROUPS = [{"cli", "__main__"}, {"config", "security_settings"}]


def package_of(module: str) -> str:
    """``runplane.broker.book`` -> ``broker``; ``runplane`` -> ``runplane``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise KeyError(f"package {package!r} is in no layer of scripts/architecture.py")


def modules() -> dict[str, Path]:
    """Every runplane module name -> its file."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        if "migrations" in parts:  # Alembic's scripts, loaded by Alembic, not imported
            continue
        out[".".join(parts)] = path
    return out


def _imported(tree: ast.AST, module: str, is_package: bool,
              known: dict[str, Path]) -> Iterator[str]:
    """What ``module`` imports. ``from pkg import sub`` (a submodule) counts as importing
    ``pkg.sub`` only: a package is always initialised before its submodules, so counting it
    too would make every package that re-exports its parts a cycle."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [f"{prefix}.{alias.name}" for alias in node.names]
            submodules = [n for n in names if n in known]
            yield from submodules
            if len(submodules) < len(names):  # some names are the package's own
                yield prefix


def imports() -> dict[str, set[str]]:
    """Module -> the runplane modules it imports."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = set()
        for target in _imported(tree, name, path.name == "__init__.py", known):
            if target in known and target != name and target.startswith("runplane"):
                targets.add(target)
        graph[name] = targets
    return graph


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Imports that break the layering, as 'a -> b (why)'."""
    out = []
    for module, targets in sorted(graph.items()):
        src = package_of(module)
        for target in sorted(targets):
            dst = package_of(target)
            if src == dst or dst == "runplane" and target == "runplane":
                continue
            if any(src in g and dst in g for g in GROUPS):
                continue
            a, b = layer_of(src), layer_of(dst)
            if b > a:
                out.append(f"{module} -> {target} (upward: {src} is below {dst})")
            elif b == a:
                out.append(f"{module} -> {target} ({src} and {dst} share a layer)")
    return out


def written_keys(tree: ast.AST) -> set[str]:
    """The string keys a module writes: those of its dict displays (``{"id": ...}``) and of
    its item assignments (``body["id"] = ...``); what it only reads does not count."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            out.update(k.value for k in node.keys
                       if isinstance(k, ast.Constant) and isinstance(k.value, str))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) \
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            out.add(node.slice.value)
    return out


def writers_of(keys: set[str], at_least: int = 2) -> dict[str, set[str]]:
    """Modules that write ``at_least`` of ``keys`` (a wire object's own field names), with
    the ones they write: the modules that build that object."""
    out = {}
    for name, path in modules().items():
        found = written_keys(ast.parse(path.read_text(), str(path))) & keys
        if len(found) >= at_least:
            out[name] = found
    return out


# A module named for rendering a wire format (``pod_view``, ``wire``, ``shapes``...).
WIRE_NAMES = ("view", "wire", "shape")


def wire_named(package: str | None = None) -> list[str]:
    """Modules whose own name says they render a wire format, in ``package`` (every package
    when None)."""
    return sorted(name for name in modules()
                  if (package is None or package_of(name) == package)
                  and any(w in name.rsplit(".", 1)[-1] for w in WIRE_NAMES))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The module import cycles (strongly connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:  # Tarjan's algorithm
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def mermaid(graph: dict[str, set[str]]) -> str:
    """The package graph, top layer first, each edge once (Mermaid ``flowchart``)."""
    edges = sorted({(package_of(a), package_of(b)) for a, ts in graph.items() for b in ts
                    if package_of(a) != package_of(b) and package_of(b) != "runplane"})
    lines = ["```mermaid", "flowchart TD"]
    for i, layer in reversed(list(enumerate(LAYERS))):
        names = [p for p in layer if p != "runplane"]
        lines.append(f"    subgraph L{i}[\" \"]")
        lines.extend(f"        {p}" for p in names)
        lines.append("    end")
    lines.extend(f"    {a} --> {b}" for a, b in edges)
    lines.append("```")
    return "\n".join(lines)


def documented() -> str | None:
    """The picture now in docs/architecture.md (None when it has none)."""
    text = DOC.read_text() if DOC.exists() else ""
    if BEGIN not in text or END not in text:
        return None
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def write_doc(picture: str) -> None:
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{picture}\n{END}{tail}")


def main(argv: list[str]) -> int:
    graph = imports()
    picture = mermaid(graph)
    print(picture)
    problems = upward(graph) + [" -> ".join(c) + " (cycle)" for c in cycles(graph)]
    for p in problems:
        print("problem:", p, file=sys.stderr)
    if "--write" in argv:
        write_doc(picture)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
