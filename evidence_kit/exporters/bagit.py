"""BagIt 1.0 bags (RFC 8493) of a bundle's verified files, as ``bagit.py --validate`` checks.

The payload ``data/`` is what ``extract`` writes: every stored file under its exact name
(hard links as links to one file, disk images as files), each written only after its
bytes matched the bundle's manifest. If any item cannot be written so, the export fails
and nothing is left. The payload manifests (``manifest-sha256.txt``, and ``-sha512``,
``-sha1``, ``-md5`` for each algorithm the bundle was acquired with) hold the manifest's
digests, not new ones. ``bag-info.txt`` holds the Payload-Oxum, the bundle id as
External-Identifier, the case fields and the container's SHA-256.

BagIt lists files only. Symlinks, special files (fifos, sockets, devices), files whose
bytes were not stored, and folders with no file below them are not payload; each is a
line of the tag file ``evidence-kit-not-in-payload.txt`` (kind, status, displayed path,
symlink target, tab-separated), so nothing is dropped silently. Every tag file is listed
in the tag manifests.

Names in manifests: RFC 8493 section 2.1.3 has CR, LF and ``%`` percent-encoded.
bagit-python 1.9, like every other validator in use (bagit-python issue #157), decodes
``%0D`` and ``%0A`` only, so CR and LF are written as ``%0D`` and ``%0A`` and ``%`` as
itself. A name that validators would read back as another name is refused before
anything is written, naming the item: a name that is not UTF-8 (BagIt requires UTF-8);
one holding ``%0A``, ``%0D`` or ``%25`` in any case (decoded by some readers and not by
others); more than two CRs or two LFs (bagit-python 1.9 decodes only the first two); a
character Python's line reading ends a line at (VT, FF, U+001C-U+001E, U+0085, U+2028,
U+2029); white space at the end (stripped from manifest lines); or two names equal
after Unicode NFC normalisation (bagit-python compares names after it).
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from evidence_kit import __version__
from evidence_kit.errors import EnvironmentFailure, UsageError, VerificationFailed
from evidence_kit.exporters.source import STORED_KINDS, ExportSource
from evidence_kit.extract import ExtractedTree, UnsafeName, extract_items, safe_components
from evidence_kit.hashing import MultiDigest
from evidence_kit.i18n import _
from evidence_kit.models import ItemRecord
from evidence_kit.naming import path_bytes, printable_text

BAG_ALGORITHMS = ("sha256", "sha512", "sha1", "md5")
NOT_IN_PAYLOAD = "evidence-kit-not-in-payload.txt"
NOT_IN_PAYLOAD_COLUMNS = b"kind\tstatus\tpath\tsymlink-target\n"
BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
TAG_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

# Where Python's line reading (str.splitlines, used by bagit-python) ends a line, CR and
# LF aside; a name cannot hold one and stay on its manifest line.
_READ_AS_LINE_BREAK = frozenset("\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
_ESCAPE_LOOKALIKE = re.compile("%(0a|0d|25)", re.IGNORECASE)


class UnrepresentableName(ValueError):
    """A name no BagIt manifest line can hold so that validators read it back exactly."""


def manifest_path(raw: bytes) -> str:
    """The payload path of the item named ``raw`` as a manifest line holds it:
    ``data/`` and the name, CR and LF written ``%0D`` and ``%0A``; UnrepresentableName
    (its message says why) when validators would read back another name."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnrepresentableName(_("it is not UTF-8, which BagIt requires")) from None
    if _ESCAPE_LOOKALIKE.search(text):
        raise UnrepresentableName(
            _("it holds '%0A', '%0D' or '%25', which validators decode differently")
        )
    if text.count("\r") > 2 or text.count("\n") > 2:
        raise UnrepresentableName(
            _("it holds more than two carriage returns or line feeds; bagit-python decodes two")
        )
    if any(char in _READ_AS_LINE_BREAK for char in text):
        raise UnrepresentableName(_("it holds a character validators read as a line break"))
    if text[-1:].isspace() and text[-1] not in "\r\n":
        raise UnrepresentableName(_("it ends in white space, which validators strip"))
    return "data/" + text.replace("\r", "%0D").replace("\n", "%0A")


