"""Recording custody after acquisition, and reading it back: ``custody add|show|repair``.

Assurance given:

- ``custody add`` appends, for every action, one signed event linked to the line before
  it, carrying the bundle id and case numbers of event 0, the signer's fingerprint and the
  container's SHA-256 measured at that moment; the bundle still verifies afterwards;
- a container that changed since acquisition is recorded as found, with a loud warning
  and exit 1, and ``custody show`` then names event 0 as the one that no longer matches;
- every refusal (no log, a torn or edited log, a bad action, actor or key, a missing or
  wrong key passphrase) leaves the log byte for byte as it was, with its exit code;
- an event signature checks out with OpenSSL alone, and the fingerprint is the one
  ``openssl pkey -outform DER | sha256sum`` prints;
- three processes appending at once produce one unbroken chain: the lock is real;
- ``custody show`` reports the timeline, the hand-overs, the head and the signers;
- ``custody repair`` removes only a torn last line, keeps its bytes, and refuses the rest.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence_kit import keys
from evidence_kit.canonical import load_record
from evidence_kit.custody import (
    check_chain,
    event_line,
    line_sha256,
    read_custody_log,
    signing_bytes,
)
from evidence_kit.custody_append import CUSTODY_ACTIONS
from evidence_kit.models import CustodyEvent
from tests.conftest import CASE, REPO, AgeKey, Bundle, MakeBundle, SigningKey, require_tool

Cli = Callable[..., Any]
SCHEMAS = REPO / "evidence_kit" / "schemas"
OFFICER = "Insp. Wang Lei, Tianhe forensic unit"
RECEIVER = "Lab reception Li Na"
LOCATION = "Guangzhou forensic lab, room 3"
SIGN_PASSPHRASE = "copper meadow signal 7734"


# ---------------------------------------------------------------------------------- helpers


def signed_bundle(make_bundle: MakeBundle, tree: Path, key: SigningKey, name: str = "B") -> Bundle:
    """A bundle of ``tree`` whose seal and 'acquired' event are signed with ``key``."""
    return make_bundle(tree, name=name, signing_key=key.key)


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spki_fingerprint(key: Ed25519PrivateKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, computed here without evidence_kit."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def sha256_line(line: bytes) -> str:
    """SHA-256 of a log line without its newline, computed here."""
    return hashlib.sha256(line.removesuffix(b"\n")).hexdigest()


def log_lines(bundle: Bundle) -> list[bytes]:
    """The log's lines, each with its newline (the file must end in one)."""
    data = bundle.custody_log.read_bytes()
    assert data.endswith(b"\n")
    return data.splitlines(keepends=True)


def event_of(line: bytes) -> CustodyEvent:
    return load_record(CustodyEvent, line.rstrip(b"\n"), require_canonical=True)


def add(cli: Cli, bundle: Bundle, key: Path, *args: str | Path, **kw: Any) -> Any:
    """``custody add`` with the officer's defaults; ``args`` may override --action/--actor."""
    options: list[str | Path] = list(args)
    if "--action" not in options:
        options += ["--action", "stored"]
    if "--actor" not in options:
        options += ["--actor", OFFICER]
    result = cli("custody", "add", bundle.container, "--sign", key, *options, **kw)
    assert "Traceback" not in result.output
    return result


def verify_ok(cli: Cli, bundle: Bundle, age_key: AgeKey, signing_key: SigningKey) -> None:
    """The whole bundle verifies with its key, requiring the officer's signature."""
    result = cli(
        "verify",
        bundle.container,
        "--identity",
        age_key.identity_file,
        "--trust",
        signing_key.public_pem,
        "--json",
        "-q",
    )
    report = json.loads(result.stdout)
    assert result.exit_code == 0, report["findings"]
    assert report["verdict"] == "verified"
    assert report["contents_checked"] is True


