"""Bundles whose manifest says whatever a test wants, genuinely encrypted, sealed and signed.

An attacker who holds a bundle key (any recipient of a bundle can read its key slot) or who
makes a bundle from scratch can write any manifest, sign it with a key of their own and give
it a matching custody log. The checks that matter then are the ones that read the manifest:
names, sizes, member lists, packs. This module writes such bundles with the project's own
writer pieces, in the order acquisition writes them (key slots, item members and packs, the
encrypted manifest, the seal, then custody event 0, signed as acquisition signs it), so a
crafted bundle differs from an acquired one only where a test makes it differ.

    draft = Draft(recipient, signing_key)
    location = draft.store(0, b"content")          # packed like a small item
    items = [file_record(0, b"seized/a.txt", b"content", location)]
    draft.write(tmp / "B.zip", draft.manifest(items))
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import uuid
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence_kit import keys
from evidence_kit.canonical import canonical_bytes
from evidence_kit.container import (
    MANIFEST_MEMBER,
    SEAL_MEMBER,
    SMALL_ITEM_LIMIT,
    ContainerWriter,
    _Pack,
    inner_name,
    padded_size,
)
from evidence_kit.custody import custody_log_path, event_line, sign_event
from evidence_kit.manifest import encode_manifest
from evidence_kit.models import (
    CaseInfo,
    CustodyEvent,
    Instant,
    ItemKind,
    ItemLocation,
    ItemRecord,
    KeySlotRecord,
    ManifestHead,
    MemberRecord,
    Provenance,
    Seal,
    SourceRecord,
    Summary,
)
from evidence_kit.naming import path_name
from evidence_kit.provenance import provenance

CASE = CaseInfo(
    case_number="HX-2026-0001",
    evidence_number="E-01",
    examiner="Examiner Lin",
    description="crafted bundle",
    location="test bench",
)
EPOCH = Instant(ns="1700000000000000000", utc="2023-11-14T22:13:20Z")


@cache
def _provenance() -> Provenance:
    return provenance(["evidence-kit", "acquire"], EPOCH, EPOCH, {"crafted": "true"})


# ----------------------------------------------------------------------------- records


def item_record(item_id: int, path: bytes, kind: ItemKind, **fields: Any) -> ItemRecord:
    """An item with plausible stat fields; ``fields`` override anything."""
    values: dict[str, Any] = {
        "id": item_id,
        "source": 0,
        "path": path_name(path),
        "kind": kind,
        "status": "ok",
        "size": 0,
        "mode": 0o100600 if kind == "file" else 0o40700 if kind == "directory" else 0o120777,
        "mode_text": "-rw-------",
        "uid": 0,
        "gid": 0,
        "inode": str(1000 + item_id),
        "device": "2049",
        "nlink": 1,
        "atime": EPOCH,
        "mtime": EPOCH,
        "ctime": EPOCH,
    }
    values.update(fields)
    return ItemRecord(**values)


def file_record(
    item_id: int, path: bytes, content: bytes, location: ItemLocation, **fields: Any
) -> ItemRecord:
    """A regular file whose size and SHA-256 are those of ``content``."""
    values: dict[str, Any] = {
        "size": len(content),
        "stored_size": len(content),
        "digests": {"sha256": hashlib.sha256(content).hexdigest()},
        "location": location,
    }
    values.update(fields)
    return item_record(item_id, path, "file", **values)


def folder_record(item_id: int, path: bytes, **fields: Any) -> ItemRecord:
    return item_record(item_id, path, "directory", **fields)


def symlink_record(item_id: int, path: bytes, target: bytes, **fields: Any) -> ItemRecord:
    return item_record(item_id, path, "symlink", symlink_target=path_name(target), **fields)


def summary_of(items: Sequence[ItemRecord]) -> Summary:
    """What acquisition's tally would say about ``items``."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item.status] = counts.get(item.status, 0) + 1
    return Summary(
        items=len(items),
        files=sum(1 for i in items if i.kind in ("file", "hardlink", "disk-image")),
        directories=sum(1 for i in items if i.kind == "directory"),
        symlinks=sum(1 for i in items if i.kind == "symlink"),
        other=sum(
            1
            for i in items
            if i.kind not in ("file", "hardlink", "disk-image", "directory", "symlink")
        ),
        bytes=sum(i.stored_size or 0 for i in items if i.kind in ("file", "disk-image")),
        status_counts=counts,
    )


