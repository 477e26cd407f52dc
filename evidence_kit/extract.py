"""Safe, verified extraction of a bundle's items to a folder.

Every item is written to a temporary name inside its destination folder and linked to
its final name only after its digests matched the manifest, so a tampered member leaves
no partial file. Names come from the manifest and are hostile input: each path component
is checked, folders are entered one component at a time with ``O_NOFOLLOW`` relative to
the destination's descriptor, so nothing is written outside it or through a symlink.
An existing name is a collision, reported and never overwritten. Copies are owner-only
(files 0600, folders 0700) with their recorded modification times.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence_kit.atomic import output_error
from evidence_kit.bundle import (
    Bundle,
    ContentError,
    ContentReader,
    open_intact,
    trusted_fingerprints,
)
from evidence_kit.custody_append import Recorder
from evidence_kit.errors import EnvironmentFailure
from evidence_kit.hashing import MultiDigest
from evidence_kit.i18n import _
from evidence_kit.keys import KeyMaterial
from evidence_kit.models import ExtractedItem, ExtractResult, Finding, ItemRecord
from evidence_kit.naming import path_bytes
from evidence_kit.progress import Progress, SilentProgress

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class ExtractRequest:
    container: Path
    destination: Path
    key: KeyMaterial = field(repr=False)
    trusted: tuple[Ed25519PublicKey, ...] = ()
    record: Recorder | None = None


class UnsafeName(Exception):
    pass


def safe_components(raw: bytes) -> list[bytes]:
    """The components of a manifest path, or UnsafeName if any could escape or mislead."""
    parts = raw.split(b"/")
    for part in parts:
        if part in (b"", b".", b"..") or b"\0" in part or len(part) > 255:
            raise UnsafeName(raw)
    return parts


class _Folders:
    """Opens destination folders component by component, creating them, never following
    a symlink; keeps only the current chain of descriptors open."""

    def __init__(self, root_fd: int) -> None:
        self._root = root_fd
        self._chain: list[tuple[bytes, int]] = []

    def open(self, components: list[bytes]) -> int:
        common = 0
        while (
            common < len(self._chain)
            and common < len(components)
            and self._chain[common][0] == components[common]
        ):
            common += 1
        while len(self._chain) > common:
            os.close(self._chain.pop()[1])
        parent = self._chain[-1][1] if self._chain else self._root
        for component in components[common:]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(component, 0o700, dir_fd=parent)
            parent = os.open(component, DIRECTORY_FLAGS, dir_fd=parent)
            self._chain.append((component, parent))
        return parent

    def close(self) -> None:
        while self._chain:
            os.close(self._chain.pop()[1])


@dataclass
class ExtractedTree:
    """What :func:`extract_items` wrote."""

    results: list[ExtractedItem]
    findings: list[Finding]
    bytes_written: int

    @property
    def written(self) -> int:
        return sum(1 for i in self.results if i.outcome == "written")


def extract_items(
    bundle: Bundle,
    destination: Path,
    progress: Progress | None = None,
    *,
    symlinks: bool = True,
) -> ExtractedTree:
    """Write the items of an unlocked, intact bundle (see :func:`open_intact`) below
    ``destination``; with ``symlinks=False`` symlinks are recorded as not materialised."""
    progress = progress or SilentProgress()
    assert bundle.manifest is not None and bundle.items is not None
    manifest = bundle.manifest
    root_fd = _open_destination(destination)
    progress.start(len(bundle.items), manifest.summary.bytes)
    extractor = _Extractor(root_fd, ContentReader(bundle), manifest.hash_algorithms, progress)
    extractor.symlinks = symlinks
    try:
        extractor.run(bundle.items)  # a full disk stops it with ENOSPC (OSError)
    finally:
        extractor.close()
        os.close(root_fd)
        progress.finish()
    return ExtractedTree(extractor.results, extractor.findings, extractor.bytes_written)


def extract_bundle(request: ExtractRequest, progress: Progress | None = None) -> ExtractResult:
    trusted = trusted_fingerprints(list(request.trusted))
    bundle = open_intact(
        request.container,
        request.key,
        trusted,
        _("refusing to extract: the bundle does not verify ({code}: {subject})"),
    )
    try:
        assert bundle.manifest is not None
        try:
            tree = extract_items(bundle, request.destination, progress)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            raise EnvironmentFailure(
                _("the disk holding {path} is full").format(path=request.destination),
                hint=_("The files written before are complete and verified; the one being "
                       "written was removed. Free space and extract again into a new folder."),
            ) from None  # fmt: skip
        recorded = None
        if request.record is not None:
            outcome = _("{n} files, {bytes} bytes extracted{incomplete}").format(
                n=tree.written,
                bytes=tree.bytes_written,
                incomplete="" if not tree.findings else _(", with problems"),
            )
            recorded = request.record.record(
                request.container, "extracted", outcome, bundle.container_sha256
            )
        return ExtractResult(
            container=str(request.container),
            destination=str(request.destination),
            bundle_id=bundle.manifest.bundle_id,
            written=tree.written,
            bytes_written=tree.bytes_written,
            findings=tree.findings,
            items=tree.results,
            complete=not tree.findings,
            recorded_event=recorded,
        )
    finally:
        bundle.close()


def _open_destination(destination: Path) -> int:
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(destination, 0o700)
        return os.open(destination, DIRECTORY_FLAGS)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise EnvironmentFailure(
                _("{path} is a symlink; extraction needs a real folder").format(path=destination)
            ) from None
        raise output_error(destination, error) from None


class _Extractor:
    def __init__(
        self, root_fd: int, contents: ContentReader, algorithms: list[str], progress: Progress
    ) -> None:
        self._folders = _Folders(root_fd)
        self._contents = contents
        self._algorithms = algorithms
        self._progress = progress
        self._written: dict[int, tuple[list[bytes], bytes]] = {}
        self.results: list[ExtractedItem] = []
        self.findings: list[Finding] = []
        self.bytes_written = 0
        self.symlinks = True
        # The temp name being written, until it is gone: an interruption (Ctrl-C) can
        # land inside _write_file's own clean-up, so close() removes it as well.
        self._pending: tuple[int, bytes] | None = None

    def close(self) -> None:
        if self._pending is not None:
            parent, temp = self._pending
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=parent)
            self._pending = None
        self._folders.close()

    def _fail(self, item: ItemRecord, code: str, message: str) -> None:
        self.findings.append(
            Finding(code=code, severity="error", subject=item.path.display, message=message)
        )
        self.results.append(
            ExtractedItem(id=item.id, path=item.path.display, outcome="failed", reason=code)
        )

    def run(self, items: Iterable[ItemRecord]) -> None:
        deferred: list[tuple[ItemRecord, list[bytes]]] = []
        folders: list[tuple[ItemRecord, list[bytes]]] = []
        for item in items:
            try:
                parts = safe_components(path_bytes(item.path))
            except (UnsafeName, ValueError):
                self._fail(item, "extract-unsafe-name", _("name could escape the destination"))
                continue
            try:
                if item.kind == "directory":
                    self._folders.open(parts)
                    folders.append((item, parts))
                    self.results.append(
                        ExtractedItem(id=item.id, path=item.path.display, outcome="directory")
                    )
                elif item.kind in ("file", "hardlink", "disk-image") and item.location is not None:
                    self._write_file(item, parts)
                elif item.kind == "symlink" and item.symlink_target is not None and self.symlinks:
                    deferred.append((item, parts))
                else:
                    self.results.append(
                        ExtractedItem(
                            id=item.id,
                            path=item.path.display,
                            outcome="not-materialised",
                            reason=_("{kind} ({status}) is recorded, not recreated").format(
                                kind=item.kind, status=item.status
                            ),
                        )
                    )
            except OSError as error:
                if error.errno == errno.ENOSPC:
                    raise  # the destination is full: extract_items says so and stops
                self._fail(item, "extract-write-failed", error.strerror or str(error))
            self._progress.advance(items=1)
        for item, parts in deferred:  # last, so no link can redirect a write
            self._write_symlink(item, parts)
        for item, parts in reversed(folders):  # deepest first: children no longer change them
            self._set_times(item, parts[:-1], parts[-1])

    def _write_file(self, item: ItemRecord, parts: list[bytes]) -> None:
        parent = self._folders.open(parts[:-1])
        name = parts[-1]
        if item.kind == "hardlink" and item.hardlink_of in self._written:
            source_parts, source_name = self._written[item.hardlink_of]
            if self._link_existing(item, source_parts, source_name, parts):
                return
        temp = f".evidence-kit-{secrets.token_hex(8)}.partial".encode()
        self._pending = (parent, temp)
        fd = os.open(temp, TEMP_FLAGS, 0o600, dir_fd=parent)
        digest = MultiDigest(self._algorithms)
        size = 0
        limit = item.stored_size or 0
        try:
            try:
                with os.fdopen(fd, "wb", closefd=True) as out:
                    for chunk in self._contents.item_chunks(item):
                        size += len(chunk)
                        if size > limit:
                            raise ContentError("item-size-mismatch", _("more bytes than recorded"))
                        digest.update(chunk)
                        out.write(chunk)
                        self._progress.advance(nbytes=len(chunk))
                    out.flush()
                    os.fsync(out.fileno())
            except ContentError as error:
                self._fail(item, error.code, str(error))
                return
            actual = digest.hexdigests()
            if size != limit or any(actual.get(a) != d for a, d in item.digests.items()):
                self._fail(item, "item-digest-mismatch", _("bytes differ from the manifest"))
                return
            try:
                os.link(temp, name, src_dir_fd=parent, dst_dir_fd=parent, follow_symlinks=False)
            except FileExistsError:
                self._fail(item, "extract-collision", _("a file of that name already exists"))
                return
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=parent)
            self._pending = None
        self._set_times(item, parts[:-1], name)
        self._written[item.id] = (parts[:-1], name)
        self.bytes_written += size
        self.results.append(
            ExtractedItem(
                id=item.id,
                path=item.path.display,
                outcome="written",
                reason=None if item.status == "ok" else item.status,
            )
        )

    def _link_existing(
        self, item: ItemRecord, source_parts: list[bytes], source_name: bytes, parts: list[bytes]
    ) -> bool:
        source_parent = self._folders.open(source_parts)
        source_fd = os.dup(source_parent)
        try:
            parent = self._folders.open(parts[:-1])
            os.link(
                source_name,
                parts[-1],
                src_dir_fd=source_fd,
                dst_dir_fd=parent,
                follow_symlinks=False,
            )
        except FileExistsError:
            self._fail(item, "extract-collision", _("a file of that name already exists"))
            return True
        except OSError:
            return False
        finally:
            os.close(source_fd)
        self.results.append(ExtractedItem(id=item.id, path=item.path.display, outcome="hardlink"))
        return True

    def _write_symlink(self, item: ItemRecord, parts: list[bytes]) -> None:
        assert item.symlink_target is not None
        try:
            target = path_bytes(item.symlink_target)
        except ValueError:
            target = b"\0"  # not base64: no name at all
        if b"\0" in target:
            self._fail(item, "extract-unsafe-name", _("the link target is not a possible name"))
            return
        try:
            parent = self._folders.open(parts[:-1])
            os.symlink(target, parts[-1], dir_fd=parent)
        except FileExistsError:
            self._fail(item, "extract-collision", _("a file of that name already exists"))
            return
        except OSError as error:
            self._fail(item, "extract-write-failed", error.strerror or str(error))
            return
        self._set_times(item, parts[:-1], parts[-1])
        self.results.append(ExtractedItem(id=item.id, path=item.path.display, outcome="symlink"))

    def _set_times(self, item: ItemRecord, parent_parts: list[bytes], name: bytes) -> None:
        try:
            parent = self._folders.open(parent_parts)
            ns = (int(item.atime.ns), int(item.mtime.ns))
            os.utime(name, ns=ns, dir_fd=parent, follow_symlinks=False)
        except (OSError, ValueError, OverflowError):
            pass  # a time the destination file system cannot hold; the manifest keeps it


__all__ = ["ExtractRequest", "ExtractedTree", "extract_bundle", "extract_items", "safe_components"]
