"""Exports other tools read, each written from a bundle that verifies.

Every format is written from an unlocked bundle with no error finding (container,
custody log, layout, manifest, seal), to a temporary name beside ``--out`` that is moved
into place only when complete. Exports hold data derived from the plaintext (file
names, digests), so each needs the bundle's key and, with ``--sign``/``--actor``, is
recorded as an ``exported`` custody event.

The formats live one to a module and register here: a format writes either one file
(:attr:`ExportFormat.write_file` gets the open temporary file) or one folder
(:attr:`ExportFormat.write_folder` gets an empty temporary folder). Each returns the
number of entries it wrote and reads the bundle through :class:`ExportSource`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence_kit.atomic import AtomicFile, AtomicFolder, output_error
from evidence_kit.bundle import open_intact, trusted_fingerprints
from evidence_kit.custody_append import Recorder
from evidence_kit.errors import UsageError
from evidence_kit.exporters.formats import EXPORT_FORMATS
from evidence_kit.exporters.source import ExportFormat, ExportSource
from evidence_kit.i18n import _
from evidence_kit.keys import KeyMaterial
from evidence_kit.models import ExportResult


@dataclass(frozen=True)
class ExportRequest:
    container: Path
    output: Path
    format: str
    key: KeyMaterial = field(repr=False)
    trusted: tuple[Ed25519PublicKey, ...] = ()
    tsa_roots: tuple[x509.Certificate, ...] = ()
    overwrite: bool = False
    record: Recorder | None = None


def export_format(name: str) -> ExportFormat:
    chosen = EXPORT_FORMATS.get(name)
    if chosen is None:
        raise UsageError(
            _("unknown export format {name!r}; one of: {names}").format(
                name=name, names=", ".join(EXPORT_FORMATS)
            )
        )
    return chosen


def export_bundle(request: ExportRequest) -> ExportResult:
    chosen = export_format(request.format)
    exists = request.output.exists() or request.output.is_symlink()
    if exists and (chosen.write_folder is not None or not request.overwrite):
        raise UsageError(
            _("{path} already exists; refusing to replace it").format(path=request.output),
            hint=_("Choose another --out (--overwrite replaces files, never folders)."),
        )
    bundle = open_intact(
        request.container,
        request.key,
        trusted_fingerprints(list(request.trusted)),
        _("refusing to export: the bundle does not verify ({code}: {subject})"),
    )
    try:
        source = ExportSource(bundle, tsa_roots=request.tsa_roots)
        entries = _write(chosen, source, request)
        container_sha256 = bundle.container_sha256
        bundle_id = source.manifest.bundle_id
    finally:
        bundle.close()
    recorded = None
    if request.record is not None:
        outcome = _("{format} export, {n} entries").format(format=chosen.name, n=entries)
        recorded = request.record.record(request.container, "exported", outcome, container_sha256)
    return ExportResult(
        container=str(request.container),
        bundle_id=bundle_id,
        format=chosen.name,
        output=str(request.output),
        entries=entries,
        recorded_event=recorded,
    )


def _write(chosen: ExportFormat, source: ExportSource, request: ExportRequest) -> int:
    if chosen.write_folder is not None:
        with AtomicFolder(request.output) as folder:
            try:
                entries = chosen.write_folder(source, folder.temp)
            except OSError as error:
                raise output_error(request.output, error) from None
            folder.commit()
        return entries
    assert chosen.write_file is not None
    with AtomicFile(request.output) as out:
        try:
            entries = chosen.write_file(source, out.file)
            out.commit(overwrite=request.overwrite)
        except OSError as error:
            raise output_error(request.output, error) from None
    return entries


__all__ = ["EXPORT_FORMATS", "ExportFormat", "ExportRequest", "ExportSource", "export_bundle"]
