"""A real multi-node Ray cluster on this machine, for the Ray provider's tests.

``ray.cluster_utils.Cluster`` (Ray's own test utility) starts each node's real raylet, object
store and agents as separate processes on this host; the nodes differ only in what they
declare: a head that offers nothing (not a machine), a "GPU node" with one declared
``NVIDIA GeForce RTX 4090`` in data center HOME-2, and a CPU node in HOME-1. runplane connects
to it from its own server process as any driver would. Nothing is mocked; GPUs are declared
(``num_gpus``) because no process here uses CUDA.

Every fixture shuts its cluster down, test failure or not.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

OBJECT_STORE = 80 * 1024 * 1024
# Node loss is noticed after two missed health checks half a second apart (Ray's defaults
# take ~30 s): only to keep the node-loss test short, nothing asserts how fast.
FAST_HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
               "health_check_timeout_ms": 500, "health_check_failure_threshold": 2}

GPU_NODE = {"num_cpus": 1, "num_gpus": 1,
            "resources": {"accelerator_type:RTX4090": 1, "runplane-dc:HOME-2": 1},
            "labels": {"runplane.io/gpu-type": "NVIDIA-GeForce-RTX-4090",
                       "runplane.io/cost-per-gpu-hr": "0.69", "runplane.io/name": "gpu-node"}}
CPU_NODE = {"num_cpus": 1,
            "labels": {"runplane.io/data-center": "HOME-1", "runplane.io/name": "cpu-node",
                       "runplane.io/cost-per-vcpu-hr": "0.02"}}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayNodes:
    """A running cluster: its address, and its nodes by the name the test gave them."""

    cluster: Any
    nodes: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return self.cluster.address

    def node_id(self, name: str) -> str:
        return self.nodes[name].node_id

    def add(self, name: str, **args: Any) -> str:
        node = self.cluster.add_node(object_store_memory=OBJECT_STORE, **args)
        self.nodes[name] = node
        return node.node_id

    def kill(self, name: str) -> None:
        """Take a node out the hard way: its raylet and every process of it SIGKILLed."""
        self.cluster.remove_node(self.nodes.pop(name), allow_graceful=False)


def start_cluster(**nodes: dict[str, Any]) -> RayNodes:
    """A head offering nothing, then the named nodes; the caller shuts it down."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, shutdown_at_exit=True, head_node_args={
        "num_cpus": 0, "object_store_memory": OBJECT_STORE, "include_dashboard": False,
        "dashboard_port": _port(), "dashboard_agent_listen_port": _port(),
        "_system_config": FAST_HEALTH})
    out = RayNodes(cluster)
    try:
        for name, args in nodes.items():
            out.add(name, **args)
        cluster.wait_for_nodes()
    except BaseException:
        cluster.shutdown()
        raise
    return out


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayNodes]:
    """Head + GPU node (RTX 4090, HOME-2) + CPU node (HOME-1), shared by the session."""
    nodes = start_cluster(gpu=GPU_NODE, cpu=CPU_NODE)
    try:
        yield nodes
    finally:
        nodes.cluster.shutdown()