def run_cli(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The command line in its own process, as an officer runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "evidence_kit", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    assert "Traceback" not in result.stderr
    return result


def show_json(cli: Cli, bundle: Bundle, *args: str | Path) -> tuple[int, dict[str, Any]]:
    result = cli("custody", "show", bundle.container, *args, "--json")
    assert "Traceback" not in result.output
    report = json.loads(result.stdout)
    jsonschema.validate(report, schema("custody-report"))
    return result.exit_code, report


def codes(report: dict[str, Any], severity: str) -> list[tuple[str, str]]:
    return [(f["code"], f["subject"]) for f in report["findings"] if f["severity"] == severity]


def other_public_key(folder: Path) -> Path:
    """The public key of someone who signed nothing here."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "stranger.pub.pem"
    path.write_text(keys.public_key_pem(Ed25519PrivateKey.generate().public_key()))
    return path


@pytest.fixture
def bundle(make_bundle: MakeBundle, small_tree: Path, signing_key: SigningKey) -> Bundle:
    return signed_bundle(make_bundle, small_tree, signing_key)


# ------------------------------------------------------------------------- custody add


@pytest.mark.parametrize("action", CUSTODY_ACTIONS)
def test_add_appends_one_signed_linked_event_for_every_action(
    action: str,
    bundle: Bundle,
    cli: Cli,
    age_key: AgeKey,
    signing_key: SigningKey,
) -> None:
    """Each action appends one event that links to, and copies its ids from, event 0."""
    before = bundle.custody_log.read_bytes()
    container_sha256 = sha256_file(bundle.container)
    to = ["--to", RECEIVER] if action == "transferred" else []
    result = add(
        cli,
        bundle,
        signing_key.private_pem,
        "--action", action,
        "--location", LOCATION,
        "--note", f"{action} for the court file 张伟",
        *to,
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    appended = json.loads(result.stdout)
    jsonschema.validate(appended, schema("custody-append"))

    lines = log_lines(bundle)
    assert len(lines) == 2
    assert lines[0] == before  # event 0 untouched, byte for byte
    first, event = event_of(lines[0]), event_of(lines[1])
    assert event.seq == 1
    assert event.action == action
    assert event.prev_event_sha256 == sha256_line(lines[0])
    assert event.actor == OFFICER
    assert event.location == LOCATION
    assert event.note == f"{action} for the court file 张伟"
    assert event.to == (RECEIVER if action == "transferred" else None)
    assert event.bundle_id == first.bundle_id
    assert (event.case_number, event.evidence_number) == (first.case_number, first.evidence_number)
    assert (event.case_number, event.evidence_number) == (CASE.case_number, CASE.evidence_number)
    assert event.actor_key_fingerprint == spki_fingerprint(signing_key.key)
    assert event.signature is not None
    assert event.signature.fingerprint == spki_fingerprint(signing_key.key)
    assert event.container_sha256 == container_sha256 == first.container_sha256
    assert event.time.clock_source == "local"

    assert appended["event"] == json.loads(lines[1])
    assert appended["head_sha256"] == sha256_line(lines[1])
    assert appended["event_count"] == 2
    assert appended["container_matches_acquisition"] is True
    verify_ok(cli, bundle, age_key, signing_key)


def test_add_without_json_prints_the_new_head_for_the_form(
    bundle: Bundle, cli: Cli, signing_key: SigningKey
) -> None:
    """The human output names the event, the signer and the new head HASH:COUNT."""
    result = add(cli, bundle, signing_key.private_pem, "--action", "opened")
    assert result.exit_code == 0, result.output
    last = log_lines(bundle)[-1]
    assert result.stdout == ""
    assert f"{sha256_line(last)}:2" in result.stderr
    assert spki_fingerprint(signing_key.key) in result.stderr
    assert "1 opened" in result.stderr
    assert "WARNING" not in result.stderr


def tamper(container: Path, how: str) -> None:
    data = bytearray(container.read_bytes())
    if how == "append-byte":
        data += b"\0"
    else:
        data[len(data) // 2] ^= 0x01
    container.write_bytes(bytes(data))


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
@pytest.mark.parametrize("how", ["append-byte", "flip-byte"])
def test_add_to_a_changed_container_records_it_warns_and_exits_1(
    how: str, as_json: bool, bundle: Bundle, cli: Cli, signing_key: SigningKey
) -> None:
    """The event records the container as it is now; event 0 then no longer matches."""
    acquired_sha256 = sha256_file(bundle.container)
    tamper(bundle.container, how)
    now_sha256 = sha256_file(bundle.container)
    assert now_sha256 != acquired_sha256

    result = add(
        cli,
        bundle,
        signing_key.private_pem,
        "--action", "received",
        "--actor", RECEIVER,
        *(["--json"] if as_json else []),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "WARNING" in result.stderr
    assert "NOT the one acquired" in result.stderr
    if as_json:
        appended = json.loads(result.stdout)
        jsonschema.validate(appended, schema("custody-append"))
        assert appended["container_matches_acquisition"] is False
        assert appended["event"]["container_sha256"] == now_sha256
    lines = log_lines(bundle)
    assert len(lines) == 2  # appended all the same
    assert event_of(lines[0]).container_sha256 == acquired_sha256
    assert event_of(lines[1]).container_sha256 == now_sha256

    exit_code, report = show_json(cli, bundle)
    assert exit_code == 1
    assert report["verdict"] == "broken"
    assert report["container_sha256"] == now_sha256
    assert [e["container_matches"] for e in report["events"]] == [False, True]
    assert codes(report, "error") == [
        ("custody-container-hash-mismatch", "custody event 0 (acquired)")
    ]
    if not as_json:  # the timeline as a person reads it, on a terminal wide enough
        human = run_cli("custody", "show", bundle.container, env={"COLUMNS": "250"})
        assert human.returncode == 1
        rows = [line.split() for line in human.stderr.splitlines()]
        [acquired] = [row for row in rows if row[:2] == ["0", "acquired"]]
        [received] = [row for row in rows if row[:2] == ["1", "received"]]
        assert (acquired[-1], received[-1]) == ("DIFFERS", "matches")
        assert "CUSTODY LOG BROKEN" in human.stderr


# ------------------------------------------------------------------------------ refusals


def test_add_without_a_log_refuses_and_the_container_alone_still_verifies(
    bundle: Bundle, cli: Cli, age_key: AgeKey, signing_key: SigningKey
) -> None:
    """No log beside the bundle: nothing is started; verify checks every item and fails
    only on custody."""
    intact = cli("verify", bundle.container, "--identity", age_key.identity_file, "--json", "-q")
    assert intact.exit_code == 0
    baseline = json.loads(intact.stdout)
    bundle.custody_log.unlink()
    result = add(cli, bundle, signing_key.private_pem)
    assert result.exit_code == 1
    assert "custody cannot be recorded" in result.stderr
    assert not bundle.custody_log.exists()
    assert list(bundle.custody_log.parent.iterdir()) == [bundle.container]

    checked = cli("verify", bundle.container, "--identity", age_key.identity_file, "--json", "-q")
    assert checked.exit_code == 1
    report = json.loads(checked.stdout)
    jsonschema.validate(report, schema("verification-report"))
    assert report["contents_checked"] is True
    assert report["items_checked"] == baseline["items_checked"] > 0
    assert report["bytes_checked"] == baseline["bytes_checked"] > 0
    assert [c["status"] for c in report["checks"] if c["name"].startswith("every member")] == [
        "pass"
    ]
    assert report["seal"] == "signed"
    errors = [f["code"] for f in report["findings"] if f["severity"] == "error"]
    assert errors
    assert all(code.startswith("custody-") for code in errors), errors
    assert "custody-log-missing" in errors


def test_add_to_a_torn_log_refuses_and_points_to_repair(
    bundle: Bundle, cli: Cli, signing_key: SigningKey
) -> None:
    assert add(cli, bundle, signing_key.private_pem).exit_code == 0
    data = bundle.custody_log.read_bytes()
    bundle.custody_log.write_bytes(data[:-10])
    result = add(cli, bundle, signing_key.private_pem, "--action", "opened")
    assert result.exit_code == 1
    assert "custody-log-torn" in result.stderr
    assert "custody repair" in result.stderr
    assert bundle.custody_log.read_bytes() == data[:-10]


def test_add_to_a_log_with_an_edited_middle_event_refuses(
    bundle: Bundle, cli: Cli, signing_key: SigningKey
) -> None:
    for note in ("locker 4", "locker 5"):
        assert add(cli, bundle, signing_key.private_pem, "--note", note).exit_code == 0
    lines = log_lines(bundle)
    lines[1] = lines[1].replace(b"locker 4", b"locker 9")
    edited = b"".join(lines)
    bundle.custody_log.write_bytes(edited)
    result = add(cli, bundle, signing_key.private_pem, "--action", "opened")
    assert result.exit_code == 1
    assert "refusing to append" in result.stderr
    assert "signature-invalid at custody event 1 (stored)" in result.stderr
    assert bundle.custody_log.read_bytes() == edited


@pytest.mark.parametrize(
    ("options", "exit_code", "error"),
    [
        (["--action", "opened"], 1, "VerificationFailed"),
        (["--action", "lost"], 2, "UsageError"),
    ],
    ids=["torn-log", "unknown-action"],
)
def test_add_refusal_with_json_prints_one_error_document(
    options: list[str],
    exit_code: int,
    error: str,
    bundle: Bundle,
    cli: Cli,
    signing_key: SigningKey,
) -> None:
    torn = bundle.custody_log.read_bytes()[:-10]
    bundle.custody_log.write_bytes(torn)
    result = add(cli, bundle, signing_key.private_pem, *options, "--json")
    assert result.exit_code == exit_code
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema("error"))
    assert (document["exit_code"], document["error"]) == (exit_code, error)
    assert bundle.custody_log.read_bytes() == torn


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--action", "lost"], "unknown custody action"),
        (["--action", "acquired"], "unknown custody action"),
        (["--action", "transferred"], "needs --to"),
        (["--action", "transferred", "--to", "  "], "needs --to"),
        (["--actor", ""], "--actor"),
        (["--actor", "   "], "--actor"),
    ],
    ids=["unknown", "acquired", "transfer-no-to", "transfer-blank-to", "no-actor", "blank-actor"],
)
def test_add_usage_errors_exit_2_and_leave_the_log_alone(
    options: list[str], expected: str, bundle: Bundle, cli: Cli, signing_key: SigningKey
) -> None:
    before = bundle.custody_log.read_bytes()
    result = add(cli, bundle, signing_key.private_pem, *options)
    assert result.exit_code == 2
    assert expected in result.stderr
    assert bundle.custody_log.read_bytes() == before


@pytest.mark.parametrize("kind", ["public-key", "garbage", "missing"])
def test_add_with_an_unusable_sign_file_exits_2(
    kind: str, bundle: Bundle, cli: Cli, signing_key: SigningKey, tmp_path: Path
) -> None:
    before = bundle.custody_log.read_bytes()
    key = {
        "public-key": signing_key.public_pem,
        "garbage": tmp_path / "garbage.pem",
        "missing": tmp_path / "nothing-here.pem",
    }[kind]
    if kind == "garbage":
        key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    result = add(cli, bundle, key)
    assert result.exit_code == 2
    assert bundle.custody_log.read_bytes() == before


@pytest.fixture
def protected_key(tmp_path: Path) -> keys.NewKeys:
    return keys.new_keys("officer2", tmp_path / "keys", passphrase=SIGN_PASSPHRASE)


@pytest.fixture
def no_sign_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    """No signing-key passphrase in the environment unless a test gives one."""
    monkeypatch.delenv(keys.SIGN_PASSPHRASE_ENV, raising=False)


@pytest.mark.usefixtures("no_sign_passphrase")
def test_add_with_a_protected_key_needs_its_passphrase(
    bundle: Bundle, cli: Cli, protected_key: keys.NewKeys, tmp_path: Path
) -> None:
    """Without the passphrase, or with a wrong one, exit 4 and nothing appended."""
    assert b"ENCRYPTED PRIVATE KEY" in protected_key.signing_key.read_bytes()
    before = bundle.custody_log.read_bytes()
    result = add(cli, bundle, protected_key.signing_key)
    assert result.exit_code == 4
    assert "passphrase-protected" in result.stderr
    assert bundle.custody_log.read_bytes() == before

    wrong = tmp_path / "wrong.txt"
    wrong.write_text("copper meadow signal 7735\n")
    result = add(cli, bundle, protected_key.signing_key, "--sign-passphrase-file", wrong)
    assert result.exit_code == 4
    assert "wrong passphrase" in result.stderr
    assert bundle.custody_log.read_bytes() == before

    result = add(
        cli,
        bundle,
        protected_key.signing_key,
        env={keys.SIGN_PASSPHRASE_ENV: "copper meadow signal 7735"},
    )
    assert result.exit_code == 4
    assert bundle.custody_log.read_bytes() == before


@pytest.mark.usefixtures("no_sign_passphrase")
@pytest.mark.parametrize("given", ["file", "environment"])
def test_add_with_a_protected_key_and_its_passphrase_signs(
    given: str, bundle: Bundle, cli: Cli, protected_key: keys.NewKeys, tmp_path: Path
) -> None:
    if given == "file":
        secret = tmp_path / "sign-pass.txt"
        secret.write_text(SIGN_PASSPHRASE + "\n")
        result = add(cli, bundle, protected_key.signing_key, "--sign-passphrase-file", secret)
    else:
        result = add(
            cli, bundle, protected_key.signing_key, env={keys.SIGN_PASSPHRASE_ENV: SIGN_PASSPHRASE}
        )
    assert result.exit_code == 0, result.output
    assert SIGN_PASSPHRASE not in result.output
    event = event_of(log_lines(bundle)[-1])
    assert event.seq == 1
    assert event.actor_key_fingerprint == protected_key.fingerprint
    exit_code, report = show_json(cli, bundle, "--trust", protected_key.public_key)
    assert exit_code == 1  # event 0 was signed by the acquiring officer, not this key
    assert [e["signer_trusted"] for e in report["events"]] == [False, True]
    assert [e["signature_valid"] for e in report["events"]] == [True, True]


# ---------------------------------------------------------------- an independent check


@pytest.mark.parametrize("seq", [0, 1], ids=["acquired", "added"])
def test_event_signature_verifies_with_openssl_alone(
    seq: int, bundle: Bundle, cli: Cli, signing_key: SigningKey, tmp_path: Path
) -> None:
    """What the signature covers is ``signing_bytes(event)``; OpenSSL agrees, and refuses
    the same bytes with one bit changed."""
    openssl = require_tool("openssl")
    sha256sum = require_tool("sha256sum")
    assert add(cli, bundle, signing_key.private_pem, "--note", "locker 4").exit_code == 0
    event = event_of(log_lines(bundle)[seq])
    assert event.signature is not None
    data, sig, pub = tmp_path / "event.bin", tmp_path / "event.sig", tmp_path / "signer.pub.pem"
    data.write_bytes(signing_bytes(event))
    raw = base64.b64decode(event.signature.value_b64, validate=True)
    assert len(raw) == 64
    sig.write_bytes(raw)
    pub.write_text(event.signature.public_key_pem)

    command = [openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin"]
    command += ["-in", str(data), "-sigfile", str(sig)]
    checked = subprocess.run(command, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "Signature Verified Successfully" in checked.stdout

    flipped = bytearray(data.read_bytes())
    flipped[len(flipped) // 2] ^= 0x01
    data.write_bytes(bytes(flipped))
    refused = subprocess.run(command, capture_output=True, text=True, check=False)
    assert refused.returncode != 0
    assert "Signature Verified Successfully" not in refused.stdout

    der = subprocess.run(
        [openssl, "pkey", "-pubin", "-in", str(pub), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    summed = subprocess.run([sha256sum], input=der, capture_output=True, check=True).stdout
    fingerprint = summed.split()[0].decode("ascii")
    assert fingerprint == event.actor_key_fingerprint == event.signature.fingerprint
    officer_der = subprocess.run(
        [openssl, "pkey", "-pubin", "-in", str(signing_key.public_pem), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    assert der == officer_der  # the officer's own key, as openssl wrote it


# ------------------------------------------------------------------- writers at once

WRITER = """
import json, sys, time
from pathlib import Path
from evidence_kit import keys
from evidence_kit.custody_append import NewEvent, append_event

container, key_path, folder, name, count = sys.argv[1:6]
key = keys.load_signing_key(Path(key_path))
Path(folder, "ready-" + name).touch()
go = Path(folder, "go")
deadline = time.monotonic() + 30
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.001)
started = time.monotonic()
for i in range(int(count)):
    append_event(Path(container), NewEvent("stored", name, note=f"{name} event {i}"), key)
