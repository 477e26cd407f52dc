"""Files that appear complete or not at all: temp name, fsync, rename, folder fsync."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from evidence_kit.errors import EnvironmentFailure, OutputExists
from evidence_kit.i18n import _


class AtomicFile:
    """A mode-0600 temp file beside ``final``; :meth:`commit` moves it into place.

    Leaving the ``with`` block without committing (an error, Ctrl-C) removes the temp
    file, so nothing that could pass for a complete output is ever left at ``final``.
    An interruption can land between any two steps of :meth:`commit`; :meth:`in_place`
    says from the file system, not from a flag, whether the file reached ``final``.
    """

    def __init__(self, final: Path) -> None:
        self.final = final
        try:
            fd, name = tempfile.mkstemp(
                dir=final.parent, prefix=f".{final.name[:80]}.", suffix=".partial"
            )
        except OSError as error:
            raise output_error(final, error) from None
        self.temp = Path(name)
        self.file: BinaryIO = os.fdopen(fd, "w+b")
        info = os.fstat(fd)
        self._identity = (info.st_dev, info.st_ino)
        self.committed = False

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.discard()

    def sync(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())

    def commit(self, *, overwrite: bool) -> None:
        """fsync, then move into place; without ``overwrite`` never replaces a file."""
        self.sync()
        self.file.close()
        if overwrite:
            os.replace(self.temp, self.final)
        else:
            try:
                os.link(self.temp, self.final)  # fails if final exists: no clobbering race
            except FileExistsError:
                raise OutputExists(_("{path} already exists").format(path=self.final)) from None
            os.unlink(self.temp)
        self.committed = True
        sync_directory(self.final.parent)

    def in_place(self) -> bool:
        """Whether ``final`` is this file now (true from the moment the link or rename
        happened, even if what followed it was interrupted)."""
        try:
            info = os.lstat(self.final)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == self._identity

    def discard(self) -> None:
        if not self.file.closed:
            with contextlib.suppress(OSError):  # e.g. ENOSPC flushing what is being dropped
                self.file.close()
        if not self.committed:  # after an interrupted link this drops only the second name
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temp)


class AtomicFolder:
    """A mode-0700 temp folder beside ``final``; :meth:`commit` fsyncs what is in it and
    renames it into place. Leaving the ``with`` block without committing removes it.

    ``final`` must not exist: a folder is never replaced. (The check and the rename are
    two steps; Linux would rename onto an empty folder that appeared in between.)
    """

    def __init__(self, final: Path) -> None:
        self.final = final
        try:
            self.temp = Path(
                tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name[:80]}.", suffix=".partial")
            )
        except OSError as error:
            raise output_error(final, error) from None
        self.committed = False

    def __enter__(self) -> AtomicFolder:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self.committed:
            shutil.rmtree(self.temp, ignore_errors=True)

    def commit(self) -> None:
        try:
            for folder, _subfolders, files in os.walk(self.temp):
                for name in files:
                    path = os.path.join(folder, name)
                    if not os.path.islink(path):
                        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                        try:
                            os.fsync(fd)
                        finally:
                            os.close(fd)
                sync_directory(Path(folder))
            if self.final.exists() or self.final.is_symlink():
                raise OutputExists(_("{path} already exists").format(path=self.final))
            os.rename(self.temp, self.final)
            sync_directory(self.final.parent)
        except OSError as error:
            raise output_error(self.final, error) from None
        self.committed = True


def sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def output_error(path: Path, error: OSError) -> EnvironmentFailure:
    """An I/O error on an output location, said plainly."""
    if error.errno == errno.ENOSPC:
        return EnvironmentFailure(
            _("the disk holding {path} is full").format(path=path),
            hint=_("Nothing was left at the output path. Free space or choose another disk."),
        )
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return EnvironmentFailure(
            _("cannot write {path}: {reason}").format(path=path, reason=error.strerror),
            hint=_("Choose an output folder you can write to."),
        )
    if error.errno == errno.ENOENT:
        return EnvironmentFailure(
            _("the output folder for {path} does not exist").format(path=path)
        )
    return EnvironmentFailure(
        _("cannot write {path}: {reason}").format(path=path, reason=error.strerror or error)
    )


__all__ = ["AtomicFile", "AtomicFolder", "output_error", "sync_directory"]
