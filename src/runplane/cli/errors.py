"""One-line errors for the whole ``runplane`` command line.

Every failure a user can cause (a bad argument, an unreachable server, a refusal from the
server) ends the same way: one line ``error: <reason>`` on stderr and a non-zero exit status
(1 for failures, 2 for usage errors, as click does). ``CliGroup`` is the root command's class:
it runs click in non-standalone mode and prints click's own usage errors as one line too,
instead of the multi-line usage panel.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

try:  # typer >= 0.22 carries its own copy of click; its commands raise its exceptions
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click import exceptions as click_exc  # type: ignore[no-redef]


class CliError(click_exc.ClickException):
    """A failure to report as ``error: <message>`` with exit status 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))

    def show(self, file: Any = None) -> None:  # used when not run under CliGroup
        typer.echo(f"error: {self.format_message()}", file=file or sys.stderr)


def fail(message: str) -> NoReturn:
    """Stop the command with ``error: <message>``."""
    raise CliError(message)


def usage_error(message: str) -> click_exc.UsageError:
    """A bad command line that no single option is to blame for (exit status 2)."""
    return click_exc.UsageError(message)


def one_line(text: str, limit: int = 2000) -> str:
    """Collapse whitespace (tracebacks, multi-line server messages) into one line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _usage_line(exc: click_exc.UsageError) -> str:
    message = one_line(exc.format_message())
    if exc.ctx is not None:
        message += f" (see '{exc.ctx.command_path} --help')"
    return message


_NO_ARGS: type[Exception] = getattr(click_exc, "NoArgsIsHelpError", type("_Never", (Exception,), {}))


class CliGroup(TyperGroup):
    """The root group: prints click's usage errors and ``CliError`` as one line."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except _NO_ARGS as exc:  # a group without its command: its help, as click does
            # typer's rich help is already printed: ""
            text = exc.format_message()  # type: ignore[attr-defined]
            if text.strip():
                typer.echo(text, err=True)
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        except click_exc.UsageError as exc:
            typer.echo(f"error: {_usage_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except click_exc.ClickException as exc:
            typer.echo(f"error: {one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)
