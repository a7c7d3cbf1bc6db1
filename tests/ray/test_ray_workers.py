"""The Ray provider end to end: a real multi-node Ray cluster on this machine (conftest), a real
``runplane serve --provider ray`` connected to it, and the unmodified runpod SDK handler running
as Ray actors on its nodes. Every wait is a poll with a deadline; nothing asserts how fast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.scaling_kit import final, health, pid_alive, run, status, wait_for, workers
from tests.ray.conftest import CPU_NODE, RayNodes, start_cluster
from tests.ray.kit import log_says, machines, make_endpoint, make_template, ray_server

pytest.importorskip("ray")

RTX_4090 = "NVIDIA GeForce RTX 4090"


@pytest.fixture
def srv(ray_cluster: RayNodes, tmp_path: Path) -> Iterator[LiveServer]:
    server = ray_server(tmp_path, ray_cluster.address)
    try:
        yield server
    finally:
        server.stop()


def test_each_node_is_a_machine_by_the_labelling_convention(
        srv: LiveServer, ray_cluster: RayNodes) -> None:
    found = machines(srv)
    # The head offers no CPU and no GPU: not a machine.
    assert sorted(found) == ["cpu-node", "gpu-node"]
    gpu, cpu = found["gpu-node"], found["cpu-node"]
    assert gpu["provider"] == cpu["provider"] == "ray"
    assert gpu["id"] == "ray-" + ray_cluster.node_id("gpu")[:12]
    # GPU type from the runplane.io/gpu-type label, data center from the runplane-dc resource,
    # price from a label; the GPU is declared to Ray, not seen by NVML, and says so.
    assert [(g["gpuTypeId"], g["declared"], g["memoryInGb"]) for g in gpu["gpus"]] == \
        [(RTX_4090, True, 24)]
    assert (gpu["dataCenterId"], gpu["costPerGpuHr"], gpu["cpuCount"]) == ("HOME-2", 0.69, 1)
    assert (cpu["dataCenterId"], cpu["costPerVcpuHr"], cpu["gpus"]) == ("HOME-1", 0.02, [])


def test_placement_by_gpu_type_and_data_center(srv: LiveServer, ray_cluster: RayNodes,
                                               tmp_path: Path) -> None:
    with srv.client() as c:
        template, _ = make_template(c, tmp_path)
        # The nodes' data centers are ones endpoints may name.
        on_gpu = make_endpoint(c, template, "gpu", gpuTypeIds=[RTX_4090], dataCenterIds=["HOME-2"])
        on_cpu = make_endpoint(c, template, "cpu", computeType="CPU", dataCenterIds=["HOME-1"])
        no_h100 = make_endpoint(c, template, "h100", gpuTypeIds=["NVIDIA H100 80GB HBM3"])
        wrong_dc = make_endpoint(c, template, "wrong-dc", gpuTypeIds=[RTX_4090],
                                 dataCenterIds=["HOME-1"])

        gpu_job, cpu_job = run(c, on_gpu, {"echo": "g"}), run(c, on_cpu, {"echo": "c"})
        g, k = final(c, on_gpu, gpu_job, 120), final(c, on_cpu, cpu_job, 120)
        assert g["status"] == k["status"] == "COMPLETED", (g, k)
        # Ray assigned the node's one GPU to the GPU worker; the CPU worker sees none.
        assert (g["output"]["cuda"], k["output"]["cuda"]) == ("0", "")
        log_says(c, g["workerId"], f"on Ray node {ray_cluster.node_id('gpu')}")
        log_says(c, k["workerId"], f"on Ray node {ray_cluster.node_id('cpu')}")
        # The handler's own output is relayed from the node to the server's log.
        log_says(c, g["workerId"], f"handling {gpu_job}, attempt 1")
        # The SDK accelerator came with the runtime on the node.
        log_says(c, k["workerId"], "runplane accelerator: on (runpod ")

        # What cannot be placed waits, and says why in the scheduler's words.
        for endpoint, why in ((no_h100, "no machine has NVIDIA H100 80GB HBM3"),
                              (wrong_dc, f"no machine has {RTX_4090} in HOME-1")):
            job = run(c, endpoint, {"echo": "never"})
            h = wait_for(lambda e=endpoint: (h := health(c, e)).get("reason") and h, 30,
                         f"a reason on {endpoint}")
            assert h["reason"] == why
            assert status(c, endpoint, job)["status"] == "IN_QUEUE"
            assert workers(c, endpoint) == []


def test_scale_up_and_down_and_the_gpu_goes_back_to_ray(srv: LiveServer, tmp_path: Path) -> None:
    with srv.client() as c:
        template, state = make_template(c, tmp_path)
        cpu = make_endpoint(c, template, "burst", computeType="CPU", workersMax=2)
        jobs = [run(c, cpu, {"block": True, "echo": i}) for i in range(2)]
        running = wait_for(
            lambda: (ss := [status(c, cpu, j) for j in jobs])
            and all(s["status"] == "IN_PROGRESS" for s in ss) and ss,
            120, "2 jobs running at once")
        assert len({s["workerId"] for s in running}) == 2
        assert len(workers(c, cpu)) == 2
        (state / "release").touch()
        done = [final(c, cpu, j) for j in jobs]
        assert sorted(d["output"]["echo"] for d in done) == [0, 1]
        wait_for(lambda: workers(c, cpu) == [], 60, "scale-down to zero")
        pids = [d["output"]["pid"] for d in done]
        wait_for(lambda: not any(pid_alive(p) for p in pids), 30, "worker processes to exit")

        # The node has one GPU: a second GPU worker can only start once Ray has it back.
        gpu = make_endpoint(c, template, "gpu-again", gpuTypeIds=[RTX_4090])
        first = final(c, gpu, run(c, gpu, {"echo": 1}), 120)
        wait_for(lambda: workers(c, gpu) == [], 60, "the GPU worker to scale down")
        second = final(c, gpu, run(c, gpu, {"echo": 2}), 120)
        assert first["status"] == second["status"] == "COMPLETED"
        assert first["workerId"] != second["workerId"]
        assert second["output"]["cuda"] == "0"


def test_a_node_killed_mid_job_takes_its_worker_and_the_job_runs_elsewhere(
        tmp_path: Path) -> None:
    cluster = start_cluster(a=CPU_NODE, b=CPU_NODE)
    srv = None
    try:
        srv = ray_server(tmp_path, cluster.address)
        by_node = {f"ray-{cluster.node_id(n)[:12]}": n for n in ("a", "b")}
        with srv.client() as c:
            template, state = make_template(c, tmp_path)
            ep = make_endpoint(c, template, "survivor", computeType="CPU", workersMax=1,
                               idleTimeout=30)
            job = run(c, ep, {"hang_first": True, "echo": "survivor"})
            first = wait_for(lambda: (s := status(c, ep, job))["status"] == "IN_PROGRESS" and s,
                             120, "the job to start")
            pid_file = state / f"{job}.pid"
            pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 30, "the pid"))
            machine = next(w["machineId"] for w in workers(c, ep) if w["id"] == first["workerId"])
            victim = by_node[machine]

            cluster.kill(victim)

            done = final(c, ep, job, 120)
            assert done["status"] == "COMPLETED", done
            assert (done["output"]["attempt"], done["output"]["echo"]) == (2, "survivor")
            assert done["retries"] == 1
            assert done["workerId"] != first["workerId"]
            survivor = next(n for n in ("a", "b") if n != victim)
            log_says(c, done["workerId"], f"on Ray node {cluster.node_id(survivor)}")
            log_says(c, first["workerId"], "left the cluster")
            # The node took its worker process with it, and is no machine any more.
            wait_for(lambda: not pid_alive(pid), 30, "the lost worker's process to be gone")
            assert machine not in {m["id"] for m in machines(srv).values()}
    finally:
        if srv is not None:
            srv.stop()
        cluster.cluster.shutdown()


def test_flashboot_parks_the_worker_on_its_node_and_resumes_it_for_the_next_job(
        srv: LiveServer, ray_cluster: RayNodes, tmp_path: Path) -> None:
    import psutil

    with srv.client() as c:
        template, _ = make_template(c, tmp_path)
        ep = make_endpoint(c, template, "flash", gpuTypeIds=[RTX_4090], flashboot=True)
        first = final(c, ep, run(c, ep, {"echo": 1}), 120)
        assert first["status"] == "COMPLETED", first
        pid = first["output"]["pid"]
        parked = wait_for(lambda: (ws := workers(c, ep)) and len(ws) == 1
                          and ws[0]["workerStatus"] == "PARKED" and ws[0], 60, "the park")
        assert parked["id"] == first["workerId"]
        # Frozen on the GPU node by its actor, still holding its GPU.
        wait_for(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED, 30, "SIGSTOP")
        log_says(c, parked["id"], f"on Ray node {ray_cluster.node_id('gpu')}")

        second = final(c, ep, run(c, ep, {"echo": 2}), 120)
        assert second["status"] == "COMPLETED", second
        # The same process answered: thawed, not a cold start.
        assert (second["workerId"], second["output"]["pid"]) == (first["workerId"], pid)


def test_workers_on_a_root_raylet_run_as_the_worker_user(ray_cluster: RayNodes,
                                                         tmp_path: Path) -> None:
    """[security] worker_user reaches the node: a root raylet's worker drops to that user."""
    import json
    import os
    import pwd
    import shutil
    import tempfile

    from tests.conftest import TEST_SECURITY

    if os.geteuid() != 0:
        pytest.skip("the worker user applies to a root server and raylet only")
    try:
        uid = pwd.getpwnam("runplane-worker").pw_uid
    except KeyError:
        pytest.skip("no runplane-worker user (scripts/setup_worker_user.sh)")
    # The worker's code and state where that user can reach them (pytest's tmp is root's).
    shared = Path(tempfile.mkdtemp(prefix="runplane-ray-user-"))
    shared.chmod(0o755)
    server = ray_server(tmp_path, ray_cluster.address, RUNPLANE_SECURITY=json.dumps(
        {**TEST_SECURITY, "worker_user": "runplane-worker"}))
    try:
        with server.client() as c:
            template, state = make_template(c, shared)
            state.chmod(0o777)
            ep = make_endpoint(c, template, "as-user", computeType="CPU")
            job = run(c, ep, {"block": True})
            pid = int(wait_for(lambda: (state / f"{job}.pid").exists()
                               and (state / f"{job}.pid").read_text(), 120, "the handler"))
            assert os.stat(f"/proc/{pid}").st_uid == uid
            (state / "release").write_text("")
            assert final(c, ep, job, 60)["status"] == "COMPLETED"
    finally:
        server.stop()
        shutil.rmtree(shared, ignore_errors=True)
