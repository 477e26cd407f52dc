"""Exports other tools read: hash lists (``sha256sum``/``md5sum`` format) of the evidence.

Lines are relative to the folder ``extract --out DIR`` writes, so ``cd DIR && sha256sum
-c LIST`` re-checks every extracted file without evidence-kit. Names are written as their
exact bytes, with the escaping GNU coreutils uses: a name holding a backslash, a newline
or a carriage return has them written as ``\\\\``, ``\\n`` and ``\\r`` and its line starts
with a backslash. The list names files of the evidence, so exporting needs the key; it
is written only from a bundle whose container, custody log, manifest and seal verify.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence_kit.atomic import AtomicFile, output_error
from evidence_kit.bundle import open_intact, trusted_fingerprints
from evidence_kit.custody_append import Recorder
from evidence_kit.errors import UsageError
from evidence_kit.i18n import _
from evidence_kit.keys import KeyMaterial
from evidence_kit.models import ExportResult
from evidence_kit.naming import path_bytes

HASH_LIST_FORMATS = {"sha256sum": "sha256", "md5sum": "md5"}
STORED_KINDS = ("file", "hardlink", "disk-image")


@dataclass(frozen=True)
class ExportRequest:
    container: Path
    output: Path
    format: str
    key: KeyMaterial = field(repr=False)
    trusted: tuple[Ed25519PublicKey, ...] = ()
    overwrite: bool = False
    record: Recorder | None = None


def hash_list_line(digest: str, name: bytes) -> bytes:
    """One ``sha256sum``-style line, escaped as GNU coreutils writes and reads it."""
    escaped = name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    prefix = b"\\" if escaped != name else b""
    return prefix + digest.encode("ascii") + b"  " + escaped + b"\n"


def export_bundle(request: ExportRequest) -> ExportResult:
    algorithm = HASH_LIST_FORMATS.get(request.format)
    if algorithm is None:
        raise UsageError(
            _("unknown export format {name!r}; one of: {names}").format(
                name=request.format, names=", ".join(HASH_LIST_FORMATS)
            )
        )
    if request.output.exists() and not request.overwrite:
        raise UsageError(
            _("{path} already exists; refusing to replace it").format(path=request.output),
            hint=_("Choose another --out, or pass --overwrite."),
        )
    trusted = trusted_fingerprints(list(request.trusted))
    bundle = open_intact(
        request.container,
        request.key,
        trusted,
        _("refusing to export: the bundle does not verify ({code}: {subject})"),
    )
    try:
        assert bundle.manifest is not None and bundle.items is not None
        if algorithm not in bundle.manifest.hash_algorithms:
            raise UsageError(
                _("this bundle has no {algorithm} digests (acquired with --hash {algorithms})")
                .format(algorithm=algorithm, algorithms=",".join(
                    bundle.manifest.hash_algorithms))
            )  # fmt: skip
        lines = [
            hash_list_line(item.digests[algorithm], path_bytes(item.path))
            for item in bundle.items
            if item.kind in STORED_KINDS and item.location is not None
        ]
        container_sha256 = bundle.container_sha256
        bundle_id = bundle.manifest.bundle_id
    finally:
        bundle.close()
    with AtomicFile(request.output) as out:
        try:
            out.file.write(b"".join(lines))
            out.commit(overwrite=request.overwrite)
        except OSError as error:
            raise output_error(request.output, error) from None
    recorded = None
    if request.record is not None:
        outcome = _("{format} list of {n} files exported").format(
            format=request.format, n=len(lines)
        )
        recorded = request.record.record(request.container, "exported", outcome, container_sha256)
    return ExportResult(
        container=str(request.container),
        bundle_id=bundle_id,
        format=request.format,
        output=str(request.output),
        entries=len(lines),
        recorded_event=recorded,
    )


__all__ = ["HASH_LIST_FORMATS", "ExportRequest", "export_bundle", "hash_list_line"]
