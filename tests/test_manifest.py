"""The manifest as written and read without holding every item as a record.

``encode_manifest`` must write exactly the RFC 8785 bytes of the whole record, and
``decode_manifest`` must refuse everything ``load_record(..., require_canonical=True)``
refused (duplicate keys, non-canonical bytes, invalid records), so the streaming form
changes memory, not meaning.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evidence_kit.canonical import MalformedRecord, canonical_bytes, load_record
from evidence_kit.manifest import decode_manifest, encode_manifest
from evidence_kit.models import Manifest, ManifestHead
from tests.conftest import AgeKey, MakeBundle, read_manifest


@pytest.fixture
def acquired(tmp_path: Path, make_bundle: MakeBundle, age_key: AgeKey) -> tuple[Manifest, bytes]:
    """A real manifest with non-ASCII names, a hard link, packs and a dedicated member."""
    root = tmp_path / "seized"
    (root / "客户").mkdir(parents=True)
    (root / "客户" / "名单.csv").write_text("张伟,17012345678\n")
    (root / "café ☕.txt").write_text("menu\n")
    (root / "big.bin").write_bytes(os.urandom(1_200_000))
    os.link(root / "big.bin", root / "big-link.bin")
    (root / "empty").mkdir()
    bundle = make_bundle(root)
    return read_manifest(bundle.container, age_key)


def test_encode_writes_the_canonical_bytes_of_the_whole_record(
    acquired: tuple[Manifest, bytes],
) -> None:
    manifest, data = acquired
    head = ManifestHead.model_validate(manifest.model_dump(exclude={"items"}))
    encoded = encode_manifest(head, [canonical_bytes(item) for item in manifest.items])
    assert encoded == canonical_bytes(manifest) == data


def test_encode_with_no_items(acquired: tuple[Manifest, bytes]) -> None:
    manifest = acquired[0].model_copy(update={"items": []})
    head = ManifestHead.model_validate(manifest.model_dump(exclude={"items"}))
    assert encode_manifest(head, []) == canonical_bytes(manifest)
    assert decode_manifest(canonical_bytes(manifest))[0] == head


def test_decode_gives_the_same_items_as_a_full_parse(acquired: tuple[Manifest, bytes]) -> None:
    manifest, data = acquired
    head, items = decode_manifest(data)
    assert head == ManifestHead.model_validate(manifest.model_dump(exclude={"items"}))
    assert list(items) == manifest.items
    assert len(items) == len(manifest.items) >= 7
    assert items[-1] == manifest.items[-1]
    assert items[1:3] == manifest.items[1:3]
    assert any(not item.path.display.isascii() for item in items)
    with pytest.raises(IndexError):
        items[len(items)]


def _first_item_span(data: bytes) -> tuple[int, int]:
    start = data.index(b'"items":[') + len(b'"items":[')
    end = data.index(b'},{"atime"', start) + 1
    return start, end


def _alterations(data: bytes) -> dict[str, bytes]:
    start, end = _first_item_span(data)
    item = data[start:end]
    parsed = json.loads(item)
    reordered = json.dumps(dict(reversed(parsed.items())), separators=(",", ":")).encode()
    summary_at = data.index(b'"summary":') + len(b'"summary":')
    summary = json.loads(data[summary_at:-1])
    summary_reordered = json.dumps(dict(reversed(summary.items())), separators=(",", ":"))
    return {
        "space after the opening brace": b"{ " + data[1:],
        "trailing data": data + b" ",
        "trailing second document": data + b"{}",
        "duplicate top-level key": b'{"bundle_id":"x",' + data[1:],
        "duplicate key in an item": data[:start] + b'{"id":0,' + item[1:] + data[end:],
        "item keys out of order": data[:start] + reordered + data[end:],
        "head value keys out of order": data[:summary_at] + summary_reordered.encode() + b"}",
        "top-level keys out of order": b'{"case":' + data[data.index(b'"case":') + 7 :].replace(
            b',"encryption":', b',"bundle_id":"x","encryption":', 1),
        "item not an object": data[:start] + b"[]" + data[end:],
        "invalid item field": data.replace(b'"kind":"file"', b'"kind":"teapot"', 1),
        "items not a list": data.replace(b'"items":[', b'"items":{"a":[', 1),
        "no items": data[: data.index(b'"items":[')] + data[data.index(b'"key_slots"') :],
        "items twice": data.replace(b'"key_slots"', b'"items":[],"key_slots"', 1),
        "float where an integer belongs": data.replace(b'"nlink":1', b'"nlink":1.0', 1),
        "integer beyond 2**53": data.replace(b'"nlink":1', b'"nlink":90071992547409930', 1),
        "NaN": data.replace(b'"nlink":1', b'"nlink":NaN', 1),
        "invalid UTF-8": data.replace(b"\xe5\xae\xa2", b"\xe5\xae", 1),
        "escaped where canonical is not": data.replace("客".encode(), b"\\u5ba2", 1),
        "head field invalid": data.replace(b'"schema_version":1', b'"schema_version":2', 1),
        "unknown head field": data.replace(b'"kind":"evidence-kit/manifest"',
                                           b'"kind":"evidence-kit/manifest","extra":1', 1),
        "not an object": b"[" + data + b"]",
        "empty": b"",
    }  # fmt: skip


def test_alterations_are_refused_by_both_readers(acquired: tuple[Manifest, bytes]) -> None:
    _manifest, data = acquired
    readers = {
        "load_record": lambda altered: load_record(Manifest, altered, require_canonical=True),
        "decode_manifest": decode_manifest,
    }
    for name, altered in _alterations(data).items():
        assert altered != data, name
        for reader_name, reader in readers.items():
            try:
                reader(altered)
            except MalformedRecord:
                continue
            pytest.fail(f"{reader_name} accepted: {name}")
