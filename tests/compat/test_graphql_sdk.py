"""The real runpod SDK's management functions (GraphQL) against a live `runplane serve`,
unmodified but for the base URL (``RUNPOD_API_BASE_URL``, read on every call); each result is
then checked through REST v1. The 1.12 line in-process, the 1.7 line in its own virtualenv
(tests/compat/test_sdk_old.py installs it)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import runpod
from runpod.cli.groups.project.helpers import get_project_endpoint
from runpod.cli.groups.ssh.functions import add_ssh_key, get_user_pub_keys

from tests.compat.conftest import FAST_ENV, wait_for
from tests.compat.test_sdk_old import old_sdk_python
from tests.e2e.conftest import LiveServer, make_live_server

pytestmark = pytest.mark.e2e

A40 = "NVIDIA A40"
MACHINE = {"detect_gpus": False, "cost_per_gpu_hr": 0.5,
           "declared_gpus": [{"type": A40, "count": 2, "cuda": "12.4"}]}
APP = "import os, time\nprint('up', os.environ['MSG'], flush=True)\ntime.sleep(600)\n"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose one machine has two declared A40s at $0.50 per GPU-hour."""
    srv = make_live_server(tmp_path_factory.mktemp("graphql"), **FAST_ENV,
                           RUNPLANE_MACHINE=json.dumps(MACHINE))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def sdk(live: LiveServer, monkeypatch: pytest.MonkeyPatch) -> LiveServer:
    monkeypatch.setenv("RUNPOD_API_BASE_URL", live.url)
    monkeypatch.setattr(runpod, "api_key", live.user_key)
    return live


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def rest(live: LiveServer, path: str) -> dict:
    with live.client() as c:
        r = c.get(path)
    assert r.status_code == 200, r.text
    return r.json()


def test_templates_endpoints_and_registry_auths(sdk: LiveServer) -> None:
    auth = runpod.create_container_registry_auth("reg", "me", "pw")
    assert rest(sdk, f"/v1/containerregistryauth/{auth['id']}") == auth
    assert runpod.update_container_registry_auth(auth["id"], "me2", "pw2") == auth
    pod_template = runpod.create_template("pod-t", "registry.example.com/me/app:1",
                                          docker_start_cmd="python -u app.py", ports="8888/http",
                                          env={"A": "1"}, registry_auth_id=auth["id"])
    got = rest(sdk, f"/v1/templates/{pod_template['id']}")
    assert got["dockerStartCmd"] == ["python", "-u", "app.py"] and got["env"] == {"A": "1"}
    assert got["containerRegistryAuthId"] == auth["id"] and got["isServerless"] is False
    with pytest.raises(runpod.error.QueryError, match="is used by 1 template"):
        runpod.delete_container_registry_auth(auth["id"])

    t = runpod.create_template("sls-t", "runplane/local:.", docker_start_cmd="python -u h.py",
                               env={"K": "v"}, is_serverless=True)
    assert t["isServerless"] is True and t["env"] == [{"key": "K", "value": "v"}]
    e = runpod.create_endpoint("sls-e", t["id"], gpu_ids="AMPERE_48", workers_max=2,
                               flashboot=True, allowed_cuda_versions="12.4")
    assert (e["gpuIds"], e["flashBootType"], e["workersMax"]) == ("AMPERE_48", "FLASHBOOT", 2)
    got = rest(sdk, f"/v1/endpoints/{e['id']}")
    assert got["gpuTypeIds"] == [A40, "NVIDIA RTX A6000"] and got["flashboot"] is True
    assert got["allowedCudaVersions"] == ["12.4"] and got["templateId"] == t["id"]
    (listed,) = [x for x in runpod.get_endpoints() if x["id"] == e["id"]]
    assert listed["env"] == [{"key": "K", "value": "v"}] and listed["gpuIds"] == "AMPERE_48"

    t2 = runpod.create_template("sls-t2", "runplane/local:.", is_serverless=True)
    assert runpod.update_endpoint_template(e["id"], t2["id"]) == {"id": e["id"],
                                                                 "templateId": t2["id"]}
    got = rest(sdk, f"/v1/endpoints/{e['id']}")
    assert got["templateId"] == t2["id"] and got["version"] == 1
    # A refusal is the SDK's own QueryError carrying runplane's message.
    with pytest.raises(runpod.error.QueryError, match="templateId: no template 'nope'"):
        runpod.create_endpoint("bad", "nope")
    # A bad key is a 401, which the SDK reports as its AuthenticationError (the fixture's
    # monkeypatch restores the key).
    runpod.api_key = "rpl_not_a_key"
    with pytest.raises(runpod.error.AuthenticationError):
        runpod.get_endpoints()


