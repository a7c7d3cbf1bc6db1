"""SQL persistence: table definitions, engine set-up and Alembic migrations."""
