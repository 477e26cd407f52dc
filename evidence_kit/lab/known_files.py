"""Known-file hash lists (operating-system files and the like) that ``lab links`` ignores.

Two formats are read, strictly (a line that does not parse is an error naming it):

- ``sha256sum`` / ``md5sum`` / ``sha1sum`` / ``sha512sum`` output, GNU style
  (``HEX  NAME`` or ``HEX *NAME``, with the leading ``\\`` that marks an escaped name) or
  BSD style (``SHA256 (NAME) = HEX``, as ``--tag`` writes). The algorithm is told by the
  digest's length.
- hashdeep (``%%%% HASHDEEP-1.0``, a ``%%%% size,md5,sha256,...,filename`` header, ``##``
  comments), as ``hashdeep -r`` and ``export --format hashdeep`` write. Columns of
  algorithms evidence-kit does not use (tiger, whirlpool) are skipped.

Lists are read as a stream: an NSRL-sized list does not have to fit in memory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

from evidence_kit.errors import EnvironmentFailure, UsageError
from evidence_kit.i18n import _
from evidence_kit.lab.records import KnownListResult, KnownListsResult
from evidence_kit.lab.register import DEFAULT_LOCK_TIMEOUT, open_register

ListFormat = Literal["sha256sum", "hashdeep"]
Entry = tuple[str, str, bytes]  # algorithm, lower-case hex digest, name as listed

ALGORITHM_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
HASHDEEP_MAGIC = b"%%%% HASHDEEP-1.0"
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_BSD = re.compile(rb"(MD5|SHA1|SHA256|SHA512) \((.*)\) = ([0-9A-Fa-f]+)")
_GNU_ESCAPES = {b"\\\\": b"\\", b"\\n": b"\n", b"\\r": b"\r"}


def read_hash_list(handle: BinaryIO, name: str) -> tuple[ListFormat, Iterator[Entry]]:
    """The list's format and its entries, parsed as they are read from ``handle``."""
    first = handle.readline()
    if first.rstrip(b"\r\n") == HASHDEEP_MAGIC:
        return "hashdeep", _at_least_one(_hashdeep_entries(handle, name), name)
    return "sha256sum", _at_least_one(_checksum_entries(first, handle, name), name)


def _at_least_one(entries: Iterator[Entry], name: str) -> Iterator[Entry]:
    count = 0
    for entry in entries:
        count += 1
        yield entry
    if not count:
        raise UsageError(_("no digest in {list}").format(list=name))


def _problem(name: str, line: int, what: str) -> UsageError:
    return UsageError(
        _("{list}, line {line}: {what}").format(list=name, line=line, what=what),
        hint=_("Known-file lists are sha256sum-style (HEX  NAME) or hashdeep files."),
    )


def _checksum_entries(first: bytes, handle: BinaryIO, name: str) -> Iterator[Entry]:
    for number, raw in enumerate(_lines(first, handle), start=1):
        line = raw.rstrip(b"\n").removesuffix(b"\r")
        if not line.strip():
            continue
        escaped = line.startswith(b"\\")  # the name holds a backslash or a line break
        if escaped:
            line = line[1:]
        bsd = _BSD.fullmatch(line)
        if bsd:
            algorithm, listed, digest = bsd.group(1).decode().lower(), bsd.group(2), bsd.group(3)
            if ALGORITHM_BY_LENGTH.get(len(digest)) != algorithm:
                raise _problem(name, number, _("the digest does not fit {a}").format(a=algorithm))
            yield algorithm, digest.decode().lower(), _unescape(listed) if escaped else listed
            continue
        digest, separator, rest = line.partition(b" ")
        if not separator or rest[:1] not in (b" ", b"*") or not _HEX.fullmatch(digest):
            raise _problem(name, number, _("not a 'HEX  NAME' line"))
        algorithm_name = ALGORITHM_BY_LENGTH.get(len(digest))
        if algorithm_name is None:
            raise _problem(
                name, number, _("a digest of {n} hex digits is not MD5, SHA-1, SHA-256 or "
                                "SHA-512").format(n=len(digest))
            )  # fmt: skip
        listed = rest[1:]
        if escaped:
            listed = _unescape(listed)
        yield algorithm_name, digest.decode().lower(), listed


