"""Scalers beside RunPod's rules: each replaces the autoscaler's target (``autoscaler.Target``).

- ``ADAPTIVE`` (``adaptive.py``): runplane's own; an endpoint setting (``scalerType``).
- ``KNATIVE_KPA`` (``kpa.py``) and ``RAY_SERVE`` (``ray_serve.py``): what Knative's pod
  autoscaler and Ray Serve's autoscaler would do with the same queue, for ``runplane
  simulate`` to compare (docs/autoscaling.md). The controller runs them too when an endpoint's
  stored ``scalerType`` names one, but the API accepts only ``ADAPTIVE`` beside RunPod's two.

A policy keeps what it learns (measured cold starts, windows of samples) per endpoint: the
controller and the simulator hold one instance per endpoint and ask it once per tick. Its
answer is a function of that history, the tick's inputs and ``now`` only (no clock of its own).
"""

from __future__ import annotations

from collections.abc import Container
from typing import Protocol

from runplane.controller.autoscaler import Pool, QueueStats, ScalerSettings, Target
from runplane.controller.policies.adaptive import Adaptive
from runplane.controller.policies.kpa import KnativeKpa
from runplane.controller.policies.ray_serve import RayServe

RULES = ("QUEUE_DELAY", "REQUEST_COUNT")  # RunPod's, in ``autoscaler.rule_target``


class Policy(Protocol):
    """A scaler with a memory (see the module docstring)."""

    # Whether it reads ``QueueStats.queued_at`` (the controller gathers it only then).
    reads_queue_ages: bool
    # Whether its answers depend on being asked every tick (the simulator then skips none).
    every_tick: bool

    def target(self, s: ScalerSettings, q: QueueStats, pool: Pool, now: float) -> Target:
        """How many workers it wants now."""
        ...

    def observe_ready(self, cold_start_s: float) -> None:
        """A worker took its first job ``cold_start_s`` after its start."""
        ...


POLICIES: dict[str, type[Adaptive] | type[KnativeKpa] | type[RayServe]] = {
    "ADAPTIVE": Adaptive, "KNATIVE_KPA": KnativeKpa, "RAY_SERVE": RayServe,
}
SCALER_TYPES = (*RULES, *POLICIES)


def make_policy(scaler_type: str) -> Policy | None:
    """A fresh policy for ``scaler_type``; None for RunPod's rules (and unknown names, which
    the API never stores)."""
    cls = POLICIES.get(scaler_type)
    return cls() if cls is not None else None


class EndpointPolicies:
    """The controller's (and the simulator's) policy per endpoint, kept across ticks."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, Policy]] = {}

    def of(self, endpoint_id: str, scaler_type: str) -> Policy | None:
        """The endpoint's policy, None for RunPod's rules; a fresh one when its scalerType
        changed (what the old one learnt was about another scaler's workers)."""
        held = self._held.get(endpoint_id)
        if held is not None and held[0] == scaler_type:
            return held[1]
        policy = make_policy(scaler_type)
        if policy is None:
            self._held.pop(endpoint_id, None)
        else:
            self._held[endpoint_id] = (scaler_type, policy)
        return policy

    def observe_ready(self, endpoint_id: str, cold_start_s: float) -> None:
        """One of the endpoint's workers took its first job ``cold_start_s`` after its start."""
        held = self._held.get(endpoint_id)
        if held is not None:
            held[1].observe_ready(cold_start_s)

    def keep(self, endpoint_ids: Container[str]) -> None:
        """Forget the policies of endpoints that are gone."""
        for gone in [e for e in self._held if e not in endpoint_ids]:
            del self._held[gone]
