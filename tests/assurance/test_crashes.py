"""Crash safety: real ``python -m evidence_kit`` processes stopped by real signals.

``acquire``, ``custody add`` and ``extract`` are killed with SIGKILL (nothing can clean
up), interrupted with SIGINT (Ctrl-C) and terminated with SIGTERM, at two kinds of moment:

* random moments: a seeded generator spreads delays over a normal run measured first
  (some during start-up, most while the work is being done);
* chosen moments: a small launcher wraps OS calls (``os.fsync``, ``os.link``,
  ``os.unlink``, ``os.replace``, ``os.read``, ``os.write``, ``fcntl.flock``) in the child
  process and makes it signal itself just before or just after the Nth such call, so the
  narrow windows between two renames are hit every time, not by luck.

After every run the guarantees are checked, and each campaign records its figure (runs
tried, runs where every guarantee held, the outcome of each run):

* acquire: the bundle path is absent or holds a bundle that verifies (its custody log
  intact beside it); the source is unchanged (content, size, mode, mtime, ctime and atime of
  every file and folder); the evidence's marker bytes are in no file outside the source
  (TMPDIR, the working folder, the output folder, the source's parent), hidden ``.partial``
  files included; after SIGINT or SIGTERM exit 130 and nothing at all is left, or, when
  the signal came once the bundle was sealed, a message saying it is whole.
* custody add: the log is always a whole, valid, signed chain ending at the old head or at
  the new event complete; no earlier event is ever lost.
* extract: every file under a final name is complete and has the manifest's digest; after
  SIGINT no ``.partial`` temp file is left.

The evidence's content is a random marker repeated: bundles store members without
compression, so any plaintext that escaped encryption would show the marker verbatim.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyrage
import pytest

from evidence_kit.acquire import AcquireRequest, acquire
from evidence_kit.bundle import trusted_fingerprints
from evidence_kit.custody import check_chain, custody_log_path, event_line, read_custody_log
from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.assurance.figures import Figures
from tests.conftest import CASE, CASE_ARGS, REPO, AgeKey, SigningKey, items_by_path, read_manifest

SEED = 20260117
O_NOATIME: int = getattr(os, "O_NOATIME", 0)
CLI = (sys.executable, "-m", "evidence_kit")
OLD_TIME_NS = 1_700_000_000 * 10**9  # November 2023: far enough back for relatime
OFFICER = "Insp. Wang Lei, Tianhe forensic unit"
EXTRACT_TEMP = re.compile(r"^\.evidence-kit-[0-9a-f]{16}\.partial$")
INTERRUPTED = "interrupted: nothing was left at the output path"
SEALED = "interrupted after the bundle was sealed"
WAIT_SECONDS = 60  # a signalled child that has not exited by then has hung

# A signal that reaches a run whose output is complete: 130 with a message saying so, 1
# from Click ("Aborted!") while the summary prints, or death by the signal itself while
# the interpreter shuts down (Python restores the default handlers then).
FINISHED_ANYWAY = frozenset({130, 1, -signal.SIGINT, -signal.SIGTERM})
ACQUIRE_TEMP = re.compile(r"^\.b\.(zip|custody\.jsonl)\.[A-Za-z0-9_]{8}\.partial$")

ACQUIRE_SIGKILL = "crash: acquire, SIGKILL at random moments"
ACQUIRE_SIGINT = "crash: acquire, SIGINT (Ctrl-C) at random moments of the work"
ACQUIRE_SIGTERM = "crash: acquire, SIGTERM at random moments of the work"
ACQUIRE_STEPS = "crash: acquire, a signal at chosen steps (reads, commit calls)"
CUSTODY_SIGKILL = "crash: custody add, SIGKILL at random moments"
CUSTODY_WRITERS = "crash: custody add, three writers at once, some SIGKILLed"
CUSTODY_STEPS = "crash: custody add, SIGKILL or SIGINT at chosen append steps"
EXTRACT_SIGKILL = "crash: extract, SIGKILL at random moments"
EXTRACT_SIGINT = "crash: extract, SIGINT (Ctrl-C) at random moments of the work"
EXTRACT_STEPS = "crash: extract, SIGKILL or SIGINT at chosen commit steps"
ACQUIRE_NOTE = f"seed {SEED}; quick runs: 5 MB in 22 files; slow runs: 45 MB in 158 files"
CUSTODY_NOTE = f"seed {SEED}; a 24 MB bundle, one log appended to in turn"
WRITERS_NOTE = f"seed {SEED}; the writers not killed must append and exit 0"
EXTRACT_NOTE = f"seed {SEED}; quick runs: 22 files; slow runs: 158 files, 45 MB"
STEPS_NOTE = "the child signals itself just before or after a chosen OS call"


# ------------------------------------------------------------------------ the evidence


@dataclass(frozen=True)
class Seized:
    """A seized folder whose every byte is a random marker (plus a counter) repeated."""

    root: Path
    marker: bytes
    state: dict[bytes, tuple[object, ...]]


def write_marked(path: Path, marker: bytes, number: int, size: int) -> None:
    unit = marker + b" %08d\n" % number
    path.write_bytes((unit * (size // len(unit) + 1))[:size])


def build_seized(root: Path, marker: bytes, *, large: int, small: int) -> Seized:
    """``large`` files over 1 MiB (members of their own), ``small`` packed files in ten
    folders, an empty folder; every time set in 2023 so a read would move an atime."""
    (root / "large").mkdir(parents=True)
    (root / "empty").mkdir()
    for i in range(large):
        write_marked(root / "large" / f"image-{i}.bin", marker, i, (2 << 20) + i * 900_001)
    for i in range(small):
        notes = root / "small" / f"d{i % 10:02d}"
        notes.mkdir(parents=True, exist_ok=True)
        write_marked(notes / f"note-{i:04d}.txt", marker, 1000 + i, 1 + (i * 7919) % 60_000)
    for folder, dirnames, filenames in os.walk(root, topdown=False):
        for name in [*filenames, *dirnames, ""]:
            os.utime(os.path.join(folder, name), ns=(OLD_TIME_NS, OLD_TIME_NS))
    return Seized(root, marker, source_state(root))


def _open_noatime(path: str | bytes, flags: int, dir_fd: int | None = None) -> int:
    return os.open(path, flags | O_NOATIME | os.O_NOFOLLOW, dir_fd=dir_fd)


def source_state(root: Path) -> dict[bytes, tuple[object, ...]]:
    """Mode, size, mtime, ctime, atime, inode and content hash of everything under ``root``.

    Read the way acquisition reads (``O_NOATIME``, folders listed through their
    descriptor), so taking the snapshot moves no atime itself."""
    state: dict[bytes, tuple[object, ...]] = {}

    def visit(fd: int, relpath: bytes) -> None:
        info = os.fstat(fd)
        digest = ""
        if stat.S_ISREG(info.st_mode):
            sha = hashlib.sha256()
            while chunk := os.read(fd, 1 << 20):
                sha.update(chunk)
            digest = sha.hexdigest()
        state[relpath] = (
            info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns,
            info.st_atime_ns, info.st_ino, info.st_nlink, digest,
        )  # fmt: skip
        if stat.S_ISDIR(info.st_mode):
            for name in sorted(os.listdir(fd)):
                encoded = os.fsencode(name)
                child = _open_noatime(encoded, os.O_RDONLY, dir_fd=fd)
                try:
                    visit(child, relpath + b"/" + encoded)
                finally:
                    os.close(child)
        info_after = os.fstat(fd)
        assert info_after.st_atime_ns == info.st_atime_ns, "the snapshot itself moved an atime"

    top = _open_noatime(os.fsencode(root), os.O_RDONLY)
    try:
        visit(top, b".")
    finally:
        os.close(top)
    return state


STATE_FIELDS = ("mode", "size", "mtime", "ctime", "atime", "inode", "links", "sha256")


def source_changes(seized: Seized) -> list[str]:
    now = source_state(seized.root)
    changes = [
        f"{p.decode(errors='replace')} appeared or went" for p in set(now) ^ set(seized.state)
    ]
    for path in sorted(set(now) & set(seized.state)):
        fields = [
            f"{name} {old!r} -> {new!r}"
            for name, old, new in zip(STATE_FIELDS, seized.state[path], now[path], strict=True)
            if old != new
        ]
        if fields:
            changes.append(f"{path.decode(errors='replace')}: {', '.join(fields)}")
    return [f"source changed: {c}" for c in sorted(changes)[:5]]


def marker_hits(roots: Sequence[Path], marker: bytes, exclude: Sequence[Path] = ()) -> list[Path]:
    """Every regular file below ``roots`` (hidden ones too, symlinks not followed) that
    holds ``marker``, outside the ``exclude`` subtrees."""
    hits = []
    excluded = {os.path.abspath(p) for p in exclude}
    for root in roots:
        for folder, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if os.path.join(folder, d) not in excluded]
            for name in filenames:
                path = os.path.join(folder, name)
                if path in excluded or not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
                if _holds(path, marker):
                    hits.append(Path(path))
    return hits


def _holds(path: str, marker: bytes) -> bool:
    tail = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            if marker in tail + chunk:
                return True
            tail = chunk[-len(marker) :]
    return False


def files_below(folder: Path) -> list[Path]:
    return sorted(Path(d, n) for d, dirnames, names in os.walk(folder) for n in [*dirnames, *names])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# -------------------------------------------------------------------------- processes


@dataclass
class Ended:
    """How a child process ended."""

    returncode: int
    stdout: str
    stderr: str
    signalled: bool  # the signal was sent while it still ran
    elapsed: float
    began: float | None = None  # seconds until its work was seen to begin
    hung: bool = False  # still running WAIT_SECONDS after the signal: stacks in stderr

    def hang(self) -> list[str]:
        return (
            [f"did not end after the signal; its threads:\n{self.stderr[-3000:]}"]
            if self.hung
            else []
        )


def child_env(tmpdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TMPDIR"] = str(tmpdir)
    env.pop("EVIDENCE_KIT_DEBUG", None)
    env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT to a hung child prints every thread's stack
    env["PYTHONPATH"] = str(REPO)
    return env


def spawn(argv: Sequence[str], cwd: Path, tmpdir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=child_env(tmpdir),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass(frozen=True)
class Moment:
    """When the signal goes: ``seconds`` after the start, or after the work was seen to
    begin (a temp file appears, the destination appears, the bundle is opened)."""

    seconds: float
    after_work_began: bool

    def __str__(self) -> str:
        since = "the work began" if self.after_work_began else "the start"
        return f"{self.seconds:.3f} s after {since}"


Begun = Callable[[int], bool]  # given the child's pid: has its work begun?


def run_and_signal(
    argv: Sequence[str],
    cwd: Path,
    tmpdir: Path,
    sig: int | None = None,
    moment: Moment | None = None,
    begun: Begun | None = None,
) -> Ended:
    """Start ``argv``, send ``sig`` at ``moment`` if it still runs, wait for its end;
    ``Ended.began`` says when ``begun`` was first seen to hold."""
    started = time.monotonic()
    process = spawn(argv, cwd, tmpdir)
    signalled = False
    began: float | None = None
    try:
        while process.poll() is None:
            now = time.monotonic()
            if began is None and begun is not None and begun(process.pid):
                began = now - started
            if sig is not None and moment is not None:
                origin = began if moment.after_work_began else 0.0
                if origin is not None and now >= started + origin + moment.seconds:
                    process.send_signal(sig)
                    signalled = True
                    break
            time.sleep(0.002)
        try:
            stdout, stderr = process.communicate(timeout=WAIT_SECONDS)
            hung = False
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            stdout, stderr = process.communicate(timeout=WAIT_SECONDS)
            hung = True
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    if process.returncode == 0:
        signalled = False  # it had ended, unreaped, when the signal went
    elapsed = time.monotonic() - started
    return Ended(process.returncode, stdout, stderr, signalled, elapsed, began, hung)


def exists(path: Path) -> Begun:
    return lambda _pid: path.exists()


def holds_open(paths: Sequence[Path]) -> Begun:
    """Whether the child has one of ``paths`` open (seen in /proc/PID/fd)."""
    wanted = {os.path.realpath(p) for p in paths}

    def begun(pid: int) -> bool:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return False
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    return True
        return False

    return begun


# The launcher for chosen moments. It runs the CLI in the child with the watched OS calls
# wrapped; each call is described by its name and target ("link .b.zip.*.partial", the
# random part of temp names starred) and the child signals itself just before or just
# after the Nth call of a given description. It can also write down every call it saw.
STEP_LAUNCHER = r"""
import fcntl, json, os, re, sys
plan = json.loads(sys.argv[1])
sys.argv = ["evidence-kit", *sys.argv[2:]]
from evidence_kit.cli.app import main

