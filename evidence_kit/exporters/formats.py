"""The ``export --format`` names, in the order help lists them."""

from __future__ import annotations

from evidence_kit.exporters.bagit import write_bag
from evidence_kit.exporters.case import write_case
from evidence_kit.exporters.dfxml import write_dfxml
from evidence_kit.exporters.hash_lists import HashListWriter
from evidence_kit.exporters.hashdeep import AUDIT_COMMAND, write_hashdeep
from evidence_kit.exporters.kit import write_kit
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
        ExportFormat(
            "hashdeep",
            "hashdeep known-hashes file (md5, sha1, sha256) that 'hashdeep -a' audits",
            "cd EXTRACTED && " + AUDIT_COMMAND,
            write_file=write_hashdeep,
        ),
        ExportFormat(
            "dfxml",
            "DFXML 1.2.0 of every item (metadata, digests), valid against the DFXML schema",
            "xmllint --noout --schema DFXML_SCHEMA/dfxml.xsd {out}",
            write_file=write_dfxml,
        ),
        ExportFormat(
            "case",
            "CASE/UCO JSON-LD of the files, acquisition and custody, that 'case_validate' checks",
            "case_validate {out}",
            write_file=write_case,
        ),
        ExportFormat(
            "bagit",
            "BagIt 1.0 bag (RFC 8493) of the verified files, that 'bagit.py --validate' checks",
            "bagit.py --validate {out}",
            write_folder=write_bag,
        ),
        ExportFormat(
            "kit",
            "a folder to re-check the bundle with stock tools: VERIFY.sh and README.txt",
            "{out}/VERIFY.sh [CONTAINER [IDENTITY]]",
            write_folder=write_kit,
        ),
    )
}

__all__ = ["EXPORT_FORMATS"]
