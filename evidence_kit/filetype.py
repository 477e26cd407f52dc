"""File types from content (libmagic), and extensions that lie about them."""

from __future__ import annotations

import mimetypes
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import magic

from evidence_kit.models import ExtensionMismatch

MAGIC_BYTES = 1 << 20  # libmagic looks at the first MiB of the bytes already read

_TEXT_LIKE = {
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-sh",
    "application/x-shellscript",
    "application/csv",
    "application/sql",
    "application/x-subrip",
    "message/rfc822",
    "image/svg+xml",
}
_ZIP_BASED_PREFIXES = (
    "application/zip",
    "application/vnd.openxmlformats-officedocument",
    "application/vnd.oasis.opendocument",
    "application/epub+zip",
    "application/java-archive",
    "application/vnd.android.package-archive",
    "application/x-zip",
)
# The built-in table only: /etc/mime.types differs between machines, verdicts must not.
_BUILTIN_TYPES = mimetypes.MimeTypes().types_map[True]
_UNINFORMATIVE = {"application/octet-stream", "inode/x-empty", "application/x-empty", ""}
_EXTRA_TYPES = {
    ".sqlite": "application/vnd.sqlite3",
    ".sqlite3": "application/vnd.sqlite3",
    ".db": "application/vnd.sqlite3",
    ".apk": "application/vnd.android.package-archive",
    ".heic": "image/heic",
    ".webp": "image/webp",
    ".vcf": "text/vcard",
    ".log": "text/plain",
    ".md": "text/markdown",
}


_local = threading.local()


def _detectors() -> tuple[magic.Magic, magic.Magic]:
    """This thread's libmagic cookies (a cookie must not be shared between threads)."""
    detectors: tuple[magic.Magic, magic.Magic] | None = getattr(_local, "detectors", None)
    if detectors is None:
        detectors = _local.detectors = (magic.Magic(mime=True), magic.Magic())
    return detectors


def libmagic_version() -> str:
    try:
        number = int(magic.version())  # type: ignore[no-untyped-call]
    except (AttributeError, TypeError, ValueError, NotImplementedError):
        return "unknown"
    return f"{number // 100}.{number % 100:02d}"


def identify(head: bytes) -> tuple[str, str]:
    """(MIME type, description) of content starting with ``head``."""
    if not head:
        return "inode/x-empty", "empty"
    mime, describe = _detectors()
    try:
        return str(mime.from_buffer(head)), str(describe.from_buffer(head))
    except magic.MagicException as error:  # libmagic refuses some inputs; say so, go on
        return "application/octet-stream", f"libmagic error: {error}"


class Identifier:
    """Identifies file types on two worker threads while the caller reads on.

    libmagic releases the GIL, and costs 1-4 ms a file: for many small files it is the
    largest cost of an acquisition. At most ``in_flight`` heads wait in memory.
    """

    def __init__(self, workers: int = 2, in_flight: int = 32) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="libmagic")
        self._slots = threading.BoundedSemaphore(in_flight)
        self._pending: deque[tuple[int, Future[tuple[str, str]]]] = deque()

    def submit(self, key: int, head: bytes) -> None:
        self._slots.acquire()
        future = self._pool.submit(identify, head)
        future.add_done_callback(lambda _future: self._slots.release())
        self._pending.append((key, future))

    def ready(self) -> Iterator[tuple[int, tuple[str, str]]]:
        """(key, (MIME type, description)) of what is done so far, in submission order."""
        while self._pending and self._pending[0][1].done():
            key, future = self._pending.popleft()
            yield key, future.result()

    def results(self) -> Iterator[tuple[int, tuple[str, str]]]:
        """The same for everything still pending, waiting for it."""
        try:
            while self._pending:
                key, future = self._pending.popleft()
                yield key, future.result()
        finally:
            self.abandon()

    def abandon(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _family(mime_type: str) -> str:
    if mime_type.startswith("text/") or mime_type in _TEXT_LIKE:
        return "text"
    if mime_type.startswith(_ZIP_BASED_PREFIXES):
        return "zip"
    return mime_type


def expected_type(name: bytes) -> tuple[str, str] | None:
    """(extension, MIME type the extension promises), if it promises one."""
    extension = os.path.splitext(name.decode("utf-8", errors="replace"))[1].lower()
    if not extension or len(extension) > 12:
        return None
    promised = _EXTRA_TYPES.get(extension) or _BUILTIN_TYPES.get(extension)
    return (extension, promised) if promised else None


def extension_mismatch(name: bytes, actual: str) -> ExtensionMismatch | None:
    """A mismatch when the extension promises a type the content clearly is not."""
    expected = expected_type(name)
    if expected is None or actual in _UNINFORMATIVE:
        return None
    extension, promised = expected
    if _family(promised) == _family(actual):
        return None
    return ExtensionMismatch(
        extension=extension, expected_mime_type=promised, actual_mime_type=actual
    )


__all__ = ["MAGIC_BYTES", "Identifier", "extension_mismatch", "identify", "libmagic_version"]
