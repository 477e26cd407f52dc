"""Whole disks, partitions and raw image files, read-only and sequentially.

A source is opened ``O_RDONLY`` (never written, never locked, never remounted). Reads go
through :func:`read_at`, the one place image bytes are read (tests inject faults there).
A failed read is retried at shrinking granularity down to the sector; what still cannot
be read is zero-filled and recorded as (offset, length, errno). Device facts come from
ioctls, sysfs, udev's database and ``/proc/self/mountinfo``, where the system has them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from evidence_kit.errors import EnvironmentFailure, UsageError
from evidence_kit.i18n import _
from evidence_kit.models import DeviceFacts, ReadError
from evidence_kit.sources.filesystem import open_readonly

BLKGETSIZE64 = 0x80081272
BLKSSZGET = 0x1268
BLKPBSZGET = 0x127B
BLKROGET = 0x125E
SECTOR = 512
RETRY_GRANULARITY = (1 << 20, 64 << 10, 4096, SECTOR)
_GONE = {errno.ENODEV, errno.ENXIO, errno.ENOMEDIUM}  # unplugged: no sector will come back


@dataclass
class ImageSource:
    """An opened source: its descriptor, size and what the system says about it."""

    path: Path
    fd: int
    size: int
    block_device: bool
    logical_sector_size: int
    physical_sector_size: int
    facts: DeviceFacts
    noatime: bool
    stat: os.stat_result
    read_errors: list[ReadError] = field(default_factory=list)

    def close(self) -> None:
        os.close(self.fd)


def open_image_source(path: Path, write_blocker: str = "") -> ImageSource:
    """Open a block device or a regular file read-only (UsageError for anything else).
    A symbolic link given as the source is resolved first and the real path recorded."""
    path = Path(os.path.realpath(path))  # /dev/disk/by-id/… names are links: follow once
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK  # a FIFO cannot block
    try:
        fd, noatime = open_readonly(str(path), flags, None)
    except FileNotFoundError:
        raise UsageError(_("no such device or image: {path}").format(path=path)) from None
    except OSError as error:
        raise UsageError(
            _("cannot open {path} read-only: {reason}").format(path=path, reason=error.strerror)
        ) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISBLK(info.st_mode):
            size = struct.unpack("Q", fcntl.ioctl(fd, BLKGETSIZE64, b"\0" * 8))[0]
            logical = _ioctl_int(fd, BLKSSZGET) or SECTOR
            physical = _ioctl_int(fd, BLKPBSZGET) or logical
            facts = _device_facts(info.st_rdev, fd, write_blocker)
            block = True
        elif stat.S_ISREG(info.st_mode):
            size, logical, physical, block = info.st_size, SECTOR, SECTOR, False
            facts = DeviceFacts(write_blocker=write_blocker, partition_table=None)
        else:
            raise UsageError(
                _("{path} is neither a block device nor a regular image file").format(path=path)
            )
        facts = facts.model_copy(update={"partition_table": _partition_table(fd, logical)})
    except BaseException:
        os.close(fd)
        raise
    return ImageSource(path, fd, size, block, logical, physical, facts, noatime, info)


def read_at(fd: int, length: int, offset: int) -> bytes:
    """The one place image bytes are read (tests inject faults here)."""
    return os.pread(fd, length, offset)


def read_window(source: ImageSource, offset: int, length: int, retries: int) -> bytes:
    """``length`` bytes at ``offset`` (fewer only at the end of the source); unreadable
    sectors are zero-filled and appended to ``source.read_errors``."""
    try:
        data = read_at(source.fd, length, offset)
        if len(data) == length or offset + len(data) >= source.size:
            return data
    except OSError:
        pass
    return b"".join(_salvage(source, offset, min(length, source.size - offset), retries, 0))


def _salvage(
    source: ImageSource, offset: int, length: int, retries: int, level: int
) -> Iterator[bytes]:
    """Re-read ``length`` bytes in pieces of the next smaller granularity; at the sector,
    ``retries`` more tries, then zeros."""
    step = RETRY_GRANULARITY[min(level, len(RETRY_GRANULARITY) - 1)]
    step = max(step, source.logical_sector_size) if level else step
    position = offset
    end = offset + length
    while position < end:
        size = min(step, end - position)
        last_error: OSError | None = None
        tries = retries + 1 if step <= source.logical_sector_size else 1
        for _attempt in range(tries):
            try:
                data = read_at(source.fd, size, position)
                if len(data) == size:
                    break
                last_error = OSError(errno.EIO, "short read")
            except OSError as error:
                if error.errno in _GONE:
                    raise EnvironmentFailure(
                        _("{path} disappeared while it was read (at byte {offset}): {reason}")
                        .format(path=source.path, offset=position, reason=error.strerror),
                        hint=_("Nothing was left at the output path. Reconnect the device "
                               "and acquire again."),
                    ) from None  # fmt: skip
                last_error = error
        else:
            data = b""
        if len(data) == size:
            yield data
        elif step > source.logical_sector_size:
            yield from _salvage(source, position, size, retries, level + 1)
        else:
            _record(source, position, size, last_error)
            yield bytes(size)
        position += size


def _record(source: ImageSource, offset: int, length: int, error: OSError | None) -> None:
    code = error.errno if error and error.errno else errno.EIO
    message = (error.strerror or str(error)) if error else "read error"
    last = source.read_errors[-1] if source.read_errors else None
    if last and last.errno == code and (last.offset + (last.length or 0)) == offset:
        source.read_errors[-1] = last.model_copy(update={"length": (last.length or 0) + length})
    else:
        source.read_errors.append(ReadError(offset=offset, length=length, errno=code,
                                            error=message))  # fmt: skip


def _ioctl_int(fd: int, request: int) -> int | None:
    try:
        return int(struct.unpack("I", fcntl.ioctl(fd, request, b"\0" * 4))[0])
    except OSError:
        return None


def _device_facts(rdev: int, fd: int, write_blocker: str) -> DeviceFacts:
    major, minor = os.major(rdev), os.minor(rdev)
    sysfs = Path(f"/sys/dev/block/{major}:{minor}")
    disk = sysfs.resolve()
    whole = disk if (disk / "device").exists() or not (disk / "partition").exists() else disk.parent

    def read(path: Path) -> str | None:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            return path.read_text().strip() or None
        return None

    udev: dict[str, str] = {}
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in Path(f"/run/udev/data/b{major}:{minor}").read_text().splitlines():
            if line.startswith("E:") and "=" in line:
                key, value = line[2:].split("=", 1)
                udev[key] = value
    read_only = _ioctl_int(fd, BLKROGET)
    mounts = mounted_at(major, minor)
    return DeviceFacts(
        device=f"{major}:{minor}",
        name=disk.name,
        model=read(whole / "device" / "model") or udev.get("ID_MODEL"),
        vendor=read(whole / "device" / "vendor") or udev.get("ID_VENDOR"),
        serial=udev.get("ID_SERIAL_SHORT") or read(whole / "device" / "serial"),
        removable=read(whole / "removable") == "1" if read(whole / "removable") else None,
        read_only=bool(read_only) if read_only is not None else None,
        mounted=[point for point, _rw in mounts],
        mounted_read_write=any(rw for _point, rw in mounts),
        write_blocker=write_blocker,
        partition_table=None,
    )


def mounted_at(major: int, minor: int) -> list[tuple[str, bool]]:
    """Mount points of the device or any of its partitions, and whether read-write."""
    wanted = {f"{major}:{minor}"}
    disk = Path(f"/sys/dev/block/{major}:{minor}").resolve()
    with contextlib.suppress(OSError):
        for child in disk.iterdir():
            dev = child / "dev"
            if (child / "partition").exists() and dev.exists():
                wanted.add(dev.read_text().strip())
    result = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[2] in wanted:
                result.append((fields[4], "rw" in fields[5].split(",")))
    return result


def _partition_table(fd: int, sector: int) -> str | None:
    try:
        head = os.pread(fd, sector * 2, 0)
    except OSError:
        return None
    if len(head) >= sector + 8 and head[sector : sector + 8] == b"EFI PART":
        return "gpt"
    if len(head) >= SECTOR and head[510:512] == b"\x55\xaa":
        return "mbr"
    return None


def disk_of(path: Path) -> str | None:
    """``MAJ:MIN`` of the whole disk holding ``path`` (a file or folder), if known."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return whole_disk(os.major(info.st_dev), os.minor(info.st_dev))


def whole_disk(major: int, minor: int) -> str | None:
    disk = Path(f"/sys/dev/block/{major}:{minor}")
    if not disk.exists():
        return None
    resolved = disk.resolve()
    if (resolved / "partition").exists():
        resolved = resolved.parent
    with contextlib.suppress(OSError):
        return (resolved / "dev").read_text().strip()
    return None


__all__ = [
    "ImageSource",
    "disk_of",
    "mounted_at",
    "open_image_source",
    "read_at",
    "read_window",
    "whole_disk",
]
