"""``lab verify-all``: every bundle under a folder, in parallel, each with a clear verdict."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pyrage
import pytest

from evidence_kit.schemas import path_of
from tests.conftest import AgeKey, Bundle
from tests.lab.conftest import flip_byte


@pytest.fixture
def shelf(
    bundles_of: Callable[..., dict[str, Bundle]], other_age_key: AgeKey, tmp_path: Path
) -> Path:
    """An evidence store as found: good bundles (one in a sub-folder), a tampered one, one
    for another lab's key, a custody log whose container is gone, a zip that is not a
    bundle, and a report, a note and a hash list beside them."""
    store = tmp_path / "store"
    (store / "2026-11" / "station-3").mkdir(parents=True)
    bundles = bundles_of()
    elsewhere = bundles_of(
        "scam",
        prefix="other-",
        recipients=[pyrage.x25519.Recipient.from_str(other_age_key.recipient)],
    )["scam"]

    def place(bundle: Bundle, folder: Path, name: str) -> Path:
        shutil.copy2(bundle.container, folder / f"{name}.zip")
        shutil.copy2(bundle.custody_log, folder / f"{name}.custody.jsonl")
        return folder / f"{name}.zip"

    place(bundles["seller"], store, "seller")
    place(bundles["buyer"], store / "2026-11" / "station-3", "buyer")
    flip_byte(place(bundles["scam"], store, "tampered"))
    place(elsewhere, store, "other-lab")
    orphan = place(bundles["seller"], store, "lost")
    orphan.unlink()
    with zipfile.ZipFile(store / "photos.zip", "w") as other:
        other.writestr("IMG_0001.jpg", b"\xff\xd8\xff\xe0 not really")
    (store / "report.html").write_text("<html></html>")
    (store / "2026-11" / "notes.txt").write_text("shelf 4\n")
    return store


def verify_all(cli: Callable[..., Any], *args: str | Path) -> tuple[int, dict[str, Any]]:
    result = cli("lab", "verify-all", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_every_bundle_gets_its_verdict_and_one_failure_fails_the_run(
    cli: Callable[..., Any], shelf: Path, age_key: AgeKey, jobs: str
) -> None:
    code, report = verify_all(cli, shelf, "-i", age_key.identity_file, "--jobs", jobs)
    assert code == 1
    verdicts = {Path(b["path"]).name: b["verdict"] for b in report["bundles"]}
    assert verdicts == {
        "seller.zip": "verified",
        "buyer.zip": "verified",
        "tampered.zip": "failed",
        "other-lab.zip": "no-key",
        "lost.custody.jsonl": "failed",
        "photos.zip": "not-a-bundle",
    }
    counts = report["counts"]
    assert (counts["verified"], counts["failed"], counts["no_key"], counts["not_a_bundle"]) == (
        2, 2, 1, 1,
    )  # fmt: skip
    assert report["other_files"] == 2 and report["jobs"] == int(jobs)
    by_name = {Path(b["path"]).name: b for b in report["bundles"]}
    assert "custody-container-hash-mismatch" in by_name["tampered.zip"]["reasons"]
    assert by_name["lost.custody.jsonl"]["reasons"] == ["container-missing"]
    assert "no key slot" in by_name["other-lab.zip"]["message"]
    assert by_name["other-lab.zip"]["case_number"] == "FS-2026-0090"
    assert by_name["other-lab.zip"]["case_from"] == "custody-log"
    assert by_name["seller.zip"]["items"] == 4 and by_name["seller.zip"]["case_from"] == "manifest"
    assert by_name["seller.zip"]["report"]["verdict"] == "verified"
    assert report["bundles_per_second"] > 0 and report["container_bytes"] > 0
    jsonschema.validate(report, json.loads(path_of("lab-verify-all").read_text()))


def test_the_summary_table_puts_failures_first_and_reports_throughput(
    cli: Callable[..., Any], shelf: Path, age_key: AgeKey
) -> None:
    result = cli("lab", "verify-all", shelf, "-i", age_key.identity_file)
    assert result.exit_code == 1 and result.stdout == ""
    verdicts = ("failed", "no-key", "not-a-bundle", "verified")
    table = [line.split()[0] for line in result.stderr.splitlines()
             if line.split() and line.split()[0] in verdicts]  # fmt: skip
    assert table == ["failed", "failed", "no-key", "not-a-bundle", "verified", "verified"]
    assert f"in {shelf}:" in result.stderr and f"{shelf}/2026-11" not in result.stderr
    assert "5 bundles: 2 verified, 2 failed, 1 without a usable key" in result.stderr
    assert "1 zip files that are not bundles" in result.stderr
    assert "bundles/s" in result.stderr and "MiB/s" in result.stderr
    assert "2 other files under the folder are not bundles" in result.stderr


def test_all_verified_exits_0_and_only_missing_keys_exit_4(
    cli: Callable[..., Any],
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    other_age_key: AgeKey,
    tmp_path: Path,
) -> None:
    bundles = bundles_of()
    folder = bundles["seller"].container.parent
    code, report = verify_all(cli, folder, "-i", age_key.identity_file, "-j", "2")
    assert code == 0 and report["counts"]["verified"] == 3
    code, report = verify_all(cli, folder, "-i", other_age_key.identity_file)
    assert code == 4 and report["counts"]["no_key"] == 3
    # Without any key: the containers and their custody are checked, contents are not.
    code, report = verify_all(cli, folder)
    assert code == 0 and report["counts"]["intact"] == 3


def test_a_folder_without_bundles_or_no_folder_is_a_usage_error(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("nothing here\n")
    for target in (tmp_path / "empty", tmp_path / "missing", tmp_path / "empty" / "readme.txt"):
        result = cli("lab", "verify-all", target)
        assert result.exit_code == 2, target
        assert "Traceback" not in result.stderr
    assert cli("lab", "verify-all", tmp_path / "empty", "--jobs", "0").exit_code == 2


def test_an_unreadable_sub_folder_is_reported_not_skipped_silently(
    bundles_of: Callable[..., dict[str, Bundle]], age_key: AgeKey
) -> None:
    """A real EACCES: the command runs as the user nobody over a folder it cannot list."""
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv (util-linux) to run as the user nobody")
    seller = bundles_of("seller")["seller"]
    world = Path(tempfile.mkdtemp(prefix="ek-lab-", dir="/tmp"))
    try:
        world.chmod(0o755)
        store = world / "store"
        (store / "locked").mkdir(parents=True)
        for path in (seller.container, seller.custody_log, age_key.identity_file):
            shutil.copy(path, store if path != age_key.identity_file else world)
        for path in (store, *store.iterdir(), world / age_key.identity_file.name):
            path.chmod(0o755 if path.is_dir() else 0o644)
        (store / "locked").chmod(0o000)
        run = subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
             "-m", "evidence_kit", "lab", "verify-all", str(store), "-i",
             str(world / age_key.identity_file.name), "--json"],
            capture_output=True, text=True, check=False, timeout=300, cwd=world,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(world)},
        )  # fmt: skip
    finally:
        shutil.rmtree(world, ignore_errors=True)
    assert "Traceback" not in run.stderr, run.stderr
    report = json.loads(run.stdout)
    verdicts = {Path(b["path"]).name: b["verdict"] for b in report["bundles"]}
    assert verdicts == {"seller.zip": "verified", "locked": "unreadable"}
    assert run.returncode == 5


def test_the_installed_command_verifies_in_worker_processes(
    bundles_of: Callable[..., dict[str, Bundle]], age_key: AgeKey
) -> None:
    bundles = bundles_of()
    tool = Path(sys.executable).with_name("evidence-kit")
    run = subprocess.run(
        [str(tool), "lab", "verify-all", str(bundles["seller"].container.parent), "--jobs", "2",
         "-i", str(age_key.identity_file)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "3 bundles: 3 verified, 0 failed" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_person_at_a_terminal_sees_a_progress_bar_over_bundles(
    bundles_of: Callable[..., dict[str, Bundle]], age_key: AgeKey
) -> None:
    bundles = bundles_of()
    master, slave = pty.openpty()
    # A terminal 100 columns wide (a new pseudo-terminal has none: tqdm would draw nothing)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "evidence_kit", "lab", "verify-all",
         str(bundles["seller"].container.parent), "-i", str(age_key.identity_file)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert process.wait(timeout=120) == 0
    text = seen.decode(errors="replace")
    assert "verifying:" in text and "0/3" in text and "bundle/s" in text  # a bar over bundles
    quiet = subprocess.run(
        [sys.executable, "-m", "evidence_kit", "lab", "verify-all",
         str(bundles["seller"].container.parent), "-i", str(age_key.identity_file)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "0/3" not in quiet.stderr  # not a terminal: no bar
