"""usage records for billing

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("resource_id", sa.String(), nullable=False),
        sa.Column("pod_id", sa.String(), nullable=True),
        sa.Column("gpu_type_id", sa.String(), nullable=True),
        sa.Column("data_center_id", sa.String(), nullable=True),
        sa.Column("template_id", sa.String(), nullable=True),
        sa.Column("image_name", sa.String(), nullable=True),
        sa.Column("start_at", sa.Float(), nullable=False),
        sa.Column("end_at", sa.Float(), nullable=True),
        sa.Column("usd_per_hr", sa.Float(), nullable=False),
        sa.Column("amount_usd", sa.Float(), nullable=True),
        sa.Column("time_billed_ms", sa.Integer(), nullable=True),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.create_index("ix_usage_records_kind_resource", ["kind", "resource_id"], unique=False)
        batch_op.create_index(
            "ix_usage_records_user_kind_start", ["user_id", "kind", "start_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_records_user_kind_start")
        batch_op.drop_index("ix_usage_records_kind_resource")
    op.drop_table("usage_records")
