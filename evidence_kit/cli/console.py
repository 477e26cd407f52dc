"""Where humans and machines get their output: Rich on stderr, one JSON document on stdout.

Evidence names are hostile: they reach Rich only as :class:`rich.text.Text` (never parsed
as markup) after :func:`evidence_kit.naming.display_name` escaped control characters.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from evidence_kit.cli.interrupts import command_runs, interrupt_once, work_done
from evidence_kit.cli.keyoptions import secrets_out_of_environment
from evidence_kit.errors import EvidenceKitError, ExitCode
from evidence_kit.i18n import _
from evidence_kit.models import ErrorReport, Record
from evidence_kit.naming import printable_text

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def say(message: str, *, style: str | None = None) -> None:
    """A line for a person, on stderr; ``message`` is plain text, never markup."""
    stderr.print(escape(printable_text(message)), style=style)


def plain(text: str, style: str = "") -> Text:
    """Text for Rich that is never markup and never a terminal control sequence: values
    from records (names, places, notes) may hold anything."""
    return Text(printable_text(text), style=style)


def show_facts(rows: list[tuple[str, str]]) -> None:
    """``label  value`` lines on stderr; values are never cut (hashes get copied by hand)."""
    width = max((len(label) for label, _value in rows), default=0)
    for label, value in rows:
        stderr.print(plain(f"{label:<{width}}  {value}"))


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the command as Ctrl-C does (KeyboardInterrupt, then both ignored), so
    its clean-up runs: a half-written file removed, worker processes ended."""
    previous = signal.signal(signal.SIGTERM, interrupt_once)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is interrupt_once:  # else: no longer listening
            signal.signal(signal.SIGTERM, previous)


def emit_json(record: Record) -> None:
    """The one JSON document a ``--json`` run prints, on stdout."""
    sys.stdout.write(record.model_dump_json(indent=2) + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def reported_errors(*, json: bool = False, interrupted: str | None = None) -> Iterator[None]:
    """Turn evidence-kit errors into a message and an exit code; never a traceback.

    With ``json`` an :class:`ErrorReport` is the one document on stdout. Every command
    runs inside this frame, with the secret variables out of the environment.
    ``interrupted`` is what Ctrl-C leaves behind, when that is not "nothing". In the
    ``evidence-kit`` program a Ctrl-C held while it started interrupts as the body begins,
    and once the body has ended Ctrl-C is ignored (:mod:`evidence_kit.cli.interrupts`).
    """
    try:
        try:
            command_runs()
            with secrets_out_of_environment():
                yield
        finally:
            work_done()  # what follows only reports: a Ctrl-C now would cut it short
    except EvidenceKitError as error:
        say(_("error: {message}").format(message=error.message), style="bold red")
        if error.hint:
            say(error.hint)
        if json:
            emit_json(
                ErrorReport(
                    error=type(error).__name__,
                    exit_code=int(error.exit_code),
                    message=error.message,
                    hint=error.hint,
                )
            )
        raise typer.Exit(int(error.exit_code)) from None
    except KeyboardInterrupt:
        say(interrupted or _("interrupted: nothing was left at the output path"), style="bold red")
        raise typer.Exit(130) from None
    except MemoryError:
        say(_("error: out of memory"), style="bold red")
        raise typer.Exit(int(ExitCode.ENVIRONMENT)) from None
    except OSError as error:
        say(
            _("error: {reason}: {path}").format(
                reason=error.strerror or error, path=error.filename or ""
            ),
            style="bold red",
        )
        raise typer.Exit(int(ExitCode.ENVIRONMENT)) from None
    except Exception as error:  # a bug: say so plainly, keep the traceback for developers
        if os.environ.get("EVIDENCE_KIT_DEBUG"):
            raise
        say(
            _("internal error ({kind}): {message}").format(
                kind=type(error).__name__, message=error
            ),
            style="bold red",
        )
        say(_("This is a bug in evidence-kit; set EVIDENCE_KIT_DEBUG=1 to see details."))
        raise typer.Exit(int(ExitCode.ENVIRONMENT)) from None


__all__ = [
    "emit_json",
    "plain",
    "reported_errors",
    "say",
    "show_facts",
    "stderr",
    "terminate_as_interrupt",
]
