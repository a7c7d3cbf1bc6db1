"""Settings precedence: flags over env over the TOML file over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from runplane.config import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RUNPLANE_PORT", "RUNPLANE_CONFIG", "RUNPLANE_DATA_DIR", "RUNPLANE_HOST"):
        monkeypatch.delenv(name, raising=False)


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'runplane.db'}"
    assert s.resolved_public_url == "http://127.0.0.1:8000"


def test_toml_in_data_dir_is_read(tmp_path: Path) -> None:
    (tmp_path / "runplane.toml").write_text('port = 9001\nextra_data_centers = ["HOME-1"]\n')
    s = load_settings(data_dir=tmp_path)
    assert s.port == 9001
    assert s.extra_data_centers == ["HOME-1"]


@pytest.mark.parametrize(
    ("toml", "env", "flag", "expected"),
    [
        (None, None, None, 8000),
        (9001, None, None, 9001),
        (9001, "9002", None, 9002),
        (9001, "9002", 9003, 9003),
        (None, None, 9003, 9003),
    ],
)
def test_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    toml: int | None, env: str | None, flag: int | None, expected: int,
) -> None:
    if toml is not None:
        (tmp_path / "runplane.toml").write_text(f"port = {toml}\n")
    if env is not None:
        monkeypatch.setenv("RUNPLANE_PORT", env)
    assert load_settings(data_dir=tmp_path, port=flag).port == expected


def test_explicit_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_settings(data_dir=tmp_path, config_file=tmp_path / "missing.toml")


def test_explicit_config_file_wins_over_data_dir_file(tmp_path: Path) -> None:
    (tmp_path / "runplane.toml").write_text("port = 9001\n")
    other = tmp_path / "other.toml"
    other.write_text("port = 9005\n")
    assert load_settings(data_dir=tmp_path, config_file=other).port == 9005


def test_unknown_setting_is_refused(tmp_path: Path) -> None:
    (tmp_path / "runplane.toml").write_text("prot = 9001\n")
    with pytest.raises(ValueError, match="prot"):
        load_settings(data_dir=tmp_path)


def test_public_url_for_wildcard_host(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path, host="0.0.0.0", port=8100)
    assert s.resolved_public_url == "http://127.0.0.1:8100"
