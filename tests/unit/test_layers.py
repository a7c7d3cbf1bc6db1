"""The import structure of runplane, read from the code (scripts/architecture.py): no cycle
between modules, no import that points up the layers, no module over the size limit, no
file-name prefix back where a package replaced it, the picture in docs/architecture.md drawn
from the code as it is, and RunPod's JSON for pods and workers built in ``api/shapes/`` only."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
# ~400 lines a module (the style guide); past this a module is doing more than one thing.
MAX_LINES = 400


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("architecture", ROOT / "scripts" /
                                                  "architecture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


arch = _tool()


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return arch.imports()


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    assert arch.cycles(graph) == []


def test_no_upward_imports(graph: dict[str, set[str]]) -> None:
    assert arch.upward(graph) == []


def test_every_package_has_a_layer(graph: dict[str, set[str]]) -> None:
    for module in graph:
        arch.layer_of(arch.package_of(module))  # KeyError names the one missing


@pytest.mark.parametrize("module, target, problem", [
    ("runplane.services.pods", "runplane.api.http.errors", "upward"),
    ("runplane.broker.webhooks", "runplane.services.jobs", "upward"),
    ("runplane.broker.book", "runplane.controller.reconcile", "upward"),
    ("runplane.providers.local", "runplane.broker.models", "upward"),
    ("runplane.api.app", "runplane.web.routes", None),  # the app serves the dashboard's files
    ("runplane.web.routes", "runplane.api.http.errors", "upward"),  # they know nothing of the app
    ("runplane.services.pods", "runplane.api.shapes.pod", "upward"),  # records, not JSON
    ("runplane.controller.worker_pods", "runplane.api.shapes.workers", "upward"),
    ("runplane.broker.webhooks", "runplane.api.v2.wire", "upward"),  # bodies come rendered
    ("runplane.server", "runplane.api.app", None),
])
def test_the_rule_itself(module: str, target: str, problem: str | None) -> None:
    found = arch.upward({module: {target}})
    assert (problem in found[0]) if problem else found == []


def test_the_checker_finds_a_cycle() -> None:
    assert arch.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_too_long() -> None:
    long = {name: n for name, path in arch.modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


# File-name prefixes that stood in for folders, now packages: (folder, glob of the old
# files, the package that replaced them). Extend as more move.
OLD_PREFIXES = [
    ("api", "lb_*.py", "api/lb/"),
    ("providers", "ray_*.py", "providers/ray/"),
    ("providers/runtimes", "container*.py", "providers/runtimes/container/"),
    ("services", "billing*.py", "services/billing/"),
]


def _prefixed(package: Path) -> list[str]:
    return sorted(str(path.relative_to(package)) for folder, pattern, _ in OLD_PREFIXES
                  for path in (package / folder).glob(pattern))


def test_no_old_prefix_comes_back() -> None:
    found = _prefixed(arch.PACKAGE)
    assert found == [], f"{found}: these belong in their packages ({OLD_PREFIXES})"


def test_the_prefix_check_finds_one(tmp_path: Path) -> None:
    (tmp_path / "providers" / "runtimes" / "container").mkdir(parents=True)
    (tmp_path / "services" / "billing").mkdir(parents=True)
    (tmp_path / "api" / "lb").mkdir(parents=True)
    for name in ("api/lb_proxy.py", "api/lb/proxy.py", "providers/ray_pump.py", "providers/local.py", "services/billing_v2.py",
                 "services/billing/records.py", "providers/runtimes/container_plan.py",
                 "providers/runtimes/container/plan.py", "providers/runtimes/process.py"):
        (tmp_path / name).touch()
    assert _prefixed(tmp_path) == ["api/lb_proxy.py", "providers/ray_pump.py",
                                   "providers/runtimes/container_plan.py", "services/billing_v2.py"]


def _modules_with(text: str) -> list[str]:
    return sorted(name for name, path in arch.modules().items() if text in path.read_text())


def test_one_body_reader_and_one_error_installer() -> None:
    """api/http is the shared core under every surface: an ASGI request body is read in
    ``api/http/body.py`` only (``more_body`` is how a reader knows a body goes on), and
    exception handlers are installed by ``api/http/errors.py`` only, each surface handing it
    the shape of its refusals."""
    assert _modules_with('get("more_body"') == ["runplane.api.http.body"]
    assert _modules_with("exception_handler") == ["runplane.api.http.errors"]


def test_the_documented_picture_is_the_code(graph: dict[str, set[str]]) -> None:
    assert arch.documented() == arch.mermaid(graph), (
        "docs/architecture.md is out of date: run `python scripts/architecture.py --write`")


# Field names only RunPod's Pod objects have (REST v1's Pod and its machine, the GraphQL Pod,
# REST v2's Pod, includeWorkers' extensions): a module that writes two of them builds one.
POD_KEYS = {
    "consumerUserId", "adjustedCostPerHr", "savingsPlans", "aiApiId", "slsVersion",
    "machineId", "lastStartedAt", "lastStatusChange", "volumeEncrypted", "minPodGpuCount",
    "currentPricePerGpu", "gpuDisplayName", "podHostId", "podType", "dockerId",
    "uptimeInSeconds", "isIpPublic", "privatePort", "publicPort", "actions", "ssh",
    "workerStatus", "logPath",
}
SHAPES = {"runplane.api.shapes.pod", "runplane.api.shapes.workers",
          "runplane.api.shapes.rest_v2", "runplane.api.shapes.graphql"}


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_pod_keys_are_what_the_shapes_render() -> None:
    """The marker keys below are real: each is in what api/shapes renders of a pod and of a
    worker (so the check that follows cannot go stale and pass on nothing)."""
    from runplane.api.shapes.graphql import pod_out
    from runplane.api.shapes.pod import pod
    from runplane.api.shapes.rest_v2 import pod_v2
    from runplane.api.shapes.workers import worker_pod
    from runplane.catalog.catalog import build_catalog
    from runplane.catalog.machines import Gpu, Machine
    from runplane.schemas.pod_records import PodRecord, WorkerRecord

    catalog = build_catalog([], [])
    machine = Machine(id="m1", name="box", cpu_type="x86", cpu_count=8, memory_in_gb=32,
                      disk_in_gb=100, data_center_id="US-TX-3", location="US",
                      secure_cloud=True, support_public_ip=False, cost_per_gpu_hr=1.0,
                      cost_per_vcpu_hr=0.1,
                      gpus=[Gpu(index=0, type_id="NVIDIA A40", memory_in_gb=48,
                                cuda_version="12.4")])
    facts = dict(id="p1", name="p", user_id="u1", desired_status="RUNNING", image="img",
                 env={}, machine=machine, gpu_type_id="NVIDIA A40", gpu_count=1,
                 cost_per_hr=1.0, vcpu_count=8, memory_in_gb=32, last_started_at=1.0e9,
                 last_status_change="Started", template_id=None, ports=["8888/http"],
                 port_mappings={"8888": 8888}, docker_entrypoint=[], docker_start_cmd=[])
    record = PodRecord(**facts, created_at=1.0e9)
    worker = WorkerRecord(**facts, worker_status="IDLE", progress=None,
                          log_path="/tmp/w.log", accelerator=None)
    rendered = (_keys(pod(record, catalog)) | _keys(pod_v2(record))
                | _keys(pod_out(record, catalog, 2.0e9)) | _keys(worker_pod(worker, catalog)))
    assert POD_KEYS - rendered == set()


def test_pod_json_is_built_in_api_shapes_only() -> None:
    """Services and the controller answer records; each surface renders them through
    api/shapes. A Pod object built anywhere else (a service's view, a route re-rendering
    another surface's dict) is a second home of RunPod's JSON."""
    assert set(arch.writers_of(POD_KEYS)) == SHAPES


def test_nothing_below_api_is_named_for_a_wire_format() -> None:
    """No ``*view*``/``*wire*``/``*shape*`` module outside api/ (a service's wire rendering
    moves up, it is not renamed); the pattern does find api's own."""
    assert "runplane.api.v2.wire" in arch.wire_named("api")
    assert "runplane.api.shapes" in arch.wire_named("api")
    assert [m for m in arch.wire_named() if arch.package_of(m) != "api"] == []
