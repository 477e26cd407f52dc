"""The manifest in memory: its head as a record, its items as canonical JSON bytes.

A manifest of 100,000 items is about 110 MB of JSON but would be well over a gigabyte as
Python records, so neither acquisition nor reading ever holds all the items as records:
acquisition keeps each finished item as its canonical bytes and writes the manifest by
splicing them into the head (RFC 8785 orders the top-level keys, so ``items`` has a fixed
place); reading checks the whole document once, strictly, then keeps its bytes and the
offsets of the items, and parses an item only when it is asked for.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar, overload

from pydantic import ValidationError

from evidence_kit.canonical import (
    MalformedRecord,
    NumberWatch,
    canonical_bytes,
    is_canonical,
    strict_decoder,
)
from evidence_kit.hashing import REQUIRED_ALGORITHM, SUPPORTED_ALGORITHMS
from evidence_kit.i18n import _
from evidence_kit.models import ItemRecord, ManifestHead, Record

R = TypeVar("R", bound=Record)

ITEMS_KEY = "items"


def encode_manifest(head: ManifestHead, items: Iterable[bytes]) -> bytes:
    """The RFC 8785 bytes of the manifest ``head`` plus ``items`` (each item's canonical
    bytes, in item order): the same bytes as ``canonical_bytes`` of the whole record."""
    return b"".join(_pieces(head, items))


def _pieces(
    head: ManifestHead, items: Iterable[bytes | memoryview]
) -> Iterator[bytes | memoryview]:
    fields = head.model_dump(mode="json")
    yield b"{"
    for index, key in enumerate(sorted([*fields, ITEMS_KEY])):  # ASCII keys: byte order
        if index:
            yield b","
        yield json.dumps(key).encode() + b":"
        if key != ITEMS_KEY:
            yield canonical_bytes(fields[key])
            continue
        yield b"["
        for number, item in enumerate(items):
            if number:
                yield b","
            yield item
        yield b"]"
    yield b"}"


class ItemTable(Sequence[ItemRecord]):
    """A manifest's items, parsed one at a time from the manifest's checked bytes."""

    def __init__(self, data: bytes, bounds: array[int]) -> None:
        self._data = data
        self._bounds = bounds  # start and end offsets, two per item

    def __len__(self) -> int:
        return len(self._bounds) // 2

    @overload
    def __getitem__(self, index: int) -> ItemRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ItemRecord]: ...
    def __getitem__(self, index: int | slice) -> ItemRecord | Sequence[ItemRecord]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        start, end = self._bounds[2 * index], self._bounds[2 * index + 1]
        return ItemRecord.model_validate_json(self._data[start:end])

    def __iter__(self) -> Iterator[ItemRecord]:
        for index in range(len(self)):
            yield self[index]


def decode_manifest(data: bytes) -> tuple[ManifestHead, ItemTable]:
    """Check ``data`` is a manifest in canonical form (strict JSON, no duplicate key, every
    item a valid record) and return its head and its items; MalformedRecord if not."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedRecord(_("not valid JSON: {error}").format(error=error)) from None
    numbers = NumberWatch()
    decoder = strict_decoder(numbers)
    fields: dict[str, Any] = {}
    bounds: array[int] = array("q")
    cursor = _ByteCursor(text)
    try:
        position = _expect(text, 0, "{")
        while True:
            key, position = decoder.raw_decode(text, position)
            if not isinstance(key, str):
                raise MalformedRecord(_("expected a JSON object"))
            if key in fields or (key == ITEMS_KEY and bounds):
                raise MalformedRecord(_("duplicate JSON key: {key!r}").format(key=key))
            position = _expect(text, position, ":")
            if key == ITEMS_KEY:
                fields[key] = None
                position = _read_items(text, position, decoder, numbers, cursor, bounds)
            else:
                fields[key], position = decoder.raw_decode(text, position)
            if text.startswith("}", position):
                position += 1
                break
            position = _expect(text, position, ",")
    except json.JSONDecodeError as error:
        raise MalformedRecord(_("not valid JSON: {error}").format(error=error)) from None
    except RecursionError:
        raise MalformedRecord(_("not valid JSON: nested too deeply")) from None
    if position != len(text):
        raise MalformedRecord(_("not valid JSON: data after the manifest"))
    del text, cursor
    if fields.pop(ITEMS_KEY, ...) is ...:
        raise MalformedRecord(_("Manifest: items: Field required"))
    head = _validate(ManifestHead, fields, "Manifest")
    _check_algorithms(head.hash_algorithms)
    _check_canonical(head, data, bounds)
    return head, ItemTable(data, bounds)


