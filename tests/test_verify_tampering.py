"""Verification catches every alteration of a bundle, and names it.

Assurance given (ASSURANCE.md "Verification (the heart)", "Container and keys", "Custody"):

- a fresh bundle verifies; without a key only the container and custody are checked;
- every single-byte flip and every truncation of a small container fails verification, both
  against the real custody log and against a custody log an attacker re-wrote to match the
  altered container (the log is not encrypted, and an unsigned log can be re-written);
- each zip-level attack pyzipper lets through (swapped names, spliced members, changed
  method, shrunk or zeroed sizes, plaintext members, prefix, trailing bytes, comment,
  duplicate names, overlaps, deleted members, foreign extra fields and flags, a raised
  version, reordered members) fails with the reason code of the check that must catch it;
- a wrong identity or passphrase is "no usable key" (exit 4) and writes nothing;
- inputs that are not bundles fail cleanly (exit 1, a message, no traceback);
- the manifest signature holds under stock ``openssl``; every encrypted member is WinZip
  AES-256 AE-2 stored in both headers, salts never repeat, the bundle key appears in nothing
  the tool writes or prints, and the files it writes are mode 0600.

The zip structure is parsed here with ``struct`` on purpose, independently of
``evidence_kit.container``, so the tests do not share the code's blind spots. Each sweep and
each attack records its figure (``tests/assurance/figures.py``): tries, failures, reasons.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import struct
import subprocess
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
import pytest
import pyzipper

from evidence_kit import keys
from evidence_kit.acquire import AcquireRequest, acquire
from evidence_kit.canonical import load_record
from evidence_kit.custody import custody_log_path, event_line
from evidence_kit.errors import NoUsableKey
from evidence_kit.models import CustodyEvent, VerificationReport
from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.assurance.figures import Figures
from tests.conftest import CASE, PASSPHRASE, AgeKey, MakeBundle, SigningKey, require_tool

Cli = Callable[..., Any]

# ------------------------------------------------------------------ an independent zip parser

LOCAL = struct.Struct("<4sHHHHHIIIHH")  # 30 bytes
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # 46 bytes
EOCD = struct.Struct("<4sHHHHIIH")  # 22 bytes
# byte offsets of fields inside the fixed part of each header
L_NEEDED, L_FLAGS, L_METHOD, L_CRC, L_CSIZE, L_USIZE, L_NLEN, L_ELEN = 4, 6, 8, 14, 18, 22, 26, 28
C_MADE, C_NEEDED, C_FLAGS, C_METHOD, C_CRC, C_CSIZE, C_USIZE = 4, 6, 8, 10, 16, 20, 24
C_NLEN, C_ELEN, C_CLEN, C_IATTR, C_EATTR, C_OFFSET = 28, 30, 32, 36, 38, 42
AES_EXTRA_ID = 0x9901


@dataclass
class Member:
    """One zip member as two byte strings: local header + name + extra + data; central record."""

    local: bytes
    central: bytes

    @property
    def name(self) -> str:
        (length,) = struct.unpack_from("<H", self.central, C_NLEN)
        return self.central[CENTRAL.size : CENTRAL.size + length].decode()

    @property
    def data_start(self) -> int:
        name_len, extra_len = struct.unpack_from("<HH", self.local, L_NLEN)
        return LOCAL.size + int(name_len) + int(extra_len)

    @property
    def data(self) -> bytes:
        return self.local[self.data_start :]

    def local_extra(self) -> dict[int, tuple[int, bytes]]:
        name_len, extra_len = struct.unpack_from("<HH", self.local, L_NLEN)
        return _extras(self.local, LOCAL.size + name_len, extra_len)

    def central_extra(self) -> dict[int, tuple[int, bytes]]:
        name_len, extra_len = struct.unpack_from("<HH", self.central, C_NLEN)
        return _extras(self.central, CENTRAL.size + name_len, extra_len)


def _extras(blob: bytes, start: int, length: int) -> dict[int, tuple[int, bytes]]:
    """extra id -> (offset of its body within ``blob``, body)."""
    found: dict[int, tuple[int, bytes]] = {}
    pos = start
    while pos < start + length:
        ident, size = struct.unpack_from("<HH", blob, pos)
        found[ident] = (pos + 4, blob[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return found


def split_zip(data: bytes) -> list[Member]:
    """The members of a container as this tool writes it (no ZIP64, no comment, no gaps)."""
    sig, _d, _cd, _n_disk, count, cd_size, cd_offset, comment_len = EOCD.unpack(data[-EOCD.size :])
    assert sig == b"PK\x05\x06" and comment_len == 0 and cd_offset + cd_size == len(data) - 22
    members = []
    pos = cd_offset
    for _ in range(count):
        fields = CENTRAL.unpack_from(data, pos)
        name_len, extra_len, comment_len = fields[10], fields[11], fields[12]
        end = pos + CENTRAL.size + name_len + extra_len + comment_len
        central = data[pos:end]
        offset, csize = fields[16], fields[8]
        local_name_len, local_extra_len = struct.unpack_from("<HH", data, offset + L_NLEN)
        local_end = offset + LOCAL.size + local_name_len + local_extra_len + csize
        members.append(Member(data[offset:local_end], central))
        pos = end
    assert sum(len(m.local) for m in members) == cd_offset  # back to back from offset 0
    return members


def join_zip(members: list[Member], *, comment: bytes = b"", prefix: bytes = b"") -> bytes:
    """Reassemble members into a zip, pointing every central record at its local header."""
    body = bytearray(prefix)
    directory = bytearray()
    for member in members:
        central = bytearray(member.central)
        struct.pack_into("<I", central, C_OFFSET, len(body))
        body += member.local
        directory += central
    eocd = EOCD.pack(
        b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), len(body), len(comment)
    )
    return bytes(body + directory + eocd + comment)


def patch(blob: bytes, offset: int, fmt: str, value: int | bytes) -> bytes:
    out = bytearray(blob)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def renamed(member: Member, name: str) -> Member:
    """The member under another name, in both headers (lengths adjusted)."""
    raw = name.encode()
    old_local_len, _extra_len = struct.unpack_from("<HH", member.local, L_NLEN)
    local = patch(member.local[: LOCAL.size], L_NLEN, "<H", len(raw))
    local += raw + member.local[LOCAL.size + old_local_len :]
    (old_central_len,) = struct.unpack_from("<H", member.central, C_NLEN)
    central = patch(member.central[: CENTRAL.size], C_NLEN, "<H", len(raw))
    central += raw + member.central[CENTRAL.size + old_central_len :]
    return Member(local, central)


def with_fields(
    member: Member, *, local: dict[int, tuple[str, int]], central: dict[int, tuple[str, int]]
) -> Member:
    """Patch header fields: {offset: (struct format, value)} in each header."""
    local_blob, central_blob = member.local, member.central
    for offset, (fmt, value) in local.items():
        local_blob = patch(local_blob, offset, fmt, value)
    for offset, (fmt, value) in central.items():
        central_blob = patch(central_blob, offset, fmt, value)
    return Member(local_blob, central_blob)


def with_aes_extra(member: Member, version: int, strength: int, method: int) -> Member:
    """The WinZip AES extra (0x9901) set to other parameters, in both headers alike."""
    body = struct.pack("<H2sBH", version, b"AE", strength, method)
    local_offset, _ = member.local_extra()[AES_EXTRA_ID]
    central_offset, _ = member.central_extra()[AES_EXTRA_ID]
    return Member(
        patch(member.local, local_offset, "7s", body),
        patch(member.central, central_offset, "7s", body),
    )


def by_name(members: list[Member], name: str) -> int:
    return next(i for i, m in enumerate(members) if m.name == name)


# ------------------------------------------------------------------------- bundles and helpers


@dataclass(frozen=True)
class Built:
    """A bundle built once per module; tests work on copies of its bytes."""

    container: bytes
    log: bytes
    bundle_id: str


def build(folder: Path, sources: list[Path], age_key: AgeKey, **options: Any) -> Built:
    output = folder / "built.zip"
    options.setdefault("recipients", [pyrage.x25519.Recipient.from_str(age_key.recipient)])
    result = acquire(AcquireRequest(sources=sources, output=output, case=CASE, **options))
    return Built(output.read_bytes(), custody_log_path(output).read_bytes(), result.bundle_id)


def place(built: Built, folder: Path, data: bytes | None = None, *, forge: bool = False) -> Path:
    """Write a copy (or ``data``) as ``folder/B.zip`` with its log; ``forge`` re-writes the log
    so that it records the SHA-256 of ``data``, as an attacker would."""
    folder.mkdir(parents=True, exist_ok=True)
    container = folder / "B.zip"
    container.write_bytes(built.container if data is None else data)
    custody_log_path(container).write_bytes(built.log)
    if forge:
        forge_log(container)
    return container


PLACEHOLDER = "X" * 64


def forged_template(log: bytes) -> bytes:
    """Event 0 as an attacker re-writes it: unsigned, container SHA-256 left to fill in."""
    first = load_record(CustodyEvent, log.split(b"\n")[0])
    forged = first.model_copy(
        update={"container_sha256": PLACEHOLDER, "signature": None, "actor_key_fingerprint": None}
    )
    line = event_line(forged)
    assert line.count(PLACEHOLDER.encode()) == 1
    return line


def forge_log(container: Path, template: bytes | None = None) -> None:
    """Re-write the log as event 0 alone, unsigned, with the container's current SHA-256
    (a hex digest replaces the placeholder: the line stays RFC 8785 canonical)."""
    log = custody_log_path(container)
    line = template if template is not None else forged_template(log.read_bytes())
    digest = hashlib.sha256(container.read_bytes()).hexdigest()
    log.write_bytes(line.replace(PLACEHOLDER.encode(), digest.encode()))


def verify(container: Path, age_key: AgeKey | None, **options: Any) -> VerificationReport:
    key = age_key.material if age_key is not None else None
    return verify_bundle(VerifyRequest(container, key=key, **options))


def errors(report: VerificationReport) -> set[str]:
    return {f.code for f in report.findings if f.severity == "error"}


def no_traceback(result: Any) -> None:
    assert "Traceback" not in result.output
    assert "internal error" not in result.output


def tiny_sources(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.txt").write_bytes(b"alpha\n")
    (folder / "b.txt").write_bytes(b"bravo\n")
    return [folder / "a.txt", folder / "b.txt"]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, age_key: AgeKey) -> Built:
    """One tiny file, unsigned: a container of about 4 KB with every kind of member but
    item/ (the flip sweeps use it; each byte costs one full verification, about 8 ms)."""
    folder = tmp_path_factory.mktemp("small")
    return build(folder, tiny_sources(folder / "src")[:1], age_key)


BIG = (1 << 20) + 1  # one byte over the pack limit: its own item member


def big_sources(folder: Path, seed: bytes) -> list[Path]:
    """Two equal-size large files (two item members) and two tiny ones (one pack)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(2):
        path = folder / f"big{index}.bin"
        block = hashlib.sha256(seed + bytes([index])).digest()
        path.write_bytes((block * (BIG // 32 + 1))[:BIG])
        paths.append(path)
    for index, text in enumerate([b"tiny one\n", b"tiny two\n"]):
        path = folder / f"tiny{index}.txt"
        path.write_bytes(seed + text)
        paths.append(path)
    return paths


FIXED_KEY = keys.BundleKey(bytes(range(32)))


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory, age_key: AgeKey) -> tuple[Built, Built]:
    """Two bundles of the same shape and different content under ONE bundle key
    (``BundleKey.generate`` patched), so members can be spliced between them."""
    folder = tmp_path_factory.mktemp("twins")
    with pytest.MonkeyPatch.context() as patcher:
        patcher.setattr(keys.BundleKey, "generate", classmethod(lambda cls: FIXED_KEY))
        first = build(folder / "one", big_sources(folder / "one" / "src", b"1"), age_key)
        second = build(folder / "two", big_sources(folder / "two" / "src", b"2"), age_key)
    return first, second


@pytest.fixture(scope="module")
def shaped(twins: tuple[Built, Built]) -> Built:
    return twins[0]


# ------------------------------------------------------------------------------ 1. baseline


def test_fresh_signed_bundle_verifies_with_trusted_signer(
    make_bundle: MakeBundle, small_tree: Path, age_key: AgeKey, signing_key: SigningKey
) -> None:
    bundle = make_bundle(small_tree, signing_key=signing_key.key)
    trusted = [signing_key.key.public_key()]
    report = verify(bundle.container, age_key, trusted=trusted)
    assert report.verdict == "verified", report.findings
    assert report.seal == "signed"
    assert report.signer_trusted is True
    assert report.contents_checked
    assert report.signer_fingerprint == keys.fingerprint(signing_key.key.public_key())
    assert report.items_checked == bundle.result.summary.files  # every stored file
    assert not errors(report)


def test_without_key_container_and_custody_checked_contents_not(
    make_bundle: MakeBundle, small_tree: Path
) -> None:
    bundle = make_bundle(small_tree)
    report = verify(bundle.container, None)
    assert report.verdict == "verified", report.findings
    assert report.contents_checked is False
    assert report.seal == "not-checked"
    assert report.container_sha256 == bundle.result.container_sha256
    assert report.bundle_id == bundle.result.bundle_id


# ------------------------------------------------------------------- 2. byte flips, truncation


@dataclass(frozen=True)
class Sweep:
    size: int
    outcomes: dict[int, str]  # offset -> "failed:code,code" | "verified" | "raised:Name"
    key_slot_data: frozenset[int]

    def where(self, predicate: Callable[[str], bool]) -> list[int]:
        return [offset for offset, outcome in self.outcomes.items() if predicate(outcome)]

    def record(self, figures: Figures, name: str, note: str) -> None:
        """The figure: every offset tried, those that failed verification, the reasons."""
        record_outcomes(figures, name, list(self.outcomes.values()), note)


def record_outcomes(figures: Figures, name: str, outcomes: list[str], note: str) -> None:
    """One try per outcome; each reason code counts the tries it was reported in ("verified"
    and "raised:Name" count as reasons too, so an undetected try shows in the figure)."""
    reasons = [
        reason
        for outcome in outcomes
        for reason in (
            outcome.split(":", 1)[1].split(",") if outcome.startswith("failed:") else [outcome]
        )
    ]
    detected = sum(1 for outcome in outcomes if outcome.startswith("failed:"))
    figures.record(name, len(outcomes), detected, reasons, note=note)


def _outcome(container: Path, age_key: AgeKey) -> str:
    try:
        report = verify(container, age_key)
    except NoUsableKey:
        return "raised:NoUsableKey"
    except Exception as error:  # any escape is a finding of the sweep, reported by offset
        return f"raised:{type(error).__name__}"
    if report.verdict == "verified":
        return "verified"
    return "failed:" + ",".join(sorted(errors(report)))


def _key_slot_data(data: bytes) -> frozenset[int]:
    """Offsets of the key slots' data (age files, stored in the clear)."""
    slots: set[int] = set()
    offset = 0
    for member in split_zip(data):
        if member.name.startswith("keyslots/"):
            start = offset + member.data_start
            slots |= set(range(start, start + len(member.data)))
        offset += len(member.local)
    return frozenset(slots)


def run_sweep(built: Built, folder: Path, age_key: AgeKey, mask: int, *, forge: bool) -> Sweep:
    container = place(built, folder)
    template = forged_template(built.log)
    outcomes = {}
    for offset in range(len(built.container)):
        flipped = bytearray(built.container)
        flipped[offset] ^= mask
        container.write_bytes(flipped)
        if forge:
            forge_log(container, template)
        outcomes[offset] = _outcome(container, age_key)
    return Sweep(len(built.container), outcomes, _key_slot_data(built.container))


@pytest.fixture(scope="module")
def sweep_ff(tmp_path_factory: pytest.TempPathFactory, small: Built, age_key: AgeKey) -> Sweep:
    return run_sweep(small, tmp_path_factory.mktemp("ff"), age_key, 0xFF, forge=False)


@pytest.fixture(scope="module")
def sweep_ff_forged(
    tmp_path_factory: pytest.TempPathFactory, small: Built, age_key: AgeKey
) -> Sweep:
    return run_sweep(small, tmp_path_factory.mktemp("ff-forged"), age_key, 0xFF, forge=True)


def test_sweep_container_is_small(small: Built) -> None:
    """The sweeps below cover every byte of a container of a few KB with four members."""
    assert 2_000 < len(small.container) < 6_000
    assert [m.name for m in split_zip(small.container)] == [
        "keyslots/00-x25519.age",
        "pack/000001",
        "manifest.json",
        "seal.json",
    ]


SWEEP_NOTE = "small unsigned bundle ({size:,} bytes, 4 members), verified with the key"
FORGED_NOTE = SWEEP_NOTE + "; custody log re-written to record the altered container's SHA-256"


def test_every_byte_flip_fails_against_the_custody_log(sweep_ff: Sweep, figures: Figures) -> None:
    """0xFF at each offset, log untouched, key given: always failed, hash mismatch named,
    never NoUsableKey (an unusable slot on an altered container is a finding)."""
    sweep_ff.record(
        figures,
        "small container: every byte flip (0xff), custody log untouched",
        SWEEP_NOTE.format(size=sweep_ff.size),
    )
    assert len(sweep_ff.outcomes) == sweep_ff.size
    not_failed = sweep_ff.where(lambda o: not o.startswith("failed:"))
    assert not_failed == [], {o: sweep_ff.outcomes[o] for o in not_failed[:20]}
    unnamed = sweep_ff.where(lambda o: "custody-container-hash-mismatch" not in o)
    assert unnamed == []


def test_every_byte_flip_never_verifies_with_a_forged_log(sweep_ff_forged: Sweep) -> None:
    verified = sweep_ff_forged.where(lambda o: o == "verified")
    assert verified == []


def test_every_byte_flip_with_a_forged_log_is_a_failure_not_a_key_problem(
    sweep_ff_forged: Sweep,
) -> None:
    """Nothing escapes verify_bundle, NoUsableKey included: a flipped key slot byte is a
    damaged slot (its CRC fails), reported as such, not a wrong key."""
    raised = sweep_ff_forged.where(lambda o: o.startswith("raised:"))
    assert raised == [], {o: sweep_ff_forged.outcomes[o] for o in raised[:20]}
    for offset in sweep_ff_forged.key_slot_data:
        assert "key-slot-corrupt" in sweep_ff_forged.outcomes[offset], offset


def test_every_byte_flip_fails_with_a_forged_log(sweep_ff_forged: Sweep, figures: Figures) -> None:
    """Every flip fails verification even when the custody log was re-written to match the
    altered container: the contents checks catch each one, header bytes included (versions,
    attributes: ``zip-header-fields``)."""
    sweep = sweep_ff_forged
    sweep.record(
        figures,
        "small container: every byte flip (0xff), custody log forged",
        FORGED_NOTE.format(size=sweep.size),
    )
    not_failed = sweep.where(lambda o: not o.startswith("failed:"))
    assert not_failed == [], {o: sweep.outcomes[o] for o in not_failed[:20]}
    assert sweep.where(lambda o: "custody-container-hash-mismatch" in o) == []  # forgery holds


@pytest.mark.parametrize("forge", [False, True], ids=["log-untouched", "log-forged"])
def test_every_truncation_fails(
    small: Built, tmp_path: Path, age_key: AgeKey, forge: bool, figures: Figures
) -> None:
    container = place(small, tmp_path)
    template = forged_template(small.log)
    outcomes = {}
    for length in range(len(small.container)):
        container.write_bytes(small.container[:length])
        if forge:
            forge_log(container, template)
        outcomes[length] = _outcome(container, age_key)
    record_outcomes(
        figures,
        f"small container: every truncation, custody log {'forged' if forge else 'untouched'}",
        list(outcomes.values()),
        (FORGED_NOTE if forge else SWEEP_NOTE).format(size=len(small.container))
        + "; lengths 0 to size - 1",
    )
    bad = {n: o for n, o in outcomes.items() if not o.startswith("failed:")}
    assert bad == {}


@pytest.fixture(scope="module")
def sweep_01(tmp_path_factory: pytest.TempPathFactory, small: Built, age_key: AgeKey) -> Sweep:
    return run_sweep(small, tmp_path_factory.mktemp("01"), age_key, 0x01, forge=False)


@pytest.fixture(scope="module")
def sweep_01_forged(
    tmp_path_factory: pytest.TempPathFactory, small: Built, age_key: AgeKey
) -> Sweep:
    return run_sweep(small, tmp_path_factory.mktemp("01-forged"), age_key, 0x01, forge=True)


@pytest.mark.slow
def test_every_low_bit_flip_fails_against_the_custody_log(
    sweep_01: Sweep, figures: Figures
) -> None:
    sweep_01.record(
        figures,
        "small container: every byte flip (0x01), custody log untouched",
        SWEEP_NOTE.format(size=sweep_01.size),
    )
    not_failed = sweep_01.where(lambda o: not o.startswith("failed:"))
    assert not_failed == [], {o: sweep_01.outcomes[o] for o in not_failed[:20]}


@pytest.mark.slow
def test_every_low_bit_flip_fails_with_a_forged_log(
    sweep_01_forged: Sweep, figures: Figures
) -> None:
    sweep_01_forged.record(
        figures,
        "small container: every byte flip (0x01), custody log forged",
        FORGED_NOTE.format(size=sweep_01_forged.size),
    )
    not_failed = sweep_01_forged.where(lambda o: not o.startswith("failed:"))
    assert not_failed == [], {o: sweep_01_forged.outcomes[o] for o in not_failed[:20]}


# ------------------------------------------------------------------------ 3. zip attacks


def attack(
    built: Built,
    folder: Path,
    age_key: AgeKey,
    change: Callable[[list[Member]], list[Member] | bytes],
    figures: Figures,
    name: str,
) -> VerificationReport:
    """Apply ``change``, forge the log to match, verify with the key; record the figure
    "zip attack: ``name``" (one try, the reason codes found)."""
    members = split_zip(built.container)
    changed = change(members)
    data = changed if isinstance(changed, bytes) else join_zip(changed)
    assert data != built.container
    container = place(built, folder, data, forge=True)
    report = verify(container, age_key)
    figures.record(
        f"zip attack: {name}",
        1,
        int(report.verdict == "failed"),
        sorted(errors(report)),
        note="custody log re-written to match; verified with the key",
    )
    assert report.verdict == "failed"
    assert "custody-container-hash-mismatch" not in errors(report)  # the forgery holds
    return report


def test_reassembling_unchanged_members_gives_the_same_bytes(shaped: Built) -> None:
    """The attack tooling itself is exact (so every failure below is the attack's)."""
    assert join_zip(split_zip(shaped.container)) == shaped.container


def test_forged_log_alone_verifies(shaped: Built, tmp_path: Path, age_key: AgeKey) -> None:
    """A re-written log over an unchanged container passes: the attacks below are caught by
    the deeper checks, not by the forgery itself."""
    container = place(shaped, tmp_path, forge=True)
    assert verify(container, age_key).verdict == "verified"


def test_swapped_item_member_names_fail(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    def swap(members: list[Member]) -> list[Member]:
        one, two = by_name(members, "item/000001"), by_name(members, "item/000002")
        assert len(members[one].data) == len(members[two].data)
        members[one], members[two] = (
            renamed(members[one], "item/000002"),
            renamed(members[two], "item/000001"),
        )
        return members

    report = attack(shaped, tmp_path, age_key, swap, figures, "swap two item members' names")
    assert {"member-digest-mismatch", "item-digest-mismatch"} <= errors(report)


def test_swapped_item_and_pack_names_fail(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    def swap(members: list[Member]) -> list[Member]:
        item, pack = by_name(members, "item/000001"), by_name(members, "pack/000001")
        members[item], members[pack] = (
            renamed(members[item], "pack/000001"),
            renamed(members[pack], "item/000001"),
        )
        return members

    report = attack(
        shaped, tmp_path, age_key, swap, figures, "swap an item member's and a pack's names"
    )
    assert "member-size-mismatch" in errors(report)


@pytest.mark.parametrize("name", ["item/000001", "pack/000001"])
def test_member_spliced_from_a_bundle_with_the_same_key_fails(
    twins: tuple[Built, Built], tmp_path: Path, age_key: AgeKey, name: str, figures: Figures
) -> None:
    first, second = twins
    donor = split_zip(second.container)[by_name(split_zip(second.container), name)]

    def splice(members: list[Member]) -> list[Member]:
        index = by_name(members, name)
        assert len(donor.local) == len(members[index].local)
        members[index] = donor
        return members

    report = attack(
        first,
        tmp_path,
        age_key,
        splice,
        figures,
        "splice in a member from a bundle with the same key",
    )
    assert "member-digest-mismatch" in errors(report)
    assert "member-authentication-failed" not in errors(report)  # it decrypts: same key
    if name.startswith("item/"):
        assert "item-digest-mismatch" in errors(report)


def test_spliced_member_decrypts_with_the_shared_key(
    twins: tuple[Built, Built], tmp_path: Path, age_key: AgeKey
) -> None:
    """The twin bundles really share one key (else the splice test proves less)."""
    for index, built in enumerate(twins):
        container = place(built, tmp_path / str(index))
        assert verify(container, age_key).verdict == "verified"
    assert twins[0].container != twins[1].container


@pytest.mark.parametrize(
    ("name", "code"),
    [("pack/000001", "zip-plaintext-member"), ("manifest.json", "zip-plaintext-member")],
)
def test_compression_method_changed_in_both_headers_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, name: str, code: str, figures: Figures
) -> None:
    def stored(members: list[Member]) -> list[Member]:
        index = by_name(members, name)
        members[index] = with_fields(
            members[index], local={L_METHOD: ("<H", 0)}, central={C_METHOD: ("<H", 0)}
        )
        return members

    assert code in errors(
        attack(shaped, tmp_path, age_key, stored, figures, "change a member's compression method")
    )


@pytest.mark.parametrize(
    ("version", "strength", "method"),
    [(2, 3, 8), (1, 3, 0), (2, 1, 0), (2, 2, 0)],
    ids=["deflate-inside", "AE-1", "AES-128", "AES-192"],
)
def test_aes_parameters_changed_in_both_headers_fail(
    shaped: Built,
    tmp_path: Path,
    age_key: AgeKey,
    version: int,
    strength: int,
    method: int,
    figures: Figures,
) -> None:
    def weaken(members: list[Member]) -> list[Member]:
        index = by_name(members, "pack/000001")
        members[index] = with_aes_extra(members[index], version, strength, method)
        return members

    assert "zip-aes-parameters" in errors(
        attack(
            shaped,
            tmp_path,
            age_key,
            weaken,
            figures,
            "change the AES strength, version or inner method",
        )
    )


def test_shrunk_plain_size_in_both_headers_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    def shrink(members: list[Member]) -> list[Member]:
        index = by_name(members, "item/000001")
        (size,) = struct.unpack_from("<I", members[index].central, C_USIZE)
        members[index] = with_fields(
            members[index],
            local={L_USIZE: ("<I", size - 1)},
            central={C_USIZE: ("<I", size - 1)},
        )
        return members

    assert "zip-size-mismatch" in errors(
        attack(shaped, tmp_path, age_key, shrink, figures, "shrink a member's plain size")
    )


def test_shrunk_member_with_both_sizes_and_data_cut_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    """Sizes consistent with each other and the layout: only decryption can tell."""

    def cut(members: list[Member]) -> list[Member]:
        index = by_name(members, "item/000001")
        member = members[index]
        (csize,) = struct.unpack_from("<I", member.central, C_CSIZE)
        (usize,) = struct.unpack_from("<I", member.central, C_USIZE)
        shorter = with_fields(
            member,
            local={L_CSIZE: ("<I", csize - 16), L_USIZE: ("<I", usize - 16)},
            central={C_CSIZE: ("<I", csize - 16), C_USIZE: ("<I", usize - 16)},
        )
        # drop 16 bytes of ciphertext, keep the trailing MAC where a reader looks for it
        members[index] = Member(shorter.local[:-26] + shorter.local[-10:], shorter.central)
        return members

    found = errors(
        attack(shaped, tmp_path, age_key, cut, figures, "shrink a member's sizes and cut its data")
    )
    assert found & {"member-size-mismatch", "member-authentication-failed"}


@pytest.mark.parametrize(
    ("local", "central", "cut", "expected"),
    [
        ({L_USIZE: ("<I", 0)}, {C_USIZE: ("<I", 0)}, False, {"zip-size-mismatch"}),
        ({L_CSIZE: ("<I", 0)}, {C_CSIZE: ("<I", 0)}, False, {"zip-size-mismatch", "zip-gap"}),
        (
            {L_CSIZE: ("<I", 0), L_USIZE: ("<I", 0)},
            {C_CSIZE: ("<I", 0), C_USIZE: ("<I", 0)},
            False,
            {"zip-size-mismatch", "zip-gap"},
        ),
        (
            {L_CSIZE: ("<I", 0), L_USIZE: ("<I", 0)},
            {C_CSIZE: ("<I", 0), C_USIZE: ("<I", 0)},
            True,
            {"zip-size-mismatch", "member-size-mismatch"},
        ),
        ({}, {C_USIZE: ("<I", 0), C_CSIZE: ("<I", 0)}, False, {"zip-local-header-mismatch"}),
    ],
    ids=["plain-size", "encrypted-size", "both-sizes", "both-sizes-data-dropped", "central-only"],
)
def test_zeroed_member_size_fails(
    shaped: Built,
    tmp_path: Path,
    age_key: AgeKey,
    figures: Figures,
    local: dict[int, tuple[str, int]],
    central: dict[int, tuple[str, int]],
    cut: bool,
    expected: set[str],
) -> None:
    """A size set to zero, in one header or both; with ``cut`` the member's data is
    dropped too, so the layout is consistent and only the manifest can tell."""

    def zero(members: list[Member]) -> list[Member]:
        index = by_name(members, "item/000001")
        zeroed = with_fields(members[index], local=local, central=central)
        members[index] = (
            Member(zeroed.local[: zeroed.data_start], zeroed.central) if cut else zeroed
        )
        return members

    report = attack(shaped, tmp_path, age_key, zero, figures, "zero a member's size")
    assert expected <= errors(report)


def with_extra_field(member: Member, *, local: bool, central: bool) -> Member:
    """The member with an empty extra field of a foreign id (0xCAFE) added to its headers."""
    extra = struct.pack("<HH", 0xCAFE, 0)
    local_blob, central_blob = member.local, member.central
    if local:
        name_len, extra_len = struct.unpack_from("<HH", local_blob, L_NLEN)
        end = LOCAL.size + name_len + extra_len
        local_blob = patch(local_blob[:end] + extra + local_blob[end:], L_ELEN, "<H", extra_len + 4)
    if central:
        name_len, extra_len = struct.unpack_from("<HH", central_blob, C_NLEN)
        end = CENTRAL.size + name_len + extra_len
        central_blob = patch(
            central_blob[:end] + extra + central_blob[end:], C_ELEN, "<H", extra_len + 4
        )
    return Member(local_blob, central_blob)


@pytest.mark.parametrize(
    ("name", "local", "central"),
    [
        ("pack/000001", True, False),
        ("pack/000001", False, True),
        ("pack/000001", True, True),
        ("keyslots/00-x25519.age", True, True),
    ],
    ids=["local", "central", "both", "key-slot-both"],
)
def test_added_extra_field_fails(
    shaped: Built,
    tmp_path: Path,
    age_key: AgeKey,
    figures: Figures,
    name: str,
    local: bool,
    central: bool,
) -> None:
    """An extra field pyzipper ignores, the offsets adjusted: the member still decrypts."""

    def add(members: list[Member]) -> list[Member]:
        index = by_name(members, name)
        members[index] = with_extra_field(members[index], local=local, central=central)
        return members

    report = attack(shaped, tmp_path, age_key, add, figures, "add an extra field to a header")
    assert "zip-extra-malformed" in errors(report)


def test_utf8_name_flag_set_in_both_headers_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    """Names are ASCII: the writer never sets general-purpose bit 11."""

    def flag(members: list[Member]) -> list[Member]:
        index = by_name(members, "pack/000001")
        (flags,) = struct.unpack_from("<H", members[index].central, C_FLAGS)
        members[index] = with_fields(
            members[index],
            local={L_FLAGS: ("<H", flags | 0x800)},
            central={C_FLAGS: ("<H", flags | 0x800)},
        )
        return members

    report = attack(shaped, tmp_path, age_key, flag, figures, "set the UTF-8 name flag")
    assert "zip-flags" in errors(report)


@pytest.mark.parametrize("version", [45, 63])
def test_local_version_needed_raised_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures, version: int
) -> None:
    """4.5 belongs beside a ZIP64 extra only; this member has none."""

    def raise_version(members: list[Member]) -> list[Member]:
        index = by_name(members, "pack/000001")
        members[index] = with_fields(members[index], local={L_NEEDED: ("<H", version)}, central={})
        return members

    report = attack(
        shaped, tmp_path, age_key, raise_version, figures, "raise a local version needed"
    )
    assert errors(report) == {"zip-header-fields"}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("item/000001", "pack/000001"),
        ("item/000001", "item/000002"),
        ("manifest.json", "seal.json"),
    ],
)
def test_reordered_members_fail(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures, first: str, second: str
) -> None:
    """Two whole members change places, offsets adjusted: every byte still authenticates,
    but this is not the container that was written."""

    def reorder(members: list[Member]) -> list[Member]:
        one, two = by_name(members, first), by_name(members, second)
        members[one], members[two] = members[two], members[one]
        return members

    report = attack(shaped, tmp_path, age_key, reorder, figures, "reorder members")
    assert errors(report) == {"member-order"}


