"""export --format kit: a third party re-checks a bundle with stock tools only.

Every test runs the kit's real VERIFY.sh (bash, sha256sum, openssl, age, 7zz) on a real
bundle: signed by an officer, handed over to a lab that signs its receipt, stamped twice
by a real local RFC 3161 TSA, and exported (an ``exported`` event follows the kit's copy
of the log). Paths hold spaces. Each test works on its own copy of the case folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from evidence_kit.acquire import AcquireRequest, acquire
from evidence_kit.cli.app import app
from evidence_kit.custody import read_custody_log, signing_bytes
from evidence_kit.exporters.kit import README, VERIFY_SCRIPT, kit_file
from evidence_kit.timestamps import Tsa
from tests.conftest import CASE, PASSPHRASE, AgeKey, MakeBundle, SigningKey, require_tool
from tests.tsa import LocalTsa, TsaPki

STATUS = re.compile(r"^(OK|FAILED|NOT CHECKED) +(.*)$")
# The events of the kit's copy of the log, and the one export appends after it.
ACTIONS = ["acquired", "timestamped", "transferred", "received", "timestamped"]


def cli(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
    assert "Traceback" not in result.stderr
    return result


@dataclass(frozen=True)
class Case:
    """A case folder: the container, its log and the kit beside them (spaces in every name)."""

    folder: Path
    container: Path
    log: Path
    kit: Path
    lab_key: Path  # the lab's Ed25519 private key (PEM)

    def moved_to(self, folder: Path) -> Case:
        shutil.copytree(self.folder, folder, symlinks=True)
        return Case(
            folder,
            folder / self.container.name,
            folder / self.log.name,
            folder / self.kit.name,
            self.lab_key,
        )


@dataclass(frozen=True)
class Run:
    status: int
    stdout: str
    stderr: str

    def lines(self, status: str) -> list[str]:
        found = (STATUS.match(line) for line in self.stdout.splitlines())
        return [m.group(2) for m in found if m is not None and m.group(1) == status]


def verify(kit: Path, *args: str | Path, cwd: Path | None = None, **env: str) -> Run:
    """The kit's VERIFY.sh, run as a program (its mode and shebang), as a stranger would."""
    clean = {k: v for k, v in os.environ.items() if k not in ("TSA_CA", "ALLOW_UNSIGNED")}
    done = subprocess.run(
        [str(kit / VERIFY_SCRIPT), *map(str, args)],
        capture_output=True, text=True, check=False, cwd=cwd, env={**clean, **env}, timeout=120,
    )  # fmt: skip
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def tools() -> None:
    for tool in ("bash", "sha256sum", "openssl", "age", "7zz"):
        require_tool(tool)


@pytest.fixture(scope="module")
def lab_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lab") / "lab7.sign.pem"
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture(scope="module")
def pristine(
    tools: None, tmp_path_factory: pytest.TempPathFactory, tsa_pki: TsaPki, age_key: AgeKey,
    signing_key: SigningKey, lab_key: Path,
) -> Case:  # fmt: skip
    folder = tmp_path_factory.mktemp("kit") / "case files"
    seized = folder.parent / "seized"
    (seized / "sub").mkdir(parents=True)
    (seized / "sub" / "客户名单.csv").write_text("name,phone\n张伟,17012345678\n")
    (seized / "large.bin").write_bytes(bytes(range(256)) * 8192)
    folder.mkdir()
    container = folder / "B one.zip"
    root = tsa_pki.root_cert
    with LocalTsa(tsa_pki) as tsa:
        result = acquire(
            AcquireRequest(
                sources=[seized],
                output=container,
                case=CASE,
                recipients=[pyrage.x25519.Recipient.from_str(age_key.recipient)],
                passphrase=PASSPHRASE,
                signing_key=signing_key.key,
                tsas=[Tsa(tsa.url)],
                tsa_roots=[x509.load_pem_x509_certificate(root.read_bytes())],
            )
        )
        assert result.timestamp == "stamped"
        for action, actor, key, extra in (
            ("transferred", "Officer Chen", signing_key.private_pem, ("--to", "Lab 7 intake")),
            ("received", "Lab 7 intake", lab_key, ()),
        ):
            added = cli("custody", "add", container, "--action", action, "--actor", actor,
                        "--sign", key, *extra)  # fmt: skip
            assert added.exit_code == 0, added.stderr
        stamped = cli("timestamp", container, "--tsa", tsa.url, "--tsa-ca", root, "--sign", lab_key)
        assert stamped.exit_code == 0, stamped.stderr
    kit = folder / "kit for court"
    exported = cli("export", container, "--format", "kit", "--out", kit,
                   "--identity", age_key.identity_file, "--tsa-ca", root,
                   "--sign", lab_key, "--actor", "Lab 7, examiner Wu")  # fmt: skip
    assert exported.exit_code == 0, exported.stderr
    log = folder / "B one.custody.jsonl"
    assert [e.action for e in read_custody_log(log).events] == [*ACTIONS, "exported"]
    return Case(folder, container, log, kit, lab_key)


