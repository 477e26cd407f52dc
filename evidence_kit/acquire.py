"""The acquisition pipeline: source -> one read -> digests + encrypted container -> seal.

Order of writing: key slots, item members and packs, the encrypted manifest, then the
seal last. The container and its custody log are written under temporary names, fsynced,
and moved into place log first, container last: an interruption at any moment leaves no
file at the container's path, and never a plaintext copy of the evidence anywhere.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, TypedDict

import pyrage
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence_kit import clock, filetype, keys
from evidence_kit.atomic import AtomicFile, output_error
from evidence_kit.canonical import canonical_bytes
from evidence_kit.container import (
    MANIFEST_MEMBER,
    PACK_TARGET,
    SEAL_MEMBER,
    SMALL_ITEM_LIMIT,
    ContainerWriter,
    ItemSink,
)
from evidence_kit.custody import custody_log_path, event_line, sign_event
from evidence_kit.custody_append import append_timestamp
from evidence_kit.errors import EnvironmentFailure, EvidenceKitError, OutputExists, UsageError
from evidence_kit.hashing import (
    MultiDigest,
    ThreadedDigest,
    ThreadedFeed,
    WindowDigests,
    digest_for,
)
from evidence_kit.i18n import _
from evidence_kit.manifest import encode_manifest
from evidence_kit.models import (
    AcquireResult,
    CaseInfo,
    CustodyEvent,
    ImageInfo,
    Instant,
    ItemLocation,
    ItemProblem,
    ItemRecord,
    ItemStatus,
    KeySlotRecord,
    ManifestHead,
    PathName,
    ReadError,
    Seal,
    SourceRecord,
    StatRecord,
    Summary,
)
from evidence_kit.naming import display_name, path_bytes, path_name
from evidence_kit.progress import Progress, SilentProgress
from evidence_kit.provenance import provenance
from evidence_kit.sources.disk import (
    ImageSource,
    disk_of,
    open_image_source,
    read_window,
    whole_disk,
)
from evidence_kit.sources.filesystem import (
    FILE_FLAGS,
    Source,
    SourceEntry,
    kind_of,
    lstat_again,
    open_readonly,
    read_chunk,
    read_link,
    read_xattrs,
    resolve_sources,
    walk,
)
from evidence_kit.timestamps import Tsa

CHUNK_SIZE = 1 << 20
DEFAULT_WINDOW = 64 << 20  # bytes per piecewise digest of a disk image
TimestampState = Literal["stamped", "pending", "not-requested"]
SPACE_OVERHEAD_PER_ITEM = 2048
SPACE_OVERHEAD = 16 << 20


@dataclass(frozen=True)
class AcquireRequest:
    """Everything an acquisition needs; secrets live only in memory."""

    sources: Sequence[Path]
    output: Path
    case: CaseInfo
    hash_algorithms: tuple[str, ...] = ("sha256",)
    recipients: Sequence[pyrage.x25519.Recipient] = ()
    passphrase: str | None = field(default=None, repr=False)
    signing_key: Ed25519PrivateKey | None = field(default=None, repr=False)
    overwrite: bool = False
    command_line: Sequence[str] = ()
    tsas: Sequence[Tsa] = ()
    tsa_roots: Sequence[x509.Certificate] = ()
    image: ImageRequest | None = None


@dataclass(frozen=True)
class ImageRequest:
    """``acquire --image SOURCE``: a block device or raw image file into one member."""

    source: Path
    window_size: int = DEFAULT_WINDOW
    retries: int = 3
    write_blocker: str = ""
    force: bool = False


def acquire(request: AcquireRequest, progress: Progress | None = None) -> AcquireResult:
    """Acquire ``request.sources`` into a sealed, encrypted bundle at ``request.output``."""
    progress = progress or SilentProgress()
    started = clock.now()
    output = Path(os.path.abspath(request.output))
    log_path = custody_log_path(output)
    _check_output(output, log_path, request.overwrite)
    image: ImageSource | None = None
    if request.image is not None:
        image = _open_image(request.image, output, request.sources)
        sources: list[Source] = []
        total_items, total_bytes = 1, image.size
    else:
        sources = resolve_sources(request.sources)
        _check_output_outside_sources(output, sources)
        total_items, total_bytes = _prescan(sources)
    try:
        _check_free_space(output.parent, total_bytes + total_items * SPACE_OVERHEAD_PER_ITEM)
    except BaseException:
        if image is not None:
            image.close()
        raise
    key = keys.BundleKey.generate()
    slots = keys.make_key_slots(key, request.recipients, request.passphrase)
    bundle_id = str(uuid.uuid4())
    progress.start(total_items, total_bytes)
    try:
        with contextlib.ExitStack() as stack:
            if image is not None:
                stack.callback(image.close)
            container_file = stack.enter_context(AtomicFile(output))
            log_file = stack.enter_context(AtomicFile(log_path))
            writer = ContainerWriter(container_file.file, key)
            stack.callback(writer.abort)  # harmless once closed
            for slot in slots:
                writer.add_key_slot(slot)
            walker = _ItemWalker(writer, request.hash_algorithms, progress)
            stack.callback(walker.abandon)
            if image is not None and request.image is not None:
                walker.acquire_image(image, request.image)
            for source in sources:
                walker.acquire_source(source)
            walker.finish()
            writer.finish_packs()
            summary = walker.tally.summary()
            head = ManifestHead(
                bundle_id=bundle_id,
                case=request.case,
                provenance=provenance(request.command_line, started, clock.now(), _config(request)),
                hash_algorithms=list(request.hash_algorithms),
                sources=(
                    [_source_record(s, walker) for s in sources]
                    if image is None
                    else [_image_source_record(image)]
                ),
                key_slots=[
                    KeySlotRecord(
                        member=s.member,
                        kind=s.kind,
                        recipient=s.recipient,
                        sha256=hashlib.sha256(s.data).hexdigest(),
                    )
                    for s in slots
                ],
                members=writer.members,
                summary=summary,
            )
            manifest_bytes = encode_manifest(head, walker.take_encoded())
            manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
            writer.add_encrypted(MANIFEST_MEMBER, manifest_bytes)
            signature = (
                keys.sign(request.signing_key, manifest_bytes) if request.signing_key else None
            )
            seal = Seal(
                bundle_id=bundle_id,
                manifest_member=MANIFEST_MEMBER,
                manifest_sha256=manifest_sha256,
                signature=signature,
            )
            writer.add_encrypted(SEAL_MEMBER, canonical_bytes(seal))
            container_sha256 = writer.close() or _file_sha256(container_file.file)
            container_file.sync()
            first_event = sign_event(
                CustodyEvent(
                    seq=0,
                    action="acquired",
                    time=clock.now(),
                    actor=request.case.examiner,
                    location=request.case.location,
                    note=request.case.description,
                    bundle_id=bundle_id,
                    container_sha256=container_sha256,
                    prev_event_sha256=None,
                    manifest_sha256=manifest_sha256,
                    case_number=request.case.case_number,
                    evidence_number=request.case.evidence_number,
                    item_count=summary.items,
                    total_bytes=summary.bytes,
                ),
                request.signing_key,
            )
            log_file.file.write(event_line(first_event))
            if request.overwrite:
                # The old container goes first: a crash between the renames below must
                # never leave an old container beside a new log (a pair that fails).
                output.unlink(missing_ok=True)
            try:
                log_file.commit(overwrite=request.overwrite)
                container_file.commit(overwrite=request.overwrite)
            except BaseException:
                # Interrupted between the two renames (Ctrl-C can land after any step):
                # a log whose container never arrived goes; once the container is in
                # place the bundle is whole and its log must stay.
                if log_file.in_place() and not container_file.in_place():
                    log_path.unlink(missing_ok=True)
                raise
    except OSError as error:
        raise output_error(output, error) from None
    finally:
        progress.finish()
    timestamp, timestamp_problem = _timestamp(request, output)
    return AcquireResult(
        bundle_id=bundle_id,
        container=str(output),
        custody_log=str(log_path),
        container_sha256=container_sha256,
        manifest_sha256=manifest_sha256,
        signed=signature is not None,
        signer_fingerprint=signature.fingerprint if signature else None,
        summary=summary,
        problems=walker.tally.problems,
        complete=not walker.tally.problems,
        timestamp=timestamp,
        timestamp_problem=timestamp_problem,
        image=walker.image_info,
    )


def _timestamp(request: AcquireRequest, output: Path) -> tuple[TimestampState, str | None]:
    """A token over event 0 when TSAs were given; the bundle is complete either way, so
    any failure here is reported, never raised."""
    if not request.tsas:
        return "not-requested", None
    try:
        _result, problem = append_timestamp(
            output,
            request.tsas,
            request.signing_key,
            request.case.examiner,
            record_pending=True,
            roots=request.tsa_roots,
        )
    except EvidenceKitError as error:
        return "pending", error.message
    return ("pending", problem) if problem else ("stamped", None)


# ------------------------------------------------------------------ before writing


def _check_output(output: Path, log_path: Path, overwrite: bool) -> None:
    if not output.parent.is_dir():
        raise EnvironmentFailure(
            _("the output folder {folder} does not exist").format(folder=output.parent)
        )
    if not os.access(output.parent, os.W_OK):
        raise EnvironmentFailure(
            _("cannot write to the output folder {folder}").format(folder=output.parent)
        )
    if overwrite:
        return
    for path in (output, log_path):
        if os.path.lexists(path):
            raise OutputExists(
                _("{path} already exists; refusing to replace it").format(path=path),
                hint=_("Choose another --out, or pass --overwrite to replace it."),
            )


def _open_image(request: ImageRequest, output: Path, sources: Sequence[Path]) -> ImageSource:
    if sources:
        raise UsageError(_("--image takes the device or image itself: give no other SOURCE"))
    if request.retries < 0:
        raise UsageError(_("--retries cannot be negative"))
    if request.window_size < CHUNK_SIZE or request.window_size % CHUNK_SIZE:
        raise UsageError(_("--window must be a whole number of MiB (at least 1 MiB)"))
    image = open_image_source(request.source, request.write_blocker)
    try:
        _check_image_output(output, image, force=request.force)
    except BaseException:
        image.close()
        raise
    return image


def _check_image_output(output: Path, image: ImageSource, *, force: bool) -> None:
    """Never write the bundle onto the disk being imaged (nor an image into itself)."""
    if not image.block_device:
        written = {os.path.realpath(p) for p in (output, custody_log_path(output))}
        if os.path.realpath(image.path) in written:
            raise UsageError(
                _("the output {path} or its custody log is the image being acquired").format(
                    path=output
                )
            )
        return
    source_disk = whole_disk(os.major(image.stat.st_rdev), os.minor(image.stat.st_rdev))
    output_disk = disk_of(output.parent)
    if source_disk is not None and source_disk == output_disk and not force:
        raise UsageError(
            _("the output {path} is on the disk being imaged ({device})").format(
                path=output, device=image.path
            ),
            hint=_("Write the bundle to another disk. --force overrides this check."),
        )


def _image_source_record(image: ImageSource) -> SourceRecord:
    return SourceRecord(
        index=0,
        label=display_name(os.fsencode(image.path.name)),
        path=path_name(os.fsencode(os.path.abspath(image.path))),
        kind="disk-image",
        noatime=image.noatime or image.block_device,
    )


def _check_output_outside_sources(output: Path, sources: Sequence[Source]) -> None:
    """Writing into a source would change the evidence (and read the bundle into itself)."""
    folder = Path(os.path.realpath(output.parent))
    for source in sources:
        if stat.S_ISDIR(source.stat.st_mode):
            root = Path(os.path.realpath(source.path))
            if folder == root or root in folder.parents:
                raise UsageError(
                    _("the output {path} is inside the source {source}").format(
                        path=output, source=source.path
                    ),
                    hint=_("Write the bundle to another disk: the source must not change."),
                )


def _prescan(sources: Sequence[Source]) -> tuple[int, int]:
    """Items and bytes to come (for progress and the free-space check); reads no content."""
    items = size = 0
    for source in sources:
        for entry in walk(source.index, str(source.path), source.label):
            items += 1
            if entry.stat is not None and stat.S_ISREG(entry.stat.st_mode):
                size += entry.stat.st_size
    return items, size


def _check_free_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed + SPACE_OVERHEAD:
        raise EnvironmentFailure(
            _("not enough free space in {folder}: {free} bytes free, about {needed} needed").format(
                folder=folder, free=free, needed=needed + SPACE_OVERHEAD
            ),
            hint=_("Nothing was written. Choose an output disk with more room."),
        )


def _config(request: AcquireRequest) -> dict[str, str]:
    return {
        "hash_algorithms": ",".join(request.hash_algorithms),
        "chunk_size": str(CHUNK_SIZE),
        "small_item_limit": str(SMALL_ITEM_LIMIT),
        "pack_target": str(PACK_TARGET),
        "recipients": str(len(request.recipients)),
        "passphrase_slot": str(request.passphrase is not None).lower(),
        "signed": str(request.signing_key is not None).lower(),
    }


def _source_record(source: Source, walker: _ItemWalker) -> SourceRecord:
    return SourceRecord(
        index=source.index,
        label=display_name(source.label),
        path=path_name(os.fsencode(source.path)),
        kind=kind_of(source.stat.st_mode),
        noatime=source.index not in walker.noatime_refused,
    )


def _file_sha256(fileobj: BinaryIO) -> str:
    fileobj.seek(0)
    digest = hashlib.sha256()
    while chunk := fileobj.read(CHUNK_SIZE):
        digest.update(chunk)
    return digest.hexdigest()


class _Tally:
    """The manifest summary and the items with problems, counted as items are recorded."""

    def __init__(self) -> None:
        self.items = self.files = self.directories = self.symlinks = self.other = 0
        self.bytes = 0
        self.status_counts: dict[str, int] = {}
        self.problems: list[ItemProblem] = []

    def count(self, item: ItemRecord) -> None:
        self.items += 1
        self.status_counts[item.status] = self.status_counts.get(item.status, 0) + 1
        if item.kind in ("file", "hardlink", "disk-image"):
            self.files += 1
        elif item.kind == "directory":
            self.directories += 1
        elif item.kind == "symlink":
            self.symlinks += 1
        else:
            self.other += 1
        if item.kind in ("file", "disk-image"):
            self.bytes += item.stored_size or 0
        if item.status != "ok":
            problem = ItemProblem(
                item=item.id, path=item.path.display, status=item.status, reason=item.reason
            )
            self.problems.append(problem)

    def summary(self) -> Summary:
        return Summary(
            items=self.items,
            files=self.files,
            directories=self.directories,
            symlinks=self.symlinks,
            other=self.other,
            bytes=self.bytes,
            status_counts=dict(self.status_counts),
        )


# --------------------------------------------------------------------- the walk


def stat_record(info: os.stat_result) -> StatRecord:
    return StatRecord(
        size=info.st_size,
        mode=info.st_mode,
        uid=info.st_uid,
        gid=info.st_gid,
        inode=str(info.st_ino),
        device=str(info.st_dev),
        nlink=info.st_nlink,
        atime_ns=str(info.st_atime_ns),
        mtime_ns=str(info.st_mtime_ns),
        ctime_ns=str(info.st_ctime_ns),
    )


def _unchanged(before: os.stat_result, after: os.stat_result) -> bool:
    return (
        before.st_ino == after.st_ino
        and before.st_dev == after.st_dev
        and before.st_mode == after.st_mode
        and before.st_size == after.st_size
        and before.st_mtime_ns == after.st_mtime_ns
        and before.st_ctime_ns == after.st_ctime_ns
    )


class _StatFields(TypedDict):
    id: int
    source: int
    path: PathName
    size: int
    mode: int
    mode_text: str
    uid: int
    gid: int
    inode: str
    device: str
    nlink: int
    atime: Instant
    mtime: Instant
    ctime: Instant


def _stat_fields(item_id: int, source: int, relpath: bytes, info: os.stat_result) -> _StatFields:
    return _StatFields(
        id=item_id,
        source=source,
        path=path_name(relpath),
        size=info.st_size,
        mode=info.st_mode,
        mode_text=stat.filemode(info.st_mode),
        uid=info.st_uid,
        gid=info.st_gid,
        inode=str(info.st_ino),
        device=str(info.st_dev),
        nlink=info.st_nlink,
        atime=clock.instant_from_ns(info.st_atime_ns),
        mtime=clock.instant_from_ns(info.st_mtime_ns),
        ctime=clock.instant_from_ns(info.st_ctime_ns),
    )


def _identity(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_ino, info.st_dev, stat.S_IFMT(info.st_mode)


def _unlisted_folder(entry: SourceEntry, info: os.stat_result, common: _StatFields) -> ItemRecord:
    """A folder that could not be opened or listed: gone, replaced, or refused."""
    assert entry.error is not None
    now = lstat_again(entry)
    if now is None and entry.error.errno == errno.ENOENT:
        return ItemRecord(
            **common,
            kind="directory",
            status="skipped",
            errno=entry.error.errno,
            reason=_("vanished between listing and reading"),
        )
    if now is not None and _identity(now) != _identity(info):  # e.g. swapped for a symlink
        return ItemRecord(
            **common,
            kind="directory",
            status="changed-during-read",
            errno=entry.error.errno,
            reason=_("replaced by {kind} before it was read").format(kind=kind_of(now.st_mode)),
            stat_before=stat_record(info),
            stat_after=stat_record(now),
        )
    return ItemRecord(
        **common,
        kind="directory",
        status="unreadable",
        errno=entry.error.errno,
        reason=_("folder could not be listed: {reason}").format(reason=entry.error.strerror),
        noatime=entry.noatime,
    )


class _ItemWalker:
    """Turns walked entries into item records, storing file content as it goes."""

    def __init__(
        self, writer: ContainerWriter, algorithms: tuple[str, ...], progress: Progress
    ) -> None:
        self._writer = writer
        self._algorithms = algorithms
        self._progress = progress
        self._hardlinks: dict[tuple[int, int], ItemRecord] = {}
        self._encoded: list[bytes] = []  # finished items as canonical JSON, by item id
        self._identifying: dict[int, ItemRecord] = {}  # waiting for their file type
        self._later_links: list[ItemRecord] = []  # hard links: types copied in finish()
        self._link_types: dict[int, tuple[str | None, str | None]] = {}
        self.tally = _Tally()
        self.image_info: ImageInfo | None = None
        self.noatime_refused: set[int] = set()
        self._typing = filetype.Identifier()

    def _set_types(self, identified: Iterator[tuple[int, tuple[str, str]]]) -> None:
        for item_id, (mime_type, description) in identified:
            item = self._identifying.pop(item_id)
            name = path_bytes(item.path).rsplit(b"/", 1)[-1]
            if item.nlink > 1:
                self._link_types[item_id] = (mime_type, description)
            self._encoded[item_id] = canonical_bytes(
                item.model_copy(
                    update={
                        "mime_type": mime_type,
                        "description": description,
                        "extension_mismatch": filetype.extension_mismatch(name, mime_type),
                    }
                )
            )

    def finish(self) -> None:
        """Complete every record with the file types identified meanwhile on other threads."""
        self._set_types(self._typing.results())
        for item in self._later_links:
            mime_type, description = self._link_types.get(item.hardlink_of or 0, (None, None))
            update = {"mime_type": mime_type, "description": description}
            self._encoded[item.id] = canonical_bytes(item.model_copy(update=update))
        self._later_links.clear()

    def take_encoded(self) -> list[bytes]:
        """Every finished item's canonical bytes, in id order; the walker keeps none."""
        assert not self._identifying and not self._later_links, "finish() first"
        encoded, self._encoded = self._encoded, []
        return encoded

    def abandon(self) -> None:
        self._typing.abandon()

    def acquire_source(self, source: Source) -> None:
        for entry in walk(source.index, str(source.path), source.label):
            record = self._record(entry)
            if record.noatime is False:
                self.noatime_refused.add(source.index)
            self.tally.count(record)
            self._encoded.append(b"")
            if record.kind == "hardlink":
                self._later_links.append(record)
            elif record.id not in self._identifying:
                self._encoded[record.id] = canonical_bytes(record)
            self._set_types(self._typing.ready())
            self._progress.advance(items=1)

    def acquire_image(self, image: ImageSource, request: ImageRequest) -> None:
        """The whole source, sequentially, into one member: one read feeds the item's
        digests, the window digests and the container."""
        item_id = len(self._encoded)
        info = image.stat
        read_at = clock.now()
        sink = self._writer.begin_item(item_id, image.size)
        digest = digest_for(image.size, self._algorithms)
        windows = WindowDigests(request.window_size)
        window_feed = ThreadedFeed(windows, name="windows")  # SHA-256 again: another thread
        try:
            for offset in range(0, image.size, CHUNK_SIZE):
                known = len(image.read_errors)
                chunk = read_window(image, offset, min(CHUNK_SIZE, image.size - offset),
                                    request.retries)  # fmt: skip
                if len(image.read_errors) != known:
                    self._progress.advance(errors=len(image.read_errors) - known)
                digest.update(chunk)
                window_feed.update(chunk)
                sink.write(chunk)
                self._progress.advance(nbytes=len(chunk))
        finally:
            digest.close()
            window_feed.close()
        digests = digest.hexdigests()
        location = sink.finish(digests["sha256"])
        zero_filled = sum(e.length or 0 for e in image.read_errors)
        label = os.fsencode(image.path.name)
        record = ItemRecord(
            **(_stat_fields(item_id, 0, label, info) | {"size": image.size}),
            kind="disk-image",
            status="unreadable" if image.read_errors else "ok",
            reason=_("{n} bytes could not be read and were zero-filled").format(n=zero_filled)
            if image.read_errors
            else None,
            errno=image.read_errors[0].errno if image.read_errors else None,
            stored_size=image.size,
            rdev=str(info.st_rdev) if image.block_device else None,
            digests=digests,
            location=location,
            read_at=read_at,
            noatime=image.noatime,
            read_errors=image.read_errors,
            image=ImageInfo(
                source_kind="block-device" if image.block_device else "file",
                size=image.size,
                sectors=image.size // image.logical_sector_size,
                logical_sector_size=image.logical_sector_size,
                physical_sector_size=image.physical_sector_size,
                window_size=request.window_size,
                window_sha256=windows.finish(),
                zero_filled_bytes=zero_filled,
                device=image.facts,
            ),
        )
        self.tally.count(record)
        self._encoded.append(canonical_bytes(record))
        self.image_info = record.image
        self._progress.advance(items=1)

    def _record(self, entry: SourceEntry) -> ItemRecord:
        item_id = len(self._encoded)
        if entry.stat is None:  # listed, but lstat failed
            error = entry.error
            vanished = error is None or error.errno == errno.ENOENT
            return ItemRecord(
                id=item_id,
                source=entry.source,
                path=path_name(entry.relpath),
                kind="unknown",
                status="skipped" if vanished else "unreadable",
                reason=_("vanished before it could be examined")
                if vanished
                else _("could not be examined: {reason}").format(
                    reason=error.strerror if error and error.strerror else error
                ),
                errno=error.errno if error else None,
                size=0,
                mode=0,
                mode_text="?",
                uid=-1,
                gid=-1,
                inode="0",
                device="0",
                nlink=0,
                atime=clock.instant_from_ns(0),
                mtime=clock.instant_from_ns(0),
                ctime=clock.instant_from_ns(0),
            )
        info = entry.stat
        kind = kind_of(info.st_mode)
        common = _stat_fields(item_id, entry.source, entry.relpath, info)
        if kind == "directory":
            if entry.error is not None:
                return _unlisted_folder(entry, info, common)
            return ItemRecord(
                **common,
                kind=kind,
                status="ok",
                noatime=entry.noatime,
                xattrs=read_xattrs(entry, entry.directory_fd),
            )
        if kind == "symlink":
            try:
                target = path_name(read_link(entry))
            except OSError as error:
                return ItemRecord(
                    **common,
                    kind=kind,
                    status="unreadable",
                    errno=error.errno,
                    reason=error.strerror,
                )
            return ItemRecord(
                **common,
                kind=kind,
                status="ok",
                symlink_target=target,
                xattrs=read_xattrs(entry, None),
            )
        if kind != "file":
            rdev = str(info.st_rdev) if kind in ("char-device", "block-device") else None
            return ItemRecord(
                **common, kind=kind, status="ok", rdev=rdev, xattrs=read_xattrs(entry, None)
            )
        if info.st_nlink > 1:
            first = self._hardlinks.get((info.st_dev, info.st_ino))
            if first is not None:
                return ItemRecord(
                    **common,
                    kind="hardlink",
                    status="ok",
                    hardlink_of=first.id,
                    digests=first.digests,
                    location=first.location,
                    stored_size=first.stored_size,
                    xattrs=first.xattrs,  # file types are copied from the first in finish()
                )
        record = self._read_file(entry, item_id, common)
        if info.st_nlink > 1 and record.status == "ok":
            self._hardlinks[(info.st_dev, info.st_ino)] = record
        return record

    def _read_file(self, entry: SourceEntry, item_id: int, common: _StatFields) -> ItemRecord:
        assert entry.stat is not None
        try:
            fd, noatime = open_readonly(entry.name, FILE_FLAGS, entry.dir_fd)
        except OSError as error:
            now = lstat_again(entry)
            if now is None and error.errno == errno.ENOENT:
                return ItemRecord(
                    **common,
                    kind="file",
                    status="skipped",
                    errno=error.errno,
                    reason=_("vanished between listing and reading"),
                )
            if now is not None and not _unchanged(entry.stat, now):
                return ItemRecord(  # e.g. swapped for a symlink: O_NOFOLLOW refused it
                    **common,
                    kind="file",
                    status="changed-during-read",
                    errno=error.errno,
                    reason=_("replaced by {kind} before it was read").format(
                        kind=kind_of(now.st_mode)
                    ),
                    stat_before=stat_record(entry.stat),
                    stat_after=stat_record(now),
                )
            return ItemRecord(
                **common,
                kind="file",
                status="unreadable",
                errno=error.errno,
                reason=_("could not be opened: {reason}").format(reason=error.strerror),
                read_errors=[
                    ReadError(
                        offset=0,
                        length=None,
                        errno=error.errno or 0,
                        error=error.strerror or str(error),
                    )
                ],
            )
        try:
            return self._read_open_file(entry, item_id, common, fd, noatime)
        finally:
            os.close(fd)

    def _copy(
        self, fd: int, digest: MultiDigest | ThreadedDigest, sink: ItemSink
    ) -> tuple[int, bytes, list[ReadError]]:
        """One read of every byte: each chunk to the digests and the container.
        Returns (bytes read, the first MiB for libmagic, read errors)."""
        head = b""
        offset = 0
        while True:
            try:
                chunk = read_chunk(fd, CHUNK_SIZE)
            except OSError as error:
                failure = ReadError(offset=offset, length=None, errno=error.errno or errno.EIO,
                                    error=error.strerror or str(error))  # fmt: skip
                return offset, head, [failure]
            if not chunk:
                return offset, head, []
            if len(head) < filetype.MAGIC_BYTES:
                head += chunk[: filetype.MAGIC_BYTES - len(head)]
            digest.update(chunk)
            sink.write(chunk)
            offset += len(chunk)
            self._progress.advance(nbytes=len(chunk))

    def _read_open_file(
        self, entry: SourceEntry, item_id: int, common: _StatFields, fd: int, noatime: bool
    ) -> ItemRecord:
        assert entry.stat is not None
        before = os.fstat(fd)
        read_at = clock.now()
        if not stat.S_ISREG(before.st_mode):  # replaced by something else since lstat
            return ItemRecord(
                **common,
                kind="file",
                status="changed-during-read",
                reason=_("replaced by another kind of object before it was read"),
                stat_before=stat_record(entry.stat),
                stat_after=stat_record(before),
                noatime=noatime,
            )
        sink = self._writer.begin_item(item_id, before.st_size)
        digest = digest_for(before.st_size, self._algorithms)  # a thread: closed below
        try:
            offset, head, read_errors = self._copy(fd, digest, sink)
        finally:
            digest.close()
        digests = digest.hexdigests()
        location: ItemLocation = sink.finish(digests["sha256"])
        after = os.fstat(fd)
        path_now = lstat_again(entry)
        changed = not (
            _unchanged(entry.stat, before)
            and _unchanged(before, after)
            and path_now is not None
            and _unchanged(before, path_now)
            and offset == before.st_size
        )
        status: ItemStatus = "ok"
        reason = None
        if read_errors:
            status = "unreadable"
            reason = _("read error at byte {offset}: {error}").format(
                offset=read_errors[0].offset, error=read_errors[0].error
            )
        elif changed:
            status = "changed-during-read"
            reason = _(
                "size, times or identity changed while it was read "
                "({read} bytes read, {size} expected)"
            ).format(read=offset, size=before.st_size)
        record = ItemRecord(
            **common,
            kind="file",
            status=status,
            reason=reason,
            errno=read_errors[0].errno if read_errors else None,
            stored_size=offset,
            xattrs=read_xattrs(entry, fd),
            digests=digests,
            location=location,
            read_at=read_at,
            noatime=noatime,
            stat_before=stat_record(entry.stat) if changed else None,
            stat_after=stat_record(path_now or after) if changed else None,
            read_errors=read_errors,
        )
        self._identifying[item_id] = record
        self._typing.submit(item_id, head)
        return record


__all__ = ["AcquireRequest", "ImageRequest", "acquire", "stat_record"]
