"""A court or defence expert can re-check a bundle with stock tools only.

DESIGN.md promises that sha256sum, openssl, age and 7-Zip suffice to check a bundle without
trusting evidence-kit. Every test here runs the real tools as subprocesses on real bundles
(from ``small_tree`` and from the two sample cases) and asserts what they print:

- ``7zz l -slt`` (no password) shows only opaque member names, constant 1980 times, AES-256
  on everything but the key slots, and no source name anywhere, nor do the raw container bytes;
- ``age -d`` on a key slot gives the 64-hex zip password, with which 7-Zip tests and extracts
  the container, opens the inner pack zips, and yields bytes whose ``sha256sum`` is the digest
  the manifest records and equals the source file's;
- a wrong password makes ``7zz t`` fail;
- ``openssl pkeyutl -verify -rawin`` checks the manifest and custody signatures, and
  ``openssl pkey -outform DER | sha256sum`` gives the signer fingerprint;
- ``sha256sum`` of the container equals the custody log's container SHA-256 (no key needed);
- keys made by ``age-keygen`` and ``openssl genpkey`` work with the CLI.

Sizes: small items are packed, so their sizes do not show; a large item's own member holds
its bytes followed by zero padding up to a size bucket, so the directory shows the bucket,
not the file's size. Its bytes are the first ``size - padding`` bytes of the member
(``head -c``), as the manifest records.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import subprocess
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from evidence_kit.container import SMALL_ITEM_LIMIT, padded_size
from tests.conftest import (
    CASE_ARGS,
    SAMPLE_CASES,
    AgeKey,
    Bundle,
    MakeBundle,
    SigningKey,
    require_tool,
)

SOURCES = {
    "small_tree": None,
    "leak-shop": SAMPLE_CASES / "leak-shop" / "seized",
    "phone-dump": SAMPLE_CASES / "phone-dump" / "seized",
}
MEMBER_NAME = re.compile(
    r"keyslots/\d{2}-(x25519|scrypt)\.age|item/\d{6}|pack/\d{6}|manifest\.json|seal\.json"
)
HEX64 = re.compile(rb"[0-9a-f]{64}")
ZIP_EPOCH_TEXT = "1980-01-01 00:00:00"
NUMERIC_FIELDS = {"Size", "Packed Size", "Offset", "CRC", "Physical Size", "Volume Index"}
TIMEOUT = 120


# ------------------------------------------------------------------------- running tools


def run(
    args: list[str | Path], *, cwd: Path | None = None, data: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run a stock tool for real; never waits on a terminal (stdin is data or /dev/null)."""
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        input=data,
        stdin=subprocess.DEVNULL if data is None else None,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[bytes]) -> bytes:
    assert result.returncode == 0, (result.args, result.stdout[-2000:], result.stderr[-2000:])
    return result.stdout


def sha256sum(path: Path) -> str:
    """``sha256sum FILE``: the hex digest it prints."""
    out = ok(run([require_tool("sha256sum"), "--", path])).decode()
    digest = out.split()[0].removeprefix("\\")
    assert re.fullmatch(r"[0-9a-f]{64}", digest), out
    return digest


def sha256sum_stdin(data: bytes) -> str:
    out = ok(run([require_tool("sha256sum")], data=data)).decode()
    return out.split()[0]


def listing(container: Path) -> tuple[bytes, list[dict[str, str]]]:
    """``7zz l -slt`` (run beside the container, so only its file name shows): raw output and
    one dict per member."""
    out = ok(run([require_tool("7zz"), "l", "-slt", container.name], cwd=container.parent))
    text = out.decode("utf-8")
    assert "\n----------\n" in text, text
    body = text.split("\n----------\n", 1)[1]
    members = []
    for block in body.strip().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(" = ")
            if not sep:  # "Created = " and the like end without the space
                key, sep, value = line.partition(" =")
            assert sep, line
            fields[key] = value
        members.append(fields)
    return out, members


def extract_plain(container: Path, member: str, dest: Path) -> Path:
    """``7zz e`` of an unencrypted member (a key slot); no password is given or asked for."""
    dest.mkdir(parents=True, exist_ok=True)
    ok(
        run(
            [require_tool("7zz"), "e", "-y", f"-o{dest}", container.name, member],
            cwd=container.parent,
        )
    )
    path = dest / member.rsplit("/", 1)[-1]
    assert path.is_file(), sorted(dest.iterdir())
    return path