calls, seen = [], {}

def described(name, args):
    first = args[0] if args else None
    if isinstance(first, int):
        try:
            target = os.path.basename(os.readlink(f"/proc/self/fd/{first}"))
        except OSError:
            target = "?"
    else:
        target = os.path.basename(os.fsdecode(first)) if first is not None else "?"
    target = re.sub(r"^\.evidence-kit-[0-9a-f]{16}\.partial$", ".evidence-kit-*.partial", target)
    target = re.sub(r"\.[A-Za-z0-9_]{8}\.partial$", ".*.partial", target)
    size = f" ({len(args[1])} bytes)" if name == "write" else ""
    return f"{name} {target}{size}"

def signal_self():
    for _ in range(plan["times"]):
        os.kill(os.getpid(), plan["signal"])
        for _ in range(1000):  # let its handler run before the next one is sent
            pass

def wrap(module, name):
    real = getattr(module, name)
    def step(*args, **kwargs):
        call = described(name, args)
        calls.append(call)
        seen[call] = seen.get(call, -1) + 1
        hit = call == plan["call"] and seen[call] == plan["occurrence"]
        if hit and plan["when"] == "before":
            signal_self()
        result = real(*args, **kwargs)
        if hit and plan["when"] == "after":
            signal_self()
        return result
    setattr(module, name, step)

for name in plan["os"]:
    wrap(os, name)
if plan["flock"]:
    wrap(fcntl, "flock")
try:
    main()
finally:
    if plan["record"]:
        with open(plan["record"], "w") as out:
            json.dump(calls, out)
