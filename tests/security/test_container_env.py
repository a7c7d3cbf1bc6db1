"""Nothing a user sends reaches the host processes that start a container (issue 23, finding 1).

An env value an env file cannot hold (a newline) once went to the root ``podman`` client as a
variable of its own environment, so ``LD_PRELOAD=<a library in the user's volume>:\\n`` ran the
user's code as root on the host. Here a real shared library, compiled in the test into a
directory standing in for the user's network volume, writes a marker wherever it is loaded; a
pod or worker whose env holds ``LD_PRELOAD=<it>:\\n`` (and the engine's own knobs beside it) is
created through /v1, REST v2 and GraphQL, by an ordinary user, on a real podman: no marker may
appear, and a multi-line value still reaches the container intact.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LiveServer
from tests.security.conftest import needs_podman, wait_for

IMAGE = "localhost/runplane-test/debian-python:bookworm"
MULTI = "line one\nline two\r\n\tthree = 3 \"quoted\" $HOME\n"
# The container prints its value as JSON: one line, the test compares it exactly.
PRINT = ("import json, os; print('MULTI=' + json.dumps(os.environ.get('MULTI')), flush=True); "
         "import time; time.sleep(60)")

LIBRARY = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void mark(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/marker-%d", MARK_DIR, (int)getpid());
    FILE *f = fopen(path, "w");
    if (f) { fprintf(f, "uid=%d\n", (int)getuid()); fclose(f); }
}
"""

pytestmark = needs_podman


@pytest.fixture(scope="module")
def volume() -> Iterator[Path]:
    """The user's "network volume": the library and the directory its markers land in."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to build the test library")
    if subprocess.run(["podman", "image", "exists", IMAGE], check=False).returncode != 0:
        pytest.skip(f"{IMAGE} is not built: run scripts/setup_podman.sh")
    path = Path(tempfile.mkdtemp(prefix="runplane-volume-", dir="/tmp"))
    path.chmod(0o755)
    marks = path / "marks"
    marks.mkdir(mode=0o777)
    marks.chmod(0o777)
    src = path / "mark.c"
    src.write_text(LIBRARY)
    subprocess.run(["gcc", "-shared", "-fPIC", f'-DMARK_DIR="{marks}"', "-o",
                    str(path / "libmark.so"), str(src)], check=True)
    # The library works: loaded into any process, it leaves its marker.
    subprocess.run(["true"], env={**os.environ, "LD_PRELOAD": f"{path / 'libmark.so'}:\n"},
                   check=True)
    assert list(marks.iterdir()), "the test library did not mark its loading"
    for m in marks.iterdir():
        m.unlink()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def hostile_env(volume: Path) -> dict[str, str]:
    lib = str(volume / "libmark.so")
    return {
        "LD_PRELOAD": f"{lib}:\n",
        "LD_AUDIT": f"{lib}\n",
        "LD_LIBRARY_PATH": f"{volume}\n",
        # The engine's own knobs: harmless, since nothing of the user's is its environment.
        "CONTAINERS_CONF": f"{volume}/containers.conf\n",
        "CONTAINER_HOST": "unix:///nonexistent.sock\n",
        "DOCKER_HOST": "unix:///nonexistent.sock\n",
        "MULTI": MULTI,
    }


def _gql_string(value: str) -> str:
    return json.dumps(value)  # JSON's escapes are GraphQL's (\n, \", \\, \uXXXX)


def _gql_env(env: dict[str, str]) -> str:
    return "[" + ", ".join(f"{{key: {_gql_string(k)}, value: {_gql_string(v)}}}"
                           for k, v in env.items()) + "]"


def _gql(c: httpx.Client, document: str) -> dict[str, Any]:
    r = c.post("/graphql", json={"query": document})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "errors" not in body, body
    return body["data"]


def via_v1_pod(c: httpx.Client, env: dict[str, str]) -> tuple[str, str]:
    r = c.post("/v1/pods", json={"name": "env-v1", "imageName": IMAGE, "computeType": "CPU",
                                 "vcpuCount": 1, "env": env,
                                 "dockerStartCmd": ["python3", "-c", PRINT]})
    assert r.status_code == 201, r.text
    return "pod", r.json()["id"]


def via_rest_v2_endpoint(c: httpx.Client, env: dict[str, str]) -> tuple[str, str]:
    r = c.post("/v2/serverless", json={
        "name": "env-v2", "type": "QUEUE", "image": IMAGE, "env": env,
        "args": f"python3 -c {json.dumps(PRINT)}",
        "cpu": [{"id": "cpu3c", "vcpuCount": 2}], "workers": {"min": 1, "max": 1},
        "scaling": {"type": "REQUEST_COUNT", "requestCount": 1}})
    assert r.status_code == 201, r.text
    return "endpoint", r.json()["id"]


def via_graphql_pod(c: httpx.Client, env: dict[str, str]) -> tuple[str, str]:
    tpl = _gql(c, f"""mutation {{ saveTemplate(input: {{name: "env-gql", imageName: "{IMAGE}",
        dockerArgs: {_gql_string("python3 -c " + json.dumps(PRINT))}, containerDiskInGb: 5,
        env: {_gql_env(env)}}}) {{ id }} }}""")["saveTemplate"]
    pod = _gql(c, f"""mutation {{ deployCpuPod(input: {{name: "env-gql",
        templateId: "{tpl['id']}", instanceId: "cpu3c-2-4"}}) {{ id }} }}""")["deployCpuPod"]
    return "pod", pod["id"]


CREATES: list[Callable[[httpx.Client, dict[str, str]], tuple[str, str]]] = [
    via_v1_pod, via_rest_v2_endpoint, via_graphql_pod]


def _container_logs(live: LiveServer, c: httpx.Client, kind: str, ident: str) -> str:
    if kind == "pod":
        return c.get(f"/v1/pods/{ident}/logs").text
    worker_logs = sorted((live.data_dir / "logs").glob("*.log"))
    texts = []
    for w in c.get(f"/v1/endpoints/{ident}?includeWorkers=true").json().get("workers") or []:
        path = live.data_dir / "logs" / f"{w['id']}.log"
        if path in worker_logs:
            texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


@pytest.mark.parametrize("create", CREATES, ids=[f.__name__ for f in CREATES])
def test_an_env_value_with_a_newline_never_reaches_a_host_process(
        create: Callable[[httpx.Client, dict[str, str]], tuple[str, str]],
        live: LiveServer, bob: httpx.Client, volume: Path) -> None:
    kind, ident = create(bob, hostile_env(volume))
    marks = volume / "marks"
    try:
        # Until the container speaks, or a marker says the library ran on the host.
        wait_for(lambda: any(marks.iterdir())
                 or "MULTI=" in _container_logs(live, bob, kind, ident),
                 timeout=120, what="the container's output")
        loaded = {m.name: m.read_text() for m in marks.iterdir()}
        assert loaded == {}, f"the user's library ran on the host: {loaded}"
        assert "MULTI=" + json.dumps(MULTI) in _container_logs(live, bob, kind, ident)
    finally:
        bob.delete(f"/v1/{'pods' if kind == 'pod' else 'endpoints'}/{ident}")
