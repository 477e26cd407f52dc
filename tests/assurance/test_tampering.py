"""Tampering: a custody log and a 50 MB bundle, altered byte by byte; every alteration fails
verification, and the figures count what was tried, what was caught and why.

- The custody log of a small signed bundle with four events (acquired; transferred and
  received, signed by two officers; timestamped by a real local RFC 3161 TSA): every
  single-byte flip (masks 0xFF and 0x01) and every truncation fails ``verify`` without a key
  (nothing in the log depends on it), each with a reason code. A cut at the end of a line
  drops whole events from the end, which the log alone cannot show (docs/custody.md): every
  truncation is therefore also verified against the head written on the paper form (the
  anchor), which catches them all. The fast run checks a seeded sample plus every byte of
  the last event's signature; the slow run checks every byte.
- The text of a signature (its PEM key, its base64 value) is not itself signed, and the
  parsers forgive variants that load the same key and signature: such edits are refused.
- A 50 MB bundle (eight item members over 1 MiB, packs of a few hundred small files, content
  from a seeded RNG so nothing compresses): 2,000 offsets drawn with a seeded RNG, half among
  the bytes of the local headers, the central directory and the end record, half anywhere;
  each byte flipped (0xFF) in place and restored after. Every flip fails against the custody
  log (no key); a subset also fails with the key after the log was re-written to record the
  altered container, an attacker's move that leaves only the contents checks to catch it.

Offsets and flips are drawn from fixed seeds (``SEED``), so the figures are reproducible.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence_kit.acquire import AcquireRequest, acquire
from evidence_kit.canonical import load_record
from evidence_kit.container import SMALL_ITEM_LIMIT
from evidence_kit.custody import custody_log_path, event_line
from evidence_kit.custody_append import NewEvent, append_event, append_timestamp
from evidence_kit.custody_report import Anchor
from evidence_kit.models import CustodyEvent
from evidence_kit.timestamps import configured_tsas
from tests.assurance.figures import Figures
from tests.conftest import CASE, AgeKey, SigningKey
from tests.test_verify_tampering import (
    PLACEHOLDER,
    Built,
    _outcome,
    errors,
    forged_template,
    place,
    record_outcomes,
    split_zip,
    verify,
)
from tests.tsa import LocalTsa, TsaPki

SEED = 20260117  # every sample below is drawn from random.Random(SEED + a fixed offset)

# --------------------------------------------------------------------- the custody log


@dataclass(frozen=True)
class LoggedBundle:
    built: Built
    anchor: Anchor  # the head and count a paper form would carry

    @property
    def log(self) -> bytes:
        return self.built.log

    @property
    def line_ends(self) -> list[int]:
        """Lengths of the log cut right after each complete line."""
        ends, position = [], 0
        for line in self.log.splitlines(keepends=True):
            position += len(line)
            ends.append(position)
        return ends


@pytest.fixture(scope="module")
def logged(
    tmp_path_factory: pytest.TempPathFactory,
    age_key: AgeKey,
    signing_key: SigningKey,
    tsa_pki: TsaPki,
) -> LoggedBundle:
    """A small signed bundle whose log holds four signed events: acquired (officer),
    transferred (officer), received (lab), timestamped (lab, token from a local TSA)."""
    folder = tmp_path_factory.mktemp("logged")
    (folder / "src").mkdir()
    (folder / "src" / "note.txt").write_bytes(b"seized note\n")
    container = folder / "B.zip"
    acquire(
        AcquireRequest(
            sources=[folder / "src"],
            output=container,
            case=CASE,
            recipients=[pyrage.x25519.Recipient.from_str(age_key.recipient)],
            signing_key=signing_key.key,
        )
    )
    lab = Ed25519PrivateKey.generate()
    transfer = NewEvent("transferred", "Officer Chen Jing", to="Lab 7 intake")
    append_event(container, transfer, signing_key.key)
    append_event(container, NewEvent("received", "Lab 7 intake", location="Lab 7"), lab)
    with LocalTsa(tsa_pki) as tsa:
        append_timestamp(
            container, configured_tsas([tsa.url]), lab, "Lab 7 intake", record_pending=False
        )
    log = custody_log_path(container).read_bytes()
    lines = log.splitlines()
    anchor = Anchor(hashlib.sha256(lines[-1]).hexdigest(), len(lines))
    return LoggedBundle(Built(container.read_bytes(), log, ""), anchor)


def test_logged_bundle_verifies_and_every_event_is_signed(
    logged: LoggedBundle, tmp_path: Path
) -> None:
    """The baseline every alteration below departs from."""
    container = place(logged.built, tmp_path)
    report = verify(container, None, anchor=logged.anchor)
    assert report.verdict == "verified", report.findings
    assert report.custody is not None
    assert report.custody.actions == ["acquired", "transferred", "received", "timestamped"]
    assert report.custody.signed_events == 4


def log_outcomes(
    logged: LoggedBundle, folder: Path, variants: Iterable[tuple[int, bytes]], *, anchored: bool
) -> dict[int, str]:
    """Write each variant as the custody log and verify without a key (with the anchor if
    ``anchored``): key -> "failed:codes" | "verified" | "raised:Name"."""
    container = place(logged.built, folder)
    log = custody_log_path(container)
    anchor = logged.anchor if anchored else None
    outcomes = {}
    for key, data in variants:
        log.write_bytes(data)
        outcomes[key] = _outcome_without_key(container, anchor)
    return outcomes


def _outcome_without_key(container: Path, anchor: Anchor | None) -> str:
    try:
        report = verify(container, None, anchor=anchor)
    except Exception as error:  # any escape is a finding of the sweep, reported by offset
        return f"raised:{type(error).__name__}"
    if report.verdict == "verified":
        return "verified"
    return "failed:" + ",".join(sorted(errors(report)))


FAST_SAMPLE = 250  # offsets (and lengths) per fast sweep, besides the ones always included


def last_signature(log: bytes) -> range:
    """Offsets of the last event's signature object: its text is not signed (see
    test_signature_text_variants_are_refused), and no later event links to its line."""
    start = log.rindex(b'"signature":{')
    return range(start, log.index(b"}", start) + 1)


def flip_offsets(log: bytes, scope: str, salt: int) -> list[int]:
    if scope == "every":
        return list(range(len(log)))
    sample = random.Random(SEED + salt).sample(range(len(log)), FAST_SAMPLE)
    return sorted(set(sample) | set(last_signature(log)))


def flipped_logs(log: bytes, offsets: list[int], mask: int) -> Iterator[tuple[int, bytes]]:
    for offset in offsets:
        data = bytearray(log)
        data[offset] ^= mask
        yield offset, bytes(data)


SCOPES = ["sample", pytest.param("every", marks=pytest.mark.slow)]
LOG_NOTE = (
    "custody log of a small signed bundle ({size:,} bytes, 4 signed events, one holding an "
    "RFC 3161 token), verified without a key"
)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("mask", [0xFF, 0x01], ids=["mask-ff", "mask-01"])
def test_custody_log_byte_flips_fail(
    logged: LoggedBundle, tmp_path: Path, figures: Figures, scope: str, mask: int
) -> None:
    """Every flipped byte of the log fails verification, each with a reason: a byte made
    invalid UTF-8 or JSON, a field of a signed event (its signature breaks), a line that a
    later event links to (the chain breaks), the newline (the line tears)."""
    offsets = flip_offsets(logged.log, scope, salt=mask)
    outcomes = log_outcomes(
        logged, tmp_path, flipped_logs(logged.log, offsets, mask), anchored=False
    )
    name = (
        f"custody log: every byte flip ({mask:#04x})"
        if scope == "every"
        else f"custody log: byte flips ({mask:#04x}), seeded sample"
    )
    note = LOG_NOTE.format(size=len(logged.log))
    if scope == "sample":
        note += f"; {FAST_SAMPLE} offsets from seed {SEED + mask} plus the last signature"
    record_outcomes(figures, name, list(outcomes.values()), note)
    assert len(outcomes) == len(offsets)
    bad = {o: outcome for o, outcome in outcomes.items() if not outcome.startswith("failed:")}
    assert bad == {}


def truncation_lengths(logged: LoggedBundle, scope: str) -> list[int]:
    size = len(logged.log)
    if scope == "every":
        return list(range(size))
    near_ends = {n + d for n in [0, *logged.line_ends] for d in (-1, 0, 1)}
    sample = random.Random(SEED + 2).sample(range(size), FAST_SAMPLE)
    return sorted((set(sample) | near_ends) & set(range(size)))


@pytest.mark.parametrize("scope", SCOPES)
def test_custody_log_truncations_fail(
    logged: LoggedBundle, tmp_path: Path, figures: Figures, scope: str
) -> None:
    """Every truncation fails against the anchor (the head and count on the paper form).
    Without the anchor every cut inside a line fails (a torn line, or no event at all); a
    cut right after a line drops the last events and verifies: the documented limit that
    the anchor exists for."""
    lengths = truncation_lengths(logged, scope)
    cuts = [(n, logged.log[:n]) for n in lengths]
    anchored = log_outcomes(logged, tmp_path / "anchored", cuts, anchored=True)
    plain = log_outcomes(logged, tmp_path / "plain", cuts, anchored=False)
    dropped_events = [n for n in logged.line_ends if n < len(logged.log)]
    inside = {n: o for n, o in plain.items() if n not in dropped_events}
    label = "every truncation" if scope == "every" else "truncations, seeded sample"
    note = LOG_NOTE.format(size=len(logged.log)) + "; lengths 0 to size - 1"
    if scope == "sample":
        note += f"; {FAST_SAMPLE} lengths from seed {SEED + 2} plus each line end and ±1"
    record_outcomes(
        figures,
        f"custody log: {label}, against the anchor",
        list(anchored.values()),
        note + "; anchor = head SHA-256 and event count",
    )
    record_outcomes(
        figures,
        f"custody log: {label} inside an event, no anchor",
        list(inside.values()),
        note + f"; the {len(dropped_events)} cuts at a line end drop whole events and verify "
        "without the anchor (documented limit)",
    )
    assert {n: o for n, o in anchored.items() if not o.startswith("failed:")} == {}
    assert {n: o for n, o in inside.items() if not o.startswith("failed:")} == {}
    assert [n for n in dropped_events if plain[n] == "verified"] == dropped_events
    for n in dropped_events:
        assert "custody-anchor-missing" in anchored[n]


PEM_VARIANTS = {  # edits of a PEM public key after which it still loads the same key
    # the sweep's find: the JSON escape "\n" after the END line, its "\\" flipped to "]"
    "bytes-after-end-line": lambda pem: pem[:-1] + "]n",
    "vertical-tab-for-newline": lambda pem: pem.replace("\n-----END", "\x0b-----END"),
    "extra-newline": lambda pem: pem + "\n",
}


def last_event(logged: LoggedBundle) -> tuple[bytes, CustodyEvent]:
    head, _sep, last = logged.log.rstrip(b"\n").rpartition(b"\n")
    return head + b"\n", load_record(CustodyEvent, last)


@pytest.mark.parametrize("variant", sorted(PEM_VARIANTS))
def test_signature_key_text_variants_are_refused(
    logged: LoggedBundle, tmp_path: Path, figures: Figures, variant: str
) -> None:
    """The PEM of the last event's key, edited so it still loads the same key: the line
    stays canonical, its signature still holds, so only the exact text can tell."""
    earlier, event = last_event(logged)
    assert event.signature is not None
    pem = event.signature.public_key_pem
    changed = PEM_VARIANTS[variant](pem)
    assert changed != pem
    same = serialization.load_pem_public_key(changed.encode("ascii"))
    assert same == serialization.load_pem_public_key(pem.encode("ascii"))
    signature = event.signature.model_copy(update={"public_key_pem": changed})
    line = event_line(event.model_copy(update={"signature": signature}))
    outcomes = log_outcomes(logged, tmp_path, [(0, earlier + line)], anchored=False)
    record_outcomes(
        figures,
        "custody log: signature key text edited, same key",
        list(outcomes.values()),
        "last event's PEM public key: bytes after the END line, a vertical tab for a "
        "newline, an extra newline",
    )
    assert outcomes[0] == "failed:signature-key-malformed"


def test_signature_value_with_other_unused_bits_is_refused(
    logged: LoggedBundle, tmp_path: Path, figures: Figures
) -> None:
    """A 64-byte Ed25519 signature in base64 ends in one character carrying 4 unused bits
    and "==": another value of those bits decodes to the same signature."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    earlier, event = last_event(logged)
    assert event.signature is not None
    value = event.signature.value_b64
    assert value.endswith("==") and len(value) == 88
    last = alphabet.index(value[-3])
    other = value[:-3] + alphabet[last ^ 0b0101] + "=="
    assert base64.b64decode(other, validate=True) == base64.b64decode(value, validate=True)
    signature = event.signature.model_copy(update={"value_b64": other})
    line = event_line(event.model_copy(update={"signature": signature}))
    outcomes = log_outcomes(logged, tmp_path, [(0, earlier + line)], anchored=False)
    record_outcomes(
        figures,
        "custody log: signature value re-encoded, same signature",
        list(outcomes.values()),
        "last event's base64 signature with other values in the unused bits",
    )
    assert outcomes[0] == "failed:signature-invalid"


