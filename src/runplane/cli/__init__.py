"""The ``runplane`` command line."""

from __future__ import annotations

import typer

from runplane.cli import admin, machines, serve, worker

app = typer.Typer(
    name="runplane",
    help="Self-hosted serverless GPU platform that speaks RunPod's APIs.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.command("machines")(machines.machines)
app.add_typer(admin.users_app, name="users")
app.add_typer(admin.keys_app, name="keys")
app.add_typer(worker.worker_app, name="worker")


def main() -> None:
    app()
