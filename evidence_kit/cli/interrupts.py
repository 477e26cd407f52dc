"""How a command-line run answers Ctrl-C and SIGTERM: one interruption, then quiet.

Someone who wants a run stopped often presses Ctrl-C several times. The first press
stops the work with a KeyboardInterrupt, so that the command's clean-up runs and it says
what was left; the presses after it are ignored, so that they can neither cut that
clean-up or its message short nor surface as a traceback while the interpreter exits.

From start-up until a command's body runs, Ctrl-C is held rather than raised: while the
modules load, a KeyboardInterrupt raised inside pydantic's schema building comes out as
a SchemaError, and while Typer parses the command line, Typer turns it into exit 130
with no word said. One held there is answered as soon as the command's body begins.

This module imports nothing heavy: ``__main__`` uses it before the rest loads.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_held: list[int] = []


def _hold(signum: int, _frame: FrameType | None) -> None:
    _held.append(signum)


def hold_until_a_command_runs() -> None:
    """For the ``evidence-kit`` program, at start-up: hold Ctrl-C until a command's body
    runs. A Ctrl-C ignored by whoever started the run (``nohup``, a background job)
    stays ignored."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _hold)


def held_while_starting() -> bool:
    """Whether a Ctrl-C came while holding, before any command's body ran."""
    return signal.getsignal(signal.SIGINT) is _hold and bool(_held)


def command_runs() -> None:
    """A command's body begins: a held Ctrl-C is answered by :func:`interrupt_once` from
    now on, and one that came meanwhile interrupts now."""
    if signal.getsignal(signal.SIGINT) is _hold:
        signal.signal(signal.SIGINT, interrupt_once)
        if _held:
            interrupt_once()


def interrupt_once(_signum: int = signal.SIGINT, _frame: FrameType | None = None) -> None:
    """A signal handler: ignore Ctrl-C and SIGTERM from now on, and raise
    KeyboardInterrupt (the run is ending)."""
    stop_listening()
    raise KeyboardInterrupt


def stop_listening() -> None:
    """Ignore Ctrl-C and SIGTERM for the rest of the run (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        for number in _STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)


def answers_once() -> bool:
    """Whether this run answers Ctrl-C with :func:`interrupt_once`: true for the
    ``evidence-kit`` program, false when its commands run inside another program (a test
    runner, a script), whose Ctrl-C is left as that program set it."""
    return signal.getsignal(signal.SIGINT) is interrupt_once


def work_done() -> None:
    """The command's work is done and only its report remains: when this run answers
    Ctrl-C once, a Ctrl-C from now on is ignored (it could only cut the report short)."""
    if answers_once():
        stop_listening()


__all__ = [
    "answers_once",
    "command_runs",
    "held_while_starting",
    "hold_until_a_command_runs",
    "interrupt_once",
    "stop_listening",
    "work_done",
]