# ------------------------------------------------------------------- the 50 MB bundle

BIG_TARGET = 50_000_000  # bytes of source content
LARGE_FILES = 8  # each between 1 MiB + 1 byte and 6 MiB: an item member of its own
SMALL_MAX = 64 << 10  # small files up to 64 KiB: packed, a few hundred of them
SAMPLED_PER_REGION = 1_000  # flips among header/directory/end-record bytes, and anywhere
FORGED_PER_REGION = 150  # of each, also verified with a forged log and the key


def big_tree(root: Path) -> int:
    """A seized-drive-like tree of about 50 MB, images and documents in nested folders;
    the number of small files."""
    rng = random.Random(SEED)
    total = 0
    for index in range(LARGE_FILES):
        path = root / "images" / f"disk-{index}.raw"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = rng.randrange(SMALL_ITEM_LIMIT + 1, 6 << 20)
        path.write_bytes(rng.randbytes(size))
        total += size
    count = 0
    while total < BIG_TARGET:
        path = root / "documents" / f"{count % 7:02d}" / f"{count // 7:02d}" / f"doc-{count}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = rng.randrange(0, SMALL_MAX)
        path.write_bytes(rng.randbytes(size))
        total += size
        count += 1
    return count


@dataclass(frozen=True)
class BigBundle:
    built: Built
    small_files: int
    structural: list[int]  # sampled offsets in local headers, central directory, end record
    uniform: list[int]  # sampled offsets anywhere (none of the above)

    @property
    def note(self) -> str:
        members = [m.name for m in split_zip(self.built.container)]
        return (
            f"bundle of {len(self.built.container):,} bytes: {len(members)} members, "
            f"{sum(n.startswith('item/') for n in members)} item members and "
            f"{sum(n.startswith('pack/') for n in members)} packs of {self.small_files} "
            f"small files; offsets from seed {SEED + 3}, each byte XOR 0xff in place"
        )


