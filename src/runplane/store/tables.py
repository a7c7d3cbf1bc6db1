"""Table definitions (SQLAlchemy Core).

Resources keep the columns that are queried, joined or constrained as real columns and the
rest of their RunPod-shaped body in a JSON ``spec`` column, validated on the way in by the
pydantic models in ``runplane.schemas``. That keeps the wire shape in one place (the schema)
while the store still enforces ownership, references and uniqueness.

Every change here needs an Alembic revision in ``migrations/versions``;
``tests/unit/test_migrations.py`` fails when the two drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False, unique=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String, nullable=False),
    # SHA-256 of the secret: keys are 160+ random bits, so a fast hash is enough and lets
    # every request find its key by an indexed equality lookup.
    Column("key_hash", String, nullable=False, unique=True),
    Column("prefix", String, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

templates = Table(
    "templates",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("spec", JSON, nullable=False),
    UniqueConstraint("user_id", "name", name="uq_templates_user_name"),
)

network_volumes = Table(
    "network_volumes",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String, nullable=False),
    Column("data_center_id", String, nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

registry_auths = Table(
    "registry_auths",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String, nullable=False),
    Column("username", String, nullable=False),
    # Needed in clear to pull images; never returned by the API nor logged.
    Column("password", String, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("user_id", "name", name="uq_registry_auths_user_name"),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False, index=True),
    Column("template_id", String, ForeignKey("templates.id"), nullable=False, index=True),
    Column("name", String, nullable=False),
    Column("version", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("spec", JSON, nullable=False),
)

# Which volumes an endpoint mounts; a real relation so a volume in use cannot be deleted.
endpoint_volumes = Table(
    "endpoint_volumes",
    metadata,
    Column("endpoint_id", String, ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True),
    Column("network_volume_id", String, ForeignKey("network_volumes.id"), primary_key=True),
    Index("ix_endpoint_volumes_volume", "network_volume_id"),
)

# A worker is one run of an endpoint's template: started by the controller through a
# provider, or attached by hand (`runplane worker run`). It is also what `includeWorkers`
# lists as a Pod. The job protocol (broker) owns token_hash/last_seen_at; the controller owns
# placement and process columns.
workers = Table(
    "workers",
    metadata,
    Column("id", String, primary_key=True),
    Column("endpoint_id", String, ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String, nullable=False, unique=True),
    # RunPod's worker states: INITIALIZING, IDLE, RUNNING, THROTTLED, UNHEALTHY, OUTDATED;
    # plus runplane's PARKED and EXITED.
    Column("status", String, nullable=False),
    # RUNNING or EXITED: what the controller wants (the Pod's desiredStatus).
    Column("desired_status", String, nullable=False, default="RUNNING"),
    Column("endpoint_version", Integer, nullable=False, default=0),
    Column("manual", Boolean, nullable=False, default=False),
    Column("machine_id", String, nullable=True, index=True),
    Column("gpu_type_id", String, nullable=True),
    Column("gpu_count", Integer, nullable=False, default=0),
    Column("vcpu_count", Integer, nullable=False, default=0),
    Column("memory_in_gb", Float, nullable=False, default=0),
    Column("cost_per_hr", Float, nullable=False, default=0),
    # Provider-specific handle (pid, container id, Ray actor name...) and allocated devices.
    Column("provider_data", JSON, nullable=False, default=dict),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("first_take_at", Float, nullable=True),
    Column("last_seen_at", Float, nullable=True),
    Column("last_status_change_at", Float, nullable=True),
    Column("stopped_at", Float, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("reason", String, nullable=True),
    Column("log_path", String, nullable=True),
)
