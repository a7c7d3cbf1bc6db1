"""controller: pods

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pods",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("template_id", sa.String(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("desired_status", sa.String(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("machine_id", sa.String(), nullable=True),
        sa.Column("gpu_type_id", sa.String(), nullable=True),
        sa.Column("gpu_count", sa.Integer(), nullable=False),
        sa.Column("vcpu_count", sa.Float(), nullable=False),
        sa.Column("memory_in_gb", sa.Float(), nullable=False),
        sa.Column("cost_per_hr", sa.Float(), nullable=False),
        sa.Column("provider_data", sa.JSON(), nullable=False),
        sa.Column("last_started_at", sa.Float(), nullable=True),
        sa.Column("last_status_change", sa.String(), nullable=True),
        sa.Column("last_status_change_at", sa.Float(), nullable=True),
        sa.Column("stopped_at", sa.Float(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("log_path", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pods", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pods_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pods", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pods_user_id"))
    op.drop_table("pods")
