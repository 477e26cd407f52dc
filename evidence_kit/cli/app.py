"""The Typer application: the only place that prints, prompts, draws progress or exits."""

from __future__ import annotations

import sys

import typer

from evidence_kit import __version__
from evidence_kit.cli.acquire import acquire_command, invocation
from evidence_kit.cli.custody import custody_app
from evidence_kit.cli.export import export_command
from evidence_kit.cli.extract import extract_command
from evidence_kit.cli.inspect import inspect_command
from evidence_kit.cli.keys import keys_app
from evidence_kit.cli.lab import lab_app
from evidence_kit.cli.report import report_command
from evidence_kit.cli.timestamp import timestamp_command
from evidence_kit.cli.verify import verify_command

app = typer.Typer(
    name="evidence-kit",
    help="Preserve digital evidence: acquire, seal, verify and extract encrypted bundles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("acquire")(acquire_command)
app.command("verify")(verify_command)
app.command("inspect")(inspect_command)
app.command("extract")(extract_command)
app.command("export")(export_command)
app.command("report")(report_command)
app.command("timestamp")(timestamp_command)
app.add_typer(custody_app, name="custody")
app.add_typer(keys_app, name="keys")
app.add_typer(lab_app, name="lab")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"evidence-kit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="show the version and exit"
    ),
) -> None:
    """evidence-kit"""


def main() -> None:
    invocation.set(["evidence-kit", *sys.argv[1:]])
    app()


__all__ = ["app", "main"]