def record_bytes(record: ItemRecord) -> bytes:
    """The canonical bytes of ``record``, or, for values RFC 8785 cannot write (integers
    beyond 2**53, lone surrogates), the closest JSON: compact, keys sorted."""
    try:
        return canonical_bytes(record)
    except ValueError:
        data = record.model_dump(mode="json")
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8", errors="backslashreplace")


def stored_pack(entries: Mapping[str, bytes]) -> bytes:
    """An inner pack zip exactly as acquisition writes it (stored, constant times)."""
    pack = _Pack("pack/000000")
    for name, data in entries.items():
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o600 << 16
        pack._zip.writestr(info, data)
    return pack.finish()


def deflated_pack(entries: Mapping[str, bytes]) -> bytes:
    """An inner pack whose entries are deflated: never written by acquisition."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as pack:
        for name, data in entries.items():
            pack.writestr(name, data)
    return buffer.getvalue()


_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<4sHHHHIIH")


def _local(name: str, method: int, crc: int, size: int, stored: int) -> bytes:
    raw = name.encode()
    return _LOCAL.pack(b"PK\x03\x04", 20, 0, method, 0, 33, crc, stored, size, len(raw), 0) + raw


def _central(name: str, method: int, crc: int, size: int, stored: int, offset: int) -> bytes:
    raw = name.encode()
    return _CENTRAL.pack(
        b"PK\x01\x02", 0x314, 20, 0, method, 0, 33, crc, stored, size, len(raw), 0, 0, 0, 0,
        0o600 << 16, offset,
    ) + raw  # fmt: skip


def _end(count: int, directory: bytes, directory_offset: int) -> bytes:
    return _EOCD.pack(b"PK\x05\x06", 0, 0, count, count, len(directory), directory_offset, 0)


def deflate_bomb(inflated: int) -> bytes:
    """A raw deflate stream of about ``inflated // 1000`` bytes that inflates to
    ``inflated`` zero bytes (a whole number of MiB): one fully flushed MiB, repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    mebibyte = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return mebibyte * (inflated >> 20) + b"\x03\x00"  # an empty final block


def bomb_pack(inner: str, inflated: int) -> bytes:
    """A pack whose one entry is deflated and inflates to ``inflated`` bytes of zeros,
    with the right size and CRC in its headers: only the manifest says otherwise."""
    stream = deflate_bomb(inflated)
    mebibyte = bytes(1 << 20)
    crc = 0
    for _step in range(inflated >> 20):
        crc = zlib.crc32(mebibyte, crc)
    body = _local(inner, zipfile.ZIP_DEFLATED, crc, inflated, len(stream)) + stream
    directory = _central(inner, zipfile.ZIP_DEFLATED, crc, inflated, len(stream), 0)
    return body + directory + _end(1, directory, len(body))


def nested_pack(outer: str, inner: str, content: bytes) -> tuple[bytes, bytes]:
    """A stored pack of two entries that overlap: ``inner``'s local header and data lie
    inside ``outer``'s data. Returns the pack and ``outer``'s content (inner's entry)."""
    crc = zlib.crc32(content)
    inner_entry = _local(inner, 0, crc, len(content), len(content)) + content
    outer_header = _local(outer, 0, zlib.crc32(inner_entry), len(inner_entry), len(inner_entry))
    body = outer_header + inner_entry
    directory = _central(
        outer, 0, zlib.crc32(inner_entry), len(inner_entry), len(inner_entry), 0
    ) + _central(inner, 0, crc, len(content), len(content), len(outer_header))
    return body + directory + _end(2, directory, len(body)), inner_entry


def central_records(container: bytes) -> dict[str, int]:
    """Member name -> offset of its central directory record (no ZIP64, no comment)."""
    (count, size, offset) = struct.unpack_from("<HII", container, len(container) - 12)
    records = {}
    position = offset
    for _index in range(count):
        fields = _CENTRAL.unpack_from(container, position)
        name_length, extra_length, comment_length = fields[10], fields[11], fields[12]
        start = position + _CENTRAL.size
        records[container[start : start + name_length].decode()] = position
        position = start + name_length + extra_length + comment_length
    assert position == offset + size
    return records


