"""Opening a bundle for reading: the checks every reader needs before trusting a byte.

:func:`open_bundle` checks the container's zip layout strictly, reads the custody log,
opens a key slot, decrypts the manifest (to its end: the MAC is checked) and the seal,
and records every problem as a finding. Verification, inspection and extraction all
start here, so they agree on what a sound bundle is.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence_kit import keys
from evidence_kit.canonical import MalformedRecord, load_record
from evidence_kit.container import (
    MANIFEST_MEMBER,
    MAX_PACK_SIZE,
    READ_ERRORS,
    SEAL_MEMBER,
    ContainerReader,
    Layout,
    read_layout,
    read_plain_member,
)
from evidence_kit.custody import (
    CustodyLog,
    check_chain,
    custody_log_path,
    read_custody_log,
)
from evidence_kit.errors import NoUsableKey, UsageError, VerificationFailed
from evidence_kit.i18n import _
from evidence_kit.manifest import ItemTable, decode_manifest
from evidence_kit.models import Check, Finding, ItemRecord, ManifestHead, Seal

MAX_MANIFEST_BYTES = 1 << 30
MAX_SEAL_BYTES = 1 << 16
READ_CHUNK = 1 << 20

SealState = str  # "signed" | "unsigned" | "unsealed" | "not-checked"


@dataclass
class Bundle:
    """A container opened for reading, with every finding so far."""

    container: Path
    fp: BinaryIO
    container_sha256: str
    layout: Layout
    custody: CustodyLog
    findings: list[Finding] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    key: keys.BundleKey | None = None
    reader: ContainerReader | None = None
    manifest: ManifestHead | None = None
    items: ItemTable | None = None
    manifest_bytes: bytes | None = None
    manifest_sha256: str | None = None
    seal: Seal | None = None
    seal_state: SealState = "not-checked"
    signer_fingerprint: str | None = None
    signer_trusted: bool | None = None
    _key_slots: list[tuple[str, bytes]] | None = None

    def error(
        self,
        code: str,
        subject: str,
        message: str,
        *,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        self.findings.append(
            Finding(
                code=code,
                severity="error",
                subject=subject,
                message=message,
                expected=expected,
                actual=actual,
            )
        )

    def warning(self, code: str, subject: str, message: str) -> None:
        self.findings.append(
            Finding(code=code, severity="warning", subject=subject, message=message)
        )

    def check(self, name: str, passed: bool | None, detail: str = "") -> None:
        status = "skipped" if passed is None else ("pass" if passed else "fail")
        self.checks.append(Check(name=name, status=status, detail=detail))  # type: ignore[arg-type]

    @property
    def failed(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    def key_slots(self) -> list[tuple[str, bytes]]:
        """The key slots that read back intact (a damaged one is a finding, once)."""
        if self._key_slots is None:
            self._key_slots = []
            for entry in self.layout.key_slot_entries:
                try:
                    self._key_slots.append((entry.name, read_plain_member(self.fp, entry)))
                except (zipfile.BadZipFile, OSError) as error:
                    self.error("key-slot-corrupt", entry.name, str(error))
        return self._key_slots

    def close(self) -> None:
        self.fp.close()  # the reader reads through this file and holds nothing else


def trusted_fingerprints(trusted: list[Ed25519PublicKey]) -> set[str] | None:
    return {keys.fingerprint(key) for key in trusted} if trusted else None


def open_intact(
    container: Path, material: keys.KeyMaterial, trusted: set[str] | None, refusal: str
) -> Bundle:
    """An unlocked bundle with no error finding (container, custody, layout, manifest,
    seal), for work that writes out evidence; otherwise VerificationFailed, with
    ``refusal`` (holding ``{code}`` and ``{subject}``) naming the first finding."""
    bundle = open_container(container, trusted=trusted)
    try:
        unlock(bundle, material, trusted=trusted)
        errors = [f for f in bundle.findings if f.severity == "error"]
        if errors or bundle.manifest is None or bundle.items is None:
            first = errors[0] if errors else None
            raise VerificationFailed(
                refusal.format(
                    code=first.code if first else "manifest-unreadable",
                    subject=first.subject if first else "manifest",
                ),
                hint=_("Run 'evidence-kit verify' for every finding. Nothing was written."),
            )
    except BaseException:
        bundle.close()
        raise
    return bundle


def open_container(
    container: Path, *, trusted: set[str] | None, on_bytes: Callable[[int], None] | None = None
) -> Bundle:
    """Everything that can be checked without a key."""
    try:
        fp: BinaryIO = container.open("rb")
    except FileNotFoundError:
        raise UsageError(_("no such bundle: {path}").format(path=container)) from None
    except IsADirectoryError:
        raise UsageError(_("{path} is a folder, not a bundle").format(path=container)) from None
    except OSError as error:
        raise UsageError(
            _("cannot read {path}: {reason}").format(path=container, reason=error.strerror)
        ) from None
    digest = hashlib.sha256()
    while chunk := fp.read(READ_CHUNK):
        digest.update(chunk)
        if on_bytes:
            on_bytes(len(chunk))
    container_sha256 = digest.hexdigest()
    layout = read_layout(fp)
    bundle = Bundle(
        container, fp, container_sha256, layout, read_custody_log(custody_log_path(container))
    )
    for problem in layout.problems:
        bundle.error(problem.code, problem.subject, problem.message)
    bundle.check(
        _("zip layout is exactly as written"),
        not layout.problems,
        _("{n} members").format(n=len(layout.entries)),
    )
    bundle.findings.extend(bundle.custody.findings)
    chain = check_chain(bundle.custody, container_sha256=container_sha256, trusted=trusted)
    bundle.findings.extend(chain)
    bundle.check(
        _("container SHA-256 matches the custody log"),
        bool(bundle.custody.events)
        and not any(f.code == "custody-container-hash-mismatch" for f in chain),
        container_sha256,
    )
    bundle.check(
        _("custody log is well-formed and its chain holds"),
        bool(bundle.custody.events)
        and not bundle.custody.findings
        and not any(
            f.severity == "error" and f.code != "custody-container-hash-mismatch" for f in chain
        ),
        _("{n} events").format(n=len(bundle.custody.events)),
    )
    slots_present = layout.readable and bool(layout.key_slot_entries)
    if layout.readable and not layout.key_slot_entries:
        bundle.error("key-slots-missing", "container", _("the container has no key slot"))
    bundle.check(
        _("key slots present"),
        slots_present,
        _("{n} key slots").format(n=len(layout.key_slot_entries)),
    )
    return bundle


def unlock(bundle: Bundle, material: keys.KeyMaterial, *, trusted: set[str] | None) -> None:
    """Open a key slot, then the manifest and the seal.

    Raises NoUsableKey when no slot opens and nothing else is wrong with the container (a
    wrong key, exit 4). When the container is already known to be altered, an unusable
    slot is one more finding: tampering is not a key problem.
    """
    if not bundle.layout.readable:
        return
    slots = bundle.key_slots()
    try:
        bundle.key = keys.open_key_slots(slots, material)
    except NoUsableKey as error:
        if material.empty or not bundle.failed:
            raise
        bundle.error("key-slot-unusable", "container", error.message)
        return
    try:
        bundle.reader = ContainerReader(bundle.fp, bundle.key, bundle.layout)
    except READ_ERRORS as error:
        bundle.error("container-unreadable", "container", str(error))
        return
    _read_manifest(bundle)
    _read_seal(bundle, trusted)


def _decrypt_small(bundle: Bundle, name: str, limit: int) -> bytes | None:
    entry = bundle.layout.entry(name)
    if entry is None:
        return None
    if not entry.encrypted:
        bundle.error("zip-plaintext-member", name, _("not encrypted: refusing to read it"))
        return None
    if entry.size > limit:
        bundle.error("member-too-large", name, _("larger than this format allows"))
        return None
    assert bundle.reader is not None
    try:
        return bundle.reader.read(name, limit)
    except READ_ERRORS as error:
        bundle.error(
            "member-authentication-failed",
            name,
            _("decryption failed or the MAC does not match: {error}").format(error=error),
        )
        return None


def _read_manifest(bundle: Bundle) -> None:
    data = _decrypt_small(bundle, MANIFEST_MEMBER, MAX_MANIFEST_BYTES)
    if data is None:
        if bundle.layout.entry(MANIFEST_MEMBER) is None:
            bundle.error("manifest-missing", MANIFEST_MEMBER, _("the container has no manifest"))
        bundle.check(_("manifest decrypts and parses"), False)
        return
    bundle.manifest_bytes = data
    bundle.manifest_sha256 = hashlib.sha256(data).hexdigest()
    try:
        bundle.manifest, bundle.items = decode_manifest(data)
    except MalformedRecord as error:
        bundle.error("manifest-malformed", MANIFEST_MEMBER, str(error))
        bundle.check(_("manifest decrypts and parses"), False)
        return
    bundle.check(
        _("manifest decrypts and parses"), True, _("{n} items").format(n=len(bundle.items))
    )
    first = bundle.custody.events[0] if bundle.custody.events else None
    if first is not None:
        manifest, case, summary = bundle.manifest, bundle.manifest.case, bundle.manifest.summary
        bindings = [
            ("manifest-hash-mismatch", _("the manifest is not the one the custody log recorded"),
             first.manifest_sha256, bundle.manifest_sha256),
            ("bundle-id-mismatch", _("manifest and custody log name different bundles"),
             first.bundle_id, manifest.bundle_id),
            ("custody-case-mismatch", _("case or evidence number differs from the custody log"),
             f"{first.case_number} / {first.evidence_number}",
             f"{case.case_number} / {case.evidence_number}"),
            ("custody-summary-mismatch", _("item count or bytes differ from the custody log"),
             f"{first.item_count} items, {first.total_bytes} bytes",
             f"{summary.items} items, {summary.bytes} bytes"),
        ]  # fmt: skip
        for code, message, recorded, found in bindings:
            if recorded != found:
                bundle.error(code, MANIFEST_MEMBER, message, expected=recorded, actual=found)
        matches = first.manifest_sha256 == bundle.manifest_sha256
        bundle.check(_("manifest SHA-256 matches the custody log"), matches, bundle.manifest_sha256)


def _read_seal(bundle: Bundle, trusted: set[str] | None) -> None:
    name = _("seal")
    if bundle.layout.entry(SEAL_MEMBER) is None:
        bundle.seal_state = "unsealed"
        bundle.error(
            "unsealed",
            SEAL_MEMBER,
            _("the container has no seal: acquisition never finished or the seal was removed"),
        )
        bundle.check(name, False, _("UNSEALED"))
        return
    data = _decrypt_small(bundle, SEAL_MEMBER, MAX_SEAL_BYTES)
    try:
        seal = load_record(Seal, data, require_canonical=True) if data is not None else None
    except MalformedRecord as error:
        bundle.error("seal-malformed", SEAL_MEMBER, str(error))
        seal = None
    if seal is None or bundle.manifest is None:
        bundle.seal_state = "unsealed"
        bundle.check(name, False, _("UNSEALED"))
        return
    bundle.seal = seal
    if (
        seal.manifest_sha256 != bundle.manifest_sha256
        or seal.bundle_id != bundle.manifest.bundle_id
    ):
        bundle.seal_state = "unsealed"
        bundle.error(
            "seal-mismatch",
            SEAL_MEMBER,
            _("the seal does not bind this manifest"),
            expected=seal.manifest_sha256,
            actual=bundle.manifest_sha256,
        )
        bundle.check(name, False, _("UNSEALED"))
        return
    if seal.signature is None:
        bundle.seal_state = "unsigned"
        if trusted is not None:
            bundle.error(
                "manifest-unsigned",
                SEAL_MEMBER,
                _("the manifest is not signed, but a known signer is required (--trust)"),
            )
        else:
            bundle.warning(
                "manifest-unsigned",
                SEAL_MEMBER,
                _("sealed but not signed: nobody vouches for this manifest"),
            )
        bundle.check(name, trusted is None, _("sealed, unsigned"))
        return
    reason = keys.check_signature(seal.signature, bundle.manifest_bytes or b"")
    bundle.signer_fingerprint = seal.signature.fingerprint
    if reason is not None:
        bundle.seal_state = "unsealed"
        bundle.error(reason, SEAL_MEMBER, _("the manifest signature does not hold"))
        bundle.check(name, False, _("bad signature"))
        return
    bundle.seal_state = "signed"
    if trusted is None:
        bundle.signer_trusted = None
        bundle.check(
            name,
            True,
            _("signed by {fp} (not checked against a trusted key)").format(
                fp=seal.signature.fingerprint
            ),
        )
        return
    bundle.signer_trusted = seal.signature.fingerprint in trusted
    if not bundle.signer_trusted:
        bundle.error(
            "manifest-signer-untrusted",
            SEAL_MEMBER,
            _("signed by a key not given with --trust"),
            actual=seal.signature.fingerprint,
        )
    bundle.check(
        name, bundle.signer_trusted, _("signed by {fp}").format(fp=seal.signature.fingerprint)
    )


class ContentError(Exception):
    """An item's stored bytes could not be read back intact (reason code, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ContentReader:
    """Reads item bytes back out of an unlocked bundle, pack by pack, checking as it goes."""

    def __init__(self, bundle: Bundle) -> None:
        assert bundle.reader is not None and bundle.manifest is not None
        self._bundle = bundle
        self._reader = bundle.reader
        self._members = {m.name: m for m in bundle.manifest.members}
        self._pack_name: str | None = None
        self._pack: zipfile.ZipFile | None = None

    def member_chunks(self, name: str) -> Iterator[bytes]:
        """A member's content (padding checked, not yielded), decrypted to its end so the
        MAC is checked; ContentError if the MAC, a size or the padding is wrong."""
        record = self._members.get(name)
        if record is None:
            raise ContentError(
                "member-not-in-manifest", _("the manifest does not list this member")
            )
        entry = self._bundle.layout.entry(name)
        if entry is None:
            raise ContentError("member-missing", _("the member is not in the container"))
        if not entry.encrypted:
            raise ContentError("zip-plaintext-member", _("not encrypted: refusing to read it"))
        if entry.size != record.size or not 0 <= record.padding <= record.size:
            raise ContentError("member-size-mismatch", _("member size differs from the manifest"))
        content = record.size - record.padding
        total = 0
        try:
            for chunk in self._reader.chunks(name, record.size):
                start = total
                total += len(chunk)
                if total > record.size:
                    raise ContentError(
                        "member-size-mismatch", _("more bytes than the manifest says")
                    )
                if start < content:
                    yield chunk[: content - start]
                tail = chunk[max(content - start, 0) :]
                if tail.count(0) != len(tail):
                    raise ContentError("member-padding-altered", _("the padding is not all zeros"))
        except READ_ERRORS as error:
            raise ContentError(
                "member-authentication-failed",
                _("decryption failed or the MAC does not match: {error}").format(error=error),
            ) from None
        if total != record.size:
            raise ContentError("member-size-mismatch", _("fewer bytes than the manifest says"))

    def pack(self, name: str) -> zipfile.ZipFile:
        """A pack, decrypted, digest-checked against the manifest, opened as a zip."""
        if self._pack_name == name and self._pack is not None:
            return self._pack
        record = self._members.get(name)
        if record is None or record.role != "pack":
            raise ContentError("member-not-in-manifest", _("the manifest does not list this pack"))
        if record.size > MAX_PACK_SIZE:
            raise ContentError("member-too-large", _("pack larger than this format allows"))
        data = b"".join(self.member_chunks(name))
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise ContentError("member-digest-mismatch", _("pack digest differs from the manifest"))
        try:
            pack = zipfile.ZipFile(io.BytesIO(data))
        except READ_ERRORS as error:
            raise ContentError("pack-malformed", str(error)) from None
        problem = _pack_layout_problem(pack, data)
        if problem is not None:
            raise ContentError("pack-malformed", problem)
        self._pack, self._pack_name = pack, name
        return self._pack

    def item_chunks(self, item: ItemRecord) -> Iterator[bytes]:
        """The stored bytes of one item (raises ContentError)."""
        if item.location is None:
            raise ContentError("item-location-missing", _("no stored content recorded"))
        if item.location.inner is None:
            yield from self.member_chunks(item.location.member)
            return
        pack = self.pack(item.location.member)
        try:
            info = pack.getinfo(item.location.inner)
        except KeyError:
            raise ContentError("pack-item-missing", _("the pack has no such entry")) from None
        if info.file_size != item.stored_size:  # before any byte is read
            raise ContentError("item-size-mismatch", _("size differs from the manifest"))
        try:
            data = pack.read(info)
        except READ_ERRORS as error:
            raise ContentError("pack-item-missing", str(error)) from None
        yield data


def _pack_layout_problem(pack: zipfile.ZipFile, data: bytes) -> str | None:
    """What is wrong with a pack's layout, or None: packs are written stored, unencrypted,
    each entry once, back to back. A deflated entry would be inflated whole before its
    size could be compared, and overlapping entries would read one file's bytes twice."""
    entries = sorted(pack.infolist(), key=lambda info: info.header_offset)
    if len({info.filename for info in entries}) != len(entries):
        return _("an entry name appears twice")
    expected = 0
    for info in entries:
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            return _("entry {name} is not stored plainly").format(name=info.filename)
        if info.compress_size != info.file_size or info.header_offset != expected:
            return _("entry {name} is not where the previous one ended").format(name=info.filename)
        header = data[info.header_offset : info.header_offset + 30]
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            return _("entry {name} has no local header").format(name=info.filename)
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        expected = info.header_offset + 30 + name_length + extra_length + info.compress_size
    if expected != pack.start_dir:
        return _("the entries do not end where the directory starts")
    return None


__all__ = [
    "Bundle",
    "ContentError",
    "ContentReader",
    "open_container",
    "open_intact",
    "trusted_fingerprints",
    "unlock",
]
