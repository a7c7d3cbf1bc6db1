"""A fingerprint of the SDK code the accelerator replaces or relies on.

The runpod SDK's job loop lives in ``runpod/serverless/modules/rp_scale.py`` (class
``JobScaler``). The accelerator swaps its waits for events, which is only right for code it
has read: it fingerprints the methods it replaces or calls from the module's source, without
importing it, and runs only on a fingerprint listed in ``known.py``.

The fingerprint is a hash of a canonical form of each method's syntax tree: comments,
docstrings, formatting and the Python version that parses it do not change it; any change of
code does. Runs in the worker's interpreter (Python 3.8+, standard library only).
"""

from __future__ import annotations

import ast
import hashlib

# The JobScaler methods whose behaviour the replacements reproduce or depend on.
METHODS = ("__init__", "set_scale", "get_jobs", "run_jobs", "handle_job", "kill_worker",
           "is_alive", "current_occupancy")

# Fields that differ between Python versions for the same code, or carry no meaning.
_SKIP = frozenset({"ctx", "type_comment", "type_params", "kind"})


def _canon(node: object) -> str:
    if isinstance(node, list):
        return "[" + ",".join(_canon(n) for n in node) + "]"
    if not isinstance(node, ast.AST):
        return repr(node)
    index = getattr(ast, "Index", None)  # Python 3.8 wraps subscripts in Index
    if index is not None and isinstance(node, index):
        return _canon(node.value)  # type: ignore[attr-defined]
    parts = [type(node).__name__]
    for name in node._fields:
        if name in _SKIP:
            continue
        value = getattr(node, name, None)
        if name == "body" and isinstance(value, list) and value and _is_docstring(value[0]):
            value = value[1:]
        if value is None or value == []:
            continue
        parts.append(name + "=" + _canon(value))
    return "(" + " ".join(parts) + ")"


def _is_docstring(stmt: ast.AST) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str))


def fingerprint(source: str) -> str | None:
    """The fingerprint of ``JobScaler`` in ``source`` (rp_scale.py), or None without one."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "JobScaler":
            methods = {m.name: m for m in node.body
                       if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
            if not all(name in methods for name in METHODS):
                return None
            text = "\n".join(name + ":" + _canon(methods[name]) for name in METHODS)
            return hashlib.sha256(text.encode()).hexdigest()[:16]
    return None
