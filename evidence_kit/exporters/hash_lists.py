"""Hash lists in the format ``sha256sum`` and ``md5sum`` print and check.

Lines are relative to the folder ``extract --out DIR`` writes, so ``cd DIR && sha256sum
-c LIST`` re-checks every extracted file without evidence-kit. Names are written as their
exact bytes, with the escaping GNU coreutils uses: a name holding a backslash, a newline
or a carriage return has them written as ``\\\\``, ``\\n`` and ``\\r`` and its line starts
with a backslash.
"""

from __future__ import annotations

from typing import BinaryIO

from evidence_kit.errors import UsageError
from evidence_kit.exporters.source import ExportSource
from evidence_kit.i18n import _
from evidence_kit.naming import path_bytes


def hash_list_line(digest: str, name: bytes) -> bytes:
    """One ``sha256sum``-style line, escaped as GNU coreutils writes and reads it."""
    escaped = name.replace(b"\\", b"\\\\").replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    prefix = b"\\" if escaped != name else b""
    return prefix + digest.encode("ascii") + b"  " + escaped + b"\n"


def require_algorithm(source: ExportSource, algorithm: str) -> None:
    algorithms = source.manifest.hash_algorithms
    if algorithm not in algorithms:
        raise UsageError(
            _("this bundle has no {algorithm} digests (acquired with --hash {algorithms})")
            .format(algorithm=algorithm, algorithms=",".join(algorithms))
        )  # fmt: skip


class HashListWriter:
    """``write_file`` for one algorithm's list."""

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm

    def __call__(self, source: ExportSource, out: BinaryIO) -> int:
        require_algorithm(source, self.algorithm)
        entries = 0
        for item in source.stored_items():
            out.write(hash_list_line(item.digests[self.algorithm], path_bytes(item.path)))
            entries += 1
        return entries


__all__ = ["HashListWriter", "hash_list_line", "require_algorithm"]