def zip_password(container: Path, identity_file: Path, work: Path) -> str:
    """The stock recipe: ``7zz e`` the first x25519 key slot, then ``age -d -i IDENTITY``."""
    _, members = listing(container)
    slots = [m["Path"] for m in members if m["Path"].endswith("-x25519.age")]
    assert slots, members
    slot = extract_plain(container, slots[0], work / "slots")
    password = ok(run([require_tool("age"), "-d", "-i", identity_file, slot]))
    assert HEX64.fullmatch(password), password
    return password.decode("ascii")


def extract_all(container: Path, password: str, dest: Path) -> Path:
    """``7zz x -pPASSWORD``: every member, decrypted by 7-Zip."""
    out = ok(
        run(
            [require_tool("7zz"), "x", "-y", f"-p{password}", f"-o{dest}", container.name],
            cwd=container.parent,
        )
    )
    assert b"Everything is Ok" in out, out
    return dest


def openssl_verify(
    public_pem: Path, data: Path, signature: Path
) -> subprocess.CompletedProcess[bytes]:
    return run(
        [
            require_tool("openssl"),
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            public_pem,
            "-rawin",
            "-in",
            data,
            "-sigfile",
            signature,
        ]
    )


def openssl_fingerprint(public_pem: Path) -> str:
    """``openssl pkey -pubin -in PUB.pem -outform DER | sha256sum``."""
    der = ok(run([require_tool("openssl"), "pkey", "-pubin", "-in", public_pem, "-outform", "DER"]))
    return sha256sum_stdin(der)


# ------------------------------------------------------------------------------ sources


def tree_entries(root: Path) -> Iterator[Path]:
    """Every object below ``root`` (symlinks listed, never followed), and ``root`` itself."""
    yield root
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            yield Path(folder) / name


def name_forms(root: Path) -> dict[bytes, str]:
    """Every source basename in each encoding a zip could carry it in: the exact bytes
    (UTF-8 here), NFC and NFD, UTF-16-LE and GBK; only forms of 4 bytes or more."""
    forms: dict[bytes, str] = {}
    for path in tree_entries(root):
        raw = os.fsencode(path.name)
        text = raw.decode("utf-8", errors="surrogateescape")
        candidates = {raw}
        if not text.isascii():
            for normal in ("NFC", "NFD"):
                candidates.add(unicodedata.normalize(normal, text).encode("utf-8"))
            candidates.add(text.encode("utf-16-le", errors="surrogatepass"))
            with contextlib.suppress(UnicodeEncodeError):
                candidates.add(text.encode("gbk"))
        for form in candidates:
            if len(form) >= 4:
                forms[form] = text
    return forms


def encrypted_data_ranges(container: Path) -> list[range]:
    """Byte ranges of the AES ciphertext of encrypted members (stdlib zipfile reads the
    directory; the local header length comes from the local header itself)."""
    ranges = []
    with zipfile.ZipFile(container) as archive, container.open("rb") as raw:
        for info in archive.infolist():
            if not info.flag_bits & 0x1:
                continue
            raw.seek(info.header_offset + 26)
            name_len, extra_len = (
                int.from_bytes(raw.read(2), "little"),
                int.from_bytes(raw.read(2), "little"),
            )
            start = info.header_offset + 30 + name_len + extra_len
            # salt (16) + password verifier (2) ... ciphertext ... HMAC (10)
            ranges.append(range(start + 18, start + info.compress_size - 10))
    return ranges


def source_of(source: Path, manifest: dict[str, Any], item: dict[str, Any]) -> Path:
    """The source file an item record names: its path is below the source's parent."""
    assert manifest["sources"][item["source"]]["label"] == source.name
    return source.parent / os.fsdecode(base64.b64decode(item["path"]["b64"]))


@pytest.fixture(params=list(SOURCES), ids=list(SOURCES))
def source(request: pytest.FixtureRequest) -> Path:
    path = SOURCES[request.param]
    if path is None:
        tree: Path = request.getfixturevalue("small_tree")
        return tree
    assert path.is_dir(), f"{path} missing: the sample cases are part of the repository"
    return path


@pytest.fixture
def signed_bundle(make_bundle: MakeBundle, source: Path, signing_key: SigningKey) -> Bundle:
    return make_bundle(source, signing_key=signing_key.key)


def first_event(bundle: Bundle) -> tuple[bytes, dict[str, Any]]:
    line = bundle.custody_log.read_bytes().split(b"\n")[0]
    return line, json.loads(line)


