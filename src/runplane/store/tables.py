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
    text,
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
    # Public templates are listed to other users (includePublicTemplates); a real column so
    # the list is an indexed query rather than a scan of every spec.
    Column("is_public", Boolean, nullable=False, default=False),
    # A real reference so a registry auth in use cannot be deleted.
    Column("registry_auth_id", String, ForeignKey("registry_auths.id"), nullable=True, index=True),
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
    # The registry host the credential goes to (bound on first use; migration 0009).
    Column("registry_host", String, nullable=True),
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

# Billable usage: one row per billed interval of a resource (a worker's run, a pod's run, a
# network volume at one size). ``end_at`` NULL means still running: it is billed up to "now"
# at ``usd_per_hr`` when read. Amounts for closed rows are fixed at write time.
usage_records = Table(
    "usage_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False),
    # 'endpoint' | 'pod' | 'networkvolume'
    Column("kind", String, nullable=False),
    # The endpoint, pod or network volume id (no foreign key: records outlive resources).
    Column("resource_id", String, nullable=False),
    # The worker (pod) that ran, for endpoint records; the pod itself for pod records.
    Column("pod_id", String, nullable=True),
    Column("gpu_type_id", String, nullable=True),
    Column("data_center_id", String, nullable=True),
    Column("template_id", String, nullable=True),
    Column("image_name", String, nullable=True),
    Column("start_at", Float, nullable=False),
    Column("end_at", Float, nullable=True),
    Column("usd_per_hr", Float, nullable=False, default=0.0),
    Column("amount_usd", Float, nullable=True),
    Column("time_billed_ms", Integer, nullable=True),
    Column("disk_gb", Integer, nullable=False, default=0),
    Index("ix_usage_records_user_kind_start", "user_id", "kind", "start_at"),
    Index("ix_usage_records_kind_resource", "kind", "resource_id"),
)

