"""How a run answers Ctrl-C: held from start-up until a command runs; the first press
stops it, later presses are ignored; during an acquisition's pipeline a press only asks
the next progress report to stop, and one that comes after the first has waited a second
stops at once."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from evidence_kit.cli import acquire as acquire_cli
from evidence_kit.cli import interrupts
from evidence_kit.cli.interrupts import (
    answers_once,
    command_runs,
    held_while_starting,
    hold_until_a_command_runs,
    interrupt_once,
    work_done,
)
from evidence_kit.progress import SilentProgress


@pytest.fixture
def handlers_restored() -> Iterator[None]:
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
        interrupts._held.clear()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(acquire_cli.time, "monotonic", clock)
    return clock


@pytest.mark.usefixtures("handlers_restored")
def test_the_first_interruption_raises_and_the_ones_after_it_are_ignored() -> None:
    signal.signal(signal.SIGINT, interrupt_once)
    assert answers_once()
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    signal.raise_signal(signal.SIGINT)  # ignored: no KeyboardInterrupt
    signal.raise_signal(signal.SIGTERM)  # ignored: the test process lives on


@pytest.mark.usefixtures("handlers_restored")
def test_a_ctrl_c_while_starting_is_held_until_the_command_runs_then_interrupts_once() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    hold_until_a_command_runs()
    assert not held_while_starting()
    signal.raise_signal(signal.SIGINT)  # while the modules load or Typer parses: held
    signal.raise_signal(signal.SIGINT)
    assert held_while_starting()
    with pytest.raises(KeyboardInterrupt):
        command_runs()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


@pytest.mark.usefixtures("handlers_restored")
def test_without_a_held_ctrl_c_the_command_runs_and_answers_the_first_one() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    hold_until_a_command_runs()
    command_runs()
    assert answers_once()
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)


@pytest.mark.usefixtures("handlers_restored")
def test_an_ignored_ctrl_c_stays_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # nohup, a background job
    hold_until_a_command_runs()
    command_runs()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


@pytest.mark.usefixtures("handlers_restored")
def test_once_the_work_is_done_ctrl_c_is_ignored_only_where_the_run_answers_once() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    work_done()  # inside another program (here pytest): its Ctrl-C is left alone
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    signal.signal(signal.SIGINT, interrupt_once)
    work_done()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_quick_repeated_presses_during_the_pipeline_wait_for_the_next_report(
    clock: Clock,
) -> None:
    stop = acquire_cli.StopOnRequest(SilentProgress())
    stop.start(10, 1000)
    stop.handle(signal.SIGINT, None)
    for _press in range(20):
        clock.now += 0.02
        stop.handle(signal.SIGINT, None)  # no KeyboardInterrupt inside the pipeline's locks
    with pytest.raises(KeyboardInterrupt):
        stop.advance(nbytes=100)


def test_a_press_after_the_first_has_waited_a_second_stops_at_once(clock: Clock) -> None:
    stop = acquire_cli.StopOnRequest(SilentProgress())
    stop.start(10, 1000)
    stop.handle(signal.SIGINT, None)
    clock.now += acquire_cli.FORCE_AFTER_SECONDS  # a read stuck on a failing disk
    with pytest.raises(KeyboardInterrupt):
        stop.handle(signal.SIGINT, None)


@pytest.mark.usefixtures("handlers_restored")
def test_outside_the_pipeline_a_press_stops_at_once_and_ends_listening_when_answering_once(
    clock: Clock,
) -> None:
    signal.signal(signal.SIGINT, interrupt_once)
    with (
        acquire_cli.stopping_on_signals(SilentProgress()) as stop,
        pytest.raises(KeyboardInterrupt),
    ):
        stop.handle(signal.SIGINT, None)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # not put back by the exit