def patch_member(
    container: bytes,
    name: str,
    local: Mapping[int, tuple[str, int]],
    central: Mapping[int, tuple[str, int]],
) -> bytes:
    """Write header fields of member ``name``: {offset in the header: (format, value)}."""
    data = bytearray(container)
    record = central_records(container)[name]
    (local_offset,) = struct.unpack_from("<I", data, record + 42)
    for offset, (fmt, value) in local.items():
        struct.pack_into(fmt, data, local_offset + offset, value)
    for offset, (fmt, value) in central.items():
        struct.pack_into(fmt, data, record + offset, value)
    return bytes(data)


def aes_extra_offsets(container: bytes, name: str) -> tuple[int, int]:
    """Offsets, within the local and the central header of ``name``, of the body of its
    WinZip AES extra field (version, vendor, strength, actual method)."""
    record = central_records(container)[name]
    name_length, extra_length = struct.unpack_from("<HH", container, record + 28)
    central_extra = container[record + 46 + name_length : record + 46 + name_length + extra_length]
    (local_offset,) = struct.unpack_from("<I", container, record + 42)
    local_name, local_extra_length = struct.unpack_from("<HH", container, local_offset + 26)
    start = local_offset + 30 + local_name
    local_extra = container[start : start + local_extra_length]
    marker = b"\x01\x99\x07\x00"
    return (
        30 + local_name + local_extra.index(marker) + 4,
        46 + name_length + central_extra.index(marker) + 4,
    )


# ------------------------------------------------------------------------------ bundles


@dataclass(frozen=True)
class Crafted:
    """A crafted bundle on disk."""

    container: Path
    custody_log: Path
    bundle_id: str
    manifest_sha256: str
    container_sha256: str


