"""registry_auths.registry_host: the registry host a credential is bound to

Set on the credential's first use with an image (its owner's template or pod); afterwards it
is only ever sent to that host (docs/security.md).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registry_auths") as batch:
        batch.add_column(sa.Column("registry_host", sa.String, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registry_auths") as batch:
        batch.drop_column("registry_host")