def structure_offsets(data: bytes) -> list[int]:
    """Every byte of the local headers (fixed part, name, extra), the central directory
    and the end-of-central-directory record."""
    found: list[int] = []
    offset = 0
    for member in split_zip(data):
        found += range(offset, offset + member.data_start)
        offset += len(member.local)
    found += range(offset, len(data))  # the directory, then the end record
    return found


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory, age_key: AgeKey) -> BigBundle:
    folder = tmp_path_factory.mktemp("big")
    small_files = big_tree(folder / "seized")
    container = folder / "B.zip"
    acquire(
        AcquireRequest(
            sources=[folder / "seized"],
            output=container,
            case=CASE,
            recipients=[pyrage.x25519.Recipient.from_str(age_key.recipient)],
        )
    )
    data = container.read_bytes()
    log = custody_log_path(container).read_bytes()
    rng = random.Random(SEED + 3)
    structural = rng.sample(structure_offsets(data), SAMPLED_PER_REGION)
    taken = set(structural)
    uniform: list[int] = []
    while len(uniform) < SAMPLED_PER_REGION:
        offset = rng.randrange(len(data))
        if offset not in taken:
            taken.add(offset)
            uniform.append(offset)
    return BigBundle(Built(data, log, ""), small_files, structural, uniform)


