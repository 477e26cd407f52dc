"""Read-only access to files and folders: no symlink followed, no atime changed.

Every folder is opened (``O_NOATIME`` where permitted) and listed through its descriptor;
every entry is ``lstat``-ed and opened relative to that descriptor, so a path swapped for
a symlink mid-walk cannot redirect a read, and paths longer than PATH_MAX still work.
Only regular files are ever opened for reading, with ``O_NONBLOCK`` so that an entry
replaced by a FIFO cannot block. Nothing here writes, chmods or utimes anything.
"""

from __future__ import annotations

import base64
import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from evidence_kit.errors import UsageError
from evidence_kit.i18n import _
from evidence_kit.models import ItemKind
from evidence_kit.naming import display_name

O_NOATIME: int = getattr(os, "O_NOATIME", 0)
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
XATTR_LIMIT = 64 * 1024


@dataclass(frozen=True)
class SourceEntry:
    """One object met during a walk; ``dir_fd`` is valid only until the walk resumes."""

    source: int
    relpath: bytes
    dir_fd: int | None
    name: str
    stat: os.stat_result | None
    error: OSError | None = None
    noatime: bool | None = None
    directory_fd: int | None = None


@dataclass(frozen=True)
class Source:
    """One SOURCE argument: where it is and the top-level name its items live under."""

    index: int
    path: Path
    label: bytes
    stat: os.stat_result


def resolve_sources(paths: Sequence[Path]) -> list[Source]:
    if not paths:
        raise UsageError(_("nothing to acquire: give at least one SOURCE"))
    sources: list[Source] = []
    labels: set[bytes] = set()
    for index, given in enumerate(paths):
        absolute = Path(os.path.abspath(given))
        try:
            info = os.lstat(absolute)
        except OSError as error:
            raise UsageError(
                _("source {path} cannot be read: {reason}").format(
                    path=display_name(os.fsencode(given)), reason=error.strerror
                )
            ) from None
        base = os.fsencode(absolute.name) or b"root"
        label, counter = base, 2
        while label in labels:
            label = base + b"~" + str(counter).encode()
            counter += 1
        labels.add(label)
        sources.append(Source(index, absolute, label, info))
    return sources


_KINDS: tuple[tuple[Callable[[int], bool], ItemKind], ...] = (
    (stat.S_ISREG, "file"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "char-device"),
    (stat.S_ISBLK, "block-device"),
)


def kind_of(mode: int) -> ItemKind:
    return next((kind for test, kind in _KINDS if test(mode)), "unknown")


def open_readonly(name: str, flags: int, dir_fd: int | None) -> tuple[int, bool]:
    """Open with ``O_NOATIME`` when the kernel allows it; (fd, whether it did)."""
    if O_NOATIME:
        try:
            return os.open(name, flags | O_NOATIME, dir_fd=dir_fd), True
        except PermissionError as error:
            if error.errno != errno.EPERM:  # EACCES is a real refusal, not the flag
                raise
    return os.open(name, flags, dir_fd=dir_fd), False


def read_chunk(fd: int, size: int) -> bytes:
    """The one place evidence bytes are read (tests inject faults here)."""
    return os.read(fd, size)


def _open_listing(
    name: str, dir_fd: int | None
) -> tuple[int | None, list[str], bool | None, OSError | None]:
    try:
        fd, noatime = open_readonly(name, DIRECTORY_FLAGS, dir_fd)
    except OSError as error:
        return None, [], None, error
    try:
        names = sorted(os.listdir(fd), key=os.fsencode)
    except OSError as error:
        os.close(fd)
        return None, [], noatime, error
    return fd, names, noatime, None


def walk(source: int, path: str, label: bytes) -> Iterator[SourceEntry]:
    """Every object below ``path`` (itself first), depth first, names in byte order."""
    try:
        top = os.lstat(path)
    except OSError as lstat_error:
        yield SourceEntry(source, label, None, path, None, lstat_error)
        return
    if not stat.S_ISDIR(top.st_mode):
        yield SourceEntry(source, label, None, path, top)
        return
    fd, names, noatime, error = _open_listing(path, None)
    yield SourceEntry(source, label, None, path, top, error, noatime, fd)
    if fd is None:
        return
    stack: list[tuple[int, bytes, Iterator[str]]] = [(fd, label, iter(names))]
    try:
        while stack:
            parent_fd, parent_rel, pending = stack[-1]
            name = next(pending, None)
            if name is None:
                os.close(parent_fd)
                stack.pop()
                continue
            relpath = parent_rel + b"/" + os.fsencode(name)
            try:
                info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            except OSError as stat_error:
                yield SourceEntry(source, relpath, parent_fd, name, None, stat_error)
                continue
            if not stat.S_ISDIR(info.st_mode):
                yield SourceEntry(source, relpath, parent_fd, name, info)
                continue
            child_fd, child_names, noatime, error = _open_listing(name, parent_fd)
            yield SourceEntry(source, relpath, parent_fd, name, info, error, noatime, child_fd)
            if child_fd is not None:
                stack.append((child_fd, relpath, iter(child_names)))
    finally:
        for open_fd, _rel, _names in stack:
            os.close(open_fd)


def read_xattrs(entry: SourceEntry, fd: int | None) -> dict[str, str]:
    """Extended attributes (values base64), never following a symlink."""
    target: int | str
    if fd is not None:
        target = fd
    elif entry.dir_fd is not None:
        target = f"/proc/self/fd/{entry.dir_fd}/{entry.name}"
    else:
        target = entry.name
    follow = isinstance(target, int)
    try:
        names = os.listxattr(target, follow_symlinks=follow)
    except OSError:
        return {}
    values: dict[str, str] = {}
    for attribute in sorted(names):
        try:
            value = os.getxattr(target, attribute, follow_symlinks=follow)
        except OSError:
            continue
        values[attribute] = base64.b64encode(value[:XATTR_LIMIT]).decode("ascii")
    return values


def read_link(entry: SourceEntry) -> bytes:
    return os.fsencode(os.readlink(entry.name, dir_fd=entry.dir_fd))


def lstat_again(entry: SourceEntry) -> os.stat_result | None:
    try:
        return os.stat(entry.name, dir_fd=entry.dir_fd, follow_symlinks=False)
    except OSError:
        return None


__all__ = [
    "O_NOATIME",
    "Source",
    "SourceEntry",
    "kind_of",
    "lstat_again",
    "open_readonly",
    "read_chunk",
    "read_link",
    "read_xattrs",
    "resolve_sources",
    "walk",
]