def _unescape(name: bytes) -> bytes:
    return re.sub(rb"\\[\\nr]", lambda m: _GNU_ESCAPES[m.group(0)], name)


def _hashdeep_entries(handle: BinaryIO, name: str) -> Iterator[Entry]:
    columns: list[str] | None = None
    number = 1
    for number, raw in enumerate(handle, start=2):
        line = raw.rstrip(b"\n").removesuffix(b"\r")
        if not line or line.startswith(b"##"):
            continue
        if line.startswith(b"%%%% "):
            if columns is not None:
                raise _problem(name, number, _("a second hashdeep header"))
            columns = line[5:].decode("ascii", "replace").lower().split(",")
            if columns[-1:] != ["filename"] or "size" not in columns:
                raise _problem(name, number, _("a hashdeep header names size, digests, filename"))
            if not set(columns) & set(ALGORITHM_BY_LENGTH.values()):
                raise _problem(name, number, _("no MD5, SHA-1, SHA-256 or SHA-512 column"))
            continue
        if columns is None:
            raise _problem(name, number, _("a hashdeep entry before the %%%% header"))
        fields = line.split(b",", len(columns) - 1)
        if len(fields) != len(columns):
            raise _problem(name, number, _("expected {n} comma-separated fields").format(
                n=len(columns)))  # fmt: skip
        listed = fields[-1]
        for column, value in zip(columns[:-1], fields[:-1], strict=True):
            if column == "size":
                if not value.isdigit():
                    raise _problem(name, number, _("the size is not a number"))
            elif column in ALGORITHM_BY_LENGTH.values():
                if ALGORITHM_BY_LENGTH.get(len(value)) != column or not _HEX.fullmatch(value):
                    raise _problem(name, number, _("not a {a} digest").format(a=column))
                yield column, value.decode().lower(), listed
    if columns is None:
        raise _problem(name, number, _("no %%%% size,...,filename header"))


def _lines(first: bytes, handle: BinaryIO) -> Iterator[bytes]:
    if first:
        yield first
    yield from handle


def add_known_list(
    register_path: Path | None,
    hash_list: Path,
    *,
    name: str | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> KnownListResult:
    """Add ``hash_list`` to the register's known files, in one transaction; adding the
    same file again changes nothing."""
    label = name or hash_list.name
    digest = hashlib.sha256()
    try:
        with hash_list.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        raise UsageError(_("no such hash list: {path}").format(path=hash_list)) from None
    except IsADirectoryError:
        raise UsageError(_("{path} is a folder, not a hash list").format(path=hash_list)) from None
    except OSError as error:
        raise EnvironmentFailure(
            _("cannot read {path}: {reason}").format(path=hash_list, reason=error.strerror)
        ) from None
    with open_register(register_path, create=True, lock_timeout=lock_timeout) as register:
        with hash_list.open("rb") as handle, register.transaction():
            # Looked up under the write lock: two runs adding one list add it once.
            known = register.known_list(digest.hexdigest())
            present = known is not None
            if known is None:
                list_format, entries = read_hash_list(handle, label)
                known = register.add_known_list(label, digest.hexdigest(), list_format, entries)
        return KnownListResult(
            register_file=str(register.path),
            hash_list=known,
            already_present=present,
            warnings=register.warnings,
        )


def known_lists(
    register_path: Path | None, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> KnownListsResult:
    with open_register(register_path, create=False, lock_timeout=lock_timeout) as register:
        return KnownListsResult(
            register_file=str(register.path),
            lists=register.known_lists(),
            warnings=register.warnings,
        )


__all__ = ["ALGORITHM_BY_LENGTH", "add_known_list", "known_lists", "read_hash_list"]
