"""``runplane users`` / ``runplane keys`` against a real store."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from runplane.cli import app
from runplane.services.users import UserService
from runplane.store.db import make_engine

runner = CliRunner()


def test_user_and_key_lifecycle(tmp_path: Path) -> None:
    dd = ["--data-dir", str(tmp_path)]
    created = runner.invoke(app, ["users", "create", "carol", "--json", *dd])
    assert created.exit_code == 0, created.output
    carol = json.loads(created.output)
    users = UserService(make_engine(f"sqlite:///{tmp_path / 'runplane.db'}"))
    assert users.authenticate(carol["apiKey"]).user_id == carol["id"]

    again = runner.invoke(app, ["users", "create", "carol", *dd])
    assert again.exit_code == 1 and "already exists" in again.output

    key = runner.invoke(app, ["keys", "create", "--user", "carol", "--json", *dd])
    key_info = json.loads(key.output)
    listed = json.loads(runner.invoke(app, ["keys", "list", "--user", "carol", "--json", *dd]).output)
    assert {k["id"] for k in listed} >= {key_info["id"]}
    assert all("key_hash" not in k for k in listed)

    revoked = runner.invoke(app, ["keys", "revoke", key_info["id"], *dd])
    assert revoked.exit_code == 0
    fresh = UserService(make_engine(f"sqlite:///{tmp_path / 'runplane.db'}"))
    assert fresh.authenticate(key_info["apiKey"]) is None

    missing = runner.invoke(app, ["keys", "revoke", "nope", *dd])
    assert missing.exit_code == 1 and "no active key" in missing.output


def test_keys_create_for_unknown_user_fails(tmp_path: Path) -> None:
    result = runner.invoke(app, ["keys", "create", "--user", "zed", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "no user 'zed'" in result.output