# ------------------------------------------------------------------- 1. the zip directory


def test_listing_shows_only_opaque_members_constant_times_and_aes(
    signed_bundle: Bundle, source: Path
) -> None:
    """``7zz l -slt`` without a password: opaque names, 1980 times, AES-256 but key slots."""
    _, members = listing(signed_bundle.container)
    names = [m["Path"] for m in members]
    assert all(MEMBER_NAME.fullmatch(n) for n in names), names
    assert names.count("manifest.json") == 1 and names.count("seal.json") == 1
    assert names[-1] == "seal.json"
    assert any(n.startswith("keyslots/") for n in names)
    assert any(n.startswith("item/") for n in names), "every source here has an item > 1 MiB"
    assert any(n.startswith("pack/") for n in names)
    assert len(names) == len(set(names))
    for member in members:
        assert member["Folder"] == "-", member
        assert member["Modified"] == ZIP_EPOCH_TEXT, member
        assert member["Created"] == "" and member["Accessed"] == "", member
        if member["Path"].startswith("keyslots/"):
            assert (member["Method"], member["Encrypted"]) == ("Store", "-"), member
        else:
            assert (member["Method"], member["Encrypted"]) == ("AES-256 Store", "+"), member
            assert member["CRC"] == "", member  # AE-2: no plaintext CRC in the clear


def test_listing_names_no_source_file_or_folder(signed_bundle: Bundle, source: Path) -> None:
    """No source name, in any encoding, appears in ``7zz l -slt`` output."""
    out, members = listing(signed_bundle.container)
    numeric_free = "\n".join(
        f"{key} = {value}" for m in members for key, value in m.items() if key not in NUMERIC_FIELDS
    ).encode("utf-8")
    forms = name_forms(source)
    assert len(forms) >= 8
    for form, name in forms.items():
        # a name made only of hex digits ("2025") is looked for outside the numeric fields
        haystack = numeric_free if re.fullmatch(rb"[0-9A-Fa-f]+", form) else out
        assert form not in haystack, f"source name {name!r} shows in the 7-Zip listing"


def test_raw_container_bytes_hold_no_source_name(signed_bundle: Bundle, source: Path) -> None:
    """grep of the raw container: no source name of 4+ bytes, in any encoding, anywhere.

    A 4-byte form may occur by chance inside several MB of AES ciphertext (about 1 in
    1,000 runs); such a hit is tolerated only inside ciphertext. Longer names and every
    byte outside ciphertext (headers, directory, key slots) are checked strictly.
    """
    data = signed_bundle.container.read_bytes()
    ciphertext = encrypted_data_ranges(signed_bundle.container)
    assert sum(len(r) for r in ciphertext) > len(data) // 2
    for form, name in name_forms(source).items():
        start = data.find(form)
        while start >= 0:
            by_chance = len(form) == 4 and any(start in r and start + 3 in r for r in ciphertext)
            assert by_chance, f"source name {name!r} found at byte {start} of the container"
            start = data.find(form, start + 1)


def test_zip_directory_shows_no_small_item_size(signed_bundle: Bundle, source: Path) -> None:
    """Packed items leave no size hint: no member's Size or Packed Size is a small file's."""
    _, members = listing(signed_bundle.container)
    shown = {int(m[key]) for m in members for key in ("Size", "Packed Size")}
    small = {
        path.stat().st_size
        for path in tree_entries(source)
        if path.is_file()
        and not path.is_symlink()
        and 64 <= path.stat().st_size <= SMALL_ITEM_LIMIT
    }
    assert small
    assert not small & shown, sorted(small & shown)


# ---------------------------------------------------------- 2. the stock path to content


