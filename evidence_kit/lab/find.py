"""``lab find DIGEST|FILE``: which registered bundles, cases and paths hold this content."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from evidence_kit.errors import EnvironmentFailure, UsageError
from evidence_kit.i18n import _
from evidence_kit.lab.known_files import ALGORITHM_BY_LENGTH
from evidence_kit.lab.records import FindResult
from evidence_kit.lab.register import DEFAULT_LOCK_TIMEOUT, open_register
from evidence_kit.naming import display_name
from evidence_kit.sources.filesystem import FILE_FLAGS, open_readonly, read_chunk

_ALGORITHMS = "|".join(ALGORITHM_BY_LENGTH.values())
_DIGEST = re.compile(rf"(?:({_ALGORITHMS}):)?([0-9a-fA-F]+)")
_NAMED = re.compile(rf"(?:{_ALGORITHMS}):.*")  # ALGORITHM:... is a digest, never a file
_CHUNK = 1 << 20


def parse_digest(text: str) -> tuple[str, str] | None:
    """``HEX`` (the algorithm told by its length) or ``ALGORITHM:HEX``; None if neither."""
    match = _DIGEST.fullmatch(text.strip())
    if match is None:
        return None
    named, digest = match.group(1), match.group(2).lower()
    algorithm = ALGORITHM_BY_LENGTH.get(len(digest))
    if algorithm is None or (named is not None and named != algorithm):
        return None
    return algorithm, digest


def sha256_of_file(path: Path) -> str:
    """The SHA-256 of a file, read-only and without touching its access time where the
    kernel allows (the file may be evidence itself)."""
    try:
        fd, _noatime = open_readonly(os.path.realpath(path), FILE_FLAGS, None)
    except OSError as error:
        raise UsageError(
            _("cannot read {path}: {reason}").format(
                path=display_name(os.fsencode(path)), reason=error.strerror
            )
        ) from None
    digest = hashlib.sha256()
    try:
        os.set_blocking(fd, True)
        while chunk := read_chunk(fd, _CHUNK):
            digest.update(chunk)
    except OSError as error:
        raise EnvironmentFailure(
            _("cannot read {path}: {reason}").format(
                path=display_name(os.fsencode(path)), reason=error.strerror
            )
        ) from None
    finally:
        os.close(fd)
    return digest.hexdigest()


def find_content(
    register_path: Path | None, query: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> FindResult:
    """Look ``query`` up: an existing file is hashed (SHA-256), anything else must be a
    digest (``HEX`` or ``ALGORITHM:HEX``)."""
    file: str | None = None
    given = Path(query)
    if not _NAMED.fullmatch(query) and os.path.lexists(given):
        if not given.is_file():
            raise UsageError(
                _("{path} is not a regular file").format(path=display_name(os.fsencode(given)))
            )
        algorithm, digest = "sha256", sha256_of_file(given)
        file = display_name(os.fsencode(given))
    else:
        parsed = parse_digest(query)
        if parsed is None:
            raise UsageError(
                _("{query!r} is neither a file nor a digest (MD5, SHA-1, SHA-256 or SHA-512 "
                  "in hex, optionally as sha256:HEX)").format(query=query)
            )  # fmt: skip
        algorithm, digest = parsed
    with open_register(register_path, create=False, lock_timeout=lock_timeout) as register:
        occurrences = register.occurrences(algorithm, digest)
        known = register.known_entries(algorithm, digest)
        return FindResult(
            register_file=str(register.path),
            algorithm=algorithm,
            digest=digest,
            file=file,
            occurrences=occurrences,
            bundles=len({(o.bundle_id, o.container_sha256) for o in occurrences}),
            cases=sorted({o.case_number for o in occurrences}),
            known=known,
            warnings=register.warnings,
        )


__all__ = ["find_content", "parse_digest", "sha256_of_file"]
