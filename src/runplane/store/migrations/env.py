"""Alembic environment: runs migrations on the engine handed over by runplane.store.db."""

from alembic import context

from runplane.store.tables import metadata

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()