def write_bag(source: ExportSource, folder: Path) -> int:
    """``write_folder`` for ``export --format bagit``: returns the payload file count."""
    algorithms = [a for a in BAG_ALGORITHMS if a in source.manifest.hash_algorithms]
    payload = _check_payload(source)
    tree = extract_items(source.bundle, folder / "data", symlinks=False)
    _refuse_incomplete(tree)
    tags = _TagFiles(folder, algorithms)  # an OSError is said of --out by the caller
    _write_manifests(source, payload, tags)
    tags.write("bag-info.txt", _bag_info(source, payload))
    tags.write("bagit.txt", BAGIT_TXT)
    tags.write_tag_manifests()
    return payload.files


@dataclass
class _Payload:
    """What the payload will hold, known before anything is written."""

    octets: int = 0
    files: int = 0
    folders_with_files: set[bytes] = field(default_factory=set)


def _is_stored(item: ItemRecord) -> bool:
    return item.kind in STORED_KINDS and item.location is not None


def _holds_payload(item: ItemRecord, payload: _Payload) -> bool:
    return item.kind == "directory" and path_bytes(item.path) in payload.folders_with_files


def _check_payload(source: ExportSource) -> _Payload:
    """The payload's size, or UsageError naming the first item a bag cannot hold."""
    payload = _Payload()
    normalised: set[str] = set()
    for item in source.stored_items():
        try:
            raw = path_bytes(item.path)
            safe_components(raw)
            name = manifest_path(raw)
        except (UnsafeName, ValueError) as error:
            reason = str(error) if isinstance(error, UnrepresentableName) else ""
            raise _unrepresentable(item, reason or _("it is not a safe relative name")) from None
        key = unicodedata.normalize("NFC", name)
        if key in normalised:
            raise _unrepresentable(
                item, _("another name is the same after Unicode NFC normalisation")
            )
        normalised.add(key)
        payload.octets += item.stored_size or 0
        payload.files += 1
        parent = raw.rpartition(b"/")[0]
        while parent and parent not in payload.folders_with_files:
            payload.folders_with_files.add(parent)
            parent = parent.rpartition(b"/")[0]
    return payload


def _unrepresentable(item: ItemRecord, reason: str) -> UsageError:
    return UsageError(
        _("{path} cannot be written into a BagIt bag: {reason}").format(
            path=item.path.display, reason=reason
        ),
        hint=_(
            "Nothing was written. 'export --format sha256sum' lists every file under its "
            "exact name, and 'extract' writes them."
        ),
    )


def _refuse_incomplete(tree: ExtractedTree) -> None:
    """An I/O failure is the machine's (EnvironmentFailure); any other finding means the
    evidence could not be written as the manifest describes it (VerificationFailed)."""
    if not tree.findings:
        return
    worst = next((f for f in tree.findings if f.code != "extract-write-failed"), None)
    first = worst or tree.findings[0]
    message = _(
        "{n} item(s) could not be written into the bag; first {subject}: {message} ({code})"
    )
    text = message.format(
        n=len(tree.findings), subject=first.subject, message=first.message, code=first.code
    )
    hint = _("Nothing was written. 'evidence-kit extract' reports every problem.")
    if worst is None:
        raise EnvironmentFailure(text, hint=hint)
    raise VerificationFailed(text, hint=hint)


