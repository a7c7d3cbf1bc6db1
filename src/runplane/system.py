"""``Services``: every part of one runplane server, built once by the composition root.

:func:`runplane.server.build_services` constructs each part in dependency order and hands
each only what it uses; this bundle is what the HTTP layer, the CLI and tests reach them
through. Every field is set at construction and never replaced: there is no part that
appears later, and nothing here is optional.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from runplane.broker.broker import Broker
from runplane.broker.handoff import JobHandoff
from runplane.broker.workers import WorkerRegistry
from runplane.catalog.catalog import Catalog
from runplane.clock import Clock
from runplane.config import Settings
from runplane.controller.reconcile import Controller
from runplane.controller.worker_pods import WorkerPods
from runplane.lb.pool import LoadBalancer
from runplane.lb.prober import HealthProber
from runplane.observability.hub import Observability
from runplane.providers.base import Provider
from runplane.services.availability import Availability
from runplane.services.batches import BatchService
from runplane.services.billing.records import BillingService
from runplane.services.endpoint_templates import EndpointTemplates
from runplane.services.endpoints import EndpointService
from runplane.services.pods import PodService
from runplane.services.ratelimit import RateLimits
from runplane.services.registry_auths import RegistryAuthService
from runplane.services.ssh_keys import SshKeyService
from runplane.services.templates import TemplateService
from runplane.services.users import UserService
from runplane.services.volumes import NetworkVolumeService


@dataclass(frozen=True, eq=False)
class Services:
    """The parts of one server (see the module docstring), by plane."""

    settings: Settings
    engine: Engine
    clock: Clock
    catalog: Catalog
    # Control plane (/v1): users and keys, templates, endpoints, volumes, registry auths,
    # billing, pods.
    users: UserService
    registry_auths: RegistryAuthService
    templates: TemplateService
    volumes: NetworkVolumeService
    endpoints: EndpointService
    billing: BillingService
    pods: PodService
    # REST v2 additions: account SSH keys, endpoints with inline container settings, and
    # what the machines can place now (catalog availability).
    ssh_keys: SshKeyService
    endpoint_templates: EndpointTemplates
    availability: Availability
    # Job plane (/v2): the broker (client operations), the worker-route operations and the
    # worker registry.
    broker: Broker
    handoff: JobHandoff
    workers: WorkerRegistry
    # Batch jobs: sets of requests run as low-priority jobs of the broker.
    batches: BatchService
    # Worker plane: where workers run, and the reconcile loop that starts and stops them.
    provider: Provider
    controller: Controller
    worker_pods: WorkerPods
    # Metrics and per-endpoint stats, fed by the broker's and the controller's events.
    observability: Observability
    # Rate limits and quotas (services/ratelimit.py), shared by every API.
    limits: RateLimits
    # Load-balancing endpoints: the routable workers and their requests, and their health
    # checks (runplane.lb; the proxy is api/lb/proxy.py).
    lb: LoadBalancer
    lb_health: HealthProber