def test_age_then_7zip_open_the_bundle_and_give_the_recorded_bytes(
    signed_bundle: Bundle, source: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    """age -d the slot -> 7zz t / x -> 7zz x each pack -> sha256sum equals the manifest."""
    container = signed_bundle.container
    password = zip_password(container, age_key.identity_file, tmp_path)
    tested = ok(
        run([require_tool("7zz"), "t", f"-p{password}", container.name], cwd=container.parent)
    )
    assert b"Everything is Ok" in tested, tested
    out = extract_all(container, password, tmp_path / "x")
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert manifest["kind"] == "evidence-kit/manifest"
    assert manifest["bundle_id"] == signed_bundle.result.bundle_id
    assert len(manifest["items"]) == manifest["summary"]["items"] > 0
    for member in manifest["members"]:
        content, padding = head_and_tail(out / member["name"], member["size"] - member["padding"])
        assert sha256sum_stdin(content) == member["sha256"], member["name"]
        assert padding == bytes(member["padding"])
        assert (out / member["name"]).stat().st_size == member["size"]

    files = [i for i in manifest["items"] if i["kind"] == "file"]
    assert all(i["status"] == "ok" for i in files)
    packed = [i for i in files if i["location"]["inner"] is not None]
    large = [i for i in files if i["location"]["inner"] is None]
    assert packed and large

    packs = {i["location"]["member"] for i in packed}
    for pack in sorted(packs):
        inner = tmp_path / "inner" / pack.replace("/", "_")
        listed = ok(run([require_tool("7zz"), "x", "-y", f"-o{inner}", out / pack]))
        assert b"Everything is Ok" in listed, listed
        expected = {i["location"]["inner"] for i in packed if i["location"]["member"] == pack}
        assert {p.name for p in inner.iterdir()} == expected
        assert all(re.fullmatch(r"\d{8}", name) for name in expected)
    for item in packed:
        pack_dir = tmp_path / "inner" / item["location"]["member"].replace("/", "_")
        inner_file = pack_dir / item["location"]["inner"]
        assert inner_file.name == f"{item['id']:08d}"
        digest = sha256sum(inner_file)
        assert digest == item["digests"]["sha256"], item["path"]["display"]
        assert digest == sha256sum(source_of(source, manifest, item))
    for item in large:
        member_file = out / item["location"]["member"]
        original = source_of(source, manifest, item)
        assert original.stat().st_size > SMALL_ITEM_LIMIT
        head = run(["head", "-c", str(item["stored_size"]), member_file]).stdout
        assert sha256sum_stdin(head) == sha256sum(original) == item["digests"]["sha256"]
        assert head == original.read_bytes()
        assert member_file.stat().st_size == padded_size(original.stat().st_size)


def head_and_tail(path: Path, length: int) -> tuple[bytes, bytes]:
    data = path.read_bytes()
    return data[:length], data[length:]


def test_zip_directory_shows_large_items_only_as_size_buckets(signed_bundle: Bundle) -> None:
    """A large item's member is zero-padded: the directory shows a size bucket (a multiple of
    at least 1 MiB), never a file's exact size unless that size is itself a bucket."""
    _, members = listing(signed_bundle.container)
    item_sizes = [int(m["Size"]) for m in members if m["Path"].startswith("item/")]
    assert item_sizes
    assert all(size == padded_size(size) and size % (1 << 20) == 0 for size in item_sizes)
    assert padded_size(1_500_001) == 2 << 20
    assert padded_size((1 << 30) + 1) == (1 << 30) + (1 << 23)  # 1/128 of 1 GiB above it


# ---------------------------------------------------------------- 3. a wrong password


@pytest.mark.parametrize("password", ["WRONG", secrets.token_hex(32)], ids=["word", "hex64"])
def test_7zip_refuses_a_wrong_password(
    make_bundle: MakeBundle, small_tree: Path, password: str
) -> None:
    """``7zz t -pWRONG`` exits non-zero and names every encrypted member as failed."""
    container = make_bundle(small_tree).container
    result = run([require_tool("7zz"), "t", f"-p{password}", container.name], cwd=container.parent)
    assert result.returncode != 0
    assert b"Everything is Ok" not in result.stdout
    _, members = listing(container)
    error_lines = [line for line in result.stderr.decode().splitlines() if "ERROR" in line]
    for member in members:
        if member["Encrypted"] == "+":
            assert any(line.endswith(f": {member['Path']}") for line in error_lines), (
                member["Path"],
                error_lines,
            )


# ------------------------------------------------------------- 4. signatures with openssl


def test_openssl_verifies_the_manifest_signature_from_7zip_bytes(
    signed_bundle: Bundle, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path
) -> None:
    """seal.json's signature holds over manifest.json as 7-Zip extracts it; one byte breaks it;
    the fingerprint is ``openssl pkey -pubin -outform DER | sha256sum``."""
    container = signed_bundle.container
    out = extract_all(
        container, zip_password(container, age_key.identity_file, tmp_path), tmp_path / "x"
    )
    seal = json.loads((out / "seal.json").read_bytes())
    manifest = out / "manifest.json"
    assert seal["manifest_member"] == "manifest.json"
    assert seal["manifest_sha256"] == sha256sum(manifest)
    signature = tmp_path / "sig.bin"
    signature.write_bytes(base64.b64decode(seal["signature"]["value_b64"], validate=True))

    verified = openssl_verify(signing_key.public_pem, manifest, signature)
    assert verified.returncode == 0, verified.stderr
    assert b"Signature Verified Successfully" in verified.stdout

    embedded = tmp_path / "seal.pub.pem"
    embedded.write_text(seal["signature"]["public_key_pem"])
    fingerprint = openssl_fingerprint(signing_key.public_pem)
    assert seal["signature"]["fingerprint"] == fingerprint == openssl_fingerprint(embedded)
    assert signed_bundle.result.signer_fingerprint == fingerprint

    data = manifest.read_bytes()
    for offset in (0, len(data) // 2, len(data) - 1):
        altered = tmp_path / f"manifest-{offset}.json"
        altered.write_bytes(data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :])
        refused = openssl_verify(signing_key.public_pem, altered, signature)
        assert refused.returncode != 0, offset
        assert b"Signature Verification Failure" in refused.stdout + refused.stderr


def test_openssl_verifies_custody_event_zero(
    signed_bundle: Bundle, signing_key: SigningKey, tmp_path: Path
) -> None:
    """Custody event 0's signature verifies with openssl. The recipe, for a third party:

    1. take line 0 of ``B.custody.jsonl`` and parse it as JSON;
    2. remove the ``signature`` field; base64-decode its ``value_b64`` into ``sig.bin``;
    3. serialise the rest as RFC 8785 canonical JSON (``rfc8785.dumps``) into ``event.bin``;
    4. ``openssl pkeyutl -verify -pubin -inkey officer.pub.pem -rawin -in event.bin
       -sigfile sig.bin``.
    """
    line, event = first_event(signed_bundle)
    assert rfc8785.dumps(event) == line  # the line is itself canonical
    signature = event.pop("signature")
    sig = tmp_path / "sig.bin"
    sig.write_bytes(base64.b64decode(signature["value_b64"], validate=True))
    signed = tmp_path / "event.bin"
    signed.write_bytes(rfc8785.dumps(event))

    verified = openssl_verify(signing_key.public_pem, signed, sig)
    assert verified.returncode == 0, verified.stderr
    assert b"Signature Verified Successfully" in verified.stdout
    fingerprint = openssl_fingerprint(signing_key.public_pem)
    assert signature["fingerprint"] == event["actor_key_fingerprint"] == fingerprint

    altered = dict(event, item_count=event["item_count"] + 1)
    signed.write_bytes(rfc8785.dumps(altered))
    refused = openssl_verify(signing_key.public_pem, signed, sig)
    assert refused.returncode != 0
    assert b"Signature Verification Failure" in refused.stdout + refused.stderr


# ------------------------------------------------------------------ 5. key-less check


def test_sha256sum_of_the_container_matches_custody_and_verify(
    signed_bundle: Bundle, age_key: AgeKey, cli: Callable[..., Any]
) -> None:
    """``sha256sum B.zip`` = custody event 0's container_sha256 = ``verify --json``'s."""
    digest = sha256sum(signed_bundle.container)
    _, event = first_event(signed_bundle)
    assert event["container_sha256"] == digest
    assert signed_bundle.result.container_sha256 == digest
    for key_options in ([], ["--identity", age_key.identity_file]):
        result = cli("verify", signed_bundle.container, "--json", *key_options)
        assert result.exit_code == 0, result.stdout
        report = json.loads(result.stdout)
        assert report["container_sha256"] == digest
        assert report["verdict"] == "verified"
        assert report["contents_checked"] is bool(key_options)


# --------------------------------------------------------------- 6. age-keygen identities


def age_keygen(path: Path) -> str:
    """``age-keygen -o FILE``; the recipient from its ``# public key:`` line."""
    ok(run([require_tool("age-keygen"), "-o", path]))
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("# public key: ")]
    assert len(lines) == 1, path.read_text()
    recipient = lines[0].removeprefix("# public key: ").strip()
    assert recipient.startswith("age1")
    return recipient


