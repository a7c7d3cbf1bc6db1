"""The client CLI without a server: where requests go (flags, env, config file), how the
server's errors read, log following, and one-line errors for bad command lines."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from runplane.cli import app
from runplane.cli.client import resolve, server_reason, write_config
from runplane.cli.jobs import error_text
from runplane.cli.logs import new_text

SERVER = "http://10.0.0.5:8000"


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    return tmp_path


def test_defaults_without_config(config_home: Path) -> None:
    target = resolve(None, None)
    assert (target.url, target.api_key) == ("http://127.0.0.1:8000", None)


def test_config_file_supplies_url_and_key(config_home: Path) -> None:
    path = write_config(SERVER, "rpl_saved")
    assert path == config_home / "runplane" / "cli.toml"
    assert resolve(None, None) == resolve(SERVER + "/", None)
    assert resolve(None, None).api_key == "rpl_saved"
    # Flags win over the file.
    assert resolve(None, "rpl_flag").api_key == "rpl_flag"


def test_saved_key_is_not_sent_to_another_server(config_home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(SERVER, "rpl_saved")
    other = resolve("http://127.0.0.1:9000", None)
    assert (other.url, other.api_key) == ("http://127.0.0.1:9000", None)
    # RUNPOD_API_KEY is the last resort, after the config file.
    monkeypatch.setenv("RUNPOD_API_KEY", "rpl_from_runpod_env")
    assert resolve("http://127.0.0.1:9000", None).api_key == "rpl_from_runpod_env"
    assert resolve(None, None).api_key == "rpl_saved"


def test_pasted_api_base_urls_are_accepted(config_home: Path) -> None:
    assert resolve("http://h:1/v2/", "k").url == "http://h:1"
    assert resolve("https://h/v1", "k").url == "https://h"


def test_broken_config_file_is_one_clear_error(config_home: Path) -> None:
    path = config_home / "runplane" / "cli.toml"
    path.parent.mkdir(parents=True)
    path.write_text("url = [unclosed")
    r = CliRunner().invoke(app, ["endpoints", "list"], env={"RUNPLANE_URL": None,
                                                            "RUNPLANE_API_KEY": None})
    assert r.exit_code == 1
    assert r.stderr.startswith(f"error: cannot read {path}") and r.stderr.count("\n") == 1


def _response(status: int, body: bytes, content_type: str) -> httpx.Response:
    return httpx.Response(status, content=body, headers={"content-type": content_type},
                          request=httpx.Request("GET", "http://x/"))


def test_server_reason_reads_the_error_shape() -> None:
    body = {"error": "gpuCount: too big", "message": "gpuCount: too big", "status": 400,
            "field": "gpuCount"}
    assert server_reason(_response(400, json.dumps(body).encode(), "application/json")) \
        == "gpuCount: too big"
    assert server_reason(_response(502, b"<html>\nBad gateway\n</html>", "text/html")) \
        == "HTTP 502 Bad Gateway: <html> Bad gateway </html>"


def test_sdk_error_payloads_read_as_one_message() -> None:
    sdk = json.dumps({"error_type": "<class 'ValueError'>", "error_message": "bad input",
                      "error_traceback": "Traceback...\n  line 3\n"})
    assert error_text(sdk) == "ValueError: bad input"
    assert error_text("plain failure") == "plain failure"


def test_new_text_follows_a_moving_tail() -> None:
    assert new_text("a\nb\n", "a\nb\nc\n") == "c\n"
    assert new_text("line 1\nline 2\n", "line 2\nline 3\n") == "line 3\n"  # window moved
    assert new_text("old run\n", "fresh\n") == "fresh\n"  # the log was replaced
    assert new_text("same\n", "same\n") == ""


@pytest.mark.parametrize("args, needle", [
    (["templates", "create", "t"], "--image"),
    (["templates", "create", "t", "--image", "local:/x", "--env", "NOEQUALS"], "KEY=VALUE"),
    (["templates", "create", "t", "--image", "local:/x", "--cmd", "python 'unclosed"], "--cmd"),
    (["endpoints", "create", "--template", "t", "--gpu-count", "two"], "--gpu-count"),
    (["endpoints", "update", "ep1"], "nothing to change"),
    (["run", "ep1", "--input", "{nope"], "--input"),
    (["run", "ep1", "--input", "@/no/such/file.json"], "cannot read"),
    (["run"], "ENDPOINT_ID"),
    (["pods", "create", "p"], "--template or --image"),
    (["templates", "list", "--url", "localhost:8000"], "--url"),
    (["no-such-command"], "no-such-command"),
])
def test_bad_arguments_are_one_line_and_usage_status(config_home: Path, args: list[str],
                                                     needle: str) -> None:
    r = CliRunner().invoke(app, args, env={"RUNPLANE_API_KEY": "k", "RUNPLANE_URL": None})
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert needle in r.stderr


def test_missing_key_and_unreachable_server(config_home: Path) -> None:
    env = {"RUNPLANE_API_KEY": None, "RUNPLANE_URL": None}
    r = CliRunner().invoke(app, ["endpoints", "list"], env=env)
    assert r.exit_code == 1 and r.stderr.startswith("error: no API key")
    # Port 9 (discard) on loopback: nothing listens there in the test environment.
    r = CliRunner().invoke(app, ["endpoints", "list", "--url", "http://127.0.0.1:9",
                                 "--api-key", "k"], env=env)
    assert r.exit_code == 1 and r.stderr.startswith("error: cannot reach http://127.0.0.1:9")
    assert r.stderr.count("\n") == 1
