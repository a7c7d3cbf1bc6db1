"""jobs.idempotency_key: a client's Idempotency-Key (or requestId) for /run and /runsync

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String, nullable=True))
    # One job per (user, key): a resent /run finds the first one. Rows without a key are
    # not indexed by SQLite's partial index (or are NULL-distinct elsewhere).
    op.create_index("ix_jobs_user_idempotency", "jobs", ["user_id", "idempotency_key"],
                    unique=True, sqlite_where=sa.text("idempotency_key IS NOT NULL"),
                    postgresql_where=sa.text("idempotency_key IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_jobs_user_idempotency", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("idempotency_key")
