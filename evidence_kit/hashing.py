"""One read, many digests: every algorithm is fed the same buffers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from evidence_kit.errors import UsageError
from evidence_kit.i18n import _

SUPPORTED_ALGORITHMS = ("sha256", "sha1", "md5", "sha512")
REQUIRED_ALGORITHM = "sha256"


def parse_algorithms(values: Iterable[str]) -> tuple[str, ...]:
    """``["sha1,md5"]`` -> ``("sha256", "sha1", "md5")``: SHA-256 always first, no repeats."""
    chosen = [REQUIRED_ALGORITHM]
    for value in values:
        for given in value.split(","):
            name = given.strip().lower().replace("-", "")
            if not name:
                continue
            if name not in SUPPORTED_ALGORITHMS:
                raise UsageError(
                    _("unknown hash algorithm {name!r}; choose from {choices}").format(
                        name=name, choices=", ".join(SUPPORTED_ALGORITHMS)
                    )
                )
            if name not in chosen:
                chosen.append(name)
    return tuple(chosen)


class MultiDigest:
    """Feeds each buffer to every chosen algorithm."""

    def __init__(self, algorithms: Iterable[str]) -> None:
        self._hashers = {name: hashlib.new(name) for name in algorithms}

    def update(self, data: bytes | bytearray | memoryview) -> None:
        for hasher in self._hashers.values():
            hasher.update(data)

    def hexdigests(self) -> dict[str, str]:
        return {name: hasher.hexdigest() for name, hasher in self._hashers.items()}


__all__ = ["REQUIRED_ALGORITHM", "SUPPORTED_ALGORITHMS", "MultiDigest", "parse_algorithms"]
