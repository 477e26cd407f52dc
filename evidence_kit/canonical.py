"""RFC 8785 canonical JSON out, strict JSON in (duplicate keys refused)."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, TypeVar

import rfc8785
from pydantic import ValidationError

from evidence_kit.i18n import _
from evidence_kit.models import Record

R = TypeVar("R", bound=Record)


class MalformedRecord(ValueError):
    """Bytes that are not the record they claim to be."""


def canonical_bytes(record: Record | Any, *, plain_numbers: bool | None = None) -> bytes:
    """The RFC 8785 serialisation of a record or JSON value (what gets hashed and signed).

    For JSON without floats, with integers of at most 15 digits and with no character
    from U+D800 up, Python's ``json.dumps`` with sorted keys, no spaces and no ASCII
    escaping writes exactly the RFC 8785 bytes: the same string escapes, and key order by
    code point equals RFC 8785's UTF-16 order below the surrogates. It is many times
    faster than the general implementation, which serves everything else
    (``tests/property`` checks the two agree). ``plain_numbers`` is what a parser's
    NumberWatch saw, when the value was just parsed; otherwise the text is searched.
    """
    data = record.model_dump(mode="json") if isinstance(record, Record) else record
    try:
        text = json.dumps(
            data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (ValueError, TypeError):
        text = None  # NaN, infinities or keys json.dumps refuses: rfc8785 says why
    if (
        text is not None
        and (text.isascii() or max(text) < "\ud800")
        and (_plain_numbers(text) if plain_numbers is None else plain_numbers)
    ):
        return text.encode()
    return bytes(rfc8785.dumps(data))


def is_canonical(value: Any, data: bytes | str, *, plain_numbers: bool | None = None) -> bool:
    """``data`` is the RFC 8785 form of the parsed ``value`` (False when RFC 8785 cannot
    represent the value at all, e.g. an integer beyond 2**53)."""
    try:
        canonical = canonical_bytes(value, plain_numbers=plain_numbers)
    except (ValueError, UnicodeEncodeError):  # rfc8785's errors are ValueErrors
        return False
    return canonical == (data.encode() if isinstance(data, str) else data)


def _plain_numbers(text: str) -> bool:
    """No float and no integer of 16 digits or more in this compact JSON text."""
    if not text.startswith(("{", "[")):
        return False  # a bare scalar: rare, let the general path decide
    # Without escapes, strings are exactly the odd fields between quotes.
    outside = _STRING.sub("", text) if "\\" in text else "".join(text.split('"')[::2])
    # Left: punctuation, null, true, false and numbers. A float's repr always has a
    # '.' or an 'e' (NaN and infinities were refused by json.dumps already).
    if "." in outside or outside.count("e") != outside.count("true") + outside.count("false"):
        return False
    return _SIXTEEN_DIGITS not in outside.encode().translate(_DIGITS_TO_ZERO)


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string, escapes and all
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_SIXTEEN_DIGITS = b"0" * 16  # 16 digits may exceed 2**53, which RFC 8785 refuses


MAX_INTEGER_DIGITS = 4300  # Python's default conversion limit, whatever the interpreter's


def parse_integer(text: str) -> int:
    """A JSON integer; MalformedRecord when it is too long to convert (RFC 8785 allows
    nothing beyond 2**53 anyway), instead of the ValueError ``int`` raises."""
    if len(text) <= MAX_INTEGER_DIGITS:
        with contextlib.suppress(ValueError):
            return int(text)
    raise MalformedRecord(_("a number too long to read ({n} digits)").format(n=len(text)))


class NumberWatch:
    """Notes, while a decoder parses, any number RFC 8785 may write differently."""

    def __init__(self) -> None:
        self.seen = False

    def parse_float(self, text: str) -> float:
        self.seen = True
        return float(text)

    def parse_int(self, text: str) -> int:
        if len(text.lstrip("-")) > 15:
            self.seen = True
        return parse_integer(text)


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedRecord(_("duplicate JSON key: {key!r}").format(key=key))
        result[key] = value
    return result


def strict_decoder(numbers: NumberWatch | None = None) -> json.JSONDecoder:
    """A JSON decoder refusing duplicate keys and non-standard constants (NaN, Infinity)."""

    def no_constants(name: str) -> Any:
        raise MalformedRecord(_("non-standard JSON constant {name}").format(name=name))

    return json.JSONDecoder(
        object_pairs_hook=_refuse_duplicates,
        parse_constant=no_constants,
        parse_float=numbers.parse_float if numbers else None,
        parse_int=numbers.parse_int if numbers else parse_integer,
    )


def strict_json(data: bytes) -> Any:
    """Parse JSON, refusing duplicate keys, invalid UTF-8 and non-standard constants."""
    try:
        return strict_decoder().decode(data.decode("utf-8"))
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
    if require_canonical and not is_canonical(parsed, data):
        raise MalformedRecord(_("not in canonical (RFC 8785) form"))
    return record


_DECIMAL = re.compile(r"-?[0-9]{1,40}")


def decimal_integer(text: str) -> int | None:
    """The integer a record's decimal string (nanoseconds, a nonce) holds, or None for
    anything else: ``str.isdigit`` also accepts digits like ``²`` that ``int`` refuses,
    and a 5,000-digit string is no time."""
    return int(text) if _DECIMAL.fullmatch(text) else None


__all__ = [
    "MalformedRecord",
    "NumberWatch",
    "canonical_bytes",
    "decimal_integer",
    "is_canonical",
    "load_record",
    "strict_decoder",
    "strict_json",
]