@pytest.fixture
def case(pristine: Case, tmp_path: Path) -> Case:
    return pristine.moved_to(tmp_path / "case files")


def test_an_intact_bundle_passes_every_check_with_and_without_an_identity(
    case: Case, age_key: AgeKey, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "some other folder"
    elsewhere.mkdir()
    run = verify(case.kit, cwd=elsewhere)  # the container beside the kit, by default
    assert run.status == 0, run.stdout + run.stderr
    assert run.lines("FAILED") == [] and run.lines("NOT CHECKED") == []
    passed = run.lines("OK")
    for seq, action in enumerate(ACTIONS):
        assert any(p.startswith(f"event {seq} ({action}): signature valid") for p in passed)
    assert sum("timestamp token verifies" in p for p in passed) == 2
    assert any(p.startswith("container: SHA-256") for p in passed)
    assert any("begins with the kit's 5 events" in p for p in passed)
    assert "1 later event(s)" in run.stdout  # the export's own event: noted, not checked
    assert any("5 events, each links" in p for p in passed)
    assert any(p.startswith("manifest: the seal's signature is valid") for p in passed)
    assert "RESULT: OK" in run.stdout

    opened = verify(case.kit, case.container, age_key.identity_file, cwd=elsewhere)
    assert opened.status == 0, opened.stdout + opened.stderr
    assert [p for p in opened.lines("OK") if p not in passed] == [
        "key slot: the identity opens a key slot",
        "container contents: 7-Zip decrypts every member and each MAC holds",
        "container contents: manifest.json is manifest.bin, byte for byte",
        "container contents: seal.json binds manifest.bin and holds manifest.sig",
    ]


def test_every_token_and_signature_lies_beside_its_bytes_and_stock_commands_check_them(
    case: Case,
) -> None:
    """The layout DESIGN.md promises, checked with the commands README.txt gives."""
    kit = case.kit
    log = read_custody_log(case.log)
    for stem in {p.name.rsplit(".", 1)[0] for p in kit.glob("*.tsr")}:
        assert (kit / f"{stem}.bin").is_file() and (kit / f"{stem}.tsq").is_file()
    for stem in {p.name.rsplit(".", 1)[0] for p in kit.glob("*.sig")}:
        assert (kit / f"{stem}.bin").is_file() and (kit / f"{stem}.pub.pem").is_file()
    assert sorted(p.name for p in kit.glob("*.tsr")) == ["timestamp-0001.tsr", "timestamp-0004.tsr"]
    for event in log.events[: len(ACTIONS)]:
        assert (kit / f"signed-event-{event.seq:04d}.bin").read_bytes() == signing_bytes(event)
    assert (kit / "timestamp-0004.bin").read_bytes() == log.lines[3].rstrip(b"\n")
    assert (kit / "custody.jsonl").read_bytes() == b"".join(log.lines[: len(ACTIONS)])

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=kit, capture_output=True, text=True, check=False)

    listing = str(kit / "container.sha256")
    checked = subprocess.run(["sha256sum", "-c", listing], cwd=case.folder,
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert checked.returncode == 0 and checked.stdout == "B one.zip: OK\n"
    signature = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "signed-event-0003.pub.pem",
                 "-rawin", "-sigfile", "signed-event-0003.sig", "-in"]  # fmt: skip
    assert "Signature Verified Successfully" in run(*signature, "signed-event-0003.bin").stdout
    assert run(*signature, "signed-event-0002.bin").returncode != 0  # another event's bytes
    token = ["openssl", "ts", "-verify", "-in", "timestamp-0004.tsr", "-CAfile", "tsa-roots.pem"]
    assert run(*token, "-data", "timestamp-0004.bin").stdout.strip() == "Verification: OK"
    assert run(*token, "-queryfile", "timestamp-0004.tsq").stdout.strip() == "Verification: OK"
    assert run(*token, "-data", "timestamp-0001.bin").returncode != 0  # another line