def cli_acquire(cli: Callable[..., Any], source: Path, out: Path, *options: str | Path) -> Any:
    return cli(
        "acquire", source, "--out", out, *options, *CASE_ARGS, "--unattended", "--quiet",
    )  # fmt: skip


@pytest.mark.parametrize("form", ["age1-string", "age-keygen-y-file"])
def test_age_keygen_recipient_and_identity_work_with_the_cli(
    small_tree: Path, cli: Callable[..., Any], tmp_path: Path, form: str
) -> None:
    """A key from ``age-keygen``: its recipient seals (as ``age1…`` or as the file
    ``age-keygen -y`` writes), its file verifies, and ``age -d -i`` opens the slot."""
    identity = tmp_path / "lab-age.txt"
    recipient = age_keygen(identity)
    argument: str | Path = recipient
    if form == "age-keygen-y-file":
        argument = tmp_path / "recipients.txt"
        argument.write_bytes(ok(run([require_tool("age-keygen"), "-y", identity])))
        assert argument.read_text().strip() == recipient
    container = tmp_path / "out" / "B.zip"
    container.parent.mkdir()
    acquired = cli_acquire(cli, small_tree, container, "--recipient", argument)
    assert acquired.exit_code == 0, acquired.stdout + acquired.stderr

    verified = cli("verify", container, "--identity", identity, "--json")
    assert verified.exit_code == 0, verified.stdout
    report = json.loads(verified.stdout)
    assert (report["verdict"], report["contents_checked"]) == ("verified", True)

    password = zip_password(container, identity, tmp_path)
    tested = ok(
        run([require_tool("7zz"), "t", f"-p{password}", container.name], cwd=container.parent)
    )
    assert b"Everything is Ok" in tested