"""


@dataclass(frozen=True)
class Watched:
    """Which OS calls the launcher watches in a command."""

    os_calls: tuple[str, ...]
    flock: bool = False


ACQUIRE_CALLS = Watched(("fsync", "link", "unlink", "replace", "rename"))
CUSTODY_CALLS = Watched(("write", "fsync"), flock=True)
EXTRACT_CALLS = Watched(("fsync", "link", "unlink"))


@dataclass(frozen=True)
class Step:
    """Send ``sig`` (``times`` times: a second Ctrl-C) just ``when`` ("before" or
    "after") the ``occurrence``-th ``call``."""

    call: str
    occurrence: int
    when: str
    sig: int
    times: int = 1

    def __str__(self) -> str:
        nth = f" #{self.occurrence}" if self.occurrence else ""
        twice = " twice" if self.times == 2 else ""
        return f"{signal.Signals(self.sig).name}{twice} {self.when} {self.call}{nth}"

    @property
    def label(self) -> str:
        twice = ", twice" if self.times == 2 else ""
        return f"{self.when} {self.call.split()[0]}{twice}"


def launcher_argv(
    watched: Watched, cli_args: Sequence[str], step: Step | None, record: Path | None = None
) -> list[str]:
    plan = {
        "os": list(watched.os_calls),
        "flock": watched.flock,
        "call": step.call if step else None,
        "occurrence": step.occurrence if step else 0,
        "when": step.when if step else None,
        "signal": step.sig if step else 0,
        "times": step.times if step else 0,
        "record": str(record) if record else "",
    }
    return [sys.executable, "-c", STEP_LAUNCHER, json.dumps(plan), *cli_args]


def every_step(calls: Sequence[str], sigs: Sequence[int]) -> list[Step]:
    """Each watched call of a normal run, before and after, with each signal."""
    steps, seen = [], Counter[str]()
    for call in calls:
        for when in ("before", "after"):
            steps += [Step(call, seen[call], when, sig) for sig in sigs]
        seen[call] += 1
    return steps


@dataclass(frozen=True)
class Normal:
    """An uninterrupted run through the launcher: when its work began, how long the work
    took, and the watched calls it made."""

    start: float
    work: float
    calls: list[str]


def normal_run(
    watched: Watched, cli_args: Sequence[str], cwd: Path, tmpdir: Path, begun: Begun
) -> Normal:
    record = cwd / "calls.json"
    ended = run_and_signal(launcher_argv(watched, cli_args, None, record), cwd, tmpdir, begun=begun)
    assert ended.returncode == 0, ended.stderr
    assert ended.began is not None, "the work was never seen to begin"
    calls = json.loads(record.read_text())
    record.unlink()
    return Normal(ended.began, max(ended.elapsed - ended.began, 0.05), calls)


def random_moments(
    rng: random.Random, count: int, normal: Normal, *, early: float = 0.15
) -> list[Moment]:
    """``count`` moments: a share ``early`` in start-up, the rest from the moment the work
    began to a little past the end of a normal run."""
    moments = []
    for _ in range(count):
        if rng.random() < early:
            moments.append(Moment(rng.uniform(0.0, normal.start), after_work_began=False))
        else:
            moments.append(Moment(rng.uniform(0.0, 1.05 * normal.work), after_work_began=True))
    return moments


def fixed_moments(normal: Normal, fractions: Sequence[float]) -> list[Moment]:
    """Those fractions of a normal run's work, after the work began."""
    return [Moment(f * normal.work, after_work_began=True) for f in fractions]


# --------------------------------------------------------------------------- campaigns


@dataclass
class Campaign:
    """The runs of one figure: each run's outcome and any guarantee it broke."""

    name: str
    outcomes: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    held: int = 0

    def add(self, outcome: str, problems: Sequence[str], what: str) -> None:
        self.outcomes.append(outcome)
        self.broken += [f"run {len(self.outcomes)} ({what}): {p}" for p in problems]
        self.held += not problems
        print(f"{self.name}: {what}: {outcome}" + (f" BROKEN {list(problems)}" if problems else ""))

    def record(self, figures: Figures, note: str) -> None:
        figures.record(
            self.name, tried=len(self.outcomes), detected=self.held, reasons=self.outcomes,
            note=note,
        )  # fmt: skip

    def assert_held(self) -> None:
        assert self.broken == [], "\n".join(self.broken[:20])


# ---------------------------------------------------------------------------- acquire


@pytest.fixture(scope="module")
def seized(tmp_path_factory: pytest.TempPathFactory) -> Seized:
    """About 45 MB: eight files of 2 to 8.3 MB and 150 small ones (the random campaigns)."""
    parent = tmp_path_factory.mktemp("crash-evidence")
    return build_seized(parent / "seized", secrets.token_hex(16).encode(), large=8, small=150)


@pytest.fixture(scope="module")
def small_seized(tmp_path_factory: pytest.TempPathFactory) -> Seized:
    """About 5 MB in 22 files: the quick runs and the chosen commit steps."""
    parent = tmp_path_factory.mktemp("crash-evidence-small")
    return build_seized(parent / "seized", secrets.token_hex(16).encode(), large=2, small=20)


def acquire_args(source: Path, out: Path, age_key: AgeKey, signing_key: SigningKey) -> list[str]:
    return [
        "acquire", str(source), "--out", str(out), "--recipient", age_key.recipient,
        "--sign", str(signing_key.private_pem), *CASE_ARGS, "--unattended", "-q",
    ]  # fmt: skip


@dataclass(frozen=True)
class AcquireRun:
    folder: Path  # the child's working folder; holds out/ and tmp/
    out: Path
    tmp: Path

    @property
    def bundle(self) -> Path:
        return self.out / "b.zip"

    def writing(self, _pid: int) -> bool:
        """Whether the run has begun writing (its first temp file is there)."""
        return any(self.out.iterdir())

    @classmethod
    def make(cls, base: Path, name: str) -> AcquireRun:
        folder = base / name
        out, tmp = folder / "out", folder / "tmp"
        out.mkdir(parents=True)
        tmp.mkdir()
        return cls(folder, out, tmp)


def verifies(container: Path, age_key: AgeKey, signing_key: SigningKey) -> list[str]:
    """Why the bundle at ``container`` does not verify with the key and signer (none: it does)."""
    report = verify_bundle(
        VerifyRequest(container, key=age_key.material, trusted=(signing_key.key.public_key(),))
    )
    problems = [f"{f.code}: {f.subject}" for f in report.findings if f.severity == "error"]
    if report.verdict != "verified":
        problems.append(f"verdict {report.verdict}")
    if report.seal != "signed" or not report.signer_trusted:
        problems.append(f"seal {report.seal}, signer trusted {report.signer_trusted}")
    return problems


