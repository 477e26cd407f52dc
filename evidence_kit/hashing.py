"""One read, many digests: every algorithm is fed the same buffers."""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterable
from typing import Protocol

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


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...


class MultiDigest:
    """Feeds each buffer to every chosen algorithm (or to the hashers given, e.g. HMACs)."""

    def __init__(self, algorithms: Iterable[str] = (), hashers: dict[str, Hasher] | None = None):
        self._hashers = hashers or {name: hashlib.new(name) for name in algorithms}

    def update(self, data: bytes | bytearray | memoryview) -> None:
        for hasher in self._hashers.values():
            hasher.update(data)

    def hexdigests(self) -> dict[str, str]:
        return {name: hasher.hexdigest() for name, hasher in self._hashers.items()}

    def digests(self) -> dict[str, bytes]:
        return {name: hasher.digest() for name, hasher in self._hashers.items()}

    def close(self) -> None:
        pass


class Updatable(Protocol):
    def update(self, data: bytes, /) -> None: ...


class ThreadedFeed:
    """Feeds each chunk to ``sink.update`` on a second thread.

    hashlib releases the GIL on large buffers, so a chunk is digested on the other core
    while this thread encrypts and writes it (or decrypts the next one). Chunks must not
    change after :meth:`update`; at most ``depth`` wait in the queue.
    """

    def __init__(self, sink: Updatable, depth: int = 4, name: str = "digest") -> None:
        self._sink = sink
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._sink.update(chunk)

    def update(self, data: bytes) -> None:
        self._queue.put(data)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class ThreadedDigest(ThreadedFeed):
    """A MultiDigest fed from a second thread (see :class:`ThreadedFeed`)."""

    def __init__(
        self,
        algorithms: Iterable[str] = (),
        depth: int = 4,
        hashers: dict[str, Hasher] | None = None,
    ) -> None:
        self._digest = MultiDigest(algorithms, hashers)
        super().__init__(self._digest, depth)

    def hexdigests(self) -> dict[str, str]:
        self.close()
        return self._digest.hexdigests()

    def digests(self) -> dict[str, bytes]:
        self.close()
        return self._digest.digests()


class WindowDigests:
    """SHA-256 of each ``size``-byte window of a stream, in order; the last may be shorter
    (the piecewise digests of a disk image)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._filled = 0
        self._current = hashlib.sha256()
        self._digests: list[str] = []

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            piece = view[: self._size - self._filled]
            self._current.update(piece)
            self._filled += len(piece)
            view = view[len(piece) :]
            if self._filled == self._size:
                self._digests.append(self._current.hexdigest())
                self._current = hashlib.sha256()
                self._filled = 0

    def finish(self) -> list[str]:
        if self._filled:
            self._digests.append(self._current.hexdigest())
            self._filled = 0
        return self._digests


THREAD_THRESHOLD = 8 << 20  # smaller items are hashed inline: a thread costs more


def digest_for(
    size: int, algorithms: Iterable[str] = (), hashers: dict[str, Hasher] | None = None
) -> MultiDigest | ThreadedDigest:
    """A digest for ``size`` bytes: on a second thread when that pays."""
    if size >= THREAD_THRESHOLD:
        return ThreadedDigest(algorithms, hashers=hashers)
    return MultiDigest(algorithms, hashers)


__all__ = [
    "REQUIRED_ALGORITHM",
    "SUPPORTED_ALGORITHMS",
    "Hasher",
    "MultiDigest",
    "ThreadedDigest",
    "WindowDigests",
    "digest_for",
    "parse_algorithms",
]