def test_user_ssh_keys_and_gpus(sdk: LiveServer) -> None:
    with sdk.client() as c:
        vol = c.post("/v1/networkvolumes", json={"name": "v", "size": 5,
                                                 "dataCenterId": "LOCAL-1"}).json()
    user = runpod.get_user()
    assert user["id"].startswith("user_")
    assert {"id": vol["id"], "name": "v", "size": 5, "dataCenterId": "LOCAL-1"} in \
        user["networkVolumes"]
    # `runpod ssh add-key`'s own functions: read pubKey, append, write it back.
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILXGDN/SclOozk1xsDztpmhGiKkkrfQB9SKoO8dSIQQZ sdk"
    add_ssh_key(key)
    add_ssh_key(key.replace("SIQQZ", "SIQQY").replace(" sdk", " second"))
    assert [k["name"] for k in get_user_pub_keys()] == ["sdk", "second"]
    assert runpod.get_user()["pubKey"].splitlines()[0] == key

    assert {"id": A40, "displayName": "A40", "memoryInGb": 48} in runpod.get_gpus()
    gpu = runpod.get_gpu(A40, 2)
    assert (gpu["maxGpuCount"], gpu["securePrice"], gpu["secureCloud"]) == (2, 0.5, True)
    assert gpu["lowestPrice"]["uninterruptablePrice"] == 0.5
    assert runpod.get_gpu(A40, 3)["lowestPrice"]["uninterruptablePrice"] is None
    with pytest.raises(ValueError, match="No GPU found"):
        runpod.get_gpu("NVIDIA Nothing")


def test_pods(sdk: LiveServer, app_dir: Path) -> None:
    start = f"{sys.executable} app.py"
    pod = runpod.create_pod("sdk-pod", f"local:{app_dir}", A40, gpu_count=1, docker_args=start,
                            ports="8888/http", env={"MSG": "hi"})
    assert pod["env"] == ["MSG=hi"] and pod["machineId"]
    got = rest(sdk, f"/v1/pods/{pod['id']}")
    assert got["gpu"]["id"] == A40 and got["desiredStatus"] == "RUNNING"
    assert got["dockerStartCmd"] == [sys.executable, "app.py"]
    with sdk.client() as c:
        wait_for(lambda: "up hi" in c.get(f"/v1/pods/{pod['id']}/logs").text, what="pod output")
    assert pod["id"] in [p["id"] for p in runpod.get_pods()]
    one = runpod.get_pod(pod["id"])
    assert one["gpuCount"] == 1 and one["runtime"]["ports"][0]["privatePort"] == 8888

    assert runpod.stop_pod(pod["id"]) == {"id": pod["id"], "desiredStatus": "EXITED"}
    assert rest(sdk, f"/v1/pods/{pod['id']}")["desiredStatus"] == "EXITED"
    assert runpod.resume_pod(pod["id"], 1)["desiredStatus"] == "RUNNING"
    assert rest(sdk, f"/v1/pods/{pod['id']}")["desiredStatus"] == "RUNNING"
    runpod.terminate_pod(pod["id"])
    with sdk.client() as c:
        assert c.get(f"/v1/pods/{pod['id']}").status_code == 404

    cpu = runpod.create_pod("sdk-cpu", f"local:{app_dir}", docker_args=start, env={"MSG": "c"},
                            instance_id="cpu3c-2-4")
    got = rest(sdk, f"/v1/pods/{cpu['id']}")
    assert got["gpu"] is None and got["vcpuCount"] == 2
    runpod.terminate_pod(cpu["id"])
    with pytest.raises(runpod.error.QueryError, match="no capacity"):
        runpod.create_pod("big", f"local:{app_dir}", A40, gpu_count=3, docker_args=start)