@dataclass
class Draft:
    """The keys and members of one crafted bundle, held in memory until :meth:`write`."""

    recipient: pyrage.x25519.Recipient
    signing_key: Ed25519PrivateKey | None = None
    bundle_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    key: keys.BundleKey = field(default_factory=keys.BundleKey.generate)
    members: list[tuple[str, bytes]] = field(default_factory=list)
    records: list[MemberRecord] = field(default_factory=list)
    last_head: ManifestHead | None = None
    _event: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.slots = keys.make_key_slots(self.key, [self.recipient], None)

    def _name(self, role: Literal["item", "pack"]) -> str:
        taken = sum(1 for name, _data in self.members if name.startswith(role + "/"))
        return f"{role}/{taken + 1:06d}"

    def raw_member(
        self,
        role: Literal["item", "pack"],
        data: bytes,
        *,
        name: str | None = None,
        size: int | None = None,
        sha256: str | None = None,
        padding: int = 0,
        listed: bool = True,
    ) -> str:
        """Store ``data`` (encrypted) as a member; its manifest record says ``size`` and
        ``sha256`` (the truth unless given) and is left out when not ``listed``."""
        name = name or self._name(role)
        self.members.append((name, data))
        if listed:
            self.records.append(
                MemberRecord(
                    name=name,
                    role=role,
                    size=len(data) if size is None else size,
                    sha256=sha256 or hashlib.sha256(data[: len(data) - padding]).hexdigest(),
                    padding=padding,
                )
            )
        return name

    def pack(self, entries: Mapping[str, bytes], *, deflate: bool = False) -> str:
        data = deflated_pack(entries) if deflate else stored_pack(entries)
        return self.raw_member("pack", data)

    def item_member(self, content: bytes) -> str:
        """A member of its own, zero-padded as acquisition pads large items."""
        padding = padded_size(len(content)) - len(content)
        return self.raw_member("item", content + bytes(padding), padding=padding)

    def store(self, item_id: int, content: bytes) -> ItemLocation:
        """Where acquisition would put ``content``: a pack of its own when small."""
        if len(content) <= SMALL_ITEM_LIMIT:
            inner = inner_name(item_id)
            return ItemLocation(member=self.pack({inner: content}), inner=inner)
        return ItemLocation(member=self.item_member(content))

    def head(self, items: Sequence[ItemRecord], **fields: Any) -> ManifestHead:
        values: dict[str, Any] = {
            "bundle_id": self.bundle_id,
            "case": CASE,
            "provenance": _provenance(),
            "hash_algorithms": ["sha256"],
            "sources": [
                SourceRecord(
                    index=0,
                    label="seized",
                    path=path_name(b"/evidence/seized"),
                    kind="directory",
                    noatime=True,
                )
            ],
            "key_slots": [
                KeySlotRecord(
                    member=slot.member,
                    kind=slot.kind,
                    recipient=slot.recipient,
                    sha256=hashlib.sha256(slot.data).hexdigest(),
                )
                for slot in self.slots
            ],
            "members": list(self.records),
            "summary": summary_of(items),
        }
        values.update(fields)
        return ManifestHead(**values)

    def manifest(self, items: Sequence[ItemRecord], **head_fields: Any) -> bytes:
        """The canonical manifest of ``items``, as acquisition encodes it."""
        self.last_head = self.head(items, **head_fields)
        try:
            return encode_manifest(self.last_head, [record_bytes(item) for item in items])
        except ValueError:  # a head value RFC 8785 cannot write: the closest JSON instead
            document = self.last_head.model_dump(mode="json")
            document["items"] = [item.model_dump(mode="json") for item in items]
            text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            return text.encode("utf-8", errors="backslashreplace")

    def write(
        self,
        output: Path,
        manifest: bytes,
        *,
        seal: bytes | None = None,
        event: Mapping[str, Any] | None = None,
    ) -> Crafted:
        """Write the container and its custody log. The seal binds (and, with a signing
        key, signs) ``manifest`` unless ``seal`` is given; event 0 records what the last
        :meth:`manifest` call described, with ``event`` overriding any of its fields."""
        manifest_sha256 = hashlib.sha256(manifest).hexdigest()
        if seal is None:
            signature = keys.sign(self.signing_key, manifest) if self.signing_key else None
            seal = canonical_bytes(
                Seal(
                    bundle_id=self.bundle_id,
                    manifest_member=MANIFEST_MEMBER,
                    manifest_sha256=manifest_sha256,
                    signature=signature,
                )
            )
        with open(os.open(output, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600), "w+b") as file:
            writer = ContainerWriter(file, self.key)
            for slot in self.slots:
                writer.add_key_slot(slot)
            for name, data in self.members:
                writer.add_encrypted(name, data)
            writer.add_encrypted(MANIFEST_MEMBER, manifest)
            writer.add_encrypted(SEAL_MEMBER, seal)
            container_sha256 = writer.close()
        if container_sha256 is None:
            container_sha256 = hashlib.sha256(output.read_bytes()).hexdigest()
        self._event = dict(event or {})
        return self._log(output, manifest_sha256, container_sha256)

    def replace(self, crafted: Crafted, data: bytes) -> Crafted:
        """Put ``data`` (the container altered by a test) in place of the container and
        record it in event 0, signed again: the custody log vouches for the alteration."""
        crafted.container.write_bytes(data)
        return self._log(crafted.container, crafted.manifest_sha256,
                         hashlib.sha256(data).hexdigest())  # fmt: skip

    def _log(self, output: Path, manifest_sha256: str, container_sha256: str) -> Crafted:
        summary = self.last_head.summary if self.last_head else summary_of([])
        values: dict[str, Any] = {
            "seq": 0,
            "action": "acquired",
            "time": EPOCH,
            "actor": CASE.examiner,
            "location": CASE.location,
            "note": CASE.description,
            "bundle_id": self.bundle_id,
            "container_sha256": container_sha256,
            "prev_event_sha256": None,
            "manifest_sha256": manifest_sha256,
            "case_number": CASE.case_number,
            "evidence_number": CASE.evidence_number,
            "item_count": summary.items,
            "total_bytes": min(summary.bytes, 2**53 - 1),  # RFC 8785's limit: a lie is a finding
        }
        values.update(self._event)
        first = sign_event(CustodyEvent(**values), self.signing_key)
        log = custody_log_path(output)
        log.write_bytes(event_line(first))
        log.chmod(0o600)
        return Crafted(output, log, self.bundle_id, manifest_sha256, container_sha256)


__all__ = [
    "CASE",
    "Crafted",
    "Draft",
    "aes_extra_offsets",
    "bomb_pack",
    "central_records",
    "deflate_bomb",
    "deflated_pack",
    "file_record",
    "folder_record",
    "item_record",
    "nested_pack",
    "patch_member",
    "record_bytes",
    "stored_pack",
    "summary_of",
    "symlink_record",
]