def judge_acquire(
    run: AcquireRun,
    ended: Ended,
    seized: Seized,
    age_key: AgeKey,
    signing_key: SigningKey,
    *,
    graceful: bool,
) -> tuple[str, list[str]]:
    """The run's outcome and the guarantees it broke.

    Always: the bundle path is absent or verifies with its log; only owner-only temp files
    of this bundle in the output folder, none in TMPDIR; no plaintext outside the source;
    the source unchanged. ``graceful`` (SIGINT, SIGTERM): exit 130 with the message and no
    file left at all, or, once the bundle was in place, a message saying it is whole."""
    problems: list[str] = []
    log = custody_log_path(run.bundle)
    left = [p for p in files_below(run.out) if p not in (run.bundle, log)]
    partial = [p for p in left if ACQUIRE_TEMP.match(p.name)]
    problems += [f"unexpected file {p}" for p in left if p not in partial]
    problems += [f"{p} is not owner-only" for p in partial if p.stat().st_mode & 0o077]
    problems += [f"temp file left in TMPDIR: {p}" for p in files_below(run.tmp)]
    if run.bundle.exists():
        outcome = "complete-verified"
        problems += verifies(run.bundle, age_key, signing_key)
        chain = read_custody_log(log)
        if chain.findings or chain.torn_bytes or len(chain.events) != 1:
            problems.append(f"custody log beside the bundle: {chain.findings} {chain.torn_bytes}")
    elif log.exists():
        outcome = "absent, orphan custody log"
        chain = read_custody_log(log)
        if chain.findings or chain.torn_bytes or len(chain.events) != 1:
            problems.append(f"orphan custody log not whole: {chain.findings}")
    elif partial:
        outcome = "absent, encrypted .partial left"
    else:
        outcome = "absent, output folder empty"
    if not ended.signalled:
        outcome = "finished before the signal"
        if ended.returncode != 0:
            problems.append(f"exit {ended.returncode}: {ended.stderr[-400:]}")
    elif graceful:
        if run.bundle.exists():  # the signal came once the bundle was in place
            if ended.returncode == 130 and SEALED not in ended.stderr:
                problems.append(f"exit 130 without saying the bundle is whole: {ended.stderr}")
            elif ended.returncode not in FINISHED_ANYWAY:
                problems.append(f"exit {ended.returncode}: {ended.stderr[-400:]}")
            if INTERRUPTED in ended.stderr:
                problems.append("says nothing was left, yet the bundle is in place")
            problems += [f"temp file left: {p}" for p in partial]
        else:
            if ended.returncode != 130:
                problems.append(f"exit {ended.returncode}, not 130: {ended.stderr[-400:]}")
            if INTERRUPTED not in ended.stderr:
                problems.append(f"no interruption message: {ended.stderr[-400:]}")
            problems += [f"left after {outcome}: {p}" for p in files_below(run.out)]
        if "Traceback" in ended.stderr:
            problems.append("a traceback: " + ended.stderr[-400:])
    elif ended.returncode != -signal.SIGKILL:
        problems.append(f"exit {ended.returncode} after SIGKILL")
    hits = marker_hits([run.folder, seized.root.parent], seized.marker, exclude=[seized.root])
    problems += [f"plaintext marker in {p}" for p in hits]
    problems += source_changes(seized) + ended.hang()
    return ("hung after the signal" if ended.hung else outcome), problems


def normal_acquire(seized: Seized, age_key: AgeKey, signing_key: SigningKey, base: Path) -> Normal:
    """One uninterrupted run; its work begins when the first temp file appears."""
    run = AcquireRun.make(base, "normal")
    args = acquire_args(seized.root, run.bundle, age_key, signing_key)
    normal = normal_run(ACQUIRE_CALLS, args, run.folder, run.tmp, run.writing)
    assert verifies(run.bundle, age_key, signing_key) == []
    assert source_changes(seized) == []
    assert marker_hits([run.folder], seized.marker) == []
    return normal


