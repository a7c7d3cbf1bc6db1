"""docs/cli.md is generated from the typer app; it must match the commands as they are."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date() -> None:
    expected = _generator().render()
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == expected, (
        "docs/cli.md is stale: run `.venv/bin/python scripts/gen_cli_docs.py` and commit it"
    )


def test_reference_covers_every_client_command() -> None:
    text = _generator().render()
    for command in ("runplane run", "runplane jobs status", "runplane jobs stream",
                    "runplane jobs cancel", "runplane health", "runplane logs",
                    "runplane login", "runplane templates create", "runplane endpoints update",
                    "runplane volumes create", "runplane registry-auths create",
                    "runplane pods create", "runplane workers list"):
        assert f"\n## {command}\n" in text, command
    assert "`RUNPLANE_API_KEY`" in text
