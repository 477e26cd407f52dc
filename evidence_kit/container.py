"""The AES zip container: writing members, and reading the layout back strictly.

Writing goes through pyzipper (WinZip AES-256, stored, constant member times). Small
items are *packed*: many share one encrypted member holding a stored inner zip whose
member names are item ids; large items get a member of their own.

pyzipper's own reading is not an integrity check (names, sizes, methods and the directory
are not authenticated), so :func:`read_layout` parses the zip structure itself and
refuses anything this writer would not have produced: a prefix, gaps, overlaps,
trailing bytes, comments, data descriptors, duplicate names, headers that disagree,
unencrypted members other than key slots, AES other than AE-2/256-bit/stored.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, BinaryIO, Literal

import pyzipper
from pyzipper.zipfile import _ZipWriteFile
from pyzipper.zipfile_aes import AESZipInfo

from evidence_kit import winzip_aes
from evidence_kit.hashing import ThreadedDigest
from evidence_kit.i18n import _
from evidence_kit.keys import BundleKey, KeySlot
from evidence_kit.models import ItemLocation, MemberRecord

MANIFEST_MEMBER = "manifest.json"
SEAL_MEMBER = "seal.json"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
AES_OVERHEAD = winzip_aes.OVERHEAD  # salt (AES-256), password verifier, HMAC-SHA1-80
SMALL_ITEM_LIMIT = 1 << 20  # items up to this size are packed
PACK_TARGET = 8 << 20  # a pack is sealed into its member once it reaches this size
MAX_PACK_SIZE = 64 << 20  # verification refuses to buffer a pack larger than this
ZIP64_THRESHOLD = 1 << 30  # members expected above this size are written as ZIP64
MEMBER_ATTRIBUTES = 0o600 << 16  # external attributes: a regular file, rw-------
WRITE_CHUNK = 1 << 20  # bytes handed to the cipher at a time
PADDING_UNIT = 1 << 20  # item members are zero-padded to hide their exact size
_ZEROS = bytes(1 << 20)


def padded_size(size: int) -> int:
    """``size`` rounded up to a multiple of 1 MiB, or of 1/128 of its power of two above
    128 MiB: the zip directory then shows a bucket, not a file's exact size."""
    unit = max(PADDING_UNIT, 1 << max(size.bit_length() - 8, 0))
    return -(-size // unit) * unit


MEMBER_NAME = re.compile(
    r"^(keyslots/\d{2}-(x25519|scrypt)\.age|item/\d{6,}|pack/\d{6,}|manifest\.json|seal\.json)$"
)


class _MemberInfo(AESZipInfo):  # type: ignore[misc]
    """A member's headers as they will be once it is written: pyzipper writes a local
    header, then seeks back to rewrite it with the final sizes and CRC. When the first one
    is already final, the rewrite changes no byte and the container can be hashed as it
    is written (see DigestingFile)."""

    __slots__ = ("expected_crc",)

    def __init__(self, name: str, size: int, crc: int) -> None:
        super().__init__(name, date_time=ZIP_EPOCH)
        self.compress_type = pyzipper.ZIP_STORED  # type: ignore[misc]
        self.external_attr = MEMBER_ATTRIBUTES  # type: ignore[misc]
        self.file_size = size  # type: ignore[misc]
        self.expected_crc = crc


def _member_info(name: str, size: int = 0, crc: int = 0) -> _MemberInfo:
    return _MemberInfo(name, size, crc)


class _MemberWriter(_ZipWriteFile):  # type: ignore[misc]
    """pyzipper's member writer: its first local header carries the expected sizes and
    CRC, and it skips the plaintext CRC that AE-2 never stores."""

    def __init__(self, zf: object, zinfo: _MemberInfo, zip64: bool, encrypter: object) -> None:
        overhead = winzip_aes.OVERHEAD if encrypter is not None else 0
        zinfo.compress_size = zinfo.file_size + overhead
        zinfo.CRC = 0 if encrypter is not None else zinfo.expected_crc
        super().__init__(zf, zinfo, zip64, encrypter)

    def write(self, data: bytes) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        size = len(data)
        self._file_size += size
        if self._encrypter is None:
            self._crc: int = zlib.crc32(data, self._crc)
        else:
            data = self._encrypter.encrypt(data)
        self._compress_size += len(data)
        self._fileobj.write(data)
        return size


class _AESZipFile(pyzipper.AESZipFile):  # type: ignore[misc]
    """pyzipper's zip writer with WinZip AES done through OpenSSL (winzip_aes)."""

    zipwritefile_cls = _MemberWriter

    def get_encrypter(self) -> winzip_aes.WinZipAESEncrypter:
        return winzip_aes.WinZipAESEncrypter(self.pwd)


class DigestingFile:
    """A seekable file that hashes what is appended to it, as it is appended.

    pyzipper seeks back only to rewrite a member's local header; when the rewrite repeats
    the bytes already there, the running SHA-256 stays right. Any other overwrite makes
    :meth:`hexdigest` return None (the caller then reads the file back).
    """

    HEADER_LIMIT = 4096  # writes this small are remembered, to compare rewrites with

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._sha256 = ThreadedDigest(["sha256"], depth=8)  # on the other core
        self._position = self._end = 0
        self._small_writes: dict[int, bytes] = {}
        self._stale = False

    def write(self, data: bytes) -> int:
        size = len(data)
        if self._position == self._end:
            self._sha256.update(data)
            self._end += size
            if size <= self.HEADER_LIMIT:
                self._small_writes[self._position] = bytes(data)
        elif self._small_writes.get(self._position) != data or self._position + size > self._end:
            self._stale = True
        self._raw.write(data)
        self._position += size
        return size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._position = self._raw.seek(offset, whence)
        return self._position

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        self._raw.flush()

    def seekable(self) -> bool:
        return True

    def hexdigest(self) -> str | None:
        digest = self._sha256.hexdigests()["sha256"]
        return None if self._stale or self._position != self._end else digest

    def abandon(self) -> None:
        self._sha256.close()


class ContainerWriter:
    """Writes one container to an open, seekable, empty binary file."""

    def __init__(self, fileobj: BinaryIO, key: BundleKey) -> None:
        self._file = DigestingFile(fileobj)
        self._zip = _AESZipFile(self._file, "w", compression=pyzipper.ZIP_STORED, allowZip64=True)
        self._key = key
        self._members: list[MemberRecord] = []
        self._next_item_member = 1
        self._next_pack_member = 1
        self._pack: _Pack | None = None
        self._open_stream: IO[bytes] | None = None

    # -- members ---------------------------------------------------------------------

    def add_key_slot(self, slot: KeySlot) -> None:
        """Key slots are stored unencrypted: they are age-encrypted already."""
        self._zip.encryption = None
        info = _member_info(slot.member, len(slot.data), zlib.crc32(slot.data))
        self._zip.writestr(info, slot.data)

    def add_encrypted(self, name: str, data: bytes) -> None:
        view = memoryview(data)
        with self._open_encrypted(name, len(data)) as member:
            for start in range(0, len(data), WRITE_CHUNK):  # a large manifest: bounded buffers
                member.write(view[start : start + WRITE_CHUNK])

    def _open_encrypted(self, name: str, size_hint: int) -> IO[bytes]:
        self._zip.encryption = pyzipper.WZ_AES  # AE-2, AES-256: see winzip_aes
        self._zip.setpassword(self._key.password)
        info = _member_info(name, size_hint)
        stream: IO[bytes] = self._zip.open(info, "w", force_zip64=size_hint > ZIP64_THRESHOLD)
        return stream

    def begin_item(self, item_id: int, size_hint: int) -> ItemSink:
        """A sink for one item's bytes; it decides between a pack and its own member."""
        return ItemSink(self, item_id, size_hint)

    @property
    def members(self) -> list[MemberRecord]:
        return list(self._members)

    def finish_packs(self) -> None:
        if self._pack is not None and self._pack.count:
            self._seal_pack()
        self._pack = None

    def close(self) -> str | None:
        """Finish the container; its SHA-256 when it could be hashed as written."""
        self.finish_packs()
        self._zip.close()
        return self._file.hexdigest()

    def abort(self) -> None:
        """Drop the zip without writing its directory (the caller discards the file).

        pyzipper would otherwise finish a valid-looking zip when collected.
        """
        self._zip._writing = False
        self._zip.fp = None
        self._file.abandon()
        encrypter = getattr(self._open_stream, "_encrypter", None)
        if isinstance(encrypter, winzip_aes.WinZipAESEncrypter):
            encrypter.abandon()
        if self._pack is not None:
            self._pack.abandon()
            self._pack = None

    # -- internals used by ItemSink --------------------------------------------------

    def _new_item_member(self, size_hint: int) -> tuple[str, IO[bytes]]:
        name = f"item/{self._next_item_member:06d}"
        self._next_item_member += 1
        return name, self._open_encrypted(name, padded_size(size_hint))

    def _record_member(
        self, name: str, role: Literal["item", "pack"], size: int, sha256: str, padding: int = 0
    ) -> None:
        self._members.append(
            MemberRecord(name=name, role=role, size=size + padding, sha256=sha256, padding=padding)
        )

    def _add_to_pack(self, item_id: int, data: bytes) -> ItemLocation:
        if self._pack is None:
            self._pack = _Pack(f"pack/{self._next_pack_member:06d}")
            self._next_pack_member += 1
        location = self._pack.add(item_id, data)
        if self._pack.size >= PACK_TARGET:
            self._seal_pack()
        return location

    def _seal_pack(self) -> None:
        assert self._pack is not None
        data = self._pack.finish()
        self.add_encrypted(self._pack.name, data)
        self._record_member(self._pack.name, "pack", len(data), hashlib.sha256(data).hexdigest())
        self._pack = None


class _Pack:
    """A stored inner zip of small items, named by item id, with constant times."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._buffer = io.BytesIO()
        self._zip = zipfile.ZipFile(self._buffer, "w", compression=zipfile.ZIP_STORED)
        self.count = 0

    @property
    def size(self) -> int:
        return self._buffer.tell()

    def add(self, item_id: int, data: bytes) -> ItemLocation:
        inner = inner_name(item_id)
        info = zipfile.ZipInfo(inner, date_time=ZIP_EPOCH)
        info.external_attr = 0o600 << 16
        self._zip.writestr(info, data)
        self.count += 1
        return ItemLocation(member=self.name, inner=inner)

    def finish(self) -> bytes:
        self._zip.close()
        return self._buffer.getvalue()

    def abandon(self) -> None:
        self._zip.fp = None  # nothing left for ZipFile.__del__ to finish
        self._buffer.close()


def inner_name(item_id: int) -> str:
    return f"{item_id:08d}"


class ItemSink:
    """Receives one item's bytes: buffered while small, spilled to its own member if not."""

    def __init__(self, writer: ContainerWriter, item_id: int, size_hint: int) -> None:
        self._writer = writer
        self._item_id = item_id
        self._buffer: bytearray | None = bytearray() if size_hint <= SMALL_ITEM_LIMIT else None
        self._member_name: str | None = None
        self._stream: IO[bytes] | None = None
        self._size_hint = size_hint
        self.size = 0
        if self._buffer is None:
            self._member_name, self._stream = writer._new_item_member(size_hint)

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self._buffer is not None:
            self._buffer += data
            if len(self._buffer) > SMALL_ITEM_LIMIT:  # grew while read: give it a member
                self._member_name, self._stream = self._writer._new_item_member(
                    max(self._size_hint, len(self._buffer))
                )
                self._stream.write(bytes(self._buffer))
                self._buffer = None
        else:
            assert self._stream is not None
            self._stream.write(data)

    def finish(self, sha256: str) -> ItemLocation:
        """Close the item; ``sha256`` is the digest of every byte written."""
        if self._buffer is not None:
            return self._writer._add_to_pack(self._item_id, bytes(self._buffer))
        assert self._stream is not None and self._member_name is not None
        padding = padded_size(self.size) - self.size
        remaining = padding
        while remaining:
            step = min(remaining, len(_ZEROS))
            self._stream.write(_ZEROS[:step])
            remaining -= step
        self._stream.close()
        self._writer._record_member(self._member_name, "item", self.size, sha256, padding)
        return ItemLocation(member=self._member_name)


# ----------------------------------------------------------------- strict read-back

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<4sHHHHIIH")
_ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_AES_EXTRA_ID = 0x9901
_ZIP64_EXTRA_ID = 0x0001
_FLAG_ENCRYPTED = 0x1
_FLAG_DATA_DESCRIPTOR = 0x8  # reported on its own; any other flag but 0x1 is foreign
METHOD_STORED = 0
METHOD_AES = 99
_VERSIONS_NEEDED = (20, 45)  # 2.0; 4.5 where ZIP64 is used
_MADE_BY_UNIX = 3 << 8
_DOS_EPOCH = (0, (0 << 9) | (1 << 5) | 1)  # 00:00:00, 1980-01-01


@dataclass(frozen=True)
class LayoutProblem:
    code: str
    subject: str
    message: str


@dataclass(frozen=True)
class MemberEntry:
    name: str
    header_offset: int
    data_offset: int
    compressed_size: int
    size: int
    encrypted: bool
    crc: int


@dataclass
class Layout:
    size: int
    entries: list[MemberEntry] = field(default_factory=list)
    problems: list[LayoutProblem] = field(default_factory=list)
    _by_name: dict[str, MemberEntry] = field(default_factory=dict, repr=False)
    _indexed: int = 0

    @property
    def readable(self) -> bool:
        """The directory could be parsed (members can be looked up by name)."""
        return not any(p.code in _FATAL for p in self.problems)

    def entry(self, name: str) -> MemberEntry | None:
        """The first member of that name (duplicates are a layout problem already)."""
        for entry in self.entries[self._indexed :]:
            self._by_name.setdefault(entry.name, entry)
        self._indexed = len(self.entries)
        return self._by_name.get(name)

    @property
    def key_slot_entries(self) -> list[MemberEntry]:
        return [e for e in self.entries if e.name.startswith("keyslots/")]


_FATAL = {"not-a-zip", "zip-directory-malformed", "zip-truncated"}


def _extras(data: bytes) -> dict[int, bytes] | None:
    found: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            return None
        ident, length = struct.unpack_from("<HH", data, pos)
        body = data[pos + 4 : pos + 4 + length]
        if len(body) != length or ident in found:
            return None
        found[ident] = body
        pos += 4 + length
    return found


def read_layout(fp: BinaryIO) -> Layout:
    """Parse and check the zip structure of ``fp`` without decrypting anything."""
    fp.seek(0, io.SEEK_END)
    size = fp.tell()
    layout = Layout(size=size)
    problem = layout.problems.append

    def fail(code: str, message: str, subject: str = "container") -> Layout:
        problem(LayoutProblem(code, subject, message))
        return layout

    if size < _EOCD.size:
        return fail("not-a-zip", _("too short to be a zip file"))
    eocd_offset = _find_eocd(fp, size)
    fp.seek(0)
    starts_as_zip = fp.read(4) == b"PK\x03\x04"
    if eocd_offset is None:
        if starts_as_zip:
            return fail("zip-truncated", _("no end-of-central-directory record: truncated?"))
        return fail("not-a-zip", _("not a zip file (no zip signature at the start or end)"))
    if not starts_as_zip:
        problem(LayoutProblem("zip-prefix", "container", _("bytes before the first member")))
    fp.seek(eocd_offset)
    eocd_raw = fp.read(_EOCD.size)
    _sig, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment_len = _EOCD.unpack(eocd_raw)
    if comment_len:
        problem(LayoutProblem("zip-comment", "container", _("the zip has a comment")))
    if eocd_offset + _EOCD.size + comment_len != size:
        problem(LayoutProblem("zip-trailing-bytes", "container", _("bytes after the end record")))
    if disk or cd_disk or n_disk != n_total:
        problem(LayoutProblem("zip-multidisk", "container", _("multi-disk fields are set")))
    directory_end = eocd_offset
    if cd_offset == 0xFFFFFFFF or n_total == 0xFFFF or cd_size == 0xFFFFFFFF:
        locator_offset = eocd_offset - _ZIP64_LOCATOR.size
        if locator_offset < 0:
            return fail("zip-directory-malformed", _("ZIP64 locator missing"))
        fp.seek(locator_offset)
        lsig, _disk, z64_offset, _disks = _ZIP64_LOCATOR.unpack(fp.read(_ZIP64_LOCATOR.size))
        if lsig != b"PK\x06\x07" or z64_offset + _ZIP64_EOCD.size != locator_offset:
            return fail("zip-directory-malformed", _("ZIP64 locator malformed"))
        fp.seek(z64_offset)
        z64 = _ZIP64_EOCD.unpack(fp.read(_ZIP64_EOCD.size))
        if z64[0] != b"PK\x06\x06" or z64[1] != _ZIP64_EOCD.size - 12:
            return fail("zip-directory-malformed", _("ZIP64 end record malformed"))
        n_total, cd_size, cd_offset = z64[7], z64[8], z64[9]
        directory_end = z64_offset
    if cd_offset + cd_size != directory_end:
        return fail(
            "zip-directory-malformed", _("central directory does not end at the end record")
        )
    fp.seek(cd_offset)
    directory = fp.read(cd_size)
    if len(directory) != cd_size:
        return fail("zip-truncated", _("central directory cut short"))
    centrals = _parse_central(directory, n_total, layout)
    if centrals is None:
        return layout
    names: set[str] = set()
    expected_offset = 0
    for central in centrals:
        name = central.name
        if name in names:
            problem(LayoutProblem("zip-duplicate-name", name, _("member name appears twice")))
        names.add(name)
        if not MEMBER_NAME.match(name):
            problem(
                LayoutProblem("zip-unexpected-member-name", name, _("not a name this format uses"))
            )
        if central.header_offset != expected_offset:
            code = "zip-overlap" if central.header_offset < expected_offset else "zip-gap"
            problem(LayoutProblem(code, name, _("member does not start where the previous ended")))
        entry = _check_local(fp, central, layout)
        if entry is None:
            return layout
        layout.entries.append(entry)
        expected_offset = entry.data_offset + entry.compressed_size
    if expected_offset != cd_offset:
        code = "zip-overlap" if expected_offset > cd_offset else "zip-gap"
        problem(
            LayoutProblem(code, "container", _("members do not end where the directory starts"))
        )
    return layout


def _find_eocd(fp: BinaryIO, size: int) -> int | None:
    """Offset of the last end-of-central-directory record, looked for where a comment of
    up to 64 KiB (and a little trailing junk) could have pushed it."""
    window = min(size, 65_557 + 4096)
    fp.seek(size - window)
    tail = fp.read(window)
    pos = tail.rfind(b"PK\x05\x06", 0, max(len(tail) - _EOCD.size + 4, 0))
    return None if pos < 0 else size - window + pos


@dataclass(frozen=True)
class _Central:
    name: str
    raw_name: bytes
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    aes: bytes | None
    dostime: int
    dosdate: int
    made: int
    needed: int
    internal_attr: int
    external_attr: int
    zip64: bool
    extra_ids: frozenset[int]


def _parse_central(directory: bytes, count: int, layout: Layout) -> list[_Central] | None:
    result: list[_Central] = []
    pos = 0
    for _index in range(count):
        if pos + _CENTRAL.size > len(directory):
            layout.problems.append(
                LayoutProblem(
                    "zip-directory-malformed", "container", _("central directory cut short")
                )
            )
            return None
        fields = _CENTRAL.unpack_from(directory, pos)
        (
            sig,
            made,
            needed,
            flags,
            method,
            dostime,
            dosdate,
            crc,
            csize,
            usize,
            name_len,
            extra_len,
            comment_len,
            disk_start,
            internal_attr,
            external_attr,
            offset,
        ) = fields
        if sig != b"PK\x01\x02":
            layout.problems.append(
                LayoutProblem("zip-directory-malformed", "container", _("bad central header"))
            )
            return None
        start = pos + _CENTRAL.size
        raw_name = directory[start : start + name_len]
        extra = directory[start + name_len : start + name_len + extra_len]
        pos = start + name_len + extra_len + comment_len
        name = raw_name.decode("utf-8", errors="replace")
        if comment_len or disk_start:
            layout.problems.append(LayoutProblem("zip-comment", name, _("member comment or disk")))
        extras = _extras(extra)
        if extras is None:
            layout.problems.append(LayoutProblem("zip-extra-malformed", name, _("bad extra field")))
            return None
        if _ZIP64_EXTRA_ID in extras:
            usize, csize, offset = _apply_zip64(extras[_ZIP64_EXTRA_ID], usize, csize, offset)
        result.append(
            _Central(
                name,
                raw_name,
                flags,
                method,
                crc,
                csize,
                usize,
                offset,
                extras.get(_AES_EXTRA_ID),
                dostime,
                dosdate,
                made,
                needed,
                internal_attr,
                external_attr,
                _ZIP64_EXTRA_ID in extras,
                frozenset(extras),
            )
        )
    if pos != len(directory):
        layout.problems.append(
            LayoutProblem("zip-directory-malformed", "container", _("bytes left in the directory"))
        )
        return None
    return result


def _apply_zip64(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    values = list(struct.unpack_from(f"<{len(extra) // 8}Q", extra))
    if usize == 0xFFFFFFFF and values:
        usize = values.pop(0)
    if csize == 0xFFFFFFFF and values:
        csize = values.pop(0)
    if offset == 0xFFFFFFFF and values:
        offset = values.pop(0)
    return usize, csize, offset


def _check_local(fp: BinaryIO, central: _Central, layout: Layout) -> MemberEntry | None:
    name = central.name

    def problem(code: str, message: str) -> None:
        layout.problems.append(LayoutProblem(code, name, message))

    fp.seek(central.header_offset)
    raw = fp.read(_LOCAL.size)
    if len(raw) != _LOCAL.size or raw[:4] != b"PK\x03\x04":
        problem("zip-local-header-mismatch", _("no local header where the directory points"))
        return None
    (_sig, needed, flags, method, dostime, dosdate, crc, csize, usize, name_len, extra_len) = (
        _LOCAL.unpack(raw)
    )
    raw_name = fp.read(name_len)
    extras = _extras(fp.read(extra_len))
    if extras is None:
        problem("zip-extra-malformed", _("bad local extra field"))
        return None
    if _ZIP64_EXTRA_ID in extras:
        local64 = struct.unpack_from(
            f"<{len(extras[_ZIP64_EXTRA_ID]) // 8}Q", extras[_ZIP64_EXTRA_ID]
        )
        if usize == 0xFFFFFFFF and len(local64) >= 1:
            usize = local64[0]
        if csize == 0xFFFFFFFF and len(local64) >= 2:
            csize = local64[1]
    data_offset = central.header_offset + _LOCAL.size + name_len + extra_len
    local_zip64 = _ZIP64_EXTRA_ID in extras
    if (
        raw_name != central.raw_name
        or flags != central.flags
        or method != central.method
        or crc != central.crc
        or csize != central.compressed_size
        or usize != central.size
        or extras.get(_AES_EXTRA_ID) != central.aes
        or (dostime, dosdate) != (central.dostime, central.dosdate)
    ):
        problem("zip-local-header-mismatch", _("local and central headers disagree"))
    if (
        # 2.0, or 4.5 beside a ZIP64 extra (pyzipper 0.4 writes 2.0 in ZIP64 local headers)
        (needed != _VERSIONS_NEEDED[0] and not (local_zip64 and needed == _VERSIONS_NEEDED[1]))
        or central.needed != (_VERSIONS_NEEDED[1] if central.zip64 else _VERSIONS_NEEDED[0])
        or central.made != _MADE_BY_UNIX | central.needed
        or central.internal_attr != 0
        or central.external_attr != MEMBER_ATTRIBUTES
        or (central.dostime, central.dosdate) != _DOS_EPOCH
    ):
        problem("zip-header-fields", _("versions, attributes or times are not as written"))
    if flags & _FLAG_DATA_DESCRIPTOR:
        problem("zip-data-descriptor", _("member uses a data descriptor"))
    if flags & ~(_FLAG_ENCRYPTED | _FLAG_DATA_DESCRIPTOR):  # names are ASCII: no UTF-8 flag
        problem("zip-flags", _("unexpected general-purpose flags"))
    encrypted = bool(flags & _FLAG_ENCRYPTED)
    # no extra field but AES (never in a key slot) and ZIP64 (in a local header when forced,
    # in a central one past 4 GiB), in either header
    written = (
        {_ZIP64_EXTRA_ID} if name.startswith("keyslots/") else {_ZIP64_EXTRA_ID, _AES_EXTRA_ID}
    )
    if not set(extras) <= written or not central.extra_ids <= written:
        problem("zip-extra-malformed", _("an extra field this format does not write"))
    if name.startswith("keyslots/"):
        if encrypted or method != METHOD_STORED or csize != usize:
            problem("zip-key-slot-form", _("key slot is not a plain stored member"))
    elif not encrypted or method != METHOD_AES:
        problem("zip-plaintext-member", _("member is not WinZip AES encrypted"))
    else:
        aes = central.aes
        if aes is None or len(aes) != 7:
            problem("zip-aes-extra", _("AES extra field (0x9901) missing or malformed"))
        else:
            version, vendor, strength, actual = struct.unpack("<H2sBH", aes)
            if version != 2 or vendor != b"AE" or strength != 3 or actual != METHOD_STORED:
                problem("zip-aes-parameters", _("not AE-2, AES-256, stored"))
        if csize != usize + AES_OVERHEAD:
            problem("zip-size-mismatch", _("encrypted size does not match the plain size"))
        if crc != 0:
            problem("zip-aes-parameters", _("AE-2 members carry no CRC"))
    if data_offset + csize > layout.size:
        problem("zip-truncated", _("member data runs past the end of the file"))
        return None
    return MemberEntry(name, central.header_offset, data_offset, csize, usize, encrypted, crc)


def read_plain_member(fp: BinaryIO, entry: MemberEntry) -> bytes:
    """The bytes of an unencrypted (key slot) member, CRC-checked."""
    fp.seek(entry.data_offset)
    data = fp.read(entry.compressed_size)
    if zlib.crc32(data) != entry.crc:
        raise zipfile.BadZipFile(_("CRC mismatch"))
    return data


class ContainerReader:
    """Decrypts members of a container whose layout was checked by :func:`read_layout`."""

    def __init__(self, fp: BinaryIO, key: BundleKey, layout: Layout) -> None:
        self._fp = fp
        self._password = key.password
        self._layout = layout

    def chunks(self, name: str, limit: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Decrypt ``name`` to its end (the MAC is checked after the last chunk).

        Raises KeyError (no such member), ValueError (more than ``limit`` bytes, or not
        encrypted), WrongPassword or BadMac.
        """
        entry = self._layout.entry(name)
        if entry is None:
            raise KeyError(name)
        if not entry.encrypted:
            raise ValueError(_("not encrypted: refusing to read it"))
        if entry.compressed_size - winzip_aes.OVERHEAD > limit:
            raise ValueError(_("larger than the manifest says"))
        yield from winzip_aes.decrypt(
            self._fp, entry.data_offset, entry.compressed_size, self._password, chunk_size
        )

    def read(self, name: str, limit: int) -> bytes:
        return b"".join(self.chunks(name, limit))


READ_ERRORS = (
    winzip_aes.BadMac,
    winzip_aes.WrongPassword,
    zipfile.BadZipFile,
    pyzipper.BadZipFile,
    RuntimeError,
    ValueError,
    EOFError,
    OSError,
    struct.error,
    zlib.error,
    KeyError,
    OverflowError,
)


__all__ = [
    "MANIFEST_MEMBER",
    "READ_ERRORS",
    "SEAL_MEMBER",
    "ContainerReader",
    "ContainerWriter",
    "DigestingFile",
    "ItemSink",
    "Layout",
    "LayoutProblem",
    "MemberEntry",
    "inner_name",
    "padded_size",
    "read_layout",
    "read_plain_member",
]