def test_one_changed_byte_in_the_container_fails(case: Case, age_key: AgeKey) -> None:
    data = bytearray(case.container.read_bytes())
    data[len(data) // 2] ^= 0x01
    case.container.write_bytes(bytes(data))
    run = verify(case.kit)
    assert run.status == 1
    assert [f for f in run.lines("FAILED") if f.startswith("container: SHA-256 is")]
    assert "RESULT: FAILED" in run.stdout
    opened = verify(case.kit, case.container, age_key.identity_file)
    assert opened.status == 1
    assert [f for f in opened.lines("FAILED") if f.startswith("container contents:")]


def _edit_event_2(data: bytes) -> bytes:
    before = b'"actor":"Officer Chen"'
    assert data.count(before) == 1
    return data.replace(before, b'"actor":"Officer Chan"')


@pytest.mark.parametrize("where", ["kit copy", "live log", "kit copy and its signed bytes"])
def test_an_edited_custody_line_fails(case: Case, where: str) -> None:
    kit_log = case.kit / "custody.jsonl"
    signed = case.kit / "signed-event-0002.bin"
    if where == "live log":
        case.log.write_bytes(_edit_event_2(case.log.read_bytes()))
    else:
        kit_log.write_bytes(_edit_event_2(kit_log.read_bytes()))
    if where == "kit copy and its signed bytes":  # a forger who also fixes the .bin
        signed.write_bytes(_edit_event_2(signed.read_bytes()))
    run = verify(case.kit)
    assert run.status == 1
    failed = run.lines("FAILED")
    assert "custody: the log beside the container differs from the kit's custody.jsonl" in failed
    if where == "live log":
        assert len(failed) == 1
        case.log.unlink()  # without the live log, the kit's own copy still holds
        alone = verify(case.kit)
        assert alone.status == 0, alone.stdout
        assert "no custody log beside the container" in alone.stdout
        return
    assert "event 3 (received): does not link to event 2" in " ".join(failed)
    if where == "kit copy":
        assert (
            "event 2 (transferred): signed-event-0002.bin is not the event's line without "
            "its signature" in failed
        )
    else:
        assert (
            "event 2 (transferred): the signature does not verify "
            "(signed-event-0002.sig, signed-event-0002.pub.pem)" in failed
        )


def test_a_swapped_or_missing_kit_file_fails(case: Case, pristine: Case, tmp_path: Path) -> None:
    kit = case.kit
    officer, lab = kit / "signed-event-0002.sig", kit / "signed-event-0003.sig"
    officer_bytes = officer.read_bytes()
    officer.write_bytes(lab.read_bytes())
    lab.write_bytes(officer_bytes)
    shutil.copy(kit / "signed-event-0000.sig", kit / "manifest.sig")  # another valid signature
    (kit / "timestamp-0004.tsq").unlink()
    run = verify(kit)
    assert run.status == 1
    failed = run.lines("FAILED")
    for seq, action in ((2, "transferred"), (3, "received")):
        assert f"event {seq} ({action}): the signature does not verify" in " ".join(failed)
    assert "manifest: the seal's signature does not verify (manifest.sig)" in failed
    assert "event 4 (timestamped): timestamp-0004.tsq is missing from the kit" in failed

    # A forger's key and a valid signature by it over the true bytes: not the named signer.
    other = pristine.moved_to(tmp_path / "other case")
    forger = Ed25519PrivateKey.generate()
    signed = (other.kit / "signed-event-0002.bin").read_bytes()
    (other.kit / "signed-event-0002.sig").write_bytes(forger.sign(signed))
    (other.kit / "signed-event-0002.pub.pem").write_bytes(
        forger.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    forged = verify(other.kit)
    assert forged.status == 1
    assert forged.lines("FAILED") == [
        "event 2 (transferred): signed-event-0002.pub.pem is not the key the event names"
    ]


def test_a_wrong_identity_fails(case: Case, other_age_key: AgeKey) -> None:
    run = verify(case.kit, "", other_age_key.identity_file)
    assert run.status == 1
    assert run.lines("FAILED") == ["key slot: the identity opens no key slot of this container"]


def test_tokens_are_not_checked_without_tsa_roots(
    case: Case, tsa_pki: TsaPki, age_key: AgeKey
) -> None:
    (case.kit / "tsa-roots.pem").unlink()
    run = verify(case.kit)
    assert run.status == 3, run.stdout
    unchecked = run.lines("NOT CHECKED")
    assert len(unchecked) == 2 and all("TSA_CA=root.pem" in u for u in unchecked)
    assert run.lines("FAILED") == [] and "RESULT: INCOMPLETE" in run.stdout
    assert verify(case.kit, TSA_CA=str(tsa_pki.root_cert)).status == 0
    untrusted = verify(case.kit, TSA_CA=str(tsa_pki.other_root_cert))
    assert untrusted.status == 1
    assert len([f for f in untrusted.lines("FAILED") if "token" in f and "verify" in f]) == 2

    # Exported with no --tsa-ca and no configured roots: the kit has none to offer.
    bare = case.folder / "bare kit"
    config = case.folder.parent / "empty config"
    config.mkdir()
    exported = cli("export", case.container, "--format", "kit", "--out", bare,
                   "--identity", age_key.identity_file,
                   env={"XDG_CONFIG_HOME": str(config)})  # fmt: skip
    assert exported.exit_code == 0, exported.stderr
    assert not (bare / "tsa-roots.pem").exists()
    assert verify(bare).status == 3


def test_paths_with_spaces_and_odd_names_work_from_any_folder(
    case: Case, age_key: AgeKey, tmp_path: Path
) -> None:
    """A kit moved away from its container, a container named like a 7-Zip wildcard and
    option, both given relative to an unrelated working folder."""
    odd = tmp_path / "evidence store" / "-p *.zip"
    odd.parent.mkdir()
    case.container.rename(odd)
    case.log.rename(odd.parent / "-p *.custody.jsonl")
    kit = tmp_path / "kit on a stick" / "kit for court"
    kit.parent.mkdir()
    case.kit.rename(kit)
    lost = verify(kit)
    assert lost.status == 2 and "give its path" in lost.stderr
    run = verify(kit, "../evidence store/-p *.zip", age_key.identity_file, cwd=kit.parent)
    assert run.status == 0, run.stdout + run.stderr
    assert "begins with the kit's 5 events" in run.stdout  # found the renamed log
    assert "container contents: 7-Zip decrypts every member and each MAC holds" in run.lines("OK")


def test_an_unsigned_bundle_is_not_checked_unless_allowed(
    tools: None, make_bundle: MakeBundle, small_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(small_tree, name="unsigned bundle")
    kit = bundle.container.parent / "kit"
    exported = cli("export", bundle.container, "--format", "kit", "--out", kit,
                   "--identity", age_key.identity_file)  # fmt: skip
    assert exported.exit_code == 0, exported.stderr
    assert sorted(p.name for p in kit.iterdir()) == [
        README,
        VERIFY_SCRIPT,
        "container.sha256",
        "custody.jsonl",
        "manifest.bin",
    ]
    run = verify(kit, "", age_key.identity_file)
    assert run.status == 3
    assert run.lines("FAILED") == []
    assert run.lines("NOT CHECKED") == [
        "event 0 (acquired): not signed, so who wrote it cannot be checked",
        "manifest: the seal is not signed, so who sealed it cannot be checked",
    ]
    allowed = verify(kit, "", age_key.identity_file, ALLOW_UNSIGNED="1")
    assert allowed.status == 0, allowed.stdout
    assert "seal.json binds manifest.bin" in allowed.stdout  # the seal says: unsigned


def test_the_kit_holds_no_secret_and_no_bundle_value_in_its_script(
    case: Case, age_key: AgeKey, signing_key: SigningKey
) -> None:
    with zipfile.ZipFile(case.container) as container:
        slot = container.read("keyslots/00-x25519.age")
    password = pyrage.decrypt(slot, [age_key.identity])
    assert re.fullmatch(rb"[0-9a-f]{64}", password)
    secrets = [
        password,
        password.upper(),
        bytes.fromhex(password.decode()),
        str(age_key.identity).encode(),
        PASSPHRASE.encode(),
        *_key_secrets(signing_key.private_pem),
        *_key_secrets(case.lab_key),
    ]
    files = sorted(case.kit.iterdir())
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret not in data, path.name
    # The script and the instructions are the same bytes in every kit.
    assert (case.kit / VERIFY_SCRIPT).read_bytes() == kit_file(VERIFY_SCRIPT)
    assert (case.kit / README).read_bytes() == kit_file(README)
    assert os.access(case.kit / VERIFY_SCRIPT, os.X_OK)
    run = verify(case.kit, "", age_key.identity_file)
    assert run.status == 0
    assert password.decode() not in run.stdout + run.stderr


def _key_secrets(private_pem: Path) -> list[bytes]:
    """The PEM body and the raw 32 private bytes of an Ed25519 key."""
    key = serialization.load_pem_private_key(private_pem.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    body = b"".join(private_pem.read_bytes().splitlines()[1:-1])
    return [raw, body]
