"""Options shared by the commands that open the local store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="RUNPLANE_DATA_DIR", help="Where the store and logs live."),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", envvar="RUNPLANE_CONFIG", help="TOML config file."),
]
