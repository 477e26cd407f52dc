"""Verification: every check, every finding collected, each naming its item and a reason.

Without a key: the container's SHA-256 against the custody log, the strict zip layout,
key slots, the custody chain. With a key, also: the exact member set, every member
decrypted to its end (the MAC is checked only at EOF), sizes and every digest against the
manifest, the manifest's seal and signature. ``against`` re-reads the original source.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence_kit import clock
from evidence_kit.bundle import (
    READ_CHUNK,
    Bundle,
    ContentError,
    ContentReader,
    open_container,
    trusted_fingerprints,
    unlock,
)
from evidence_kit.container import MANIFEST_MEMBER, SEAL_MEMBER
from evidence_kit.custody_append import Recorder
from evidence_kit.custody_report import Anchor, check_anchor
from evidence_kit.errors import EvidenceKitError, NoUsableKey
from evidence_kit.hashing import WindowDigests, digest_for
from evidence_kit.i18n import _
from evidence_kit.keys import KeyMaterial
from evidence_kit.manifest import ItemTable
from evidence_kit.models import (
    Finding,
    ItemRecord,
    ManifestHead,
    TimestampCheck,
    VerificationReport,
)
from evidence_kit.naming import display_name, path_bytes
from evidence_kit.progress import Progress, SilentProgress
from evidence_kit.provenance import TOOL
from evidence_kit.sources.disk import open_image_source, read_window
from evidence_kit.sources.filesystem import (
    FILE_FLAGS,
    SourceEntry,
    kind_of,
    open_readonly,
    read_chunk,
    read_link,
    resolve_sources,
    walk,
)
from evidence_kit.timestamps import DEFAULT_SKEW_SECONDS, verify_tokens


@dataclass(frozen=True)
class VerifyRequest:
    container: Path
    key: KeyMaterial | None = field(default=None, repr=False)
    trusted: Sequence[Ed25519PublicKey] = ()
    against: Sequence[Path] = ()
    anchor: Anchor | None = None
    record: Recorder | None = None
    tsa_roots: Sequence[x509.Certificate] = ()
    skew_seconds: int = DEFAULT_SKEW_SECONDS


def verify_bundle(
    request: VerifyRequest,
    progress: Progress | None = None,
    *,
    then: Callable[[Bundle, VerificationReport], None] | None = None,
) -> VerificationReport:
    """Run every check the key material allows.

    ``then`` is called with the still-open bundle and the report, for work that reads
    what was just verified (a report's item table) without reading the container again.

    Raises NoUsableKey when a key was given, opens no slot, and nothing else is wrong with
    the container (a wrong key, exit 4), or when ``against`` is asked for without a key.
    """
    if request.against and (request.key is None or request.key.empty):
        raise NoUsableKey(
            _("--against compares items with the source: it needs the bundle's key"),
            hint=_("Give --identity or --passphrase-file."),
        )
    progress = progress or SilentProgress()
    trusted = trusted_fingerprints(list(request.trusted))
    total = request.container.stat().st_size if request.container.is_file() else 0
    unlocking = request.key is not None and not request.key.empty
    progress.start(0, total * 2 if unlocking else total)  # hashing, then decrypting
    bundle = open_container(
        request.container, trusted=trusted, on_bytes=lambda n: progress.advance(nbytes=n)
    )
    try:
        items_checked = bytes_checked = 0
        if request.key is not None and not request.key.empty:
            unlock(bundle, request.key, trusted=trusted)
            if bundle.manifest is not None and bundle.items is not None:
                _check_members(bundle, bundle.manifest)
                items_checked, bytes_checked = _check_contents(
                    bundle, bundle.manifest, bundle.items, progress
                )
                if request.against:
                    _check_against(bundle, bundle.manifest, bundle.items, request.against)
        else:
            bundle.check(
                _("contents (needs --identity or --passphrase-file)"),
                None,
                _("not checked: no key given"),
            )
        if request.anchor is not None:
            anchored = check_anchor(bundle.custody, request.anchor)
            bundle.findings.extend(anchored)
            bundle.check(_("custody log still holds the expected head"), not anchored,
                         request.anchor.head_sha256)  # fmt: skip
        timestamps, problems = verify_tokens(
            bundle.custody, request.tsa_roots, skew_seconds=request.skew_seconds
        )
        if timestamps:
            bundle.findings.extend(problems)
            bundle.check(
                _("trusted timestamps (RFC 3161)"),
                None if all(t.verified is None for t in timestamps)
                else all(t.verified is not False for t in timestamps),
                "; ".join(_timestamp_detail(t) for t in timestamps),
            )  # fmt: skip
        report = _report(bundle, items_checked, bytes_checked, timestamps)
        if request.record is not None:
            report = _record_verification(request.record, report)
        if then is not None:
            then(bundle, report)
        return report
    finally:
        progress.finish()
        bundle.close()


def _timestamp_detail(check: TimestampCheck) -> str:
    verdict = {True: _("verified"), False: _("FAILED"), None: _("not verified")}[check.verified]
    offset = (
        _(", local clock off by {s:+.1f} s").format(s=check.clock_offset_ms / 1000)
        if check.clock_offset_ms is not None
        else ""
    )
    return _("event {n}: {time} from {url}, {verdict} ({by}){offset}").format(
        n=check.event_seq, time=check.gen_time, url=check.tsa_url, verdict=verdict,
        by=check.verified_with, offset=offset,
    )  # fmt: skip


def _record_verification(record: Recorder, report: VerificationReport) -> VerificationReport:
    """Append the 'verified' event with the outcome; a log that cannot take it (broken,
    torn, missing) becomes a finding, since the report itself already says why."""
    errors = sum(1 for f in report.findings if f.severity == "error")
    outcome = (
        _("verified: {items} items, {bytes} bytes").format(
            items=report.items_checked, bytes=report.bytes_checked
        )
        if report.verdict == "verified" and report.contents_checked
        else _("container intact, contents not checked (no key)")
        if report.verdict == "verified"
        else _("verification FAILED: {n} problems").format(n=errors)
    )
    try:
        appended = record.record(
            Path(report.container), "verified", outcome, report.container_sha256
        )
    except EvidenceKitError as error:
        finding = Finding(
            code="custody-event-not-recorded",
            severity="error",
            subject=_("custody log"),
            message=str(error),
        )
        return report.model_copy(
            update={"findings": [*report.findings, finding], "verdict": "failed"}
        )
    return report.model_copy(update={"recorded_event": appended})


def _report(
    bundle: Bundle, items_checked: int, bytes_checked: int, timestamps: list[TimestampCheck]
) -> VerificationReport:
    return VerificationReport(
        container=str(bundle.container),
        container_sha256=bundle.container_sha256,
        bundle_id=(
            bundle.manifest.bundle_id
            if bundle.manifest
            else bundle.custody.events[0].bundle_id
            if bundle.custody.events
            else None
        ),
        verdict="failed" if bundle.failed else "verified",
        contents_checked=bundle.manifest is not None,
        seal=bundle.seal_state,  # type: ignore[arg-type]
        signer_fingerprint=bundle.signer_fingerprint,
        signer_trusted=bundle.signer_trusted,
        items_checked=items_checked,
        bytes_checked=bytes_checked,
        checks=bundle.checks,
        findings=bundle.findings,
        custody=bundle.custody.summary() if bundle.custody.events else None,
        verified_at=clock.now(),
        tool=TOOL,
        timestamps=timestamps,
    )


def _check_members(bundle: Bundle, manifest: ManifestHead) -> None:
    expected = {slot.member for slot in manifest.key_slots}
    expected |= {member.name for member in manifest.members} | {MANIFEST_MEMBER, SEAL_MEMBER}
    actual = {entry.name for entry in bundle.layout.entries}
    for name in sorted(expected - actual):
        bundle.error("member-missing", name, _("listed in the manifest, absent from the container"))
    for name in sorted(actual - expected):
        bundle.error("member-unexpected", name, _("in the container, not in the manifest"))
    found = [entry.name for entry in bundle.layout.entries]
    if expected == actual and len(found) == len(actual):  # then: in the order written?
        written = [slot.member for slot in manifest.key_slots]
        written += [member.name for member in manifest.members] + [MANIFEST_MEMBER, SEAL_MEMBER]
        moved = next((w for w, f in zip(written, found, strict=False) if w != f), None)
        if moved is not None:
            bundle.error("member-order", moved, _("members are not in the order they were written"))
    slots = dict(bundle.key_slots())
    for slot in manifest.key_slots:
        data = slots.get(slot.member)
        if data is not None and hashlib.sha256(data).hexdigest() != slot.sha256:
            bundle.error("key-slot-altered", slot.member, _("key slot differs from the manifest"))
    bundle.check(_("exact member set"), expected == actual, _("{n} members").format(n=len(actual)))


def _check_contents(
    bundle: Bundle, manifest: ManifestHead, items: ItemTable, progress: Progress
) -> tuple[int, int]:
    """Decrypt every member and check every item's digests; then note the problems the
    acquisition itself recorded. Items are held by index and parsed when checked."""
    contents = ContentReader(bundle)
    by_member: dict[str, list[int]] = {}
    noted: list[ItemRecord] = []
    known = {member.name for member in manifest.members}
    for index, item in enumerate(items):
        if item.status != "ok" or item.extension_mismatch is not None:
            noted.append(item)
        if item.location is None:
            continue
        by_member.setdefault(item.location.member, []).append(index)
        if item.location.member not in known:
            bundle.error(
                "item-location-unknown",
                item.path.display,
                _("stored in a member the manifest does not list"),
                actual=item.location.member,
            )
    failures_before = len(bundle.findings)
    items_checked = bytes_checked = 0
    for member in manifest.members:
        indexes = by_member.get(member.name, [])
        if member.role == "item":
            bytes_checked += _check_item_member(
                bundle, contents, member.name, member.sha256, [items[i] for i in indexes], manifest
            )
        else:
            try:
                contents.pack(member.name)
            except ContentError as error:
                bundle.error(error.code, member.name, str(error))
                continue
            for index in indexes:
                bytes_checked += _check_item(bundle, contents, items[index], manifest)
        progress.advance(nbytes=member.size)
        items_checked += len(indexes)
    bundle.check(
        _("every member decrypts, every digest matches"),
        len(bundle.findings) == failures_before,
        _("{items} items, {bytes} bytes").format(items=items_checked, bytes=bytes_checked),
    )
    _note_acquisition_problems(bundle, noted)
    return items_checked, bytes_checked


def _check_item_member(
    bundle: Bundle,
    contents: ContentReader,
    name: str,
    sha256: str,
    items: list[ItemRecord],
    manifest: ManifestHead,
) -> int:
    """One dedicated member: all its items share its bytes (a file and its hard links)."""
    try:
        expected = items[0].stored_size or 0 if items else 0
        size, actual = _digest(contents.member_chunks(name), manifest.hash_algorithms, expected)
    except ContentError as error:
        bundle.error(error.code, items[0].path.display if items else name, str(error))
        return 0
    if actual["sha256"] != sha256:
        bundle.error(
            "member-digest-mismatch",
            name,
            _("member digest differs from the manifest"),
            expected=sha256,
            actual=actual["sha256"],
        )
    for item in items:
        _compare(bundle, item, size, actual)
    return size


def _check_item(
    bundle: Bundle, contents: ContentReader, item: ItemRecord, manifest: ManifestHead
) -> int:
    try:
        size, actual = _digest(contents.item_chunks(item), manifest.hash_algorithms)
    except ContentError as error:
        bundle.error(error.code, item.path.display, str(error))
        return 0
    _compare(bundle, item, size, actual)
    return size


def _digest(
    chunks: Iterable[bytes], algorithms: Sequence[str], expected_size: int = 0
) -> tuple[int, dict[str, str]]:
    """(bytes, digests) of a stream; ContentError from the stream passes through."""
    digest = digest_for(expected_size, algorithms)
    size = 0
    try:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
    finally:
        digest.close()
    return size, digest.hexdigests()


def _compare(bundle: Bundle, item: ItemRecord, size: int, actual: dict[str, str]) -> None:
    if item.stored_size != size:
        bundle.error(
            "item-size-mismatch",
            item.path.display,
            _("stored size differs"),
            expected=str(item.stored_size),
            actual=str(size),
        )
    for algorithm, expected in item.digests.items():
        if actual.get(algorithm) != expected:
            bundle.error(
                "item-digest-mismatch",
                item.path.display,
                _("{algorithm} differs from the manifest").format(algorithm=algorithm),
                expected=expected,
                actual=actual.get(algorithm),
            )


def _note_acquisition_problems(bundle: Bundle, noted: Iterable[ItemRecord]) -> None:
    for item in noted:
        if item.status != "ok":
            bundle.warning(
                f"acquired-{item.status}",
                item.path.display,
                item.reason or _("recorded as {status} at acquisition").format(status=item.status),
            )
        if item.extension_mismatch is not None:
            mismatch = item.extension_mismatch
            bundle.warning(
                "extension-mismatch",
                item.path.display,
                _("named {ext} but the content is {actual}").format(
                    ext=mismatch.extension, actual=mismatch.actual_mime_type
                ),
            )


# ------------------------------------------------------------------------ --against


def _check_against(
    bundle: Bundle, manifest: ManifestHead, items: ItemTable, sources: Sequence[Path]
) -> None:
    """Re-read the original source(s) and compare with the manifest by original path."""
    if len(items) == 1 and items[0].kind == "disk-image":
        _check_image_against(bundle, manifest, items[0], sources)
        return
    recorded = {path_bytes(item.path): index for index, item in enumerate(items)}
    seen: set[bytes] = set()
    before = len(bundle.findings)
    for source in resolve_sources(sources):
        for entry in walk(source.index, str(source.path), source.label):
            seen.add(entry.relpath)
            index = recorded.get(entry.relpath)
            display = display_name(entry.relpath)
            if index is None:
                bundle.error("against-added", display, _("in the source, not in the bundle"))
                continue
            item = items[index]
            difference = _difference(entry, item, manifest.hash_algorithms)
            if difference is not None:
                what, expected, actual = difference
                bundle.error(
                    "against-changed", item.path.display, what, expected=expected, actual=actual
                )
    labels = {source.label for source in resolve_sources(sources)}
    for raw in recorded:
        if raw.split(b"/", 1)[0] in labels and raw not in seen:
            bundle.error(
                "against-missing", display_name(raw), _("in the bundle, gone from the source")
            )
    bundle.check(
        _("source re-read and compared"),
        len(bundle.findings) == before,
        ", ".join(str(s) for s in sources),
    )


def _check_image_against(
    bundle: Bundle, manifest: ManifestHead, item: ItemRecord, sources: Sequence[Path]
) -> None:
    """Re-read a device or image and compare its size, whole digests and every window, so
    a damaged copy still proves every intact window and the damage is located."""
    assert item.image is not None
    before = len(bundle.findings)
    if len(sources) != 1:
        bundle.error("against-image-sources", item.path.display,
                     _("--against takes the one device or image that was acquired"))  # fmt: skip
        return
    image = open_image_source(sources[0])
    try:
        if image.size != item.image.size:
            bundle.error("against-changed", item.path.display, _("size differs"),
                         expected=str(item.image.size), actual=str(image.size))  # fmt: skip
        window_size = item.image.window_size
        digest = digest_for(image.size, manifest.hash_algorithms)
        window_digests = WindowDigests(window_size)
        try:
            for offset in range(0, image.size, READ_CHUNK):
                chunk = read_window(image, offset, min(READ_CHUNK, image.size - offset), 0)
                digest.update(chunk)
                window_digests.update(chunk)
        finally:
            digest.close()
        windows = window_digests.finish()
        for error in image.read_errors:
            bundle.error("against-unreadable", item.path.display,
                         _("bytes {start}-{end} cannot be read now ({reason})").format(
                             start=error.offset, end=error.offset + (error.length or 0) - 1,
                             reason=error.error))  # fmt: skip
        pairs = zip(item.image.window_sha256, windows, strict=False)
        for number, (expected, actual) in enumerate(pairs):
            if expected != actual:
                start = number * window_size
                bundle.error(
                    "against-window-differs",
                    item.path.display,
                    _("bytes {start}-{end} differ").format(
                        start=start, end=min(start + window_size, image.size) - 1
                    ),
                    expected=expected,
                    actual=actual,
                )
        for algorithm, value in digest.hexdigests().items():
            if item.digests.get(algorithm) != value:
                bundle.error("against-changed", item.path.display,
                             _("{algorithm} of the whole source differs").format(
                                 algorithm=algorithm),
                             expected=item.digests.get(algorithm), actual=value)  # fmt: skip
    finally:
        image.close()
    intact = sum(1 for e, a in zip(item.image.window_sha256, windows, strict=False) if e == a)
    bundle.check(
        _("source re-read and compared"),
        len(bundle.findings) == before,
        _("{intact} of {total} windows match").format(
            intact=intact, total=len(item.image.window_sha256)
        ),
    )


def _difference(
    entry: SourceEntry, item: ItemRecord, algorithms: Sequence[str]
) -> tuple[str, str | None, str | None] | None:
    if entry.stat is None:
        return _("could not be examined"), item.kind, None
    kind = kind_of(entry.stat.st_mode)
    recorded_kind = "file" if item.kind == "hardlink" else item.kind
    if kind != recorded_kind:
        return _("kind differs"), recorded_kind, kind
    if kind == "symlink":
        target = read_link(entry)
        if item.symlink_target is None or path_bytes(item.symlink_target) != target:
            return (
                _("symlink target differs"),
                item.symlink_target.display if item.symlink_target else None,
                display_name(target),
            )
        return None
    if kind != "file":
        return None
    if entry.stat.st_size != item.stored_size:
        return _("size differs"), str(item.stored_size), str(entry.stat.st_size)
    try:
        fd, _noatime = open_readonly(entry.name, FILE_FLAGS, entry.dir_fd)
    except OSError as error:
        return _("cannot be read now: {reason}").format(reason=error.strerror), None, None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return _("kind differs"), "file", None
        _size, digests = _digest(iter(lambda: read_chunk(fd, 1 << 20), b""), algorithms)
    except OSError as error:
        return _("cannot be read now: {reason}").format(reason=error.strerror), None, None
    finally:
        os.close(fd)
    actual = digests["sha256"]
    if actual != item.digests.get("sha256"):
        return _("content differs (SHA-256)"), item.digests.get("sha256"), actual
    return None


__all__ = ["VerifyRequest", "verify_bundle"]