# A job of the serverless job API (/v2/{endpointId}/run...). The broker keeps an in-memory
# index of the queued and running ones (rebuilt from here at start-up); this table is the
# truth. ``payload`` is the job object handed to workers (id, input and every other
# top-level field of the request: webhook, s3Config, policy...).
jobs = Table(
    "jobs",
    metadata,
    Column("id", String, primary_key=True),
    Column("endpoint_id", String, nullable=False),
    Column("user_id", String, nullable=False),
    # IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED, TIMED_OUT
    Column("status", String, nullable=False),
    Column("payload", JSON, nullable=False),
    # Submitted through /runsync (shorter result retention).
    Column("sync", Boolean, nullable=False, default=False),
    Column("low_priority", Boolean, nullable=False, default=False),
    Column("execution_timeout_ms", Integer, nullable=True),
    Column("webhook", String, nullable=True),
    Column("created_at", Float, nullable=False),
    # Submission + policy.ttl: the job is deleted at this instant whatever its state.
    Column("expires_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    # Final jobs are deleted at this instant (result retention).
    Column("retain_until", Float, nullable=True),
    Column("worker_id", String, nullable=True),
    Column("retries", Integer, nullable=False, default=0),
    Column("delay_ms", Integer, nullable=True),
    Column("execution_ms", Integer, nullable=True),
    Column("output", JSON, nullable=True),
    Column("error", String, nullable=True),
    # How many stream chunks /stream has handed out already.
    Column("stream_delivered", Integer, nullable=False, default=0),
    # The client's Idempotency-Key (or requestId): one job per user and key while retained.
    Column("idempotency_key", String, nullable=True),
    Index("ix_jobs_status", "status"),
    Index("ix_jobs_retain_until", "retain_until"),
    Index("ix_jobs_user_idempotency", "user_id", "idempotency_key", unique=True,
          sqlite_where=text("idempotency_key IS NOT NULL"),
          postgresql_where=text("idempotency_key IS NOT NULL")),
)

# Chunks a generator handler streamed (job-stream), in arrival order.
job_chunks = Table(
    "job_chunks",
    metadata,
    Column("job_id", String, primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("output", JSON, nullable=True),
)

# A pod: a long-running process from a template on a machine, run by the same provider as
# workers (owned by the controller). The create input stays in ``spec``; placement and
# process state are columns.
pods = Table(
    "pods",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String, nullable=False),
    Column("template_id", String, nullable=True),
    Column("created_at", Float, nullable=False),
    # RUNNING, EXITED or TERMINATED: what the owner asked for.
    Column("desired_status", String, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("machine_id", String, nullable=True),
    Column("gpu_type_id", String, nullable=True),
    Column("gpu_count", Integer, nullable=False, default=0),
    Column("vcpu_count", Float, nullable=False, default=0),
    Column("memory_in_gb", Float, nullable=False, default=0),
    Column("cost_per_hr", Float, nullable=False, default=0),
    Column("provider_data", JSON, nullable=False, default=dict),
    Column("last_started_at", Float, nullable=True),
    Column("last_status_change", String, nullable=True),
    Column("last_status_change_at", Float, nullable=True),
    Column("stopped_at", Float, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("reason", String, nullable=True),
    Column("log_path", String, nullable=True),
)


# Every saved configuration of an endpoint (REST v2's releases): the endpoint's settings and
# its template's at that version, so each release's diff is the difference to the one
# before. Written by EndpointService for every version it stores.
endpoint_releases = Table(
    "endpoint_releases",
    metadata,
    Column("id", String, primary_key=True),
    Column("endpoint_id", String, ForeignKey("endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    # Who saved it; null when a change of its template did (the template's editor is not
    # recorded per endpoint).
    Column("user_id", String, nullable=True),
    Column("snapshot", JSON, nullable=False),
    UniqueConstraint("endpoint_id", "version", name="uq_endpoint_releases_version"),
)

# A user's SSH public keys (REST v2 /v2/account/ssh-keys): what a pod's SSH would authorize.
ssh_keys = Table(
    "ssh_keys",
    metadata,
    Column("user_id", String, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("public_keys", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# RunPod's batch jobs (services/batches.py): a named set of /run requests, built as a DRAFT,
# then FINALIZED (run as low-priority jobs of the endpoint), or CANCELLED / FAILED.
batches = Table(
    "batches",
    metadata,
    Column("id", String, primary_key=True),
    Column("endpoint_id", String, nullable=False),
    Column("user_id", String, nullable=False),
    Column("name", String, nullable=True),
    # DRAFT, FINALIZED, CANCELLED or FAILED
    Column("status", String, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("finalized_at", Float, nullable=True),
    # A cancel of a FINALIZED batch: its queued requests were cancelled; it is CANCELLED once
    # the running ones have ended.
    Column("cancel_requested_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Index("ix_batches_endpoint_created", "endpoint_id", "created_at"),
)

# A batch's requests, in the order they were added. A request's id is the id of the job it
# runs as once the batch is finalized; its final state and result are copied here when the
# job ends (jobs are forgotten after their result retention, a batch's results are not).
batch_requests = Table(
    "batch_requests",
    metadata,
    Column("id", String, primary_key=True),
    Column("batch_id", String, ForeignKey("batches.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    # The /run body as sent, and the policy of the job it runs as.
    Column("payload", JSON, nullable=False),
    Column("ttl_ms", Integer, nullable=False),
    Column("execution_timeout_ms", Integer, nullable=True),
    Column("webhook", String, nullable=True),
    # IN_QUEUE until its job ends: COMPLETED, FAILED, TIMED_OUT or CANCELLED.
    Column("status", String, nullable=False),
    Column("output", JSON, nullable=True),
    Column("error", String, nullable=True),
    Column("started_at", Float, nullable=True),
    Column("completed_at", Float, nullable=True),
    UniqueConstraint("batch_id", "seq", name="uq_batch_requests_seq"),
)
