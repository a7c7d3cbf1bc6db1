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


# -- groups, and the flat keys of earlier releases -----------------------------------------

GROUPED = [
    # (flat key of earlier releases, its value, group, key in the group, value there)
    ("job_take_hold_s", "7", "broker", "job_take_hold_s", 7.0),
    ("broker_sweep_interval_s", "0.5", "broker", "sweep_interval_s", 0.5),
    ("runsync_result_retention_s", "5", "broker", "runsync_result_retention_s", 5.0),
    ("container_engine", "none", "container", "engine", "none"),
    ("container_pull_args", '["--tls-verify=false"]', "container", "pull_args",
     ["--tls-verify=false"]),
    ("ray_address", "10.0.0.5:6379", "ray", "address", "10.0.0.5:6379"),
]


@pytest.mark.parametrize("flat, raw, group, key, value", GROUPED, ids=[g[0] for g in GROUPED])
@pytest.mark.parametrize("where", ["env", "file", "flag"])
def test_flat_keys_of_earlier_releases_land_in_their_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, flat: str, raw: str,
    group: str, key: str, value: object,
) -> None:
    kwargs: dict[str, object] = {}
    if where == "env":
        monkeypatch.setenv(f"RUNPLANE_{flat.upper()}", raw)
    elif where == "file":
        literal = raw if raw.startswith("[") else f'"{raw}"'
        (tmp_path / "runplane.toml").write_text(f"{flat} = {literal}\n")
    else:
        kwargs[flat] = value
    s = load_settings(data_dir=tmp_path, **kwargs)
    assert getattr(getattr(s, group), key) == value


def test_groups_from_the_file_and_nested_env(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "runplane.toml").write_text(
        "demo = true\n[broker]\njob_max_retries = 5\n[container]\nnetwork = \"bridge\"\n")
    monkeypatch.setenv("RUNPLANE_BROKER__JOB_TAKE_HOLD_S", "4")
    s = load_settings(data_dir=tmp_path)
    assert (s.broker.job_max_retries, s.broker.job_take_hold_s) == (5, 4.0)
    assert (s.container.network, s.container.engine, s.demo) == ("bridge", "auto", True)


def test_a_group_wins_over_a_flat_key(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path, job_take_hold_s=9, broker={"job_take_hold_s": 2})
    assert s.broker.job_take_hold_s == 2.0


def test_unknown_key_in_a_group_is_refused(tmp_path: Path) -> None:
    (tmp_path / "runplane.toml").write_text("[broker]\nhold = 3\n")
    with pytest.raises(ValueError, match="hold"):
        load_settings(data_dir=tmp_path)
