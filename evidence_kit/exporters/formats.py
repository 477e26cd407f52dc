"""The ``export --format`` names, in the order help lists them."""

from __future__ import annotations

from evidence_kit.exporters.hash_lists import HashListWriter
from evidence_kit.exporters.source import ExportFormat

EXPORT_FORMATS: dict[str, ExportFormat] = {
    format.name: format
    for format in (
        ExportFormat(
            "sha256sum",
            "SHA-256 list that 'sha256sum -c' checks in the folder extract writes",
            "cd EXTRACTED && sha256sum -c {out}",
            write_file=HashListWriter("sha256"),
        ),
        ExportFormat(
            "md5sum",
            "MD5 list that 'md5sum -c' checks (bundles acquired with --hash md5)",
            "cd EXTRACTED && md5sum -c {out}",
            write_file=HashListWriter("md5"),
        ),
    )
}

__all__ = ["EXPORT_FORMATS"]
