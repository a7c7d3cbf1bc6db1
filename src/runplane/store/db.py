"""Engine creation and schema migration.

SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives the
server process being killed at any instant (the WAL is in the OS page cache), which is the
durability the job API promises (``durability = "crash"``). ``synchronous=FULL``
(``durability = "power_loss"``, or ``RUNPLANE_SQLITE_SYNCHRONOUS=FULL`` as before) extends
that to power loss at the price of an fsync of the WAL per commit, which the group-commit
writer makes one per batch of concurrent requests.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def _json_loads(value: object) -> object:
    """SQLite gives JSON columns NUMERIC affinity: a bare number (a job's ``output: 1``) is
    stored as the text ``1`` and read back as the number itself, which is the value already."""
    if isinstance(value, (int, float)):
        return value
    return orjson.loads(value)  # type: ignore[arg-type]


# Settings.durability -> SQLite's synchronous pragma (see the module docstring).
SYNCHRONOUS = {"crash": "NORMAL", "power_loss": "FULL"}


def make_engine(url: str, synchronous: str | None = None) -> Engine:
    """Create the engine; for SQLite, create the folder and set the pragmas described above
    (``synchronous``: NORMAL or FULL; default RUNPLANE_SQLITE_SYNCHRONOUS, else NORMAL)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=_json_loads,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        synchronous = synchronous or os.environ.get("RUNPLANE_SQLITE_SYNCHRONOUS", "NORMAL")
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"SQLite synchronous={synchronous!r}: NORMAL or FULL")

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, json_serializer=_json_dumps, json_deserializer=_json_loads)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    command.upgrade(alembic_config(engine), "head")
