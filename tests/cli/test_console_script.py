"""The installed console script works end to end as a real process: acquire, verify, inspect
and extract the sample case with a passphrase file, exit codes as documented, no traceback,
the typed command line recorded without the passphrase; ``python -m evidence_kit`` runs too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, SAMPLE_CASES

SCRIPT = Path(sys.executable).with_name("evidence-kit")
SEIZED = SAMPLE_CASES / "leak-shop" / "seized"
CASE_TOML = SAMPLE_CASES / "leak-shop" / "case.toml"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "EVIDENCE_KIT_PASSPHRASE"}
    done = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert "Traceback" not in done.stdout, done.stdout
    assert PASSPHRASE not in done.stdout + done.stderr
    return done


def test_the_console_script_acquires_verifies_inspects_and_extracts_the_sample_case(
    tmp_path: Path, passphrase_file: Path
) -> None:
    if not SCRIPT.is_file():
        pytest.skip(f"the console script is not installed next to {sys.executable}")
    container = tmp_path / "leak-shop.zip"
    acquire_args = [
        "acquire", str(SEIZED), "--out", str(container), "--case-file", str(CASE_TOML),
        "--passphrase-file", str(passphrase_file), "--unattended",
    ]  # fmt: skip
    acquired = run(SCRIPT, *acquire_args)
    assert acquired.returncode == 0, acquired.stderr
    assert "Sealed." in acquired.stderr

    verified = run(SCRIPT, "verify", container, "--passphrase-file", passphrase_file, "--quiet")
    assert verified.returncode == 0, verified.stderr
    assert "VERIFIED: 6 items" in " ".join(verified.stderr.split())

    inspected = run(SCRIPT, "inspect", container, "--passphrase-file", passphrase_file, "--json")
    assert inspected.returncode == 0, inspected.stderr
    document = json.loads(inspected.stdout)
    assert document["kind"] == "evidence-kit/inspect-result"
    assert document["case"]["case_number"] == "EK-2026-0042"
    assert document["provenance"]["command_line"] == ["evidence-kit", *acquire_args]
    assert len(document["items"]) == 13

    destination = tmp_path / "extracted"
    extracted = run(
        SCRIPT, "extract", container, "--out", destination, "--passphrase-file", passphrase_file
    )
    assert extracted.returncode == 0, extracted.stderr
    for original in SEIZED.rglob("*"):
        copy = destination / "seized" / original.relative_to(SEIZED)
        if original.is_file():
            assert copy.read_bytes() == original.read_bytes(), original
        else:
            assert copy.is_dir(), original


def test_python_dash_m_evidence_kit_prints_the_version() -> None:
    done = run(sys.executable, "-m", "evidence_kit", "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == "evidence-kit 0.1.0"
