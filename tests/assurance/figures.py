"""Published figures of the assurance campaign: each campaign test records what it tried,
what was detected (or survived) and the reason codes seen; at the end of the session
they are printed and, with ``--assurance-figures FILE``, written as JSON, which
docs/assurance.md quotes (``make assurance`` reproduces them)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Figure:
    name: str
    tried: int
    detected: int
    reasons: Counter[str] = field(default_factory=Counter)
    note: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "tried": self.tried,
            "detected": self.detected,
            "reasons": dict(sorted(self.reasons.items())),
            "note": self.note,
        }


class Figures:
    """The session's figures, by name (recording a name twice adds to it)."""

    def __init__(self) -> None:
        self.figures: dict[str, Figure] = {}

    def record(
        self, name: str, tried: int, detected: int, reasons: Iterable[str] = (), note: str = ""
    ) -> None:
        figure = self.figures.setdefault(name, Figure(name, 0, 0, Counter(), note))
        figure.tried += tried
        figure.detected += detected
        figure.reasons.update(reasons)
        figure.note = note or figure.note


_FIGURES = Figures()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--assurance-figures",
        metavar="FILE",
        default=None,
        help="write the assurance campaign's figures to FILE (JSON)",
    )


@pytest.fixture(scope="session")
def figures() -> Figures:
    return _FIGURES


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if not _FIGURES.figures:
        return
    terminalreporter.section("assurance figures")
    for figure in _FIGURES.figures.values():
        reasons = ", ".join(f"{code} {n}" for code, n in figure.reasons.most_common())
        shown = f"{figure.name}: {figure.detected}/{figure.tried}"
        terminalreporter.write_line(shown + (f" ({reasons})" if reasons else ""))
    target = config.getoption("--assurance-figures")
    if target:
        Path(target).write_text(
            json.dumps([f.as_json() for f in _FIGURES.figures.values()], indent=2) + "\n"
        )
