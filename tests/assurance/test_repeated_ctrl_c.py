"""Ctrl-C pressed again and again, as someone does who wants a run stopped now.

Each run gets SIGINT every 20 ms, from a random moment of its work until it ends (for at
most three seconds). The first press stops it; the presses after it must neither cut its
clean-up and its message short nor surface as a traceback while the interpreter exits.
After every run: no traceback; exit 0 (the work was done before a press counted, and
nothing says it was interrupted) or 130 with exactly one line saying what the
interruption left; and what it says holds (acquire: nothing at the output path, or the
complete bundle).

A Ctrl-C while the modules load or Typer reads the command line is held until the
command's body begins (a KeyboardInterrupt raised inside pydantic's schema building
surfaced as a SchemaError traceback): some moments fall there on purpose.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.assurance.figures import Figures
from tests.conftest import REPO, AgeKey, Bundle, MakeBundle, SigningKey

CLI = (sys.executable, "-m", "evidence_kit")
SEED = 20261129
FIGURE = "crash: Ctrl-C pressed every 20 ms from a random moment"
PRESS_EVERY = 0.02
PRESS_FOR = 3.0
EARLIEST = 0.3  # past the interpreter's own start-up, where no code of ours can answer yet


@dataclass(frozen=True)
class Pressed:
    returncode: int
    stderr: str
    presses: int

    @property
    def messages(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("interrupted")]


def child_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EVIDENCE_KIT_DEBUG", None)
    return env


def press_again_and_again(argv: Sequence[str], cwd: Path, after: float) -> Pressed:
    process = subprocess.Popen([*CLI, *argv], cwd=cwd, env=child_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    time.sleep(after)
    presses = 0
    until = time.monotonic() + PRESS_FOR
    while process.poll() is None and time.monotonic() < until:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
            presses += 1
        time.sleep(PRESS_EVERY)
    _out, err = process.communicate(timeout=60)
    return Pressed(process.returncode, err.decode(errors="replace"), presses)


def judged(pressed: Pressed) -> tuple[str, list[str]]:
    """The outcome, and what broke the rules every command keeps."""
    problems = []
    if "Traceback" in pressed.stderr:
        problems.append("a traceback: " + pressed.stderr[-600:])
    if pressed.returncode == 0:
        outcome = "finished"
        if pressed.messages:
            problems.append(f"exit 0 yet says {pressed.messages}")
    elif pressed.returncode == 130:
        outcome = "interrupted"
        if len(pressed.messages) != 1:
            problems.append(f"{len(pressed.messages)} interruption messages: {pressed.stderr}")
    else:
        outcome = f"exit {pressed.returncode}"
        problems.append(f"exit {pressed.returncode}: {pressed.stderr[-600:]}")
    return outcome, problems


def timed(argv: Sequence[str], cwd: Path) -> float:
    started = time.monotonic()
    subprocess.run([*CLI, *argv], cwd=cwd, check=True, capture_output=True, env=child_env())
    return time.monotonic() - started


def campaign(
    name: str,
    argv: Sequence[str],
    cwd: Path,
    runs: int,
    check: Callable[[Pressed], list[str]],
    reset: Callable[[], None],
    figures: Figures,
) -> Counter[str]:
    reset()
    duration = timed(argv, cwd)
    rng = random.Random(f"{SEED}-{name}")
    outcomes: Counter[str] = Counter()
    problems: list[str] = []
    for run in range(runs):
        reset()
        pressed = press_again_and_again(argv, cwd, rng.uniform(EARLIEST, duration))
        outcome, broken = judged(pressed)
        broken += check(pressed)
        outcomes[f"{name}: {outcome}"] += 1
        problems += [f"run {run} ({pressed.presses} presses): {p}" for p in broken]
    note = f"seed {SEED}; each command timed once, then pressed at random moments"
    figures.record(FIGURE, runs, runs - len(problems), outcomes.elements(), note=note)
    assert problems == []
    return outcomes


@pytest.fixture(scope="module")
def seized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seized") / "laptop"
    rng = random.Random(SEED)
    for number in range(24):
        folder = root / f"folder-{number % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"export-{number:02d}.csv").write_bytes(rng.randbytes(2 << 20))
    return root


@pytest.fixture
def bundle(seized: Path, make_bundle: MakeBundle, signing_key: SigningKey) -> Bundle:
    return make_bundle(seized, signing_key=signing_key.key)


def test_acquire_pressed_again_and_again_stops_once_and_says_what_it_left(
    seized: Path, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path, figures: Figures
) -> None:
    out = tmp_path / "out"
    container = out / "b.zip"
    argv = ["acquire", str(seized), "--out", str(container), "--recipient", age_key.recipient,
            "--sign", str(signing_key.private_pem), "--case-number", "GZ-2026-0042",
            "--evidence-number", "E-01", "--examiner", "Insp. Wang", "--unattended",
            "-q"]  # fmt: skip

    def reset() -> None:
        for path in out.glob("*") if out.exists() else ():
            path.unlink()
        out.mkdir(exist_ok=True)

    def check(pressed: Pressed) -> list[str]:
        left = sorted(p.name for p in out.iterdir())
        said = " ".join(pressed.messages)
        if pressed.returncode == 0 or "after the bundle was sealed" in said:
            if left != ["b.custody.jsonl", "b.zip"]:
                return [f"the complete bundle is not there: {left}"]
            request = VerifyRequest(container, key=age_key.material,
                                    trusted=(signing_key.key.public_key(),))  # fmt: skip
            report = verify_bundle(request)
            return [] if report.verdict == "verified" else [f"the bundle is {report.verdict}"]
        if left:
            return [f"says {said!r}, yet left {left}"]
        return []

    outcomes = campaign("acquire", argv, tmp_path, 6, check, reset, figures)
    assert outcomes["acquire: interrupted"] >= 1


def test_verify_and_extract_pressed_again_and_again_stop_once(
    bundle: Bundle, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path, figures: Figures
) -> None:
    key = ["--identity", str(age_key.identity_file), "--trust", str(signing_key.public_pem)]
    verify = ["verify", str(bundle.container), *key]
    dest = tmp_path / "extracted"
    extract = ["extract", str(bundle.container), "--out", str(dest), *key, "-q"]

    def nothing() -> None:
        pass

    def empty_destination() -> None:
        shutil.rmtree(dest, ignore_errors=True)

    def no_more(_pressed: Pressed) -> list[str]:
        return []

    def extract_message(pressed: Pressed) -> list[str]:
        said = " ".join(pressed.messages)
        wrote = dest.exists() and any(dest.rglob("*.csv"))
        if pressed.returncode == 130 and "nothing was left" in said and wrote:
            return [f"says {said!r}, yet files were written"]
        return []

    outcomes = campaign("verify", verify, tmp_path, 4, no_more, nothing, figures)
    outcomes += campaign("extract", extract, tmp_path, 4, extract_message, empty_destination,
                         figures)  # fmt: skip
    assert outcomes["verify: interrupted"] + outcomes["extract: interrupted"] >= 1