print(json.dumps({"started": started, "ended": time.monotonic()}))
"""


def test_three_processes_appending_at_once_keep_one_chain(
    bundle: Bundle, cli: Cli, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path
) -> None:
    """45 events from three processes started together: every event once, one chain."""
    writers, per_writer = ("writer-a", "writer-b", "writer-c"), 15
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(bundle.container), str(signing_key.private_pem),
             str(barrier), name, str(per_writer)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in writers
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not all((barrier / f"ready-{name}").exists() for name in writers):
            assert time.monotonic() < deadline, "writers did not start"
            assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
            time.sleep(0.005)
        (barrier / "go").touch()
        outputs = [p.communicate(timeout=60) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert "Traceback" not in err
    spans = [json.loads(out) for out, _err in outputs]
    assert max(s["started"] for s in spans) < min(s["ended"] for s in spans)  # they overlapped

    data = bundle.custody_log.read_bytes()
    assert data.endswith(b"\n")
    log = read_custody_log(bundle.custody_log)
    assert log.findings == []
    assert log.torn_bytes == 0
    assert len(log.events) == 1 + len(writers) * per_writer
    assert [event.seq for event in log.events] == list(range(len(log.events)))
    assert b"".join(log.lines) == data
    for event, line in zip(log.events, log.lines, strict=True):
        assert event_line(event) == line  # whole and canonical
    chain = check_chain(
        log,
        container_sha256=sha256_file(bundle.container),
        trusted={spki_fingerprint(signing_key.key)},
    )
    assert [f for f in chain if f.severity == "error"] == []
    notes = Counter(event.note for event in log.events[1:])
    for name in writers:
        expected = [f"{name} event {i}" for i in range(per_writer)]
        assert all(notes[note] == 1 for note in expected), notes
        mine = [event.note for event in log.events if event.actor == name]
        assert mine == expected  # each writer's events in its own order
    verify_ok(cli, bundle, age_key, signing_key)


def open_files(pid: int) -> set[Path]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(Path(os.readlink(fd)))
        except OSError:
            continue
    return found


def test_add_waits_for_the_lock_another_process_holds(
    bundle: Bundle, signing_key: SigningKey
) -> None:
    """While the log is locked, ``custody add`` opens it and waits; released, it appends."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to see the waiting process's open files")
    before = bundle.custody_log.read_bytes()
    log_path = bundle.custody_log.resolve()
    with bundle.custody_log.open("rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        process = subprocess.Popen(
            [sys.executable, "-m", "evidence_kit", "custody", "add", str(bundle.container),
             "--action", "stored", "--actor", OFFICER, "--sign", str(signing_key.private_pem)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 20
            while log_path not in open_files(process.pid):  # it reached the lock
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "custody add never opened the log"
                time.sleep(0.01)
            time.sleep(1.0)
            assert process.poll() is None  # still waiting
            assert bundle.custody_log.read_bytes() == before
        except BaseException:
            process.kill()
            process.communicate()
            raise
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    lines = log_lines(bundle)
    assert len(lines) == 2
    assert lines[0] == before
    assert event_of(lines[1]).prev_event_sha256 == line_sha256(before)


# ------------------------------------------------------------------------- custody show


def test_show_an_acknowledged_hand_over(bundle: Bundle, cli: Cli, signing_key: SigningKey) -> None:
    key = signing_key.private_pem
    transfer = ["--action", "transferred", "--to", RECEIVER, "--location", "Tianhe station"]
    assert add(cli, bundle, key, *transfer, "--note", "for analysis").exit_code == 0
    received = ["--action", "received", "--actor", RECEIVER, "--location", LOCATION]
    assert add(cli, bundle, key, *received).exit_code == 0
    lines = log_lines(bundle)
    container_sha256 = sha256_file(bundle.container)

    exit_code, report = show_json(cli, bundle)
    assert exit_code == 0
    assert report["verdict"] == "intact"
    assert report["findings"] == []
    assert report["event_count"] == 3
    assert report["head_sha256"] == sha256_line(lines[-1])
    assert report["container_sha256"] == container_sha256
    assert report["bundle_id"] == event_of(lines[0]).bundle_id
    assert (report["case_number"], report["evidence_number"]) == (
        CASE.case_number,
        CASE.evidence_number,
    )
    assert report["handovers"] == [
        {
            "transferred_seq": 1,
            "transferred_by": OFFICER,
            "to": RECEIVER,
            "received_seq": 2,
            "received_by": RECEIVER,
            "status": "acknowledged",
        }
    ]
    fingerprint = spki_fingerprint(signing_key.key)
    views = report["events"]
    assert [(v["seq"], v["action"]) for v in views] == [
        (0, "acquired"),
        (1, "transferred"),
        (2, "received"),
    ]
    assert (views[1]["actor"], views[1]["to"]) == (OFFICER, RECEIVER)
    assert (views[1]["location"], views[1]["note"]) == ("Tianhe station", "for analysis")
    assert (views[2]["actor"], views[2]["to"], views[2]["location"]) == (RECEIVER, None, LOCATION)
    for view, line in zip(views, lines, strict=True):
        event = event_of(line)
        assert view["time_utc"] == event.time.utc is not None
        assert view["actor_key_fingerprint"] == fingerprint
        assert (view["signed"], view["signature_valid"], view["signer_trusted"]) == (
            True,
            True,
            None,
        )
        assert view["container_sha256"] == container_sha256
        assert view["container_matches"] is True
        assert view["line_sha256"] == sha256_line(line)


def test_show_prints_the_head_of_the_log(bundle: Bundle, cli: Cli, signing_key: SigningKey) -> None:
    assert add(cli, bundle, signing_key.private_pem).exit_code == 0
    last = log_lines(bundle)[-1]
    result = cli("custody", "show", bundle.container)
    assert result.exit_code == 0
    head = sha256_line(last)
    assert f"log head: {head}:2" in result.stderr
    assert "CUSTODY LOG INTACT" in result.stderr


def test_show_warns_of_a_transfer_never_received(
    bundle: Bundle, cli: Cli, signing_key: SigningKey
) -> None:
    transfer = ["--action", "transferred", "--to", RECEIVER]
    assert add(cli, bundle, signing_key.private_pem, *transfer).exit_code == 0
    assert add(cli, bundle, signing_key.private_pem, "--action", "stored").exit_code == 0
    exit_code, report = show_json(cli, bundle)
    assert exit_code == 0
    assert report["verdict"] == "intact"
    assert codes(report, "error") == []
    assert codes(report, "warning") == [
        ("custody-handover-not-acknowledged", "custody event 1 (transferred)")
    ]
    assert [h["status"] for h in report["handovers"]] == ["not-acknowledged"]
    assert report["handovers"][0]["received_seq"] is None
    human = cli("custody", "show", bundle.container)
    assert human.exit_code == 0
    assert "custody-handover-not-acknowledged" in human.stderr


def test_show_warns_of_a_transfer_received_by_another(
    bundle: Bundle, cli: Cli, signing_key: SigningKey
) -> None:
    key = signing_key.private_pem
    assert add(cli, bundle, key, "--action", "transferred", "--to", RECEIVER).exit_code == 0
    assert add(cli, bundle, key, "--action", "received", "--actor", "Sgt. Zhao Min").exit_code == 0
    exit_code, report = show_json(cli, bundle)
    assert exit_code == 0
    assert report["verdict"] == "intact"
    [warning] = [f for f in report["findings"] if f["severity"] == "warning"]
    assert (warning["code"], warning["subject"]) == (
        "custody-handover-received-by-another",
        "custody event 1 (transferred)",
    )
    assert (warning["expected"], warning["actual"]) == (RECEIVER, "Sgt. Zhao Min")
    assert report["handovers"][0]["status"] == "received-by-another"
    assert report["handovers"][0]["received_seq"] == 2


def test_show_with_trust_in_a_key_that_signed_nothing_is_broken(
    bundle: Bundle, cli: Cli, signing_key: SigningKey, tmp_path: Path
) -> None:
    assert add(cli, bundle, signing_key.private_pem).exit_code == 0
    exit_code, report = show_json(cli, bundle, "--trust", other_public_key(tmp_path / "t"))
    assert exit_code == 1
    assert report["verdict"] == "broken"
    assert codes(report, "error") == [
        ("custody-signer-untrusted", "custody event 0 (acquired)"),
        ("custody-signer-untrusted", "custody event 1 (stored)"),
    ]
    assert [e["signer_trusted"] for e in report["events"]] == [False, False]
    assert [e["signature_valid"] for e in report["events"]] == [True, True]


def test_show_with_the_signer_in_trust_dir_is_intact(
    bundle: Bundle, cli: Cli, signing_key: SigningKey, tmp_path: Path
) -> None:
    assert add(cli, bundle, signing_key.private_pem).exit_code == 0
    folder = tmp_path / "trusted"
    other_public_key(folder)
    shutil.copy(signing_key.public_pem, folder / "officer.pem")
    exit_code, report = show_json(cli, bundle, "--trust-dir", folder)
    assert exit_code == 0
    assert report["verdict"] == "intact"
    assert report["findings"] == []
    assert [e["signer_trusted"] for e in report["events"]] == [True, True]


def test_show_never_sends_control_characters_from_the_log_to_the_terminal(
    bundle: Bundle, cli: Cli, signing_key: SigningKey
) -> None:
    """The log is plain text anyone can write: what it holds is shown escaped, so a
    recorded name cannot clear the screen, move the cursor or reverse the text."""
    hostile = "Insp. Wang\x1b[2J\x1b[1A\u202eLei"
    options = ["--action", "transferred", "--actor", hostile, "--to", hostile]
    assert add(cli, bundle, signing_key.private_pem, *options, "--note", hostile).exit_code == 0
    assert event_of(log_lines(bundle)[-1]).actor == hostile  # recorded exactly
    result = cli("custody", "show", bundle.container)
    assert result.exit_code == 0
    assert "Insp. Wang" in result.stderr
    assert "\x1b" not in result.stderr
    assert "\u202e" not in result.stderr


def test_show_the_log_of_another_bundle_fails_at_event_0(
    make_bundle: MakeBundle, small_tree: Path, cli: Cli, signing_key: SigningKey
) -> None:
    """Bundle A's log beside bundle B: B is not the container A's events recorded."""
    a = signed_bundle(make_bundle, small_tree, signing_key, name="A")
    b = signed_bundle(make_bundle, small_tree, signing_key, name="B")
    assert sha256_file(a.container) != sha256_file(b.container)
    shutil.copy(a.custody_log, b.custody_log)
    exit_code, report = show_json(cli, b)
    assert exit_code == 1
    assert report["verdict"] == "broken"
    [mismatch] = [f for f in report["findings"] if f["severity"] == "error"]
    assert (mismatch["code"], mismatch["subject"]) == (
        "custody-container-hash-mismatch",
        "custody event 0 (acquired)",
    )
    assert mismatch["expected"] == sha256_file(a.container)
    assert mismatch["actual"] == sha256_file(b.container)
    assert report["bundle_id"] == event_of(log_lines(a)[0]).bundle_id


# ----------------------------------------------------------------------- custody repair


def torn_copies(bundle: Bundle) -> list[Path]:
    return sorted(bundle.custody_log.parent.glob(bundle.custody_log.name + ".torn-*"))


def test_repair_of_a_whole_log_does_nothing(
    bundle: Bundle, cli: Cli, signing_key: SigningKey
) -> None:
    assert add(cli, bundle, signing_key.private_pem).exit_code == 0
    before = bundle.custody_log.read_bytes()
    result = cli("custody", "repair", bundle.container)
    assert result.exit_code == 0
    assert "Nothing to repair" in result.stderr
    as_json = cli("custody", "repair", bundle.container, "--drop-torn-line", "--json")
    assert as_json.exit_code == 0
    repaired = json.loads(as_json.stdout)
    jsonschema.validate(repaired, schema("custody-repair"))
    assert (repaired["repaired"], repaired["torn_bytes"], repaired["torn_copy"]) == (False, 0, None)
    assert repaired["event_count"] == 2
    assert repaired["head_sha256"] == line_sha256(log_lines(bundle)[-1])
    assert bundle.custody_log.read_bytes() == before
    assert torn_copies(bundle) == []


@pytest.fixture
def torn(bundle: Bundle, cli: Cli, signing_key: SigningKey) -> tuple[bytes, bytes]:
    """The log with three whole events and a fourth cut 10 bytes short: (whole, torn)."""
    for note in ("locker 4", "locker 5", "locker 6"):
        assert add(cli, bundle, signing_key.private_pem, "--note", note).exit_code == 0
    lines = log_lines(bundle)
    whole = b"".join(lines[:3])
    torn_tail = lines[3][:-10]
    bundle.custody_log.write_bytes(whole + torn_tail)
    return whole, torn_tail


def test_repair_of_a_torn_line_needs_the_flag(
    bundle: Bundle, cli: Cli, torn: tuple[bytes, bytes]
) -> None:
    whole, torn_tail = torn
    result = cli("custody", "repair", bundle.container)
    assert result.exit_code == 1
    assert f"torn line of {len(torn_tail)} bytes after event 2" in result.stderr
    assert "--drop-torn-line" in result.stderr
    assert bundle.custody_log.read_bytes() == whole + torn_tail
    assert torn_copies(bundle) == []


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
def test_repair_drops_the_torn_line_and_keeps_its_bytes(
    as_json: bool,
    bundle: Bundle,
    cli: Cli,
    age_key: AgeKey,
    signing_key: SigningKey,
    torn: tuple[bytes, bytes],
) -> None:
    whole, torn_tail = torn
    flags = ["--drop-torn-line", *(["--json"] if as_json else [])]
    result = cli("custody", "repair", bundle.container, *flags)
    assert result.exit_code == 0, result.output
    assert bundle.custody_log.read_bytes() == whole
    [side] = torn_copies(bundle)
    assert side.read_bytes() == torn_tail
    if as_json:
        repaired = json.loads(result.stdout)
        jsonschema.validate(repaired, schema("custody-repair"))
        assert repaired["repaired"] is True
        assert repaired["torn_bytes"] == len(torn_tail)
        assert Path(repaired["torn_copy"]) == side
        assert repaired["event_count"] == 3
        assert repaired["head_sha256"] == line_sha256(whole.splitlines()[-1])
    else:
        assert str(side) in result.stderr
    verify_ok(cli, bundle, age_key, signing_key)

    again = add(cli, bundle, signing_key.private_pem, "--action", "opened", "--json")
    assert again.exit_code == 0, again.output
    event = event_of(log_lines(bundle)[-1])
    assert event.seq == 3
    assert event.prev_event_sha256 == line_sha256(whole.splitlines()[-1])
    assert bundle.custody_log.read_bytes().startswith(whole)
    verify_ok(cli, bundle, age_key, signing_key)


def test_repair_refuses_a_log_without_one_whole_event(bundle: Bundle, cli: Cli) -> None:
    """With no whole event there is no 'last whole event' to end the log at: nothing to
    keep, so repair must refuse rather than leave an empty log."""
    torn = bundle.custody_log.read_bytes()[:-5]
    bundle.custody_log.write_bytes(torn)
    result = cli("custody", "repair", bundle.container, "--drop-torn-line")
    assert "event -1" not in result.stderr
    assert result.exit_code == 1
    assert bundle.custody_log.read_bytes() == torn
    assert torn_copies(bundle) == []


def test_two_repairs_in_the_same_second_each_keep_their_bytes(
    bundle: Bundle, cli: Cli, signing_key: SigningKey
) -> None:
    """Each torn line repaired is kept in its own side file, however soon after another."""

    def tear() -> bytes:
        assert add(cli, bundle, signing_key.private_pem).exit_code == 0
        data = bundle.custody_log.read_bytes()
        bundle.custody_log.write_bytes(data[:-10])
        return data.splitlines(keepends=True)[-1][:-10]

    for _attempt in range(5):
        for side in torn_copies(bundle):
            side.unlink()
        time.sleep(1.0 - time.time() % 1.0)  # start at the top of a second
        second = int(time.time())
        first_tail = tear()
        assert cli("custody", "repair", bundle.container, "--drop-torn-line").exit_code == 0
        second_tail = tear()
        result = cli("custody", "repair", bundle.container, "--drop-torn-line")
        if int(time.time()) == second:  # both repairs ran within one second
            break
    else:
        pytest.fail("could not run two repairs within one second")
    assert result.exit_code == 0, result.stderr
    assert sorted(side.read_bytes() for side in torn_copies(bundle)) == sorted(
        [first_tail, second_tail]
    )


@pytest.mark.parametrize("flag", [[], ["--drop-torn-line"]], ids=["no-flag", "drop-flag"])
def test_repair_refuses_to_guess_past_an_edited_event(
    flag: list[str], bundle: Bundle, cli: Cli, torn: tuple[bytes, bytes]
) -> None:
    whole, torn_tail = torn
    edited = whole.replace(b"locker 5", b"locker 8") + torn_tail
    assert edited != whole + torn_tail
    bundle.custody_log.write_bytes(edited)
    result = cli("custody", "repair", bundle.container, *flag)
    assert result.exit_code == 1
    assert "refuses to guess" in result.stderr
    assert "custody event 2" in result.stderr
    assert bundle.custody_log.read_bytes() == edited
    assert torn_copies(bundle) == []
