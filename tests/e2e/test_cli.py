"""The client CLI against a real server process: resources, a job run by a worker the
autoscaler starts, worker logs, one-line errors, and ``runplane login``.

Commands run in-process through typer's CliRunner (the server is a real process); one check
goes through ``python -m runplane`` to cover the real entry point.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runplane.cli import app
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

HANDLER = '''
import runpod


def handler(job):
    inp = job["input"]
    print(f"handler saw {inp!r}", flush=True)
    if inp.get("fail"):
        raise ValueError("asked to fail")
    return {"greeting": f"Hello, {inp.get('name', 'world')}!"}


runpod.serverless.start({"handler": handler})
'''


def cli(srv: LiveServer | None, *args: str, key: str | None = None, home: Path,
        **env: str):
    """Run ``runplane ARGS`` in-process with a clean config home and the server's URL/key."""
    base = {"XDG_CONFIG_HOME": str(home), "RUNPLANE_URL": None, "RUNPLANE_API_KEY": None,
            "RUNPOD_API_KEY": None}
    if srv is not None:
        base["RUNPLANE_URL"] = srv.url
        base["RUNPLANE_API_KEY"] = key or srv.user_key
    return CliRunner().invoke(app, list(args), env={**base, **env})


def one_error_line(result, code: int = 1) -> str:
    """The command failed with ``code`` and said why in exactly one line."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_template_endpoint_run_logs_and_errors(live_server: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    worker_dir = tmp_path / "worker"
    worker_dir.mkdir()
    (worker_dir / "handler.py").write_text(HANDLER)

    r = cli(live_server, "templates", "create", "cli-hello", "--serverless",
            "--image", f"local:{worker_dir}", "--cmd", f"{sys.executable} handler.py",
            "--env", "GREETING=hi", "--json", home=home)
    assert r.exit_code == 0, r.stderr
    template = json.loads(r.stdout)
    assert template["dockerStartCmd"] == [sys.executable, "handler.py"]
    assert template["env"] == {"GREETING": "hi"} and template["isServerless"] is True

    r = cli(live_server, "endpoints", "create", "--template", template["id"], "--name", "cli-ep",
            "--compute-type", "CPU", "--workers-max", "1", "--idle-timeout", "60", home=home)
    assert r.exit_code == 0, r.stderr
    endpoint_id = r.stdout.strip()  # a person's create prints the id alone on stdout

    r = cli(live_server, "endpoints", "list", "--json", home=home)
    listed = json.loads(r.stdout)
    assert [(e["id"], e["name"], e["workersMax"]) for e in listed] == [(endpoint_id, "cli-ep", 1)]
    r = cli(live_server, "templates", "list", home=home)  # the table names it
    assert r.exit_code == 0 and template["id"] in r.stdout and "cli-hello" in r.stdout, (r.stdout, r.stderr, r.exception)

    # No worker yet: the job makes the autoscaler start one; `run` waits and prints the output.
    r = cli(live_server, "run", endpoint_id, "--input", '{"name": "cli"}', "--timeout", "90",
            home=home)
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert json.loads(r.stdout) == {"greeting": "Hello, cli!"}
    assert "COMPLETED" in r.stderr

    # A failing handler: one line with the handler's exception, non-zero.
    r = cli(live_server, "run", endpoint_id, "--input", '{"fail": true}', "--timeout", "60",
            home=home)
    line = one_error_line(r)
    assert "FAILED" in line and "asked to fail" in line

    r = cli(live_server, "health", endpoint_id, "--json", home=home)
    assert json.loads(r.stdout)["jobs"]["completed"] >= 1

    # The worker the autoscaler started, and its output through GET /v1/workers/{id}/logs.
    r = cli(live_server, "workers", "list", endpoint_id, "--json", home=home)
    workers = json.loads(r.stdout)
    assert len(workers) == 1
    r = cli(live_server, "logs", workers[0]["id"], home=home)
    assert r.exit_code == 0 and "handler saw {'name': 'cli'}" in r.stdout
    # Another user sees neither the endpoint nor the worker's log.
    r = cli(live_server, "logs", workers[0]["id"], key=live_server.other_key, home=home)
    assert "no worker or pod" in one_error_line(r)
    r = cli(live_server, "endpoints", "get", endpoint_id, key=live_server.other_key, home=home)
    assert one_error_line(r) == f"error: endpoint {endpoint_id} not found"

    # Bad arguments: one line, usage status 2, nothing sent.
    r = cli(live_server, "run", endpoint_id, "--input", "{bad json", home=home)
    assert "--input" in one_error_line(r, 2)
    r = cli(live_server, "endpoints", "create", "--template", template["id"],
            "--workers-max", "many", home=home)
    assert "--workers-max" in one_error_line(r, 2)
    # The server's refusals, in its own words.
    r = cli(live_server, "run", "no-such-endpoint", "--input", "{}", home=home)
    assert one_error_line(r) == "error: endpoint no-such-endpoint not found"
    r = cli(live_server, "endpoints", "update", endpoint_id, "--workers-max", "5000", home=home)
    assert "workersMax" in one_error_line(r)
    r = cli(live_server, "templates", "list", key="rpl_not_a_key", home=home)
    assert one_error_line(r) == "error: invalid or revoked API key"

    # The real entry point behaves the same.
    env = {**os.environ, "XDG_CONFIG_HOME": str(home), "RUNPLANE_URL": live_server.url,
           "RUNPLANE_API_KEY": live_server.user_key}
    proc = subprocess.run([sys.executable, "-m", "runplane", "jobs", "status", endpoint_id,
                           "no-such-job"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == "error: job no-such-job not found"


def test_login_writes_config_used_by_later_commands(live_server: LiveServer,
                                                      tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = home / "runplane" / "cli.toml"

    r = cli(None, "login", "--url", live_server.url, "--api-key", "rpl_wrong", home=home)
    assert one_error_line(r) == "error: invalid or revoked API key"
    assert not config.exists()

    r = cli(None, "login", "--url", live_server.url + "/", "--api-key", live_server.user_key,
            home=home)
    assert r.exit_code == 0, r.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert f'url = "{live_server.url}"' in config.read_text()

    # Later commands need neither flags nor environment.
    r = cli(None, "endpoints", "list", "--json", home=home)
    assert r.exit_code == 0 and json.loads(r.stdout) == []
    # The saved key is never sent to another server.
    other = live_server.url.replace("127.0.0.1", "localhost")
    r = cli(None, "endpoints", "list", "--url", other, home=home)
    assert "no API key" in one_error_line(r)

    r = cli(None, "logout", home=home)
    assert r.exit_code == 0 and not config.exists()
