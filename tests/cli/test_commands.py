"""The command surface keeps its promises (DESIGN.md section 4): every command, through the real
Typer app in-process, gives the documented exit code, never a traceback, exactly one JSON
document with ``--json``, secrets nowhere, and hostile evidence names only in escaped form.

Disk-full and read-only outputs are real: a small tmpfs is mounted for them (the tests run as
root); they are skipped, visibly, where mounting is not allowed.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evidence_kit import acquire as acquire_module
from evidence_kit import keys
from evidence_kit.cli.app import app
from evidence_kit.keys import KeyMaterial
from evidence_kit.models import CustodyEvent, Manifest
from evidence_kit.naming import display_name
from evidence_kit.sources import filesystem
from tests.conftest import (
    CASE,
    CASE_ARGS,
    PASSPHRASE,
    SAMPLE_CASES,
    AgeKey,
    MakeBundle,
    SigningKey,
    read_manifest,
)

Cli = Callable[..., Any]
SEIZED = SAMPLE_CASES / "leak-shop" / "seized"
CASE_TOML = SAMPLE_CASES / "leak-shop" / "case.toml"
CASE_OPTIONS = (
    *CASE_ARGS,
    "--description", CASE.description,
    "--location", CASE.location,
    "--notes", "seized at 14:05",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _no_passphrase_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVIDENCE_KIT_PASSPHRASE", raising=False)


# --------------------------------------------------------------------------- helpers


def run(cli: Cli, *args: str | Path, env: dict[str, str] | None = None) -> Any:
    """Invoke the app; no run, however it ends, may print a Python traceback."""
    result = cli(*args, env=env)
    assert "Traceback" not in result.stdout, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return result


def acquire_args(source: Path, out: Path, *extra: str | Path) -> list[str | Path]:
    return ["acquire", source, "--out", out, *CASE_OPTIONS, "--unattended", "--quiet", *extra]


def custody_event_0(container: Path) -> CustodyEvent:
    line = container.with_suffix(".custody.jsonl").read_bytes().splitlines()[0]
    return CustodyEvent.model_validate_json(line)


def one_json_document(result: Any) -> Any:
    """stdout holds exactly one JSON document (json.loads refuses anything after it)."""
    document = json.loads(result.stdout)
    assert document["schema_version"] == 1
    return document


def table_column(output: str, first: str, column: str) -> list[str]:
    """The cells of ``column`` in the Rich table whose header starts with ``first``,
    with cells folded over several lines joined back together."""
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == [first])
    start = lines[header].rindex(column)
    first_end = lines[header].index(first) + len(first)
    cells: list[str] = []
    for line in lines[header + 1 :]:
        if line[:first_end].strip():
            cells.append("")
        if cells:
            cells[-1] += line[start:].rstrip()
    return cells


def leftovers(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A real, small tmpfs at ``path`` for the duration (root only); skip if not allowed."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small or read-only file system")
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


@dataclass(frozen=True)
class PassphraseRun:
    """One CLI acquisition of the sample case with ``--passphrase-file`` (scrypt is slow)."""

    container: Path
    custody_log: Path
    result: Any
    argv: list[str]


@pytest.fixture(scope="module")
def passphrase_run(
    tmp_path_factory: pytest.TempPathFactory, passphrase_file: Path
) -> PassphraseRun:
    folder = tmp_path_factory.mktemp("passphrase-run")
    container = folder / "leak-shop.zip"
    argv = [str(a) for a in acquire_args(SEIZED, container, "--passphrase-file", passphrase_file)]
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("EVIDENCE_KIT_PASSPHRASE", raising=False)
        result = CliRunner().invoke(app, argv, catch_exceptions=False)
    assert "Traceback" not in result.stdout + result.stderr
    return PassphraseRun(container, folder / "leak-shop.custody.jsonl", result, argv)


@pytest.fixture(scope="module")
def passphrase_manifest(passphrase_run: PassphraseRun) -> tuple[Manifest, bytes]:
    return read_manifest(passphrase_run.container, KeyMaterial(passphrase=PASSPHRASE))


# ---------------------------------------------------------------------------- acquire


def test_acquire_with_every_field_given_seals_an_owner_only_bundle(
    passphrase_run: PassphraseRun,
) -> None:
    result = passphrase_run.result
    assert result.exit_code == 0, result.stderr
    for path in (passphrase_run.container, passphrase_run.custody_log):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    first = custody_event_0(passphrase_run.container)
    assert first.bundle_id in result.stderr
    assert first.container_sha256[:40] in result.stderr
    assert "Sealed." in result.stderr
    assert result.stdout == ""


def test_acquire_records_every_case_field_given_as_options(
    passphrase_manifest: tuple[Manifest, bytes],
) -> None:
    manifest, _bytes = passphrase_manifest
    assert manifest.case.model_dump() == {**CASE.model_dump(), "notes": "seized at 14:05"}


def test_acquire_summary_shows_the_whole_receipt(
    cli: Cli, small_tree: Path, tmp_path: Path, age_key: AgeKey, signing_key: SigningKey
) -> None:
    """Bundle and log paths, bundle id, container SHA-256 and signer, each whole on stderr."""
    out = tmp_path / "evidence-room-2" / "case-GZ-2026-0117" / "exhibit-E-03"
    out.mkdir(parents=True)
    container = out / "laptop-D-drive-of-the-suspect.zip"
    args = acquire_args(small_tree, container, "--recipient", age_key.recipient)
    result = run(cli, *args, "--sign", signing_key.private_pem)
    assert result.exit_code == 0, result.stderr
    first = custody_event_0(container)
    assert str(container) in result.stderr
    assert str(container.with_suffix(".custody.jsonl")) in result.stderr
    assert first.bundle_id in result.stderr
    assert first.container_sha256 in result.stderr
    assert keys.fingerprint(signing_key.key.public_key()) in result.stderr


def test_acquire_json_prints_exactly_one_document_and_nothing_else(
    cli: Cli, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    container = tmp_path / "b.zip"
    args = acquire_args(small_tree, container, "--recipient", age_key.recipient, "--json")
    result = run(cli, *args)
    assert result.exit_code == 0, result.stderr
    document = one_json_document(result)
    assert document["kind"] == "evidence-kit/acquire-result"
    assert document["container_sha256"] == hashlib.sha256(container.read_bytes()).hexdigest()
    assert document["bundle_id"] == custody_event_0(container).bundle_id
    assert document["complete"] is True
    assert document["summary"]["files"] == 4


def test_acquire_takes_case_fields_from_a_case_file(
    cli: Cli, tmp_path: Path, age_key: AgeKey
) -> None:
    container = tmp_path / "leak-shop.zip"
    result = run(
        cli, "acquire", SEIZED, "--out", container, "--case-file", CASE_TOML,
        "--recipient", age_key.recipient, "--unattended", "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    manifest, _bytes = read_manifest(container, age_key.material)
    assert manifest.case.case_number == "EK-2026-0042"
    assert manifest.case.evidence_number == "EK-2026-0042-E01"
    assert manifest.case.examiner == "Lin Xiaoyu"
    assert manifest.case.location == "Evidence room 2, Example City cybercrime unit (fictional)"
    assert manifest.case.notes.endswith("All records are invented sample data.")
    assert manifest.summary.files == 6
    first = custody_event_0(container)
    assert (first.case_number, first.evidence_number) == ("EK-2026-0042", "EK-2026-0042-E01")


def test_options_override_the_case_file(cli: Cli, tmp_path: Path, age_key: AgeKey) -> None:
    container = tmp_path / "leak-shop.zip"
    result = run(
        cli, "acquire", SEIZED, "--out", container, "--case-file", CASE_TOML,
        "--examiner", "Officer Wang Fang", "--evidence-number", "E-99",
        "--recipient", age_key.recipient, "--unattended", "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    manifest, _bytes = read_manifest(container, age_key.material)
    assert manifest.case.examiner == "Officer Wang Fang"
    assert manifest.case.evidence_number == "E-99"
    assert manifest.case.case_number == "EK-2026-0042"  # still from the file


def test_unattended_acquire_missing_required_fields_exits_2_naming_them(
    cli: Cli, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    container = tmp_path / "b.zip"
    result = run(
        cli, "acquire", small_tree, "--out", container, "--case-number", "C-1",
        "--recipient", age_key.recipient, "--unattended",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "missing case fields" in result.stderr
    assert "--evidence-number" in result.stderr
    assert "--examiner" in result.stderr
    assert "--case-number" not in result.stderr.split("missing case fields")[1].splitlines()[0]
    assert leftovers(tmp_path) == sorted(["seized"])


def test_acquire_without_recipient_or_passphrase_refuses_an_unencrypted_bundle(
    cli: Cli, small_tree: Path, tmp_path: Path
) -> None:
    container = tmp_path / "b.zip"
    result = run(cli, *acquire_args(small_tree, container), env={"EVIDENCE_KIT_PASSPHRASE": ""})
    assert result.exit_code == 2
    assert "refusing to write an unencrypted bundle" in result.stderr
    assert leftovers(tmp_path) == ["seized"]


@pytest.mark.parametrize(
    ("weak", "reason"),
    [
        ("short", "shorter than 12 characters"),
        ("aaaaaaaaaaaaaaaa", "fewer than 6 different characters"),
        ("123456789012345", "well-known or sequential"),
    ],
)
def test_acquire_refuses_a_weak_passphrase_and_says_why(
    weak: str, reason: str, cli: Cli, small_tree: Path, tmp_path: Path
) -> None:
    weak_file = tmp_path / "weak.txt"
    weak_file.write_text(weak + "\n")
    container = tmp_path / "b.zip"
    result = run(cli, *acquire_args(small_tree, container, "--passphrase-file", weak_file))
    assert result.exit_code == 2
    assert "passphrase refused" in result.stderr
    assert reason in result.stderr
    assert not container.exists()


def test_acquire_takes_the_passphrase_from_the_environment(
    cli: Cli, small_tree: Path, tmp_path: Path
) -> None:
    container = tmp_path / "b.zip"
    result = run(
        cli, *acquire_args(small_tree, container), env={"EVIDENCE_KIT_PASSPHRASE": PASSPHRASE}
    )
    assert result.exit_code == 0, result.stderr
    manifest, _bytes = read_manifest(container, KeyMaterial(passphrase=PASSPHRASE))
    assert [slot.kind for slot in manifest.key_slots] == ["scrypt"]


def test_acquire_takes_a_recipient_as_age1_text(
    cli: Cli, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    container = tmp_path / "b.zip"
    result = run(cli, *acquire_args(small_tree, container, "--recipient", age_key.recipient))
    assert result.exit_code == 0, result.stderr
    manifest, _bytes = read_manifest(container, age_key.material)
    assert [(s.kind, s.recipient) for s in manifest.key_slots] == [("x25519", age_key.recipient)]


def test_acquire_takes_recipients_from_a_file(
    cli: Cli, small_tree: Path, tmp_path: Path, age_key: AgeKey, other_age_key: AgeKey
) -> None:
    recipients = tmp_path / "lab-recipients.txt"
    recipients.write_text(f"# lab A\n{age_key.recipient}\n\n# lab B\n{other_age_key.recipient}\n")
    container = tmp_path / "b.zip"
    result = run(cli, *acquire_args(small_tree, container, "--recipient", recipients))
    assert result.exit_code == 0, result.stderr
    for key in (age_key, other_age_key):
        opened = run(cli, "inspect", container, "--identity", key.identity_file, "--json")
        assert opened.exit_code == 0, opened.stderr
        document = one_json_document(opened)
        assert document["decrypted"] is True
        assert document["key_slots"] == ["00-x25519.age", "01-x25519.age"]


def test_acquire_signs_with_an_openssl_made_key(
    cli: Cli, small_tree: Path, tmp_path: Path, age_key: AgeKey, signing_key: SigningKey
) -> None:
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", str(signing_key.public_pem), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    fingerprint = hashlib.sha256(der).hexdigest()
    signed = ("--recipient", age_key.recipient, "--sign", signing_key.private_pem)
    human = run(cli, *acquire_args(small_tree, tmp_path / "human.zip", *signed))
    assert human.exit_code == 0, human.stderr
    assert f"yes, by {fingerprint[:40]}" in " ".join(human.stderr.split())
    machine = run(cli, *acquire_args(small_tree, tmp_path / "machine.zip", *signed, "--json"))
    assert machine.exit_code == 0, machine.stderr
    document = one_json_document(machine)
    assert (document["signed"], document["signer_fingerprint"]) == (True, fingerprint)
    event = custody_event_0(tmp_path / "machine.zip")
    assert event.signature is not None
    assert event.signature.fingerprint == fingerprint


def test_acquire_adds_requested_digests(
    cli: Cli, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    container = tmp_path / "b.zip"
    args = acquire_args(small_tree, container, "--recipient", age_key.recipient)
    result = run(cli, *args, "--hash", "sha1,md5")
    assert result.exit_code == 0, result.stderr
    manifest, _bytes = read_manifest(container, age_key.material)
    assert manifest.hash_algorithms == ["sha256", "sha1", "md5"]
    item = next(i for i in manifest.items if i.path.display == "seized/docs/customers.csv")
    data = (small_tree / "docs" / "customers.csv").read_bytes()
    assert item.digests == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha1": hashlib.sha1(data).hexdigest(),  # noqa: S324 (requested for other tools)
        "md5": hashlib.md5(data).hexdigest(),  # noqa: S324
    }


def test_acquire_refuses_an_unknown_digest_with_exit_2(
    cli: Cli, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    container = tmp_path / "b.zip"
    args = acquire_args(small_tree, container, "--recipient", age_key.recipient)
    result = run(cli, *args, "--hash", "sha3")
    assert result.exit_code == 2
    assert "unknown hash algorithm 'sha3'" in result.stderr
    assert not container.exists()


def test_acquire_of_a_missing_source_exits_2(cli: Cli, tmp_path: Path, age_key: AgeKey) -> None:
    container = tmp_path / "b.zip"
    args = acquire_args(tmp_path / "no-such-drive", container, "--recipient", age_key.recipient)
    result = run(cli, *args)
    assert result.exit_code == 2
    assert "no-such-drive" in result.stderr
    assert leftovers(tmp_path) == []


def test_acquire_into_a_missing_output_folder_exits_5(
    cli: Cli, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    container = tmp_path / "no-such-folder" / "b.zip"
    result = run(cli, *acquire_args(small_tree, container, "--recipient", age_key.recipient))
    assert result.exit_code == 5
    assert "does not exist" in result.stderr
    assert not container.parent.exists()


def test_acquire_never_replaces_an_existing_bundle_and_exits_2(
    cli: Cli, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    container = tmp_path / "b.zip"
    container.write_bytes(b"an earlier bundle")
    result = run(cli, *acquire_args(small_tree, container, "--recipient", age_key.recipient))
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert container.read_bytes() == b"an earlier bundle"
    assert leftovers(tmp_path) == ["b.zip", "seized"]


def test_acquire_with_overwrite_replaces_an_existing_bundle(
    cli: Cli, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    container = tmp_path / "b.zip"
    container.write_bytes(b"an earlier bundle")
    args = acquire_args(small_tree, container, "--recipient", age_key.recipient)
    result = run(cli, *args, "--overwrite")
    assert result.exit_code == 0, result.stderr
    digest = hashlib.sha256(container.read_bytes()).hexdigest()
    assert custody_event_0(container).container_sha256 == digest
    verified = run(cli, "verify", container, "--identity", age_key.identity_file, "--quiet")
    assert verified.exit_code == 0, verified.stderr


def test_acquire_into_a_read_only_folder_exits_5(
    cli: Cli, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    with tmpfs(tmp_path / "ro", "ro,size=1m") as folder:
        container = folder / "b.zip"
        args = acquire_args(small_tree, container, "--recipient", age_key.recipient)
        result = run(cli, *args)
        assert result.exit_code == 5
        assert str(folder) in result.stderr
        assert leftovers(folder) == []


def test_acquire_onto_a_too_small_disk_is_refused_before_writing(
    cli: Cli, tmp_path: Path, age_key: AgeKey
) -> None:
    source = tmp_path / "seized"
    source.mkdir()
    (source / "disk.img").write_bytes(os.urandom(5_000_000))
    with tmpfs(tmp_path / "small", "size=2m") as folder:
        args = acquire_args(source, folder / "b.zip", "--recipient", age_key.recipient)
        result = run(cli, *args)
        assert result.exit_code == 5
        assert "not enough free space" in result.stderr
        assert leftovers(folder) == []


def test_acquire_that_fills_the_disk_mid_write_exits_5_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, cli: Cli, tmp_path: Path, age_key: AgeKey
) -> None:
    """With the free-space check out of the way the write itself meets ENOSPC."""
    source = tmp_path / "seized"
    source.mkdir()
    (source / "disk.img").write_bytes(os.urandom(5_000_000))
    monkeypatch.setattr(acquire_module, "_check_free_space", lambda folder, needed: None)
    with tmpfs(tmp_path / "small", "size=2m") as folder:
        args = acquire_args(source, folder / "b.zip", "--recipient", age_key.recipient)
        result = run(cli, *args)
        assert result.exit_code == 5
        assert "is full" in result.stderr
        assert leftovers(folder) == []


def interrupt_acquisition(
    monkeypatch: pytest.MonkeyPatch, cli: Cli, source: Path, out: Path, age_key: AgeKey, at: int
) -> tuple[int, str, list[Any]]:
    """Acquire with Ctrl-C arriving at the ``at``-th read: (exit code, stderr, what raised in
    finalisers). Whatever the run left behind is finalised here, so nothing it raises can
    surface in some later test."""
    real_read = filesystem.read_chunk
    calls = 0

    def read_then_interrupt(fd: int, size: int) -> bytes:
        nonlocal calls
        calls += 1
        if calls == at:
            raise KeyboardInterrupt
        return real_read(fd, size)

    monkeypatch.setattr(acquire_module, "read_chunk", read_then_interrupt)
    raised_in_finalisers: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", raised_in_finalisers.append)
    result = run(cli, *acquire_args(source, out / "b.zip", "--recipient", age_key.recipient))
    exit_code, stderr = result.exit_code, result.stderr
    del result  # its exc_info chain holds the interrupted frames
    gc.collect()
    assert calls == at
    raised = [(u.exc_type, str(u.exc_value), repr(u.object)) for u in raised_in_finalisers]
    return exit_code, stderr, raised


@pytest.mark.parametrize("interrupt_at", [1, 2, 3, 4, 5, 6])
def test_an_interrupted_acquisition_leaves_no_file_behind(
    interrupt_at: int,
    monkeypatch: pytest.MonkeyPatch,
    cli: Cli,
    small_tree: Path,
    tmp_path: Path,
    age_key: AgeKey,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    exit_code, stderr, _raised = interrupt_acquisition(
        monkeypatch, cli, small_tree, out, age_key, interrupt_at
    )
    assert exit_code == 130
    assert "interrupted: nothing was left at the output path" in stderr
    assert leftovers(out) == []


def test_an_interrupted_acquisition_leaves_nothing_that_raises_when_collected(
    monkeypatch: pytest.MonkeyPatch, cli: Cli, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    exit_code, _stderr, raised = interrupt_acquisition(
        monkeypatch, cli, small_tree, out, age_key, 4
    )
    assert exit_code == 130
    assert raised == []


def test_a_passphrase_on_the_command_line_is_refused_and_not_echoed(
    cli: Cli, small_tree: Path, tmp_path: Path
) -> None:
    secret = "plum orchard kettle 5531"
    container = tmp_path / "b.zip"
    result = run(cli, *acquire_args(small_tree, container, "--passphrase", secret))
    assert result.exit_code == 2
    assert secret not in result.stdout + result.stderr
    assert not container.exists()


# ----------------------------------------------------------------------------- verify


@pytest.fixture
def bundle(make_bundle: MakeBundle, small_tree: Path) -> Path:
    return make_bundle(small_tree).container


def test_verify_without_a_key_checks_the_container_and_says_contents_were_not_checked(
    cli: Cli, bundle: Path
) -> None:
    result = run(cli, "verify", bundle)
    assert result.exit_code == 0, result.stderr
    assert "Contents were NOT checked" in " ".join(result.stderr.split())


def test_verify_with_an_identity_checks_every_item(cli: Cli, bundle: Path, age_key: AgeKey) -> None:
    result = run(cli, "verify", bundle, "--identity", age_key.identity_file)
    assert result.exit_code == 0, result.stderr
    assert "VERIFIED: 4 items" in " ".join(result.stderr.split())


def test_verify_with_a_passphrase_file_checks_every_item_and_never_shows_the_passphrase(
    cli: Cli, passphrase_run: PassphraseRun, passphrase_file: Path
) -> None:
    result = run(cli, "verify", passphrase_run.container, "--passphrase-file", passphrase_file)
    assert result.exit_code == 0, result.stderr
    assert "VERIFIED: 6 items" in " ".join(result.stderr.split())
    assert PASSPHRASE not in result.stdout + result.stderr


def test_verify_json_prints_one_verification_report(
    cli: Cli, bundle: Path, age_key: AgeKey
) -> None:
    result = run(cli, "verify", bundle, "--identity", age_key.identity_file, "--json")
    assert result.exit_code == 0, result.stderr
    document = one_json_document(result)
    assert document["kind"] == "evidence-kit/verification-report"
    assert (document["verdict"], document["contents_checked"]) == ("verified", True)
    assert document["items_checked"] == 4


def test_verify_with_trust_passes_a_bundle_signed_by_that_key(
    cli: Cli, make_bundle: MakeBundle, small_tree: Path, age_key: AgeKey, signing_key: SigningKey
) -> None:
    signed = make_bundle(small_tree, signing_key=signing_key.key).container
    result = run(
        cli, "verify", signed, "--identity", age_key.identity_file,
        "--trust", signing_key.public_pem, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    document = one_json_document(result)
    assert (document["seal"], document["signer_trusted"]) == ("signed", True)


def test_verify_with_trust_fails_an_unsigned_bundle(
    cli: Cli, bundle: Path, age_key: AgeKey, signing_key: SigningKey
) -> None:
    result = run(
        cli, "verify", bundle, "--identity", age_key.identity_file,
        "--trust", signing_key.public_pem, "--json",
    )  # fmt: skip
    assert result.exit_code == 1
    errors = {f["code"] for f in one_json_document(result)["findings"] if f["severity"] == "error"}
    assert errors == {"manifest-unsigned", "custody-event-unsigned"}


def test_verify_against_an_unchanged_source_passes(
    cli: Cli, bundle: Path, small_tree: Path, age_key: AgeKey
) -> None:
    result = run(
        cli, "verify", bundle, "--identity", age_key.identity_file, "--against", small_tree
    )
    assert result.exit_code == 0, result.stderr


def test_verify_against_a_changed_source_names_what_changed_appeared_and_went(
    cli: Cli, bundle: Path, small_tree: Path, age_key: AgeKey
) -> None:
    customers = small_tree / "docs" / "customers.csv"
    customers.write_bytes(customers.read_bytes().replace(b"7", b"9"))  # same size, new bytes
    (small_tree / "docs" / "new.txt").write_text("planted later\n")
    (small_tree / "docs" / "deep" / "zero.bin").unlink()
    result = run(
        cli, "verify", bundle, "--identity", age_key.identity_file,
        "--against", small_tree, "--json",
    )  # fmt: skip
    assert result.exit_code == 1
    errors = {
        (f["code"], f["subject"])
        for f in one_json_document(result)["findings"]
        if f["severity"] == "error"
    }
    assert errors == {
        ("against-changed", "seized/docs/customers.csv"),
        ("against-added", "seized/docs/new.txt"),
        ("against-missing", "seized/docs/deep/zero.bin"),
    }


def test_verify_against_without_a_key_is_not_silently_skipped(
    cli: Cli, bundle: Path, small_tree: Path
) -> None:
    (small_tree / "docs" / "customers.csv").write_text("rewritten after seizure\n")
    result = run(cli, "verify", bundle, "--against", small_tree)
    assert result.exit_code == 4, result.stderr


def test_verify_against_shows_an_added_hostile_name_escaped(
    cli: Cli, bundle: Path, small_tree: Path, age_key: AgeKey
) -> None:
    hostile_folder = small_tree / "\x1b[31mred["
    hostile_folder.mkdir()
    (hostile_folder / "bold][link=x]y\nz").write_text("planted\n")
    args = ("verify", bundle, "--identity", age_key.identity_file, "--against", small_tree)
    human = run(cli, *args)
    assert human.exit_code == 1
    assert "\x1b" not in human.stdout + human.stderr
    machine = run(cli, *args, "--json")
    subjects = {f["subject"] for f in one_json_document(machine)["findings"]}
    assert display_name(b"seized/\x1b[31mred[/bold][link=x]y\nz") in subjects


# ---------------------------------------------------------------------------- inspect


def test_inspect_without_a_key_shows_the_bundle_custody_and_key_slots(
    cli: Cli, make_bundle: MakeBundle, small_tree: Path
) -> None:
    made = make_bundle(small_tree)
    result = run(cli, "inspect", made.container)
    assert result.exit_code == 0, result.stderr
    assert made.result.bundle_id in result.stderr
    assert "1 events (0 signed): acquired" in result.stderr
    assert "00-x25519.age" in result.stderr
    assert f"{CASE.case_number} / {CASE.evidence_number}" in result.stderr
    assert "Give --identity or --passphrase-file" in result.stderr
    assert "customers.csv" not in result.stdout + result.stderr


def test_inspect_with_a_key_shows_case_fields_and_every_item_path(
    cli: Cli, bundle: Path, age_key: AgeKey
) -> None:
    result = run(cli, "inspect", bundle, "--identity", age_key.identity_file)
    assert result.exit_code == 0, result.stderr
    for value in (CASE.examiner, CASE.description, CASE.location):
        assert value in result.stderr
    assert table_column(result.stderr, "id", "path") == [
        "seized",
        "seized/docs",
        "seized/docs/customers.csv",
        "seized/docs/deep",
        "seized/docs/deep/random.bin",
        "seized/docs/deep/zero.bin",
        "seized/empty-folder",
        "seized/large.bin",
        "seized/link-to-docs",
    ]


def test_inspect_json_prints_one_inspect_result_with_items(
    cli: Cli, bundle: Path, age_key: AgeKey
) -> None:
    result = run(cli, "inspect", bundle, "--identity", age_key.identity_file, "--json")
    assert result.exit_code == 0, result.stderr
    document = one_json_document(result)
    assert document["kind"] == "evidence-kit/inspect-result"
    assert document["decrypted"] is True
    paths = {item["path"]: item for item in document["items"]}
    assert paths["seized/large.bin"]["size"] == 1_500_000
    assert paths["seized/link-to-docs"]["kind"] == "symlink"
    assert len(paths) == 9


def test_inspect_shows_the_whole_container_sha256_and_custody_head(cli: Cli, bundle: Path) -> None:
    result = run(cli, "inspect", bundle)
    assert result.exit_code == 0, result.stderr
    log = bundle.with_suffix(".custody.jsonl").read_bytes()
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() in result.stderr
    assert hashlib.sha256(log.rstrip(b"\n")).hexdigest() in result.stderr


# ---------------------------------------------------------------------------- extract


def test_extract_writes_every_file_and_exits_0(
    cli: Cli, bundle: Path, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    destination = tmp_path / "extracted"
    result = run(cli, "extract", bundle, "--out", destination, "--identity", age_key.identity_file)
    assert result.exit_code == 0, result.stderr
    for original in small_tree.rglob("*"):
        copy = destination / "seized" / original.relative_to(small_tree)
        if original.is_symlink():
            assert os.readlink(copy) == os.readlink(original)
        elif original.is_file():
            assert copy.read_bytes() == original.read_bytes(), original
        else:
            assert copy.is_dir()


# ---------------------------------------------------------------------- hostile names


def test_inspect_shows_a_hostile_name_escaped_never_interpreted(
    cli: Cli, make_bundle: MakeBundle, tmp_path: Path, age_key: AgeKey
) -> None:
    """ESC sequences, Rich markup and a newline in a seized name come out as inert text."""
    source = tmp_path / "seized"
    hostile_folder = source / "\x1b[31mred["
    hostile_folder.mkdir(parents=True)
    (hostile_folder / "bold][link=x]y\nz").write_bytes(b"x")
    made = make_bundle(source)
    result = run(cli, "inspect", made.container, "--identity", age_key.identity_file)
    assert result.exit_code == 0, result.stderr
    output = result.stdout + result.stderr
    assert "\x1b" not in output
    assert table_column(result.stderr, "id", "path") == [
        "seized",
        "seized/\\x1b[31mred[",
        "seized/\\x1b[31mred[/bold][link=x]y\\nz",
    ]


# ------------------------------------------------------------------------------- misc


def test_version_and_help_exit_0(cli: Cli) -> None:
    version = run(cli, "--version")
    assert version.exit_code == 0
    assert version.stdout.strip() == "evidence-kit 0.1.0"
    for args in (["--help"], ["acquire", "--help"], ["verify", "--help"], ["extract", "--help"]):
        shown = run(cli, *args)
        assert shown.exit_code == 0, args
        assert "Usage:" in shown.stdout


@pytest.mark.parametrize("command", ["acquire", "verify", "inspect", "extract"])
def test_an_unknown_option_exits_2(command: str, cli: Cli) -> None:
    result = run(cli, command, "--no-such-option")
    assert result.exit_code == 2
    assert "No such option: --no-such-option" in result.stderr


def test_a_missing_bundle_exits_2_for_every_reader(
    cli: Cli, tmp_path: Path, age_key: AgeKey
) -> None:
    missing = tmp_path / "nothing.zip"
    destination = tmp_path / "d"
    commands: list[list[str | Path]] = [
        ["verify", missing],
        ["inspect", missing],
        ["extract", missing, "--out", destination, "--identity", age_key.identity_file],
    ]
    for args in commands:
        result = run(cli, *args)
        assert result.exit_code == 2, args
        assert "no such bundle" in result.stderr
    assert not destination.exists()


# ---------------------------------------------------------------------------- secrets


def test_the_passphrase_appears_in_no_output_manifest_or_custody_log(
    passphrase_run: PassphraseRun, passphrase_manifest: tuple[Manifest, bytes]
) -> None:
    manifest, manifest_bytes = passphrase_manifest
    secret = PASSPHRASE.encode()
    result = passphrase_run.result
    assert PASSPHRASE not in result.stdout + result.stderr
    assert manifest.provenance.command_line[:2] == ["evidence-kit", "acquire"]
    assert "--passphrase-file" in manifest.provenance.command_line
    assert not any(PASSPHRASE in word for word in manifest.provenance.command_line)
    assert secret not in manifest_bytes
    assert secret not in passphrase_run.custody_log.read_bytes()
    assert secret not in passphrase_run.container.read_bytes()


def test_a_folder_given_as_the_bundle_is_a_usage_error_for_every_reader(
    cli: Cli, tmp_path: Path, age_key: AgeKey
) -> None:
    folder = tmp_path / "a-folder.zip"
    folder.mkdir()
    commands: list[list[str | Path]] = [
        ["verify", folder],
        ["inspect", folder, "--identity", age_key.identity_file],
        ["extract", folder, "--out", tmp_path / "d", "--identity", age_key.identity_file],
    ]
    for args in commands:
        result = run(cli, *args)
        assert result.exit_code == 2, (args, result.stderr)


def test_inspect_keeps_the_path_column_for_long_types_and_flags_lying_names(
    cli: Cli, make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    """A type longer than its column, or a name that lies about the content, must not
    shift the path column a person (or a script) reads."""
    root = tmp_path / "seized"
    root.mkdir()
    (root / "invoice.jpg").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    with zipfile.ZipFile(root / "sheet.docx", "w") as docx:  # a 71-character MIME type
        docx.writestr("[Content_Types].xml", "<Types/>")
        docx.writestr("_rels/.rels", "<Relationships/>")
        docx.writestr("word/document.xml", "<w:document/>")
    bundle = make_bundle(root)
    result = run(cli, "inspect", bundle.container, "--identity", age_key.identity_file)
    assert result.exit_code == 0, result.stderr
    assert table_column(result.stderr, "id", "path") == [
        "seized",
        "seized/invoice.jpg",
        "seized/sheet.docx",
    ]
    assert "! the file's name says another type than its content" in result.stderr
    assert "application/vnd.openxmlfo…   seized/sheet.docx" in result.stderr
