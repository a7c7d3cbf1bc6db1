"""The ``runplane`` command line."""

from __future__ import annotations

import typer

from runplane.cli import admin, machines, serve, simulate, worker
from runplane.cli import billing, jobs, login, logs, pods, resources, storage
from runplane.cli.errors import CliGroup

app = typer.Typer(
    name="runplane",
    help="Self-hosted serverless GPU platform that speaks RunPod's APIs.",
    no_args_is_help=True,
    add_completion=False,
    cls=CliGroup,  # one-line errors for bad arguments (runplane.cli.errors)
)
app.command("serve")(serve.serve)
app.command("machines")(machines.machines)
app.command("simulate")(simulate.simulate)
app.add_typer(admin.users_app, name="users")
app.add_typer(admin.keys_app, name="keys")
app.add_typer(worker.worker_app, name="worker")

# Client commands: talk to a server by URL and key (runplane.cli.client).
app.command("login")(login.login)
app.command("logout")(login.logout)
app.add_typer(resources.templates_app, name="templates")
app.add_typer(resources.endpoints_app, name="endpoints")
app.add_typer(storage.volumes_app, name="volumes")
app.add_typer(storage.registry_app, name="registry-auths")
app.add_typer(pods.pods_app, name="pods")
app.add_typer(logs.workers_app, name="workers")
app.command("logs")(logs.logs)
app.command("run")(jobs.run)
app.add_typer(jobs.jobs_app, name="jobs")
app.command("health")(jobs.health)
app.add_typer(billing.billing_app, name="billing")


def main() -> None:
    app()