def _write_manifests(source: ExportSource, payload: _Payload, tags: _TagFiles) -> None:
    """One pass over the items: each stored item is a line of every payload manifest;
    everything else that is not a folder holding files is a line of NOT_IN_PAYLOAD."""
    with ExitStack() as stack:
        manifests = {
            algorithm: stack.enter_context(tags.open(f"manifest-{algorithm}.txt"))
            for algorithm in tags.algorithms
        }
        not_in_payload = stack.enter_context(tags.open(NOT_IN_PAYLOAD))
        not_in_payload.write(NOT_IN_PAYLOAD_COLUMNS)
        for item in source.items:
            if _is_stored(item):
                name = manifest_path(path_bytes(item.path)).encode("utf-8")
                for algorithm, manifest in manifests.items():
                    manifest.write(item.digests[algorithm].encode("ascii") + b"  " + name + b"\n")
            elif not _holds_payload(item, payload):
                target = item.symlink_target.display if item.symlink_target is not None else ""
                line = f"{item.kind}\t{item.status}\t{item.path.display}\t{target}\n"
                not_in_payload.write(line.encode("utf-8"))


def _bag_info(source: ExportSource, payload: _Payload) -> bytes:
    """``bag-info.txt``: reserved fields of RFC 8493 section 2.2.2, then Case-Number,
    Evidence-Number, Examiner and Bundle-SHA256 (the container file's SHA-256)."""
    manifest = source.manifest
    case, provenance = manifest.case, manifest.provenance
    description = _(
        "Files of evidence-kit bundle {bundle}, each written only after it matched the "
        "digests in the bundle's manifest. Acquired with {tool} {version} on {host}, "
        "finished {finished}."
    ).format(
        bundle=manifest.bundle_id,
        tool=provenance.tool.name,
        version=provenance.tool.version,
        host=provenance.host,
        finished=provenance.finished.utc or provenance.finished.ns,
    )
    fields = (
        ("Bag-Software-Agent", f"evidence-kit {__version__}"),
        ("Bagging-Date", datetime.now(UTC).date().isoformat()),
        ("Payload-Oxum", f"{payload.octets}.{payload.files}"),
        ("External-Identifier", manifest.bundle_id),
        ("External-Description", case.description),
        ("Internal-Sender-Description", description),
        ("Case-Number", case.case_number),
        ("Evidence-Number", case.evidence_number),
        ("Examiner", case.examiner),
        ("Bundle-SHA256", source.container_sha256),
    )
    lines = []
    for label, value in fields:
        text = printable_text(value).strip()  # one line: controls and line breaks escaped
        if text:
            lines.append(f"{label}: {text}\n")
    return "".join(lines).encode("utf-8")


class _HashedFile:
    def __init__(self, out: BinaryIO, digest: MultiDigest) -> None:
        self._out = out
        self._digest = digest

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self._digest.update(data)


class _TagFiles:
    """The bag's tag files, owner-only, each hashed with every bag algorithm as it is
    written; :meth:`write_tag_manifests` lists them all."""

    def __init__(self, folder: Path, algorithms: list[str]) -> None:
        self.folder = folder
        self.algorithms = algorithms
        self.digests: dict[str, dict[str, str]] = {}

    def _create(self, name: str) -> BinaryIO:
        return os.fdopen(os.open(self.folder / name, TAG_FILE_FLAGS, 0o600), "wb")

    @contextmanager
    def open(self, name: str) -> Iterator[_HashedFile]:
        digest = MultiDigest(self.algorithms)
        with self._create(name) as out:
            yield _HashedFile(out, digest)
        self.digests[name] = digest.hexdigests()

    def write(self, name: str, data: bytes) -> None:
        with self.open(name) as out:
            out.write(data)

    def write_tag_manifests(self) -> None:
        for algorithm in self.algorithms:
            with self._create(f"tagmanifest-{algorithm}.txt") as out:
                for name, digests in self.digests.items():
                    out.write(f"{digests[algorithm]}  {name}\n".encode("ascii"))


__all__ = ["BAG_ALGORITHMS", "NOT_IN_PAYLOAD", "UnrepresentableName", "manifest_path", "write_bag"]