def test_added_plaintext_member_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    """A stored, unencrypted member appended with the standard library's zipfile."""

    def append(members: list[Member]) -> bytes:
        buffer = io.BytesIO(join_zip(members))
        with zipfile.ZipFile(buffer, "a") as archive:
            archive.writestr("item/000009", b"planted evidence\n")
        return buffer.getvalue()

    found = errors(attack(shaped, tmp_path, age_key, append, figures, "add a plaintext member"))
    assert {"zip-plaintext-member", "member-unexpected"} <= found


def test_added_plaintext_key_slot_named_member_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    """Key slots are the one stored kind: an extra one is still not in the manifest."""

    def append(members: list[Member]) -> bytes:
        buffer = io.BytesIO(join_zip(members))
        with zipfile.ZipFile(buffer, "a") as archive:
            archive.writestr("keyslots/09-x25519.age", b"age-encryption.org/v1\n")
        return buffer.getvalue()

    assert "member-unexpected" in errors(
        attack(
            shaped, tmp_path, age_key, append, figures, "add a plaintext member named as a key slot"
        )
    )


def test_prepended_bytes_fail(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    report = attack(
        shaped,
        tmp_path,
        age_key,
        lambda m: b"MZ" + bytes(62) + join_zip(m),
        figures,
        "prepend bytes",
    )
    assert "zip-prefix" in errors(report)


def test_prepended_bytes_with_offsets_adjusted_fail(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    """As `zip -A` would leave it: every directory offset moved past the prefix."""
    prefix = b"#!/bin/sh\nexit 0\n"
    report = attack(
        shaped,
        tmp_path,
        age_key,
        lambda m: join_zip(m, prefix=prefix),
        figures,
        "prepend bytes, directory offsets adjusted",
    )
    found = errors(report)
    assert found & {"zip-prefix", "zip-gap"}


def test_appended_bytes_fail(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    report = attack(
        shaped, tmp_path, age_key, lambda m: join_zip(m) + b"\x00trailer", figures, "append bytes"
    )
    assert "zip-trailing-bytes" in errors(report)


def test_zip_comment_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    report = attack(
        shaped,
        tmp_path,
        age_key,
        lambda m: join_zip(m, comment=b"hello"),
        figures,
        "add a zip comment",
    )
    assert errors(report) & {"zip-comment", "zip-trailing-bytes"}


def test_zip_comment_is_reported_as_a_comment(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    report = attack(
        shaped,
        tmp_path,
        age_key,
        lambda m: join_zip(m, comment=b"hello"),
        figures,
        "add a zip comment",
    )
    assert errors(report) == {"zip-comment"}


def test_comment_length_without_comment_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    def lying_length(members: list[Member]) -> bytes:
        data = join_zip(members)
        return patch(data, len(data) - 2, "<H", 5)

    assert "zip-comment" in errors(
        attack(
            shaped, tmp_path, age_key, lying_length, figures, "set a comment length with no comment"
        )
    )


def test_duplicate_member_name_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    def duplicate(members: list[Member]) -> list[Member]:
        index = by_name(members, "item/000002")
        members[index] = renamed(members[index], "item/000001")
        return members

    found = errors(attack(shaped, tmp_path, age_key, duplicate, figures, "duplicate a member name"))
    assert "zip-duplicate-name" in found
    assert "member-missing" in found


def test_duplicated_member_copy_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    """The same member twice (a second copy appended before the manifest)."""

    def copy(members: list[Member]) -> list[Member]:
        index = by_name(members, "pack/000001")
        members.insert(index + 1, members[index])
        return members

    assert "zip-duplicate-name" in errors(
        attack(shaped, tmp_path, age_key, copy, figures, "duplicate a member (a second copy)")
    )


def test_overlapping_members_fail(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    """The seal's central record points at the manifest's local header."""

    def overlap(members: list[Member]) -> bytes:
        data = bytearray(join_zip(members))
        layout = split_zip(bytes(data))
        manifest_offset = sum(len(m.local) for m in layout[: by_name(layout, "manifest.json")])
        directory = sum(len(m.local) for m in layout)
        for member in layout:
            if member.name == "seal.json":
                struct.pack_into("<I", data, directory + C_OFFSET, manifest_offset)
            directory += len(member.central)
        return bytes(data)

    assert "zip-overlap" in errors(
        attack(shaped, tmp_path, age_key, overlap, figures, "make two members overlap")
    )


def test_deleted_seal_is_unsealed_and_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    report = attack(
        shaped,
        tmp_path,
        age_key,
        lambda m: [x for x in m if x.name != "seal.json"],
        figures,
        "delete the seal",
    )
    assert report.seal == "unsealed"
    assert {"unsealed", "member-missing"} <= errors(report)


@pytest.mark.parametrize("name", ["item/000002", "pack/000001", "manifest.json"])
def test_deleted_member_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, name: str, figures: Figures
) -> None:
    report = attack(
        shaped,
        tmp_path,
        age_key,
        lambda m: [x for x in m if x.name != name],
        figures,
        "delete a member",
    )
    expected = "manifest-missing" if name == "manifest.json" else "member-missing"
    assert expected in errors(report)


def test_local_name_differing_from_central_fails(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    def rename_local(members: list[Member]) -> list[Member]:
        index = by_name(members, "item/000001")
        local = members[index].local.replace(b"item/000001", b"item/000002", 1)
        members[index] = Member(local, members[index].central)
        return members

    assert "zip-local-header-mismatch" in errors(
        attack(
            shaped,
            tmp_path,
            age_key,
            rename_local,
            figures,
            "rename a member in its local header only",
        )
    )


@pytest.mark.parametrize("name", ["pack/000001", "item/000001", "manifest.json", "seal.json"])
def test_flipped_ciphertext_byte_fails_authentication(
    shaped: Built, tmp_path: Path, age_key: AgeKey, name: str, figures: Figures
) -> None:
    def flip(members: list[Member]) -> list[Member]:
        index = by_name(members, name)
        member = members[index]
        middle = member.data_start + 16 + 2 + (len(member.data) - 28) // 2
        local = bytearray(member.local)
        local[middle] ^= 0x20
        members[index] = Member(bytes(local), member.central)
        return members

    assert "member-authentication-failed" in errors(
        attack(shaped, tmp_path, age_key, flip, figures, "flip a ciphertext byte")
    )


@pytest.mark.parametrize("headers", ["central", "both"])
def test_cleared_encrypted_flag_fails_cleanly(
    shaped: Built, tmp_path: Path, age_key: AgeKey, cli: Cli, headers: str, figures: Figures
) -> None:
    def clear(members: list[Member]) -> list[Member]:
        index = by_name(members, "pack/000001")
        (flags,) = struct.unpack_from("<H", members[index].central, C_FLAGS)
        local = {L_FLAGS: ("<H", flags & ~1)} if headers == "both" else {}
        members[index] = with_fields(
            members[index], local=local, central={C_FLAGS: ("<H", flags & ~1)}
        )
        return members

    found = errors(attack(shaped, tmp_path, age_key, clear, figures, "clear the encrypted flag"))
    assert found & {"zip-local-header-mismatch", "zip-plaintext-member"}
    result = cli("verify", tmp_path / "B.zip", "--identity", age_key.identity_file)
    no_traceback(result)
    assert result.exit_code == 1


def test_altered_key_slot_with_forged_log_is_a_verification_failure(
    shaped: Built, tmp_path: Path, age_key: AgeKey, cli: Cli, figures: Figures
) -> None:
    """A damaged key slot is tampering (exit 1), not a wrong identity (exit 4)."""

    def alter(members: list[Member]) -> list[Member]:
        slot = members[0]
        local = bytearray(slot.local)
        local[slot.data_start + 40] ^= 0x01
        members[0] = Member(bytes(local), slot.central)
        return members

    report = attack(shaped, tmp_path, age_key, alter, figures, "alter a key slot byte")
    container = tmp_path / "B.zip"
    assert report.verdict == "failed"
    assert {"key-slot-corrupt", "key-slot-unusable"} <= errors(report)
    result = cli("verify", container, "--identity", age_key.identity_file)
    no_traceback(result)
    assert result.exit_code == 1, result.output


def test_member_passing_the_password_check_under_another_key_fails_on_the_mac(
    shaped: Built, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    """WinZip AES checks only 2 bytes before decrypting: 1 wrong key in 65,536 passes. A
    member encrypted under another key, given the verifier this key expects, must still
    fail when its MAC is checked at the end."""
    other_key = keys.BundleKey(bytes(range(100, 132)))
    members = split_zip(shaped.container)
    pack = members[by_name(members, "pack/000001")]
    (pack_size,) = struct.unpack_from("<I", pack.central, C_USIZE)
    donor_zip = io.BytesIO()
    with pyzipper.AESZipFile(donor_zip, "w", encryption=pyzipper.WZ_AES) as archive:
        archive.setpassword(other_key.password)
        archive.setencryption(pyzipper.WZ_AES, nbits=256, force_wz_aes_version=2)
        archive.writestr("x", bytes(pack_size))
    donor = split_zip(donor_zip.getvalue())[0]

    def verifier(key: keys.BundleKey, salt: bytes) -> bytes:
        """WinZip AES-256: PBKDF2-HMAC-SHA1, 1,000 rounds; bytes 64-65 are the check."""
        return hashlib.pbkdf2_hmac("sha1", key.password, salt, 1000, 66)[64:66]

    assert verifier(FIXED_KEY, pack.data[:16]) == pack.data[16:18]  # the derivation is right
    assert verifier(other_key, donor.data[:16]) == donor.data[16:18]  # made under another key

    def splice(members: list[Member]) -> list[Member]:
        index = by_name(members, "pack/000001")
        member = members[index]
        salt = donor.data[:16]
        data = salt + verifier(FIXED_KEY, salt) + donor.data[18:]
        assert len(data) == len(member.data)
        members[index] = Member(member.local[: member.data_start] + data, member.central)
        return members

    report = attack(
        shaped,
        tmp_path,
        age_key,
        splice,
        figures,
        "a member that passes the password check under another key",
    )
    assert "member-authentication-failed" in errors(report)
    finding = next(f for f in report.findings if f.code == "member-authentication-failed")
    assert finding.subject == "pack/000001"
    assert "HMAC" in finding.message  # it got past the password check: the MAC caught it


# ---------------------------------------------------------------------------- 4. wrong key


def snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every path below ``folder``: mode, size and content digest (files)."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            info = path.lstat()
            digest = ""
            if stat.S_ISREG(info.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(path.relative_to(folder))] = (info.st_mode, info.st_size, digest)
    return found


def test_wrong_identity_is_no_usable_key_and_writes_nothing(
    small: Built,
    tmp_path: Path,
    age_key: AgeKey,
    other_age_key: AgeKey,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    container = place(small, tmp_path / "bundle")
    before = snapshot(tmp_path)
    with pytest.raises(NoUsableKey):
        verify(container, other_age_key)
    for command in ("verify", "inspect"):
        result = cli(command, container, "--identity", other_age_key.identity_file)
        no_traceback(result)
        assert result.exit_code == 4, (command, result.output)
        assert "no key slot opens" in result.output
    result = cli("verify", container, "--identity", other_age_key.identity_file, "--json")
    assert result.exit_code == 4
    result = cli(
        "extract", container, "--out", tmp_path / "out", "--identity", other_age_key.identity_file
    )
    no_traceback(result)
    assert result.exit_code == 4, result.output
    after = snapshot(tmp_path)
    added = {name for name in after if name not in before}
    assert not [name for name in added if stat.S_ISREG(after[name][0])]
    assert {name: after[name] for name in before} == before
    # the right identity opens the same container: the failure above is the key's
    assert cli("verify", container, "--identity", age_key.identity_file).exit_code == 0


@pytest.fixture(scope="module")
def passphrase_bundle(tmp_path_factory: pytest.TempPathFactory, age_key: AgeKey) -> Built:
    folder = tmp_path_factory.mktemp("passphrase")
    return build(
        folder, tiny_sources(folder / "src"), age_key, recipients=[], passphrase=PASSPHRASE
    )


def test_wrong_passphrase_is_no_usable_key(
    passphrase_bundle: Built, passphrase_file: Path, tmp_path: Path, cli: Cli
) -> None:
    container = place(passphrase_bundle, tmp_path)
    before = snapshot(tmp_path)
    wrong = {"EVIDENCE_KIT_PASSPHRASE": "violet harbour lantern 2292"}
    result = cli("verify", container, env=wrong)
    no_traceback(result)
    assert result.exit_code == 4, result.output
    assert "violet harbour" not in result.output
    assert snapshot(tmp_path) == before
    right = cli("verify", container, "--passphrase-file", passphrase_file)
    assert right.exit_code == 0, right.output


# ------------------------------------------------------------------- 5. not a bundle at all


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"this is a text file, not a zip\n" * 8, "not-a-zip"),
        (b"", "not-a-zip"),
        (b"PK\x03\x04" + bytes(60), "zip-truncated"),
    ],
    ids=["text", "zero-bytes", "zip-start-only"],
)
def test_not_a_bundle_fails_cleanly(
    small: Built, tmp_path: Path, age_key: AgeKey, cli: Cli, content: bytes, code: str
) -> None:
    container = place(small, tmp_path, content)
    report = verify(container, age_key)
    assert report.verdict == "failed"
    assert code in errors(report)
    for args in (
        ("verify", container),
        ("verify", container, "--identity", age_key.identity_file),
        ("inspect", container),
        ("inspect", container, "--identity", age_key.identity_file),
    ):
        result = cli(*args)
        no_traceback(result)
        assert result.exit_code == 1, (args, result.output)
    verify_output = cli("verify", container).output
    assert code in verify_output
    assert "FAILED" in verify_output
    assert "cannot be read as a bundle" in cli("inspect", container).output
    document = json.loads(cli("verify", container, "--json").stdout)
    assert document["verdict"] == "failed"
    assert code in {f["code"] for f in document["findings"]}


def test_half_truncated_bundle_fails_cleanly(
    small: Built, tmp_path: Path, age_key: AgeKey, cli: Cli
) -> None:
    container = place(small, tmp_path, small.container[: len(small.container) // 2])
    for args in (
        ("verify", container),
        ("verify", container, "--identity", age_key.identity_file),
        ("inspect", container, "--identity", age_key.identity_file),
    ):
        result = cli(*args)
        no_traceback(result)
        assert result.exit_code == 1, (args, result.output)
    assert "zip-truncated" in errors(verify(container, age_key))


def test_missing_custody_log_fails(small: Built, tmp_path: Path, age_key: AgeKey, cli: Cli) -> None:
    container = place(small, tmp_path)
    custody_log_path(container).unlink()
    for key in (None, age_key):
        report = verify(container, key)
        assert report.verdict == "failed"
        assert "custody-log-missing" in errors(report)
    result = cli("verify", container, "--identity", age_key.identity_file)
    no_traceback(result)
    assert result.exit_code == 1
    assert "custody-log-missing" in result.output


# ------------------------------------------------------------- 5. the custody log, edited


@pytest.fixture(scope="module")
def signed_small(
    tmp_path_factory: pytest.TempPathFactory, age_key: AgeKey, signing_key: SigningKey
) -> Built:
    folder = tmp_path_factory.mktemp("signed-small")
    return build(folder, tiny_sources(folder / "src"), age_key, signing_key=signing_key.key)


def edit_first_event(container: Path, **changes: Any) -> None:
    """Re-serialise event 0 canonically with ``changes`` (its signature left as it was)."""
    log = custody_log_path(container)
    first = load_record(CustodyEvent, log.read_bytes().split(b"\n")[0])
    log.write_bytes(event_line(first.model_copy(update=changes)))


def test_one_character_edit_of_a_signed_event_breaks_its_signature(
    signed_small: Built, tmp_path: Path, age_key: AgeKey
) -> None:
    container = place(signed_small, tmp_path)
    log = custody_log_path(container)
    data = log.read_bytes()
    assert data.count(CASE.case_number.encode()) == 1
    log.write_bytes(data.replace(b"GZ-2026-0117", b"GZ-2026-0118"))
    for key in (None, age_key):
        report = verify(container, key)
        assert report.verdict == "failed"
        assert report.findings[0].code == "signature-invalid"
        assert report.findings[0].subject.startswith("custody event 0")


def test_non_canonical_edit_is_malformed(
    signed_small: Built, tmp_path: Path, age_key: AgeKey
) -> None:
    container = place(signed_small, tmp_path)
    log = custody_log_path(container)
    log.write_bytes(log.read_bytes().replace(b'"seq":0', b'"seq": 0'))
    report = verify(container, None)
    assert report.verdict == "failed"
    assert report.findings[0].code == "custody-event-malformed"
    assert report.findings[0].subject == "custody event 0"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("item_count", 99, "custody-summary-mismatch"),
        ("total_bytes", 1, "custody-summary-mismatch"),
        ("manifest_sha256", "0" * 64, "manifest-hash-mismatch"),
        ("bundle_id", "00000000-0000-4000-8000-000000000000", "bundle-id-mismatch"),
    ],
)
def test_canonical_edit_of_an_unsigned_log_fails_against_the_manifest(
    small: Built, tmp_path: Path, age_key: AgeKey, field: str, value: Any, code: str
) -> None:
    container = place(small, tmp_path)
    edit_first_event(container, **{field: value})
    assert verify(container, None).verdict == "verified"  # nothing to compare without a key
    report = verify(container, age_key)
    assert report.verdict == "failed"
    assert code in errors(report)


@pytest.mark.parametrize(
    ("field", "value"), [("evidence_number", "E-99"), ("case_number", "GZ-2026-9999")]
)
def test_canonical_edit_of_case_fields_in_an_unsigned_log_fails_with_the_key(
    small: Built, tmp_path: Path, age_key: AgeKey, field: str, value: str
) -> None:
    container = place(small, tmp_path)
    edit_first_event(container, **{field: value})
    report = verify(container, age_key)
    assert report.verdict == "failed"
    assert errors(report) & {"custody-case-mismatch", "custody-summary-mismatch"}


def test_canonical_edit_of_a_signed_log_breaks_the_signature(
    signed_small: Built, tmp_path: Path, age_key: AgeKey
) -> None:
    container = place(signed_small, tmp_path)
    edit_first_event(container, evidence_number="E-99")
    report = verify(container, None)
    assert report.verdict == "failed"
    assert report.findings[0].code == "signature-invalid"


# --------------------------------------------------------------------- 7. seal and signature


def test_unsigned_bundle_is_sealed_unsigned_and_needs_no_trust(
    small: Built, tmp_path: Path, age_key: AgeKey, signing_key: SigningKey
) -> None:
    container = place(small, tmp_path)
    report = verify(container, age_key)
    assert report.verdict == "verified"
    assert report.seal == "unsigned"
    assert report.signer_fingerprint is None
    warnings = {f.code for f in report.findings if f.severity == "warning"}
    assert "manifest-unsigned" in warnings
    required = verify(container, age_key, trusted=[signing_key.key.public_key()])
    assert required.verdict == "failed"
    assert "manifest-unsigned" in errors(required)


def test_bundle_signed_by_a_verified_against_b_fails(
    signed_small: Built, tmp_path: Path, age_key: AgeKey, signing_key: SigningKey, cli: Cli
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    container = place(signed_small, tmp_path)
    other = Ed25519PrivateKey.generate().public_key()
    report = verify(container, age_key, trusted=[other])
    assert report.verdict == "failed"
    assert report.seal == "signed"
    assert report.signer_trusted is False
    assert report.signer_fingerprint == keys.fingerprint(signing_key.key.public_key())
    assert {"manifest-signer-untrusted", "custody-signer-untrusted"} <= errors(report)
    other_pem = tmp_path / "other.pub.pem"
    other_pem.write_text(keys.public_key_pem(other))
    result = cli("verify", container, "--identity", age_key.identity_file, "--trust", other_pem)
    no_traceback(result)
    assert result.exit_code == 1
    trusted = cli(
        "verify", container, "--identity", age_key.identity_file, "--trust", signing_key.public_pem
    )
    assert trusted.exit_code == 0, trusted.output


EXTRACTED = ("manifest.json", "seal.json")


def member_data(container: bytes, name: str) -> bytes:
    members = split_zip(container)
    return members[by_name(members, name)].data


def test_manifest_signature_verifies_with_stock_openssl(
    signed_small: Built, tmp_path: Path, age_key: AgeKey, signing_key: SigningKey
) -> None:
    """age -d on the key slot, 7-Zip with that password, openssl pkeyutl on the manifest."""
    age, sevenzip, openssl = require_tool("age"), require_tool("7zz"), require_tool("openssl")
    container = place(signed_small, tmp_path)
    slot = tmp_path / "slot.age"
    slot.write_bytes(member_data(signed_small.container, "keyslots/00-x25519.age"))
    password = subprocess.run(
        [age, "-d", "-i", str(age_key.identity_file), str(slot)],
        check=True,
        capture_output=True,
    ).stdout.decode()
    out = tmp_path / "x"
    subprocess.run(
        [sevenzip, "x", f"-p{password}", f"-o{out}", "-y", str(container), *EXTRACTED],
        check=True,
        capture_output=True,
    )
    seal = json.loads((out / "seal.json").read_bytes())
    signature = tmp_path / "manifest.sig"
    signature.write_bytes(base64.b64decode(seal["signature"]["value_b64"]))
    manifest = out / "manifest.json"
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == seal["manifest_sha256"]

    def openssl_verify(data: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                openssl,
                "pkeyutl",
                "-verify",
                "-pubin",
                "-inkey",
                str(signing_key.public_pem),
                "-rawin",
                "-in",
                str(data),
                "-sigfile",
                str(signature),
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    good = openssl_verify(manifest)
    assert good.returncode == 0, good.stderr
    assert "Signature Verified Successfully" in good.stdout
    altered = tmp_path / "altered.json"
    altered.write_bytes(manifest.read_bytes().replace(b"GZ-2026-0117", b"GZ-2026-0118"))
    bad = openssl_verify(altered)
    assert bad.returncode != 0
    assert "Signature Verified Successfully" not in bad.stdout
    der = subprocess.run(
        [openssl, "pkey", "-pubin", "-in", str(signing_key.public_pem), "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    printed = subprocess.run(
        [require_tool("sha256sum")], input=der, check=True, capture_output=True
    ).stdout.split()[0]
    assert printed.decode() == seal["signature"]["fingerprint"]


# ------------------------------------------------------------------ 8. key slots, container


def test_every_encrypted_member_is_aes256_ae2_stored_in_both_headers(shaped: Built) -> None:
    members = split_zip(shaped.container)
    roles = {m.name.split("/")[0] for m in members}
    assert roles == {"keyslots", "item", "pack", "manifest.json", "seal.json"}
    for member in members:
        local = LOCAL.unpack_from(member.local)
        central = CENTRAL.unpack_from(member.central)
        local_flags, local_method, local_time, local_date = local[2], local[3], local[4], local[5]
        flags, method, dos_time, dos_date = central[3], central[4], central[5], central[6]
        # member times are one constant (1980-01-01 00:00): nothing leaks from the directory
        assert (local_time, local_date, dos_time, dos_date) == (0, 33, 0, 33), member.name
        if member.name.startswith("keyslots/"):
            assert (local_flags & 1, flags & 1, local_method, method) == (0, 0, 0, 0)
            assert AES_EXTRA_ID not in member.local_extra()
            assert member.data.startswith(b"age-encryption.org/v1\n")
            continue
        assert (local_flags & 1, flags & 1) == (1, 1), member.name
        assert (local_method, method) == (99, 99), member.name
        assert (local[6], central[7]) == (0, 0), member.name  # AE-2: no CRC in the clear
        for extra in (member.local_extra(), member.central_extra()):
            version, vendor, strength, actual = struct.unpack("<H2sBH", extra[AES_EXTRA_ID][1])
            assert (version, vendor, strength, actual) == (2, b"AE", 3, 0), member.name
        assert central[8] == central[9] + 16 + 2 + 10  # salt, verifier, MAC around stored data


def salts(container: bytes) -> list[bytes]:
    return [m.data[:16] for m in split_zip(container) if not m.name.startswith("keyslots/")]


def test_salts_never_repeat_within_or_across_bundles(
    twins: tuple[Built, Built], small: Built, signed_small: Built
) -> None:
    """Even the twin bundles that share one bundle key get fresh salts for every member."""
    every = [salt for built in (*twins, small, signed_small) for salt in salts(built.container)]
    assert len(every) >= 16
    assert len(set(every)) == len(every)
    assert all(len(salt) == 16 and salt != bytes(16) for salt in every)


def secret_forms(key: keys.BundleKey) -> list[bytes]:
    secret = key.secret
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
        base64.b64encode(key.password),
        secret.hex()[:32].encode(),  # half of it is a leak too
        secret.hex()[32:].encode(),
    ]


def test_bundle_key_appears_in_nothing_the_tool_writes_or_prints(
    tmp_path: Path,
    age_key: AgeKey,
    signing_key: SigningKey,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generated: list[keys.BundleKey] = []
    original = keys.BundleKey.generate

    def spy(cls: type[keys.BundleKey]) -> keys.BundleKey:
        key = original()
        generated.append(key)
        return key

    monkeypatch.setattr(keys.BundleKey, "generate", classmethod(spy))
    monkeypatch.chdir(tmp_path)
    sources = tiny_sources(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    container = out / "B.zip"
    case = ("--case-number", CASE.case_number, "--evidence-number", CASE.evidence_number)
    identity = ("--identity", age_key.identity_file)
    results = [
        cli(
            "acquire",
            *sources,
            "--out",
            container,
            *case,
            "--examiner",
            CASE.examiner,
            "--recipient",
            age_key.recipient,
            "--sign",
            signing_key.private_pem,
            "--unattended",
            "--json",
        )
    ]
    assert results[0].exit_code == 0, results[0].output
    assert len(generated) == 1
    results += [
        cli("verify", container, *identity, "--json"),
        cli("verify", container, *identity),
        cli("inspect", container, *identity, "--json"),
        cli("inspect", container, *identity),
    ]
    assert [r.exit_code for r in results] == [0] * 5
    written = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    printed = [r.output.encode() for r in results] + [r.stdout.encode() for r in results]
    assert json.loads(results[1].stdout)["verdict"] == "verified"
    for form in secret_forms(generated[0]):
        for blob in written + printed:
            assert form not in blob
            assert form.lower() not in blob.lower()


def test_files_the_tool_writes_are_owner_only(
    make_bundle: MakeBundle, small_tree: Path, age_key: AgeKey
) -> None:
    old = os.umask(0o022)
    try:
        bundle = make_bundle(small_tree)
    finally:
        os.umask(old)
    for path in (bundle.container, bundle.custody_log):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert sorted(p.name for p in bundle.container.parent.iterdir()) == sorted(
        [bundle.container.name, bundle.custody_log.name]
    )  # no temp file left beside them