def _check_algorithms(algorithms: list[str]) -> None:
    """SHA-256 and other supported algorithms, each once: what acquisition writes and
    what verification and extraction can compute."""
    if (
        REQUIRED_ALGORITHM not in algorithms
        or len(set(algorithms)) != len(algorithms)
        or not set(algorithms) <= set(SUPPORTED_ALGORITHMS)
    ):
        message = _("Manifest: hash_algorithms: {value}: SHA-256 and supported algorithms only")
        raise MalformedRecord(message.format(value=algorithms))


def _check_canonical(head: ManifestHead, data: bytes, bounds: array[int]) -> None:
    """``data`` is exactly the canonical manifest of ``head`` and its (checked) items,
    compared piece by piece in place, without a second copy of the manifest."""
    view = memoryview(data)
    spans = (view[bounds[i] : bounds[i + 1]] for i in range(0, len(bounds), 2))
    offset = 0
    try:
        for piece in _pieces(head, spans):
            if view[offset : offset + len(piece)] != piece:
                raise MalformedRecord(_("not in canonical (RFC 8785) form"))
            offset += len(piece)
    except MalformedRecord:
        raise
    except ValueError:  # RFC 8785 cannot write a value at all (a lone surrogate, 2**53 + 1)
        raise MalformedRecord(_("not in canonical (RFC 8785) form")) from None
    if offset != len(data):
        raise MalformedRecord(_("not in canonical (RFC 8785) form"))


class _ByteCursor:
    """Turns character offsets into UTF-8 byte offsets, moving forward only."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._ascii = text.isascii()
        self._chars = self._bytes = 0

    def byte_offset(self, char_offset: int) -> int:
        if self._ascii:
            return char_offset
        self._bytes += len(self._text[self._chars : char_offset].encode())
        self._chars = char_offset
        return self._bytes


def _expect(text: str, position: int, token: str) -> int:
    if not text.startswith(token, position):
        raise MalformedRecord(
            _("not valid JSON: expected {token!r} at character {position}").format(
                token=token, position=position
            )
        )
    return position + 1


def _read_items(
    text: str,
    position: int,
    decoder: json.JSONDecoder,
    numbers: NumberWatch,
    cursor: _ByteCursor,
    bounds: array[int],
) -> int:
    """Check each item (a valid record, in canonical form) and note where its bytes lie."""
    position = _expect(text, position, "[")
    if text.startswith("]", position):
        return position + 1
    while True:
        start = position
        numbers.seen = False
        parsed, position = decoder.raw_decode(text, position)
        if not isinstance(parsed, dict):
            raise MalformedRecord(_("Manifest: items: expected a JSON object"))
        _validate(ItemRecord, parsed, f"Manifest: items.{len(bounds) // 2}")
        if not is_canonical(parsed, text[start:position], plain_numbers=not numbers.seen):
            raise MalformedRecord(_("not in canonical (RFC 8785) form"))
        bounds.append(cursor.byte_offset(start))
        bounds.append(cursor.byte_offset(position))
        if text.startswith("]", position):
            return position + 1
        position = _expect(text, position, ",")


def _validate(model: type[R], data: dict[str, Any], label: str) -> R:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MalformedRecord(
            _("{model}: {where}: {problem}").format(
                model=label, where=where or "(top)", problem=first["msg"]
            )
        ) from None


__all__ = ["ItemTable", "decode_manifest", "encode_manifest"]
