"""Ctrl-C during ``lab ingest --jobs 2`` and ``lab verify-all --jobs 2``, at random
moments: Ctrl-C from a terminal reaches the whole process group, workers included.

Every other run Ctrl-C is pressed 25 times, 20 ms apart. After every run: no traceback;
the command ends with 0 if it had finished, or 130 and one message saying what the
interruption left; no process of its group is left; the register passes SQLite's
integrity check, and is empty if stopped before its schema committed; every bundle whose
custody log got a 'received' event is registered with that event, and no other; every
registered bundle has all its items indexed.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyrage
import pytest

from evidence_kit.acquire import AcquireRequest, acquire
from tests.conftest import AgeKey, SigningKey
from tests.lab.conftest import case_info

BUNDLES = 24
FILES_PER_BUNDLE = 3  # items: the folder and its files
SEED = 20261129


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, age_key: AgeKey) -> Path:
    root = tmp_path_factory.mktemp("lab-store")
    rng = random.Random(SEED)
    (root / "store").mkdir()
    for index in range(BUNDLES):
        source = root / "sources" / f"s{index:02d}"
        source.mkdir(parents=True)
        for name in range(FILES_PER_BUNDLE):
            (source / f"f{name}.bin").write_bytes(rng.randbytes(rng.randint(1, 30_000)))
        acquire(
            AcquireRequest(
                sources=[source],
                output=root / "store" / f"b{index:02d}.zip",
                case=case_info(f"CASE-{index % 4}", f"E-{index}"),
                recipients=[pyrage.x25519.Recipient.from_str(age_key.recipient)],
            )
        )
    return root / "store"


def group_left(pgid: int) -> list[int]:
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    left.append(int(entry))
            except ProcessLookupError:
                pass
    return left


def interrupt(command: list[str], delay: float, presses: int) -> tuple[int, str]:
    """Ctrl-C to the process group after ``delay``, pressed ``presses`` times 20 ms apart."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)  # fmt: skip
    time.sleep(delay)
    for _press in range(presses):
        with contextlib.suppress(ProcessLookupError):  # it had finished
            os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.02)
    _out, err = process.communicate(timeout=120)
    deadline = time.monotonic() + 10
    while group_left(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_left(process.pid) == [], "processes of the interrupted run are left"
    return process.returncode, err.decode(errors="replace")


def check_register(work: Path, register: Path) -> int:
    received = set()
    for log in work.glob("*.custody.jsonl"):
        actions = [json.loads(line)["action"] for line in log.read_text().splitlines()]
        assert actions in (["acquired"], ["acquired", "received"]), actions
        if actions[-1] == "received":
            received.add(log.name.removesuffix(".custody.jsonl") + ".zip")
    if not register.exists():
        assert received == set()
        return 0
    with sqlite3.connect(register) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        if db.execute("PRAGMA user_version").fetchone()[0] == 0:
            # Stopped after creating the file, before the schema committed: an empty
            # register, which the next lab ingest takes up.
            assert db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
            assert received == set()
            return 0
        rows = db.execute("SELECT id, last_path, received_seq, status FROM bundles").fetchall()
        assert {Path(path).name for _id, path, seq, _s in rows if seq == 1} == received
        assert all(status == "verified" for *_rest, status in rows)
        for row_id, *_rest in rows:
            items = db.execute("SELECT COUNT(*) FROM items WHERE bundle = ?", (row_id,))
            assert items.fetchone()[0] == FILES_PER_BUNDLE + 1
    return len(rows)


def run_campaign(
    store: Path, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path, runs: int, seed: int
) -> dict[str, int]:
    rng = random.Random(seed)
    outcomes = {"finished": 0, "interrupted": 0, "registered some": 0}
    for run in range(runs):
        work = tmp_path / f"run{run}"
        shutil.copytree(store, work)
        register = work / "register.sqlite"
        lab = [sys.executable, "-m", "evidence_kit", "lab"]
        if run % 3 == 2:
            command = [*lab, "verify-all", str(work), "-i", str(age_key.identity_file), "-j", "2"]
        else:
            command = [*lab, "ingest", *sorted(map(str, work.glob("*.zip"))), "-i",
                       str(age_key.identity_file), "-j", "2", "--register", str(register),
                       "--sign", str(signing_key.private_pem), "--actor", "Lab 7"]  # fmt: skip
        code, err = interrupt(command, rng.uniform(0.2, 4.0), presses=1 if run % 2 else 25)
        assert "Traceback" not in err, err
        assert code in (0, 130), (code, err)
        said = [line for line in err.splitlines() if line.startswith("interrupted")]
        assert len(said) == (code == 130), err
        outcomes["finished" if code == 0 else "interrupted"] += 1
        registered = check_register(work, register)
        if 0 < registered < BUNDLES:
            outcomes["registered some"] += 1
        shutil.rmtree(work)
    return outcomes


def test_ctrl_c_at_random_moments_leaves_no_traceback_no_worker_and_a_whole_register(
    store: Path, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path
) -> None:
    outcomes = run_campaign(store, age_key, signing_key, tmp_path, runs=6, seed=SEED)
    assert outcomes["interrupted"] >= 1


@pytest.mark.slow
def test_ctrl_c_at_random_moments_long(
    store: Path, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path
) -> None:
    outcomes = run_campaign(store, age_key, signing_key, tmp_path, runs=60, seed=SEED + 1)
    assert outcomes["interrupted"] >= 10 and outcomes["registered some"] >= 1, outcomes


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_parent_alone_stopped_leaves_no_worker_behind(
    store: Path, age_key: AgeKey, tmp_path: Path, stop: signal.Signals
) -> None:
    """``kill PID`` (SIGTERM) stops the command as Ctrl-C does, workers included; after
    SIGKILL, which nothing can catch, the workers notice their parent is gone and leave."""
    work = tmp_path / "work"
    shutil.copytree(store, work)
    for _round in range(15):  # many more bundles (384): the run outlasts the signal
        for container in list(work.glob("b*.zip")):
            for suffix in (".zip", ".custody.jsonl"):
                source = container.with_suffix(suffix) if suffix == ".zip" else \
                    container.with_name(container.stem + suffix)  # fmt: skip
                shutil.copy(source, source.with_name(f"r{_round}{source.name}"))
    process = subprocess.Popen(
        [sys.executable, "-m", "evidence_kit", "lab", "verify-all", str(work), "-i",
         str(age_key.identity_file), "-j", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while len(group_left(process.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # the parent, its worker and the resource tracker
    assert len(group_left(process.pid)) >= 3
    process.send_signal(stop)
    _out, err = process.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while group_left(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_left(process.pid) == []
    assert "Traceback" not in err.decode(errors="replace")
    if stop == signal.SIGTERM:
        assert process.returncode == 130
        assert "interrupted: verification stopped" in err.decode()
