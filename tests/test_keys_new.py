"""``keys new``: the key files an officer or a lab makes, read by stock tools, and keys made
by stock tools accepted wherever evidence-kit takes a key.

- ``keys new NAME --out DIR`` writes ``NAME.sign.pem`` and ``NAME.age`` owner-only (0600) and
  the two public files 0644, prints the fingerprint ``openssl pkey -pubin -outform DER |
  sha256sum`` prints, and its ``--json`` matches the keys schema;
- ``openssl pkey`` and ``openssl pkeyutl`` read the signing keys (a protected one with its
  passphrase only), signatures made on either side verify on the other, and ``age``,
  ``age-keygen -y`` read the age identity;
- keys made by ``age-keygen`` and ``openssl genpkey`` (also an encrypted one) open, sign and
  record custody through the command line, as keys made by ``keys new`` do;
- refusals: an existing file or link at any of the four paths, a bad NAME, ``--protect``
  without a terminal, a weak passphrase (exit 2, nothing written); a protected key with a
  wrong or no passphrase (exit 4, no bundle). No key or passphrase ever reaches the output.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from evidence_kit import keys
from evidence_kit.cli.app import app
from evidence_kit.custody import custody_log_path, read_custody_log
from evidence_kit.models import Signature
from evidence_kit.schemas import path_of
from tests.conftest import CASE_ARGS, AgeKey, SigningKey, require_tool

Cli = Callable[..., Any]
NAME = "officer-0117"
SUFFIXES = (".sign.pem", ".sign.pub.pem", ".age", ".age.pub")
SIGN_PASSPHRASE = "copper meadow falcon 7731"
MESSAGE = "custody event 3 (stored): 证物柜 4\n".encode()


@pytest.fixture(autouse=True)
def _no_passphrases_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVIDENCE_KIT_PASSPHRASE", raising=False)
    monkeypatch.delenv(keys.SIGN_PASSPHRASE_ENV, raising=False)


@dataclass(frozen=True)
class KeySet:
    """The files one ``keys new --json`` run wrote, what it printed, and its passphrase."""

    folder: Path
    document: dict[str, Any]
    output: str
    passphrase_file: Path | None

    def path(self, suffix: str) -> Path:
        return self.folder / f"{self.document['name']}{suffix}"

    @property
    def private_pem(self) -> Path:
        return self.path(".sign.pem")

    @property
    def public_pem(self) -> Path:
        return self.path(".sign.pub.pem")

    @property
    def age_identity(self) -> Path:
        return self.path(".age")

    @property
    def age_recipient_file(self) -> Path:
        return self.path(".age.pub")


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    """Run the app in-process; no run, however it ends, may print a traceback."""
    result = CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def run(*argv: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(a) for a in argv], input=stdin, capture_output=True, check=False, timeout=60
    )


def ok(done: subprocess.CompletedProcess[bytes]) -> bytes:
    assert done.returncode == 0, (done.args, done.stderr.decode(errors="replace"))
    return done.stdout


def write_secret(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def openssl_fingerprint(public_pem: Path) -> str:
    """``openssl pkey -pubin -in PUB -outform DER | sha256sum``, with both tools."""
    der = ok(run(require_tool("openssl"), "pkey", "-pubin", "-in", public_pem, "-outform", "DER"))
    printed = ok(run(require_tool("sha256sum"), stdin=der)).decode()
    return printed.split()[0]


def secrets_of(key_set: KeySet) -> list[str]:
    """Every secret a key set holds: the private PEM body lines, the age secret key and
    the passphrase."""
    found = [
        line
        for line in key_set.private_pem.read_text().splitlines()
        if line and not line.startswith("-----")
    ]
    found += [
        line
        for line in key_set.age_identity.read_text().splitlines()
        if line.startswith("AGE-SECRET-KEY-")
    ]
    if key_set.passphrase_file is not None:
        found.append(key_set.passphrase_file.read_text().strip())
    assert found
    return found


def make_key_set(folder: Path, name: str, passphrase_file: Path | None = None) -> KeySet:
    options = [] if passphrase_file is None else ["--sign-passphrase-file", passphrase_file]
    result = invoke("keys", "new", name, "--out", folder, *options, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    return KeySet(folder, document, result.stdout + result.stderr, passphrase_file)


@pytest.fixture(scope="module")
def key_set(tmp_path_factory: pytest.TempPathFactory) -> KeySet:
    return make_key_set(tmp_path_factory.mktemp("keys") / "officer", NAME)


@pytest.fixture(scope="module")
def protected_key_set(tmp_path_factory: pytest.TempPathFactory) -> KeySet:
    folder = tmp_path_factory.mktemp("protected")
    secret = write_secret(folder / "sign-passphrase.txt", SIGN_PASSPHRASE)
    return make_key_set(folder / "keys", "lab-7", secret)


# --------------------------------------------------------------------- the files written


def test_keys_new_writes_four_files_secret_ones_owner_only(tmp_path: Path, cli: Cli) -> None:
    """The signing key and age identity are 0600, the public files 0644, the created
    folder 0700; nothing else is written, and the fingerprint is printed for the form."""
    folder = tmp_path / "officer"
    result = cli("keys", "new", NAME, "--out", folder)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(folder)) == sorted(NAME + suffix for suffix in SUFFIXES)
    modes = {s: stat.S_IMODE((folder / f"{NAME}{s}").lstat().st_mode) for s in SUFFIXES}
    assert modes == {
        ".sign.pem": 0o600,
        ".sign.pub.pem": 0o644,
        ".age": 0o600,
        ".age.pub": 0o644,
    }
    assert all(stat.S_ISREG((folder / f"{NAME}{s}").lstat().st_mode) for s in SUFFIXES)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert openssl_fingerprint(folder / f"{NAME}.sign.pub.pem") in result.stderr
    assert result.stdout == ""


def test_keys_new_json_matches_its_schema_and_the_openssl_fingerprint(key_set: KeySet) -> None:
    document = key_set.document
    jsonschema.validate(document, json.loads(path_of("keys").read_text(encoding="utf-8")))
    assert document["name"] == NAME
    assert document["passphrase_protected"] is False
    assert document["signing_key"] == str(key_set.private_pem)
    assert document["public_key"] == str(key_set.public_pem)
    assert document["age_identity"] == str(key_set.age_identity)
    assert document["age_recipient_file"] == str(key_set.age_recipient_file)
    assert document["public_key_fingerprint"] == openssl_fingerprint(key_set.public_pem)
    assert key_set.age_recipient_file.read_text() == document["age_recipient"] + "\n"
    assert b"BEGIN PRIVATE KEY" in key_set.private_pem.read_bytes()


def test_a_protected_key_says_so_in_its_json_and_its_pem(protected_key_set: KeySet) -> None:
    document = protected_key_set.document
    jsonschema.validate(document, json.loads(path_of("keys").read_text(encoding="utf-8")))
    assert document["passphrase_protected"] is True
    pem = protected_key_set.private_pem.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert document["public_key_fingerprint"] == openssl_fingerprint(protected_key_set.public_pem)


def test_keys_new_output_holds_no_secret(key_set: KeySet, protected_key_set: KeySet) -> None:
    for made in (key_set, protected_key_set):
        for secret in secrets_of(made):
            assert secret not in made.output


# ----------------------------------------------------------------- stock tools read them


def test_openssl_reads_the_signing_key(key_set: KeySet) -> None:
    openssl = require_tool("openssl")
    ok(run(openssl, "pkey", "-in", key_set.private_pem, "-noout"))
    public = ok(run(openssl, "pkey", "-in", key_set.private_pem, "-pubout"))
    assert public == key_set.public_pem.read_bytes()


def test_openssl_reads_a_protected_key_with_its_passphrase_only(
    protected_key_set: KeySet, tmp_path: Path
) -> None:
    openssl = require_tool("openssl")
    assert protected_key_set.passphrase_file is not None
    ok(
        run(
            openssl, "pkey", "-in", protected_key_set.private_pem, "-noout",
            "-passin", f"file:{protected_key_set.passphrase_file}",
        )
    )  # fmt: skip
    wrong = write_secret(tmp_path / "wrong.txt", "amber willow canyon 4410")
    refused = run(
        openssl, "pkey", "-in", protected_key_set.private_pem, "-noout", "-passin", f"file:{wrong}"
    )
    assert refused.returncode != 0


def test_openssl_signature_verifies_with_the_public_key_file(
    key_set: KeySet, tmp_path: Path
) -> None:
    """``openssl pkeyutl -sign -rawin`` with NAME.sign.pem; the signature holds for
    evidence-kit over the signed bytes only."""
    message = tmp_path / "message.bin"
    message.write_bytes(MESSAGE)
    signature = tmp_path / "message.sig"
    ok(
        run(
            require_tool("openssl"), "pkeyutl", "-sign", "-rawin",
            "-inkey", key_set.private_pem, "-in", message, "-out", signature,
        )
    )  # fmt: skip
    public = keys.load_public_key(key_set.public_pem)
    made = Signature(
        public_key_pem=keys.public_key_pem(public),
        fingerprint=key_set.document["public_key_fingerprint"],
        value_b64=base64.b64encode(signature.read_bytes()).decode("ascii"),
    )
    assert keys.check_signature(made, MESSAGE) is None
    assert keys.check_signature(made, MESSAGE.replace(b"4", b"5")) == "signature-invalid"


def test_evidence_kit_signature_verifies_with_openssl(
    protected_key_set: KeySet, tmp_path: Path
) -> None:
    """A signature made with a protected NAME.sign.pem loaded by evidence-kit passes
    ``openssl pkeyutl -verify -rawin`` with NAME.sign.pub.pem, and fails on other bytes."""
    openssl = require_tool("openssl")
    private = keys.load_signing_key(protected_key_set.private_pem, SIGN_PASSPHRASE.encode())
    signature = keys.sign(private, MESSAGE)
    assert signature.fingerprint == protected_key_set.document["public_key_fingerprint"]
    sig_file = tmp_path / "message.sig"
    sig_file.write_bytes(base64.b64decode(signature.value_b64))
    message, altered = tmp_path / "message.bin", tmp_path / "altered.bin"
    message.write_bytes(MESSAGE)
    altered.write_bytes(MESSAGE + b" ")
    verify = [openssl, "pkeyutl", "-verify", "-rawin", "-pubin",
              "-inkey", protected_key_set.public_pem, "-sigfile", sig_file, "-in"]  # fmt: skip
    assert b"Signature Verified Successfully" in ok(run(*verify, message))
    assert run(*verify, altered).returncode != 0


def test_age_round_trips_a_message_with_the_age_files(key_set: KeySet, tmp_path: Path) -> None:
    sealed = tmp_path / "message.age"
    ok(
        run(
            require_tool("age"), "-e", "-R", key_set.age_recipient_file, "-o", sealed,
            stdin=MESSAGE,
        )
    )  # fmt: skip
    assert MESSAGE not in sealed.read_bytes()
    opened = ok(run(require_tool("age"), "-d", "-i", key_set.age_identity, sealed))
    assert opened == MESSAGE


def test_age_keygen_derives_the_recipient_written_beside_the_identity(key_set: KeySet) -> None:
    printed = ok(run(require_tool("age-keygen"), "-y", key_set.age_identity)).decode()
    assert printed == key_set.age_recipient_file.read_text()
    assert printed.strip() == key_set.document["age_recipient"]


# ------------------------------------------------------ stock-made keys work everywhere


def acquire_args(source: Path, out: Path, recipient: str, *extra: str | Path) -> list[Any]:
    return ["acquire", source, "--out", out, "--recipient", recipient, *CASE_ARGS,
            "--unattended", "--quiet", *extra]  # fmt: skip


def test_an_age_keygen_identity_opens_a_bundle_sealed_to_its_recipient(
    small_tree: Path, tmp_path: Path, cli: Cli
) -> None:
    identity = tmp_path / "lab-age.txt"
    ok(run(require_tool("age-keygen"), "-o", identity))
    recipient = ok(run(require_tool("age-keygen"), "-y", identity)).decode().strip()
    container = tmp_path / "out" / "B.zip"
    container.parent.mkdir()
    acquired = cli(*acquire_args(small_tree, container, recipient))
    assert acquired.exit_code == 0, acquired.stdout + acquired.stderr
    verified = cli("verify", container, "--identity", identity, "--json", "-q")
    assert verified.exit_code == 0, verified.stdout
    report = json.loads(verified.stdout)
    assert (report["verdict"], report["contents_checked"]) == ("verified", True)
    assert report["items_checked"] > 0


@dataclass(frozen=True)
class Signer:
    private_pem: Path
    public_pem: Path
    options: tuple[str | Path, ...]  # how the command line is given its passphrase


@pytest.fixture(params=["openssl", "openssl-aes256", "keys-new", "keys-new-protected"])
def signer(
    request: pytest.FixtureRequest,
    signing_key: SigningKey,
    key_set: KeySet,
    protected_key_set: KeySet,
    tmp_path: Path,
) -> Signer:
    if request.param == "openssl":
        return Signer(signing_key.private_pem, signing_key.public_pem, ())
    if request.param == "keys-new":
        return Signer(key_set.private_pem, key_set.public_pem, ())
    if request.param == "keys-new-protected":
        assert protected_key_set.passphrase_file is not None
        options = ("--sign-passphrase-file", protected_key_set.passphrase_file)
        return Signer(protected_key_set.private_pem, protected_key_set.public_pem, options)
    openssl = require_tool("openssl")
    secret = write_secret(tmp_path / "openssl-pass.txt", SIGN_PASSPHRASE)
    private, public = tmp_path / "enc.pem", tmp_path / "enc.pub.pem"
    ok(run(openssl, "genpkey", "-algorithm", "ed25519", "-aes256",
           "-pass", f"file:{secret}", "-out", private))  # fmt: skip
    assert b"ENCRYPTED PRIVATE KEY" in private.read_bytes()
    ok(run(openssl, "pkey", "-in", private, "-passin", f"file:{secret}", "-pubout", "-out", public))
    return Signer(private, public, ("--sign-passphrase-file", secret))


def test_a_signing_key_signs_acquire_custody_add_and_verify(
    signer: Signer, small_tree: Path, tmp_path: Path, age_key: AgeKey, cli: Cli
) -> None:
    """The same key signs the manifest and every custody event; ``--trust`` with its
    public file accepts all of them, and the fingerprint is the one openssl prints."""
    fingerprint = openssl_fingerprint(signer.public_pem)
    container = tmp_path / "out" / "B.zip"
    container.parent.mkdir()
    acquired = cli(
        *acquire_args(small_tree, container, age_key.recipient, "--sign", signer.private_pem,
                      *signer.options, "--json")
    )  # fmt: skip
    assert acquired.exit_code == 0, acquired.stdout + acquired.stderr
    assert json.loads(acquired.stdout)["signer_fingerprint"] == fingerprint

    added = cli("custody", "add", container, "--action", "stored", "--actor", "Officer Chen Jing",
                "--sign", signer.private_pem, *signer.options, "--json")  # fmt: skip
    assert added.exit_code == 0, added.stdout + added.stderr
    assert json.loads(added.stdout)["event"]["actor_key_fingerprint"] == fingerprint

    verified = cli("verify", container, "--identity", age_key.identity_file, "--trust",
                   signer.public_pem, "--sign", signer.private_pem, *signer.options,
                   "--actor", "Examiner Wu Fang", "--json", "-q")  # fmt: skip
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert (report["seal"], report["signer_trusted"]) == ("signed", True)
    assert report["recorded_event"]["event"]["actor_key_fingerprint"] == fingerprint

    shown = cli("custody", "show", container, "--trust", signer.public_pem, "--json")
    assert shown.exit_code == 0, shown.stdout + shown.stderr
    events = json.loads(shown.stdout)["events"]
    assert [e["action"] for e in events] == ["acquired", "stored", "verified"]
    assert all(e["signature_valid"] and e["signer_trusted"] for e in events)
    assert {e["actor_key_fingerprint"] for e in events} == {fingerprint}
    for passphrase_option in signer.options[1:]:
        secret = Path(passphrase_option).read_text().strip()
        for result in (acquired, added, verified, shown):
            assert secret not in result.stdout + result.stderr


# ------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("taken", SUFFIXES)
def test_an_existing_file_at_any_key_path_is_never_replaced(
    taken: str, tmp_path: Path, cli: Cli
) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    existing = folder / f"{NAME}{taken}"
    existing.write_bytes(b"an earlier key, still in use\n")
    existing.chmod(0o644)
    before = existing.stat()
    result = cli("keys", "new", NAME, "--out", folder, "--json")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, json.loads(path_of("error").read_text(encoding="utf-8")))
    assert document["exit_code"] == 2
    assert str(existing) in document["message"]
    assert os.listdir(folder) == [existing.name]
    assert existing.read_bytes() == b"an earlier key, still in use\n"
    after = existing.stat()
    assert (after.st_ino, after.st_mtime_ns, stat.S_IMODE(after.st_mode)) == (
        before.st_ino,
        before.st_mtime_ns,
        0o644,
    )


@pytest.mark.parametrize("taken", SUFFIXES)
def test_a_dangling_link_at_a_key_path_is_never_followed(
    taken: str, tmp_path: Path, cli: Cli
) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    target = tmp_path / "elsewhere"
    link = folder / f"{NAME}{taken}"
    link.symlink_to(target)
    result = cli("keys", "new", NAME, "--out", folder)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert not target.exists()
    assert os.listdir(folder) == [link.name]
    assert os.readlink(link) == str(target)


@pytest.mark.parametrize("name", ["team/officer", "../officer", ".officer", "-officer", "--x", ""])
def test_a_name_that_is_not_a_plain_file_name_prefix_is_refused(
    name: str, tmp_path: Path, cli: Cli
) -> None:
    """NAME comes after ``--`` so it reaches the name check, not the option parser."""
    folder = tmp_path / "keys"
    result = cli("keys", "new", "--out", folder, "--", name)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "key name" in result.stderr
    assert not folder.exists()
    assert not (tmp_path / "officer.sign.pem").exists()


def test_protect_without_a_terminal_is_refused_in_process(tmp_path: Path, cli: Cli) -> None:
    folder = tmp_path / "keys"
    result = cli("keys", "new", NAME, "--out", folder, "--protect")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "--sign-passphrase-file" in result.stderr
    assert not folder.exists()


def test_protect_without_a_terminal_is_refused_in_a_real_process(tmp_path: Path) -> None:
    """stdin from /dev/null: no prompt waits for input, nothing is written."""
    folder = tmp_path / "keys"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_KIT_")}
    done = subprocess.run(
        [sys.executable, "-m", "evidence_kit", "keys", "new", NAME, "--out", str(folder),
         "--protect"],
        stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr.decode(errors="replace")
    assert b"Traceback" not in done.stderr
    assert b"--protect" in done.stderr
    assert not folder.exists()


@pytest.mark.parametrize(
    ("passphrase", "reason"),
    [
        ("k9#Tq-x", "shorter than 12"),
        ("Password1234", "well-known or sequential"),
        ("aaaaaaaaaaaaaaaaaaaa", "different characters"),
    ],
)
def test_a_weak_passphrase_file_is_refused_and_never_shown(
    passphrase: str, reason: str, tmp_path: Path, cli: Cli
) -> None:
    secret = write_secret(tmp_path / "weak.txt", passphrase)
    folder = tmp_path / "keys"
    result = cli("keys", "new", NAME, "--out", folder, "--sign-passphrase-file", secret, "--json")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert reason in json.loads(result.stdout)["message"]
    assert passphrase not in result.stdout + result.stderr
    assert not folder.exists()


@pytest.mark.parametrize("given", ["wrong-file", "wrong-environment", "none"])
def test_a_protected_key_without_its_passphrase_signs_nothing(
    given: str, protected_key_set: KeySet, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    """``acquire --sign`` with a protected key and a wrong or no passphrase exits 4 before
    writing anything: no bundle, no custody log, no temporary file."""
    wrong = "amber willow canyon 4410"
    options: list[str | Path] = []
    env: dict[str, str] | None = None
    if given == "wrong-file":
        options = ["--sign-passphrase-file", write_secret(tmp_path / "wrong.txt", wrong)]
    elif given == "wrong-environment":
        env = {keys.SIGN_PASSPHRASE_ENV: wrong}
    out = tmp_path / "out"
    out.mkdir()
    container = out / "B.zip"
    result = invoke(
        *acquire_args(small_tree, container, age_key.recipient, "--sign",
                      protected_key_set.private_pem, *options, "--json"),
        env=env,
    )  # fmt: skip
    assert result.exit_code == 4, result.stdout + result.stderr
    assert json.loads(result.stdout)["exit_code"] == 4
    assert os.listdir(out) == []
    assert wrong not in result.stdout + result.stderr
    for secret in secrets_of(protected_key_set):
        assert secret not in result.stdout + result.stderr


def test_the_right_passphrase_from_the_environment_signs(
    protected_key_set: KeySet, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    container = tmp_path / "B.zip"
    result = invoke(
        *acquire_args(small_tree, container, age_key.recipient, "--sign",
                      protected_key_set.private_pem, "--json"),
        env={keys.SIGN_PASSPHRASE_ENV: SIGN_PASSPHRASE},
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    fingerprint = protected_key_set.document["public_key_fingerprint"]
    assert json.loads(result.stdout)["signer_fingerprint"] == fingerprint
    log = read_custody_log(custody_log_path(container))
    assert [e.actor_key_fingerprint for e in log.events] == [fingerprint]
    assert SIGN_PASSPHRASE not in result.stdout + result.stderr


@pytest.mark.parametrize("made_by", ["openssl-genpkey", "keys-new"])
def test_a_crlf_passphrase_file_means_the_same_passphrase_to_openssl(
    made_by: str, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    """A passphrase file saved with Windows line ends: the key one tool protects with it,
    the other opens with the same file."""
    openssl = require_tool("openssl")
    secret = tmp_path / "sign-passphrase.txt"
    secret.write_bytes(SIGN_PASSPHRASE.encode() + b"\r\n")
    secret.chmod(0o600)
    if made_by == "keys-new":
        made = invoke("keys", "new", NAME, "--out", tmp_path / "keys",
                      "--sign-passphrase-file", secret)  # fmt: skip
        assert made.exit_code == 0, made.stderr
        opened = run(openssl, "pkey", "-in", tmp_path / "keys" / f"{NAME}.sign.pem", "-noout",
                     "-passin", f"file:{secret}")  # fmt: skip
        assert opened.returncode == 0, opened.stderr.decode(errors="replace")
        return
    private = tmp_path / "enc.pem"
    ok(run(openssl, "genpkey", "-algorithm", "ed25519", "-aes256",
           "-pass", f"file:{secret}", "-out", private))  # fmt: skip
    result = invoke(
        *acquire_args(small_tree, tmp_path / "B.zip", age_key.recipient, "--sign", private,
                      "--sign-passphrase-file", secret)
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