def test_runpod_cli(live: LiveServer, tmp_path: Path, app_dir: Path) -> None:
    """The SDK's own `runpod` command (its key in ~/.runpod/config.toml, as `runpod config`
    writes it): `ssh add-key`, `ssh list-keys`, `pod list`."""
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "RUNPOD_API_BASE_URL": live.url}
    cli = str(Path(sys.executable).with_name("runpod"))

    def runpod_cli(*args: str, answers: str = "") -> str:
        done = subprocess.run([cli, *args], env=env, capture_output=True, text=True,
                              input=answers, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    runpod_cli("config", live.other_key)
    # add-key generates a key pair under ~/.runpod/ssh and appends its public half to the
    # account's pubKey (the SDK ignores --key; the prompts are its own).
    runpod_cli("ssh", "add-key", answers="y\ncli-key\n")
    public = (tmp_path / ".runpod" / "ssh" / "cli-key.pub").read_text()
    assert "cli-key" in runpod_cli("ssh", "list-keys")
    with live.client(live.other_key) as c:
        r = c.post("/graphql", json={"query": "{ myself { pubKey } }"})
    assert r.json()["data"]["myself"]["pubKey"] == public.strip()
    with live.client(live.other_key) as c:
        r = c.post("/v1/pods", json={"name": "cli-pod", "imageName": f"local:{app_dir}",
                                     "computeType": "CPU", "vcpuCount": 1, "env": {"MSG": "x"},
                                     "dockerStartCmd": [sys.executable, "app.py"]})
        assert r.status_code == 201, r.text
        listed = runpod_cli("pod", "list")
        assert r.json()["id"] in listed and "cli-pod" in listed and "RUNNING" in listed
        assert c.delete(f"/v1/pods/{r.json()['id']}").status_code == 204


def _deploy(project_id: str, volume_id: str) -> tuple[str, str]:
    """The GraphQL calls of `runpod project deploy` (runpod/cli/groups/project/functions.py,
    create_project_endpoint, after its SSH steps), with the same arguments."""
    template = runpod.create_template(
        name=f"proj-endpoint | {project_id} | {datetime.now()}",
        image_name="runplane/local:.", container_disk_in_gb=10,
        docker_start_cmd=f'bash -c ". /runpod-volume/{project_id}/prod/venv/bin/activate && '
                         f'python -u /runpod-volume/{project_id}/prod/proj/src/handler.py"',
        env={"PROJECT": "yes"}, is_serverless=True)
    deployed = get_project_endpoint(project_id)
    if not deployed:
        deployed = runpod.create_endpoint(name=f"proj-endpoint | {project_id}",
                                          template_id=template["id"], network_volume_id=volume_id)
    else:
        deployed = runpod.update_endpoint_template(endpoint_id=deployed["id"],
                                                   template_id=template["id"])
    return deployed["id"], template["id"]


def test_project_deploy_calls(sdk: LiveServer) -> None:
    with sdk.client() as c:
        vol = c.post("/v1/networkvolumes", json={"name": "proj", "size": 10,
                                                 "dataCenterId": "LOCAL-1"}).json()
    project = f"p{time.monotonic_ns()}"
    first, t1 = _deploy(project, vol["id"])
    got = rest(sdk, f"/v1/endpoints/{first}")
    assert got["templateId"] == t1 and got["networkVolumeIds"] == [vol["id"]]
    assert got["dataCenterIds"] == ["LOCAL-1"] and got["env"] == {"PROJECT": "yes"}
    template = rest(sdk, f"/v1/templates/{t1}")
    assert template["dockerStartCmd"][:2] == ["bash", "-c"]
    assert template["dockerStartCmd"][2].startswith(f". /runpod-volume/{project}/prod/venv")
    again, t2 = _deploy(project, vol["id"])
    assert again == first and t2 != t1
    got = rest(sdk, f"/v1/endpoints/{first}")
    assert got["templateId"] == t2 and got["version"] == 1


OLD_SCRIPT = """
import json, sys
import runpod
runpod.api_key = sys.argv[1]
out = {"version": runpod.__version__}
t = runpod.create_template("old-t", "runplane/local:.", docker_start_cmd="python -u h.py",
                           env={"X": "1"}, is_serverless=True)
e = runpod.create_endpoint("old-e", t["id"], flashboot=True, gpu_ids="ADA_24")
t2 = runpod.create_template("old-t2", "runplane/local:.", is_serverless=True)
out.update(template=t, endpoint=e, template2=t2, listed=runpod.get_endpoints(),
           updated=runpod.update_endpoint_template(e["id"], t2["id"]),
           gpus=runpod.get_gpus(), gpu=runpod.get_gpu("NVIDIA A40"), user=runpod.get_user())
# 1.7 sends dockerArgs for GPU pods only (its CPU pods cannot carry a start command).
pod = runpod.create_pod("old-pod", "local:" + sys.argv[3], "NVIDIA A40", docker_args=sys.argv[4],
                        env={"MSG": "old"})
out["pod"] = pod
out["stopped"] = runpod.stop_pod(pod["id"])
out["resumed"] = runpod.resume_pod(pod["id"], 1)
runpod.terminate_pod(pod["id"])
try:
    runpod.create_endpoint("bad", "nope")
except runpod.error.QueryError as err:
    out["error"] = str(err)
open(sys.argv[2], "w").write(json.dumps(out))
"""


def test_runpod_1_7_management_calls(live: LiveServer, tmp_path: Path, app_dir: Path) -> None:
    python = old_sdk_python()
    script, result = tmp_path / "old.py", tmp_path / "out.json"
    script.write_text(OLD_SCRIPT)
    run = subprocess.run(
        [python, str(script), live.user_key, str(result), str(app_dir),
         f"{sys.executable} app.py"],
        check=False, capture_output=True, text=True, timeout=120,
        env={"RUNPOD_API_BASE_URL": live.url, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(result.read_text())
    assert out["version"].startswith("1.7.")
    # The 1.7 line asks for FlashBoot with a "-fb" name (and selects no flashBootType).
    e = out["endpoint"]
    assert e["name"] == "old-e-fb" and e["gpuIds"] == "ADA_24"
    got = rest(live, f"/v1/endpoints/{e['id']}")
    assert got["flashboot"] is True and got["templateId"] == out["template2"]["id"]
    assert got["gpuTypeIds"] == ["NVIDIA L4", "NVIDIA GeForce RTX 4090"] and got["version"] == 1
    assert rest(live, f"/v1/templates/{out['template']['id']}")["env"] == {"X": "1"}
    assert e["id"] in [x["id"] for x in out["listed"]]
    assert out["updated"] == {"id": e["id"], "templateId": out["template2"]["id"]}
    assert out["gpu"]["id"] == "NVIDIA A40" and out["gpu"]["maxGpuCount"] == 2
    assert out["user"]["id"].startswith("user_")
    assert out["stopped"]["desiredStatus"] == "EXITED"
    assert out["resumed"]["desiredStatus"] == "RUNNING"
    with live.client() as c:
        assert c.get(f"/v1/pods/{out['pod']['id']}").status_code == 404
    assert out["error"] == "templateId: no template 'nope'"