@pytest.mark.slow
def test_big_bundle_has_item_members_packs_and_2000_distinct_offsets(big: BigBundle) -> None:
    names = [m.name for m in split_zip(big.built.container)]
    assert 50_000_000 < len(big.built.container) < 60_000_000
    assert sum(name.startswith("item/") for name in names) == LARGE_FILES
    assert sum(name.startswith("pack/") for name in names) >= 2
    assert big.small_files >= 300
    assert len(set(big.structural) | set(big.uniform)) == 2 * SAMPLED_PER_REGION


@contextlib.contextmanager
def flipped(path: Path, offset: int, original: int) -> Iterator[None]:
    """The byte at ``offset`` XOR 0xFF in place, restored afterwards."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, bytes([original ^ 0xFF]), offset)
        yield
    finally:
        os.pwrite(fd, bytes([original]), offset)
        os.close(fd)


@pytest.mark.slow
def test_big_bundle_flips_fail_against_the_custody_log(
    big: BigBundle, tmp_path: Path, figures: Figures
) -> None:
    """2,000 flips, log untouched, no key: each fails, the container hash named (and the
    layout check too, for most header bytes)."""
    container = place(big.built, tmp_path)
    assert _outcome(container, None) == "verified"
    data = big.built.container
    outcomes: dict[str, dict[int, str]] = {"structural": {}, "uniform": {}}
    for region, offsets in (("structural", big.structural), ("uniform", big.uniform)):
        for offset in offsets:
            with flipped(container, offset, data[offset]):
                outcomes[region][offset] = _outcome(container, None)
    assert hashlib.sha256(container.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert _outcome(container, None) == "verified"  # every byte was put back
    for region, where in (
        ("structural", "in local headers, central directory, end record"),
        ("uniform", "anywhere"),
    ):
        record_outcomes(
            figures,
            f"50 MB bundle: byte flips {where}, custody log untouched",
            list(outcomes[region].values()),
            big.note + "; verified without a key",
        )
    for region in outcomes.values():
        assert len(region) == SAMPLED_PER_REGION
        assert {o: x for o, x in region.items() if "custody-container-hash-mismatch" not in x} == {}
        assert {o: x for o, x in region.items() if not x.startswith("failed:")} == {}


@pytest.mark.slow
def test_big_bundle_flips_fail_with_a_forged_log(
    big: BigBundle, tmp_path: Path, age_key: AgeKey, figures: Figures
) -> None:
    """The same flips (the first of each region), the custody log re-written each time to
    record the altered container's SHA-256: only the contents checks, with the key, remain,
    and they catch every one."""
    container = place(big.built, tmp_path)
    log = custody_log_path(container)
    template = forged_template(big.built.log)
    data = memoryview(big.built.container)

    def forge(offset: int | None) -> None:
        digest = hashlib.sha256()
        if offset is None:
            digest.update(data)
        else:
            digest.update(data[:offset])
            digest.update(bytes([data[offset] ^ 0xFF]))
            digest.update(data[offset + 1 :])
        log.write_bytes(template.replace(PLACEHOLDER.encode(), digest.hexdigest().encode()))

    forge(None)
    assert _outcome(container, age_key) == "verified"  # the forgery alone passes
    outcomes: dict[str, dict[int, str]] = {"structural": {}, "uniform": {}}
    for region, offsets in (("structural", big.structural), ("uniform", big.uniform)):
        for offset in offsets[:FORGED_PER_REGION]:
            forge(offset)
            with flipped(container, offset, data[offset]):
                outcomes[region][offset] = _outcome(container, age_key)
    forge(None)
    assert _outcome(container, age_key) == "verified"  # every byte was put back
    for region, where in (
        ("structural", "in local headers, central directory, end record"),
        ("uniform", "anywhere"),
    ):
        record_outcomes(
            figures,
            f"50 MB bundle: byte flips {where}, custody log forged",
            list(outcomes[region].values()),
            big.note + "; custody log re-written to match; verified with the key",
        )
    for region in outcomes.values():
        assert len(region) == FORGED_PER_REGION
        assert {o: x for o, x in region.items() if not x.startswith("failed:")} == {}
        assert {o: x for o, x in region.items() if "custody-container-hash-mismatch" in x} == {}
