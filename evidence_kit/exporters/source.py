"""What every export format reads: an intact, unlocked bundle, and how it registers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography import x509

from evidence_kit.bundle import Bundle
from evidence_kit.custody import CustodyLog
from evidence_kit.manifest import ItemTable
from evidence_kit.models import ItemRecord, ManifestHead, Seal

STORED_KINDS = ("file", "hardlink", "disk-image")


@dataclass(frozen=True)
class ExportSource:
    """A bundle that verified (no error finding) and is unlocked: its manifest, items,
    seal and custody log are all readable. Formats must not close it."""

    bundle: Bundle
    tsa_roots: tuple[x509.Certificate, ...] = ()

    @property
    def container(self) -> Path:
        return self.bundle.container

    @property
    def container_sha256(self) -> str:
        return self.bundle.container_sha256

    @property
    def manifest(self) -> ManifestHead:
        assert self.bundle.manifest is not None
        return self.bundle.manifest

    @property
    def manifest_bytes(self) -> bytes:
        assert self.bundle.manifest_bytes is not None
        return self.bundle.manifest_bytes

    @property
    def items(self) -> ItemTable:
        assert self.bundle.items is not None
        return self.bundle.items

    @property
    def seal(self) -> Seal:
        assert self.bundle.seal is not None
        return self.bundle.seal

    @property
    def custody(self) -> CustodyLog:
        return self.bundle.custody

    def stored_items(self) -> Iterator[ItemRecord]:
        """Items whose bytes are in the container (files, hard links, disk images)."""
        return (i for i in self.items if i.kind in STORED_KINDS and i.location is not None)


@dataclass(frozen=True)
class ExportFormat:
    """One ``export --format``: writes one file or one folder and returns its entries."""

    name: str
    description: str
    check_hint: str = ""  # how to re-check the output with its own tool; {out} is the path
    write_file: Callable[[ExportSource, BinaryIO], int] | None = None
    write_folder: Callable[[ExportSource, Path], int] | None = None


__all__ = ["STORED_KINDS", "ExportFormat", "ExportSource"]