@pytest.fixture(scope="module")
def acquire_normal(
    seized: Seized,
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Normal:
    return normal_acquire(seized, age_key, signing_key, tmp_path_factory.mktemp("crash-acquire"))


@pytest.fixture(scope="module")
def small_acquire_normal(
    small_seized: Seized,
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Normal:
    base = tmp_path_factory.mktemp("crash-acquire-small")
    return normal_acquire(small_seized, age_key, signing_key, base)


def acquire_campaign(
    name: str,
    sig: int,
    moments: Sequence[Moment],
    base: Path,
    seized: Seized,
    age_key: AgeKey,
    signing_key: SigningKey,
) -> Campaign:
    campaign = Campaign(name)
    for number, moment in enumerate(moments):
        run = AcquireRun.make(base, f"run-{number:03d}")
        argv = [*CLI, *acquire_args(seized.root, run.bundle, age_key, signing_key)]
        ended = run_and_signal(argv, run.folder, run.tmp, sig, moment, begun=run.writing)
        graceful = sig != signal.SIGKILL
        outcome, problems = judge_acquire(
            run, ended, seized, age_key, signing_key, graceful=graceful
        )
        campaign.add(outcome, problems, f"{signal.Signals(sig).name} {moment}")
        shutil.rmtree(run.folder)
    return campaign


def acquire_step_campaign(
    steps: Sequence[Step],
    base: Path,
    seized: Seized,
    age_key: AgeKey,
    signing_key: SigningKey,
    watched: Watched = ACQUIRE_CALLS,
) -> Campaign:
    campaign = Campaign(ACQUIRE_STEPS)
    for number, step in enumerate(steps):
        run = AcquireRun.make(base, f"step-{number:03d}")
        args = acquire_args(seized.root, run.bundle, age_key, signing_key)
        ended = run_and_signal(launcher_argv(watched, args, step), run.folder, run.tmp)
        ended.signalled = True
        graceful = step.sig != signal.SIGKILL
        outcome, problems = judge_acquire(
            run, ended, seized, age_key, signing_key, graceful=graceful
        )
        campaign.add(f"{outcome} ({step.label})", problems, str(step))
        shutil.rmtree(run.folder)
    return campaign


def test_acquire_killed_at_chosen_moments_leaves_nothing_or_a_verified_bundle(
    small_seized: Seized,
    small_acquire_normal: Normal,
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    """SIGKILL in start-up, and at a third and nine tenths of the work."""
    moments = [
        Moment(small_acquire_normal.start / 2, after_work_began=False),
        *fixed_moments(small_acquire_normal, [0.33, 0.9]),
    ]
    campaign = acquire_campaign(
        ACQUIRE_SIGKILL, signal.SIGKILL, moments, tmp_path, small_seized, age_key, signing_key
    )
    campaign.record(figures, note=ACQUIRE_NOTE)
    campaign.assert_held()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_acquire_interrupted_mid_run_exits_130_and_leaves_nothing(
    sig: int, small_seized: Seized, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path,
    figures: Figures,
) -> None:  # fmt: skip
    """Ctrl-C (and SIGTERM, which acquire turns into the same) just before the second large
    file is read: exit 130, the message, no traceback, no file at all in the output
    folder or TMPDIR."""
    steps = [Step("read image-1.bin", 0, "before", sig)]
    campaign = acquire_step_campaign(
        steps, tmp_path, small_seized, age_key, signing_key, watched=Watched(("read",))
    )
    campaign.record(figures, note=STEPS_NOTE)
    campaign.assert_held()
    assert campaign.outcomes == ["absent, output folder empty (before read)"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "count"),
    [(signal.SIGKILL, 50), (signal.SIGINT, 10), (signal.SIGTERM, 10)],
    ids=["SIGKILL", "SIGINT", "SIGTERM"],
)
def test_acquire_signalled_at_random_moments_keeps_every_guarantee(
    sig: int,
    count: int,
    seized: Seized,
    acquire_normal: Normal,
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    rng = random.Random(f"{SEED}-acquire-{sig}")
    # SIGINT in start-up: see test_ctrl_c_during_start_up_exits_without_a_traceback
    early = 0.15 if sig == signal.SIGKILL else 0.0
    moments = random_moments(rng, count, acquire_normal, early=early)
    names = {signal.SIGKILL: ACQUIRE_SIGKILL, signal.SIGINT: ACQUIRE_SIGINT}
    name = names.get(signal.Signals(sig), ACQUIRE_SIGTERM)
    campaign = acquire_campaign(name, sig, moments, tmp_path, seized, age_key, signing_key)
    campaign.record(figures, note=ACQUIRE_NOTE)
    campaign.assert_held()


def test_acquire_commits_the_log_first_then_the_container(small_acquire_normal: Normal) -> None:
    """The order the crash guarantees rest on: a log may be left without its container,
    never a container without its log."""
    assert small_acquire_normal.calls == [
        "fsync .b.zip.*.partial",  # the sealed container, still under its temp name
        "fsync .b.custody.jsonl.*.partial",
        "link .b.custody.jsonl.*.partial",  # the log takes its final name first
        "unlink .b.custody.jsonl.*.partial",
        "fsync out",
        "fsync .b.zip.*.partial",
        "link .b.zip.*.partial",  # then the container
        "unlink .b.zip.*.partial",
        "fsync out",
    ]


def test_acquire_signalled_between_the_two_renames(
    small_seized: Seized,
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    """Just after the log's link and just after the container's link. SIGKILL there
    leaves an orphan log. One Ctrl-C lets the sealing finish and says the bundle is
    whole; so does a second one right after it (a second press stops at once only when
    the first has waited a second: tests/cli/test_interrupts.py)."""
    log, container = "link .b.custody.jsonl.*.partial", "link .b.zip.*.partial"
    steps = [
        Step(log, 0, "after", signal.SIGKILL),
        Step(log, 0, "after", signal.SIGINT),
        Step(log, 0, "after", signal.SIGINT, times=2),
        Step(container, 0, "after", signal.SIGINT, times=2),
    ]
    campaign = acquire_step_campaign(steps, tmp_path, small_seized, age_key, signing_key)
    campaign.record(figures, note=STEPS_NOTE)
    campaign.assert_held()
    assert campaign.outcomes == [
        "absent, orphan custody log (after link)",
        "complete-verified (after link)",
        "complete-verified (after link, twice)",
        "complete-verified (after link, twice)",
    ]


@pytest.mark.slow
def test_acquire_signalled_at_every_commit_step(
    small_seized: Seized,
    small_acquire_normal: Normal,
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    """SIGKILL just before and just after each watched call of a normal run; SIGINT,
    once and twice, just after each."""
    steps = every_step(small_acquire_normal.calls, [signal.SIGKILL, signal.SIGINT])
    steps = [s for s in steps if s.sig == signal.SIGKILL or s.when == "after"]
    steps += [replace(s, times=2) for s in steps if s.sig == signal.SIGINT]
    campaign = acquire_step_campaign(steps, tmp_path, small_seized, age_key, signing_key)
    campaign.record(figures, note=STEPS_NOTE)
    campaign.assert_held()


def library_loaded(pid: int, fragment: str) -> bool:
    try:
        return fragment in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_ctrl_c_during_start_up_exits_without_a_traceback(
    small_seized: Seized, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path
) -> None:
    """SIGINT once the CLI has begun importing (cryptography's library is mapped)."""
    if not Path("/proc/self/maps").exists():
        pytest.skip("needs /proc to see the child's loaded libraries")
    run = AcquireRun.make(tmp_path, "startup")
    argv = [*CLI, *acquire_args(small_seized.root, run.bundle, age_key, signing_key)]
    ended = run_and_signal(
        argv, run.folder, run.tmp, signal.SIGINT, Moment(0.0, after_work_began=True),
        begun=lambda pid: library_loaded(pid, "cryptography"),
    )  # fmt: skip
    assert ended.signalled
    assert files_below(run.out) == [] and files_below(run.tmp) == []  # holds today
    assert "Traceback" not in ended.stderr
    assert ended.returncode == 130


def test_acquire_with_overwrite_killed_between_the_renames_never_leaves_a_failing_pair(
    small_seized: Seized, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path
) -> None:
    run = AcquireRun.make(tmp_path, "overwrite")
    args = acquire_args(small_seized.root, run.bundle, age_key, signing_key)
    first = run_and_signal([*CLI, *args], run.folder, run.tmp)
    assert first.returncode == 0, first.stderr
    step = Step("replace .b.custody.jsonl.*.partial", 0, "after", signal.SIGKILL)
    ended = run_and_signal(
        launcher_argv(ACQUIRE_CALLS, [*args, "--overwrite"], step), run.folder, run.tmp
    )
    assert ended.returncode == -signal.SIGKILL
    # the old container went before the new log took its place: the final path is absent
    # (the new log waits alone, as after any kill between the renames), never an old
    # container beside a new log
    assert not run.bundle.exists()


# ------------------------------------------------------------------------ custody add


@pytest.fixture(scope="module")
def custody_bundle(
    tmp_path_factory: pytest.TempPathFactory, age_key: AgeKey, signing_key: SigningKey
) -> Path:
    """A signed bundle of 24 MB (hashing it is part of each append, so the work lasts
    long enough to be hit); each test appends to its own copy."""
    folder = tmp_path_factory.mktemp("crash-custody")
    source = folder / "seized"
    source.mkdir()
    (source / "statement.txt").write_text("signed statement of the suspect\n")
    (source / "phone.img").write_bytes(random.Random(SEED).randbytes(24 << 20))
    output = folder / "bundle" / "b.zip"
    output.parent.mkdir()
    acquire(
        AcquireRequest(
            sources=[source],
            output=output,
            case=CASE,
            recipients=[pyrage.x25519.Recipient.from_str(age_key.recipient)],
            signing_key=signing_key.key,
        )
    )
    return output


def copy_bundle(container: Path, folder: Path) -> Path:
    folder.mkdir(parents=True)
    copy = folder / container.name
    shutil.copy2(container, copy)
    shutil.copy2(custody_log_path(container), custody_log_path(copy))
    return copy


def custody_add_args(container: Path, signing_key: SigningKey, note: str) -> list[str]:
    return [
        "custody", "add", str(container), "--action", "stored", "--actor", OFFICER,
        "--sign", str(signing_key.private_pem), "--note", note,
    ]  # fmt: skip


def custody_begun(container: Path) -> Begun:
    """Its work begins when it opens the container (to hash it) or the log."""
    return holds_open([container, custody_log_path(container)])


def judge_log(
    container: Path, before: bytes, notes: Sequence[str], signing_key: SigningKey
) -> tuple[list[str], list[str]]:
    """For each note, 'appended' or 'not appended'; and what is wrong with the log.

    The log must hold ``before`` unchanged as its start, then only whole, linked, signed,
    canonical events, each carrying one of ``notes``, none twice."""
    log_path = custody_log_path(container)
    problems: list[str] = []
    if not log_path.read_bytes().startswith(before):
        problems.append("an earlier event was changed or lost")
    log = read_custody_log(log_path)
    if log.findings or log.torn_bytes:
        problems.append(f"log not whole: {[f.code for f in log.findings]}, torn {log.torn_bytes}")
    chain = check_chain(
        log,
        container_sha256=sha256_file(container),
        trusted=trusted_fingerprints([signing_key.key.public_key()]),
    )
    problems += [f"{f.code}: {f.subject}" for f in chain if f.severity == "error"]
    for event, line in zip(log.events, log.lines, strict=True):
        if event_line(event) != line:
            problems.append(f"event {event.seq} is not whole and canonical")
    new = [e.note for e in log.events[before.count(b"\n") :]]
    outcomes = []
    for note in notes:
        if new.count(note) > 1:
            problems.append(f"{note} appended {new.count(note)} times")
        outcomes.append("appended" if note in new else "not appended")
    problems += [f"an event nobody appended: {n}" for n in new if n not in notes]
    return outcomes, problems


def custody_outcome(
    appended: str, ended: Ended, sig: int = signal.SIGKILL
) -> tuple[str, list[str]]:
    """SIGKILL: either is fine. SIGINT: exit 130, the message, and the log as it was (an
    event written but not yet fsynced is cut back off)."""
    if ended.hung:
        return "hung after the signal", ended.hang()
    if not ended.signalled:
        problems = [] if ended.returncode == 0 and appended == "appended" else [
            f"finished with exit {ended.returncode} and {appended}: {ended.stderr[-300:]}"
        ]  # fmt: skip
        return "finished before the signal", problems
    if sig == signal.SIGKILL:
        problems = [] if ended.returncode == -signal.SIGKILL else [f"exit {ended.returncode}"]
        return f"killed, {appended}", problems
    problems = [] if appended == "not appended" else ["an interrupted add left its event"]
    if ended.returncode != 130 or INTERRUPTED not in ended.stderr:
        problems.append(f"exit {ended.returncode}: {ended.stderr[-300:]}")
    if "Traceback" in ended.stderr:
        problems.append("a traceback: " + ended.stderr[-400:])
    return f"interrupted, {appended}", problems


@pytest.fixture(scope="module")
def custody_normal(
    custody_bundle: Path, signing_key: SigningKey, tmp_path_factory: pytest.TempPathFactory
) -> Normal:
    """One uninterrupted ``custody add``: start-up, then hashing, locking, appending."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to see when custody add opens the bundle")
    folder = tmp_path_factory.mktemp("crash-custody-normal")
    container = copy_bundle(custody_bundle, folder / "bundle")
    tmp = folder / "tmp"
    tmp.mkdir()
    args = custody_add_args(container, signing_key, "normal")
    normal = normal_run(CUSTODY_CALLS, args, folder, tmp, custody_begun(container))
    log = custody_log_path(container)
    assert normal.calls == [  # one write of the whole line, under the lock, then fsync
        f"flock {log.name}",
        f"write {log.name} ({len(log.read_bytes().splitlines(keepends=True)[-1])} bytes)",
        f"fsync {log.name}",
    ]
    return normal


def custody_campaign(
    moments: Sequence[Moment],
    base: Path,
    custody_bundle: Path,
    signing_key: SigningKey,
    age_key: AgeKey,
) -> Campaign:
    """One process at a time appends to one log; each is SIGKILLed at its moment."""
    campaign = Campaign(CUSTODY_SIGKILL)
    container = copy_bundle(custody_bundle, base / "bundle")
    tmp = base / "tmp"
    tmp.mkdir()
    for number, moment in enumerate(moments):
        note = f"run {number}"
        before = custody_log_path(container).read_bytes()
        argv = [*CLI, *custody_add_args(container, signing_key, note)]
        ended = run_and_signal(
            argv, base, tmp, signal.SIGKILL, moment, begun=custody_begun(container)
        )
        (result,), problems = judge_log(container, before, [note], signing_key)
        outcome, more = custody_outcome(result, ended)
        problems += more + [f"temp file left: {p}" for p in files_below(tmp)]
        campaign.add(outcome, problems, f"SIGKILL {moment}")
    appended = sum(
        o in ("killed, appended", "finished before the signal") for o in campaign.outcomes
    )
    assert len(read_custody_log(custody_log_path(container)).events) == 1 + appended
    assert verifies(container, age_key, signing_key) == []
    return campaign


def test_custody_add_killed_at_chosen_moments_keeps_a_whole_chain(
    custody_bundle: Path,
    custody_normal: Normal,
    signing_key: SigningKey,
    age_key: AgeKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    """SIGKILL in start-up, and at a third and two thirds of the work once the bundle
    was opened."""
    moments = [
        Moment(custody_normal.start / 2, after_work_began=False),
        *fixed_moments(custody_normal, [0.33, 0.67]),
    ]
    campaign = custody_campaign(moments, tmp_path, custody_bundle, signing_key, age_key)
    campaign.record(figures, note=CUSTODY_NOTE)
    campaign.assert_held()


@pytest.mark.slow
def test_custody_add_killed_at_random_moments_keeps_a_whole_chain(
    custody_bundle: Path,
    custody_normal: Normal,
    signing_key: SigningKey,
    age_key: AgeKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    """A few SIGKILLs in start-up, most once the bundle was opened: while the container
    is hashed and the log locked, read and appended to."""
    moments = random_moments(random.Random(f"{SEED}-custody"), 50, custody_normal)
    campaign = custody_campaign(moments, tmp_path, custody_bundle, signing_key, age_key)
    campaign.record(figures, note=CUSTODY_NOTE)
    campaign.assert_held()


def writers_round(
    number: int,
    rng: random.Random,
    container: Path,
    base: Path,
    tmp: Path,
    normal: Normal,
    signing_key: SigningKey,
) -> tuple[list[str], list[str]]:
    """Three ``custody add`` at once; one or two of them SIGKILLed at a random moment
    after each opened the bundle (they wait for each other's lock meanwhile)."""
    notes = [f"round {number} writer {w}" for w in range(3)]
    victims = sorted(rng.sample(range(3), rng.choice((1, 2))))
    delays = {w: rng.uniform(0.0, 1.5 * normal.work) for w in victims}
    before = custody_log_path(container).read_bytes()
    begun = custody_begun(container)
    processes = [
        spawn([*CLI, *custody_add_args(container, signing_key, note)], base, tmp) for note in notes
    ]
    began: dict[int, float] = {}
    signalled = dict.fromkeys(range(3), False)
    try:
        while any(processes[w].poll() is None and not signalled[w] for w in victims):
            now = time.monotonic()
            for w in victims:
                if w not in began and begun(processes[w].pid):
                    began[w] = now
                due = w in began and now >= began[w] + delays[w]
                if due and not signalled[w] and processes[w].poll() is None:
                    processes[w].kill()
                    signalled[w] = True
            time.sleep(0.002)
        outputs = [p.communicate(timeout=WAIT_SECONDS) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    appended, problems = judge_log(container, before, notes, signing_key)
    outcomes = []
    for writer, process in enumerate(processes):
        killed = signalled[writer] and process.returncode != 0
        ended = Ended(process.returncode, *outputs[writer], killed, 0.0)
        outcome, more = custody_outcome(appended[writer], ended)
        outcomes.append(outcome)
        problems += more
    return outcomes, problems


def custody_writers_campaign(
    rounds: int,
    seed: str,
    base: Path,
    custody_bundle: Path,
    normal: Normal,
    signing_key: SigningKey,
    age_key: AgeKey,
) -> Campaign:
    campaign = Campaign(CUSTODY_WRITERS)
    rng = random.Random(seed)
    container = copy_bundle(custody_bundle, base / "bundle")
    tmp = base / "tmp"
    tmp.mkdir()
    for number in range(rounds):
        outcomes, problems = writers_round(number, rng, container, base, tmp, normal, signing_key)
        campaign.add(" + ".join(sorted(outcomes)), problems, f"round {number}")
    assert verifies(container, age_key, signing_key) == []
    return campaign


def test_custody_writers_at_once_some_killed_keep_one_chain(
    custody_bundle: Path,
    custody_normal: Normal,
    signing_key: SigningKey,
    age_key: AgeKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    campaign = custody_writers_campaign(
        1, f"{SEED}-writers-quick", tmp_path, custody_bundle, custody_normal, signing_key, age_key
    )
    campaign.record(figures, note=WRITERS_NOTE)
    campaign.assert_held()


@pytest.mark.slow
def test_custody_writers_at_once_killed_at_random_keep_one_chain(
    custody_bundle: Path,
    custody_normal: Normal,
    signing_key: SigningKey,
    age_key: AgeKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    campaign = custody_writers_campaign(
        6, f"{SEED}-writers", tmp_path, custody_bundle, custody_normal, signing_key, age_key
    )
    campaign.record(figures, note=WRITERS_NOTE)
    campaign.assert_held()


def custody_step_campaign(
    steps: Sequence[Step],
    base: Path,
    custody_bundle: Path,
    signing_key: SigningKey,
    age_key: AgeKey,
) -> Campaign:
    container = copy_bundle(custody_bundle, base / "bundle")
    tmp = base / "tmp"
    tmp.mkdir()
    campaign = Campaign(CUSTODY_STEPS)
    for number, step in enumerate(steps):
        note = f"step {number}"
        before = custody_log_path(container).read_bytes()
        args = custody_add_args(container, signing_key, note)
        ended = run_and_signal(launcher_argv(CUSTODY_CALLS, args, step), base, tmp)
        ended.signalled = True
        (result,), problems = judge_log(container, before, [note], signing_key)
        outcome, more = custody_outcome(result, ended, step.sig)
        problems += more + [f"temp file left: {p}" for p in files_below(tmp)]
        campaign.add(f"{outcome} ({step.label})", problems, str(step))
    assert verifies(container, age_key, signing_key) == []
    return campaign


def test_custody_add_signalled_holding_the_lock_or_around_its_write_keeps_a_whole_chain(
    custody_bundle: Path,
    custody_normal: Normal,
    signing_key: SigningKey,
    age_key: AgeKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    """SIGKILL with the lock held, just before the one write and just after it; SIGINT
    between the write and its fsync."""
    flock, write, _fsync = custody_normal.calls
    steps = [
        Step(flock, 0, "after", signal.SIGKILL),
        Step(write, 0, "before", signal.SIGKILL),
        Step(write, 0, "after", signal.SIGKILL),
        Step(write, 0, "after", signal.SIGINT),
    ]
    campaign = custody_step_campaign(steps, tmp_path, custody_bundle, signing_key, age_key)
    campaign.record(figures, note=STEPS_NOTE)
    campaign.assert_held()
    assert campaign.outcomes == [
        "killed, not appended (after flock)",
        "killed, not appended (before write)",
        "killed, appended (after write)",
        "interrupted, not appended (after write)",
    ]


@pytest.mark.slow
def test_custody_add_signalled_at_each_append_step_keeps_a_whole_chain(
    custody_bundle: Path,
    custody_normal: Normal,
    signing_key: SigningKey,
    age_key: AgeKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    steps = every_step(custody_normal.calls, [signal.SIGKILL, signal.SIGINT])
    campaign = custody_step_campaign(steps, tmp_path, custody_bundle, signing_key, age_key)
    campaign.record(figures, note=STEPS_NOTE)
    campaign.assert_held()


# ---------------------------------------------------------------------------- extract


@dataclass(frozen=True)
class Sealed:
    """A bundle of a seized folder, its file digests, and a normal extraction of it."""

    seized: Seized
    container: Path
    digests: dict[bytes, str]  # sha256 of every file item, by path
    normal: Normal


def extract_args(
    container: Path, dest: Path, age_key: AgeKey, signing_key: SigningKey
) -> list[str]:
    return [
        "extract", str(container), "--out", str(dest), "--identity", str(age_key.identity_file),
        "--trust", str(signing_key.public_pem), "-q",
    ]  # fmt: skip


def seal_for_extraction(
    seized: Seized, age_key: AgeKey, signing_key: SigningKey, folder: Path
) -> Sealed:
    container = folder / "bundle" / "b.zip"
    container.parent.mkdir()
    acquire(
        AcquireRequest(
            sources=[seized.root],
            output=container,
            case=CASE,
            recipients=[pyrage.x25519.Recipient.from_str(age_key.recipient)],
            signing_key=signing_key.key,
        )
    )
    manifest, _raw = read_manifest(container, age_key)
    digests = {
        path: item.digests["sha256"]
        for path, item in items_by_path(manifest).items()
        if item.kind == "file"
    }
    run = folder / "normal"
    (run / "tmp").mkdir(parents=True)
    args = extract_args(container, run / "dest", age_key, signing_key)
    normal = normal_run(EXTRACT_CALLS, args, run, run / "tmp", exists(run / "dest"))
    sealed = Sealed(seized, container, digests, normal)
    assert judge_extract(sealed, run, run / "dest", None, None) == ("complete", [])
    return sealed


@pytest.fixture(scope="module")
def sealed(
    seized: Seized,
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Sealed:
    return seal_for_extraction(seized, age_key, signing_key, tmp_path_factory.mktemp("crash-x"))


@pytest.fixture(scope="module")
def small_sealed(
    small_seized: Seized,
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Sealed:
    folder = tmp_path_factory.mktemp("crash-x-small")
    return seal_for_extraction(small_seized, age_key, signing_key, folder)


def judge_extract(
    sealed: Sealed, folder: Path, dest: Path, ended: Ended | None, sig: int | None
) -> tuple[str, list[str]]:
    """Every file under a final name has its manifest digest; no temp file is left but
    after SIGKILL; no plaintext outside the destination; the bundle unchanged. SIGINT
    and SIGTERM: exit 130, or, once every file was written, FINISHED_ANYWAY."""
    problems: list[str] = []
    finals, temps = 0, []
    for path in files_below(dest) if dest.exists() else []:
        if EXTRACT_TEMP.match(path.name):
            temps.append(path)
        elif not path.is_dir() or path.is_symlink():
            expected = sealed.digests.get(os.fsencode(path.relative_to(dest)))
            if expected is None:
                problems.append(f"a file no item names: {path}")
            elif sha256_file(path) != expected:
                problems.append(f"incomplete or wrong file under its final name: {path}")
            else:
                finals += 1
    if finals == len(sealed.digests):
        outcome = "complete"
    elif finals:
        outcome = "some files, each complete and verified"
    else:
        outcome = "no file written" if dest.exists() else "destination not created"
    if temps:
        outcome += ", .partial left"
    if ended is not None and not ended.signalled:
        outcome = "finished before the signal"
        if ended.returncode != 0:
            problems.append(f"exit {ended.returncode}: {ended.stderr[-300:]}")
    elif ended is not None:
        allowed = {-signal.SIGKILL} if sig == signal.SIGKILL else {130}
        if sig != signal.SIGKILL and outcome == "complete":
            allowed |= FINISHED_ANYWAY
        if ended.returncode not in allowed:
            problems.append(f"exit {ended.returncode} after {sig}: {ended.stderr[-300:]}")
    if ended is None or ended.returncode != -signal.SIGKILL:
        problems += [f"temp file left without SIGKILL: {p}" for p in temps]
    if ended is not None and "Traceback" in ended.stderr:
        problems.append("a traceback: " + ended.stderr[-400:])
    problems += [f"temp file left in TMPDIR: {p}" for p in files_below(folder / "tmp")]
    seized = sealed.seized
    hits = marker_hits([folder, seized.root.parent], seized.marker, exclude=[dest, seized.root])
    problems += [f"plaintext marker outside the destination: {p}" for p in hits]
    acquired = read_custody_log(custody_log_path(sealed.container)).events[0]
    if sha256_file(sealed.container) != acquired.container_sha256:
        problems.append("the container changed")
    if ended is not None and ended.hung:
        return "hung after the signal", problems + ended.hang()
    return outcome, problems


def extract_campaign(
    name: str,
    sig: int,
    moments: Sequence[Moment],
    base: Path,
    sealed: Sealed,
    age_key: AgeKey,
    signing_key: SigningKey,
) -> Campaign:
    """The work begins when the destination folder appears."""
    campaign = Campaign(name)
    for number, moment in enumerate(moments):
        folder = base / f"run-{number:03d}"
        (folder / "tmp").mkdir(parents=True)
        dest = folder / "dest"
        argv = [*CLI, *extract_args(sealed.container, dest, age_key, signing_key)]
        ended = run_and_signal(argv, folder, folder / "tmp", sig, moment, begun=exists(dest))
        outcome, problems = judge_extract(sealed, folder, dest, ended, sig)
        campaign.add(outcome, problems, f"{signal.Signals(sig).name} {moment}")
        shutil.rmtree(folder)
    return campaign


def extract_step_campaign(
    steps: Sequence[Step],
    base: Path,
    sealed: Sealed,
    age_key: AgeKey,
    signing_key: SigningKey,
    name: str = EXTRACT_STEPS,
) -> Campaign:
    campaign = Campaign(name)
    for number, step in enumerate(steps):
        folder = base / f"step-{number:03d}"
        (folder / "tmp").mkdir(parents=True)
        dest = folder / "dest"
        args = extract_args(sealed.container, dest, age_key, signing_key)
        ended = run_and_signal(launcher_argv(EXTRACT_CALLS, args, step), folder, folder / "tmp")
        ended.signalled = True
        outcome, problems = judge_extract(sealed, folder, dest, ended, step.sig)
        campaign.add(f"{outcome} ({step.label})", problems, str(step))
        shutil.rmtree(folder)
    return campaign


def test_extract_killed_or_interrupted_mid_run_leaves_only_verified_files(
    small_sealed: Sealed,
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    """SIGKILL and SIGINT halfway through the writing."""
    moments = fixed_moments(small_sealed.normal, [0.5])
    killed = extract_campaign(
        EXTRACT_SIGKILL, signal.SIGKILL, moments, tmp_path / "kill", small_sealed, age_key,
        signing_key,
    )  # fmt: skip
    interrupted = extract_campaign(
        EXTRACT_SIGINT, signal.SIGINT, moments, tmp_path / "int", small_sealed, age_key,
        signing_key,
    )  # fmt: skip
    killed.record(figures, note=EXTRACT_NOTE)
    interrupted.record(figures, note=EXTRACT_NOTE)
    killed.assert_held()
    interrupted.assert_held()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "count"), [(signal.SIGKILL, 20), (signal.SIGINT, 10)], ids=["SIGKILL", "SIGINT"]
)
def test_extract_signalled_at_random_moments_leaves_only_verified_files(
    sig: int,
    count: int,
    sealed: Sealed,
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    rng = random.Random(f"{SEED}-extract-{sig}")
    early = 0.15 if sig == signal.SIGKILL else 0.0
    moments = random_moments(rng, count, sealed.normal, early=early)
    name = EXTRACT_SIGKILL if sig == signal.SIGKILL else EXTRACT_SIGINT
    campaign = extract_campaign(name, sig, moments, tmp_path, sealed, age_key, signing_key)
    campaign.record(figures, note=EXTRACT_NOTE)
    campaign.assert_held()


def file_steps(sealed: Sealed, occurrence: int, sigs: Sequence[int]) -> list[Step]:
    """Before and after one file's fsync, link (temp to final name) and unlink (temp)."""
    calls = ["fsync .evidence-kit-*.partial", "link .evidence-kit-*.partial",
             "unlink .evidence-kit-*.partial"]  # fmt: skip
    for call in calls:
        assert sealed.normal.calls.count(call) == len(sealed.digests), sealed.normal.calls
    if occurrence < 0:
        occurrence += len(sealed.digests)
    return [
        Step(call, occurrence, when, sig)
        for call in calls
        for when in ("before", "after")
        for sig in sigs
    ]


def test_extract_signalled_between_link_and_unlink_leaves_only_verified_files(
    small_sealed: Sealed,
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    """The fourth file is at its final name and its temp name still there: SIGKILL
    leaves both (the same bytes); SIGINT removes the temp name."""
    steps = [
        Step("link .evidence-kit-*.partial", 3, "after", signal.SIGKILL),
        Step("unlink .evidence-kit-*.partial", 3, "before", signal.SIGINT),
    ]
    campaign = extract_step_campaign(steps, tmp_path, small_sealed, age_key, signing_key)
    campaign.record(figures, note=STEPS_NOTE)
    campaign.assert_held()
    assert campaign.outcomes == [
        "some files, each complete and verified, .partial left (after link)",
        "some files, each complete and verified (before unlink)",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("occurrence", [3, -1], ids=["fourth", "last"])
def test_extract_signalled_at_each_commit_step_of_a_file(
    occurrence: int,
    small_sealed: Sealed,
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path: Path,
    figures: Figures,
) -> None:
    """SIGKILL and SIGINT before and after the file's fsync, link and unlink."""
    steps = file_steps(small_sealed, occurrence, [signal.SIGKILL, signal.SIGINT])
    campaign = extract_step_campaign(steps, tmp_path, small_sealed, age_key, signing_key)
    campaign.record(figures, note=STEPS_NOTE)
    campaign.assert_held()


def test_extract_terminated_leaves_no_partial_file(
    small_sealed: Sealed, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path
) -> None:
    """SIGTERM just after a file's data was fsynced under its temp name."""
    step = Step("fsync .evidence-kit-*.partial", 3, "after", signal.SIGTERM)
    campaign = extract_step_campaign(
        [step], tmp_path, small_sealed, age_key, signing_key, name="extract SIGTERM"
    )
    campaign.assert_held()


def test_extract_interrupted_does_not_claim_it_left_nothing(
    small_sealed: Sealed, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path
) -> None:
    """SIGINT just before the fourth file is linked: three files are in place."""
    (tmp_path / "tmp").mkdir()
    dest = tmp_path / "dest"
    step = Step("link .evidence-kit-*.partial", 3, "before", signal.SIGINT)
    args = extract_args(small_sealed.container, dest, age_key, signing_key)
    ended = run_and_signal(launcher_argv(EXTRACT_CALLS, args, step), tmp_path, tmp_path / "tmp")
    ended.signalled = True
    outcome, problems = judge_extract(small_sealed, tmp_path, dest, ended, signal.SIGINT)
    assert (outcome, problems) == ("some files, each complete and verified", [])
    assert INTERRUPTED not in ended.stderr