def test_another_age_keygen_identity_opens_no_slot(
    small_tree: Path, cli: Callable[..., Any], tmp_path: Path
) -> None:
    """``age -d`` with an unrelated age-keygen identity fails; ``verify`` exits 4."""
    identity, stranger = tmp_path / "lab-age.txt", tmp_path / "stranger-age.txt"
    recipient = age_keygen(identity)
    age_keygen(stranger)
    container = tmp_path / "out" / "B.zip"
    container.parent.mkdir()
    assert cli_acquire(cli, small_tree, container, "--recipient", recipient).exit_code == 0
    slot = extract_plain(container, "keyslots/00-x25519.age", tmp_path / "slots")
    refused = run([require_tool("age"), "-d", "-i", stranger, slot])
    assert refused.returncode != 0 and refused.stdout == b""
    assert cli("verify", container, "--identity", stranger, "--json").exit_code == 4


# ------------------------------------------------------------ 7. openssl signing keys


def openssl_ed25519(folder: Path, name: str) -> tuple[Path, Path]:
    private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    ok(run([require_tool("openssl"), "genpkey", "-algorithm", "ed25519", "-out", private]))
    ok(run([require_tool("openssl"), "pkey", "-in", private, "-pubout", "-out", public]))
    return private, public


@pytest.mark.parametrize("with_key", [True, False], ids=["identity", "keyless"])
def test_openssl_made_keys_sign_and_are_trusted(
    small_tree: Path, age_key: AgeKey, cli: Callable[..., Any], tmp_path: Path, with_key: bool
) -> None:
    """``acquire --sign`` takes an ``openssl genpkey`` key; ``verify --trust`` its
    ``openssl pkey -pubout`` key (exit 0), and exits 1 for another openssl-made key."""
    private, public = openssl_ed25519(tmp_path, "officer")
    _, other_public = openssl_ed25519(tmp_path, "stranger")
    container = tmp_path / "out" / "B.zip"
    container.parent.mkdir()
    acquired = cli_acquire(
        cli, small_tree, container, "--recipient", age_key.recipient, "--sign", private, "--json"
    )
    assert acquired.exit_code == 0, acquired.stdout + acquired.stderr
    fingerprint = openssl_fingerprint(public)
    assert json.loads(acquired.stdout)["signer_fingerprint"] == fingerprint
    key_options = ["--identity", age_key.identity_file] if with_key else []

    trusted = cli("verify", container, "--trust", public, "--json", *key_options)
    assert trusted.exit_code == 0, trusted.stdout
    report = json.loads(trusted.stdout)
    assert report["verdict"] == "verified"
    assert report["findings"] == [] or all(f["severity"] == "warning" for f in report["findings"])
    if with_key:
        assert (report["seal"], report["signer_trusted"]) == ("signed", True)
        assert report["signer_fingerprint"] == fingerprint

    untrusted = cli("verify", container, "--trust", other_public, "--json", *key_options)
    assert untrusted.exit_code == 1, untrusted.stdout
    codes = {f["code"] for f in json.loads(untrusted.stdout)["findings"]}
    assert "custody-signer-untrusted" in codes
    if with_key:
        assert "manifest-signer-untrusted" in codes
