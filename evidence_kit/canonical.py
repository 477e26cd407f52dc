"""RFC 8785 canonical JSON out, strict JSON in (duplicate keys refused)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import rfc8785
from pydantic import ValidationError

from evidence_kit.i18n import _
from evidence_kit.models import Record

R = TypeVar("R", bound=Record)


class MalformedRecord(ValueError):
    """Bytes that are not the record they claim to be."""


_SAFE_INTEGER = 2**53


def canonical_bytes(record: Record | dict[str, Any]) -> bytes:
    """The RFC 8785 serialisation of a record (what gets hashed and signed).

    For JSON without floats, with ASCII object keys and integers within 2**53, Python's
    ``json.dumps`` with sorted keys, no spaces and no ASCII escaping writes exactly the
    RFC 8785 bytes (the same string escapes; key order by code point equals UTF-16 order
    for ASCII), about twenty times faster than the general implementation, which serves
    everything else (``tests/property`` checks the two agree).
    """
    data = record.model_dump(mode="json") if isinstance(record, Record) else record
    if _plain(data):
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return bytes(rfc8785.dumps(data))


def _plain(value: Any) -> bool:
    """No floats, no non-ASCII object keys, no integer RFC 8785 would refuse."""
    stack = [value]
    while stack:
        node = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if isinstance(node, dict) and not all(key.isascii() for key in node):
            return False
        for child in children:
            if isinstance(child, dict | list):
                stack.append(child)
            elif isinstance(child, float) or (
                isinstance(child, int) and not -_SAFE_INTEGER < child < _SAFE_INTEGER
            ):
                return False
    return isinstance(value, dict | list)


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedRecord(_("duplicate JSON key: {key!r}").format(key=key))
        result[key] = value
    return result


def strict_json(data: bytes) -> Any:
    """Parse JSON, refusing duplicate keys, invalid UTF-8 and non-standard constants."""

    def no_constants(name: str) -> Any:
        raise MalformedRecord(_("non-standard JSON constant {name}").format(name=name))

    try:
        text = data.decode("utf-8")
        return json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise MalformedRecord(_("not valid JSON: {error}").format(error=error)) from None


def load_record(model: type[R], data: bytes, *, require_canonical: bool = False) -> R:
    """Parse ``data`` as ``model``; with ``require_canonical`` the bytes must be RFC 8785."""
    parsed = strict_json(data)
    if not isinstance(parsed, dict):
        raise MalformedRecord(_("expected a JSON object"))
    try:
        record = model.model_validate(parsed)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MalformedRecord(
            _("{model}: {where}: {problem}").format(
                model=model.__name__, where=where or "(top)", problem=first["msg"]
            )
        ) from None
    if require_canonical and canonical_bytes(parsed) != data:
        raise MalformedRecord(_("not in canonical (RFC 8785) form"))
    return record


__all__ = ["MalformedRecord", "canonical_bytes", "load_record", "strict_json"]
