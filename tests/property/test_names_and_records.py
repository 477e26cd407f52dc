"""Formats and parsers hold for any input: names, canonical JSON, times."""

from __future__ import annotations

import contextlib
import hashlib
import json

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from evidence_kit.canonical import MalformedRecord, canonical_bytes, load_record, strict_json
from evidence_kit.clock import instant_from_ns, rfc3339_from_ns
from evidence_kit.hashing import WindowDigests
from evidence_kit.models import CustodyEvent, Seal
from evidence_kit.naming import display_name, path_bytes, path_name


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_two_different_names_never_share_a_display_form(a: bytes, b: bytes) -> None:
    if a != b:
        assert display_name(a) != display_name(b)


@given(st.binary(max_size=300))
def test_a_display_form_has_no_control_or_invisible_characters(raw: bytes) -> None:
    shown = display_name(raw)
    assert all(ord(ch) >= 0x20 and not 0x7F <= ord(ch) < 0xA0 for ch in shown)
    assert not {"\u2028", "\u2029", "\u202e", "\u200f"} & set(shown)


@given(st.binary(max_size=300))
def test_exact_name_bytes_round_trip(raw: bytes) -> None:
    assert path_bytes(path_name(raw)) == raw


def test_display_forms_of_known_hostile_names() -> None:
    assert display_name(b"a\nb") == "a\\nb"
    assert display_name(b"back\\slash") == "back\\\\slash"
    assert display_name(b"caf\xe9") == "caf\\xe9"
    assert display_name("\x85".encode()) == "\\u0085"
    assert display_name(b"\x1b[31mred") == "\\x1b[31mred"
    assert display_name("evil\u202egnp.exe".encode()) == "evil\\u202egnp.exe"
    assert display_name("张伟📌.txt".encode()) == "张伟📌.txt"


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_nanosecond_times_are_exact_strings(ns: int) -> None:
    instant = instant_from_ns(ns)
    assert int(instant.ns) == ns
    if instant.utc is not None:
        assert instant.utc.endswith("Z")


def test_rfc3339_forms() -> None:
    assert rfc3339_from_ns(0) == "1970-01-01T00:00:00Z"
    assert rfc3339_from_ns(-1) == "1969-12-31T23:59:59.999999999Z"
    assert rfc3339_from_ns(7_258_118_400 * 10**9 + 123_456_789) == "2200-01-01T00:00:00.123456789Z"
    assert rfc3339_from_ns(2**63 - 1) == "2262-04-11T23:47:16.854775807Z"
    assert rfc3339_from_ns(-(2**62) * 10) == "0508-08-13T01:03:35.726120960Z"
    assert rfc3339_from_ns(-62_135_596_801 * 10**9) is None  # before year 1


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(MalformedRecord, match="duplicate"):
        strict_json(b'{"a": 1, "a": 2}')


@pytest.mark.parametrize("text", [b"NaN", b'{"a": Infinity}', b"\xff", b"[", b""])
def test_malformed_json_is_refused(text: bytes) -> None:
    with pytest.raises(MalformedRecord):
        strict_json(text)


def test_non_canonical_bytes_are_refused_where_canonical_is_required() -> None:
    seal = Seal(
        bundle_id="b", manifest_member="manifest.json", manifest_sha256="0" * 64, signature=None
    )
    data = canonical_bytes(seal)
    assert load_record(Seal, data, require_canonical=True) == seal
    spaced = json.dumps(json.loads(data), indent=1).encode()
    with pytest.raises(MalformedRecord, match="canonical"):
        load_record(Seal, spaced, require_canonical=True)


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=5))
def test_arbitrary_json_objects_never_crash_the_record_loader(data: dict[str, object]) -> None:
    with contextlib.suppress(MalformedRecord):
        load_record(CustodyEvent, json.dumps(data).encode(), require_canonical=True)


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.integers()
    | st.floats()
    | st.text()
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=8), _json_values, max_size=6) | _json_values)
def test_canonical_bytes_are_exactly_what_rfc8785_writes(data: object) -> None:
    try:
        expected = bytes(rfc8785.dumps(data))
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError):
        with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError)):
            canonical_bytes(data)
        return
    assert canonical_bytes(data) == expected


def test_canonical_bytes_of_awkward_strings_and_keys() -> None:
    data = {"z": "\x00\x1f\x7f\u2028\"\\\b\f\n\r\t é 张 📌", "a": [1, -(2**53) + 1, True, None],
            "é": 1, "\U0001f4cc": 2, "\uffff": 3}  # fmt: skip
    assert canonical_bytes(data) == bytes(rfc8785.dumps(data))
    assert canonical_bytes({k: v for k, v in data.items() if k.isascii()}) == bytes(
        rfc8785.dumps({k: v for k, v in data.items() if k.isascii()})
    )
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical_bytes({"n": 2**53})


def test_numbers_inside_strings_do_not_change_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Times like "T19:37:34.499Z" and digit strings stay on the json.dumps path, and
    real floats and long integers still get RFC 8785's own treatment."""
    plain = {"utc": "2026-11-28T19:37:34.499486430Z", "ns": "1795894654499486430",
             "list": ["[1.5", ",12345678901234567", 'a"b:1e5'], "n": 123456789012345}  # fmt: skip
    awkward = [{"f": 1.0}, {"f": [0.1]}, 1e16, 2**53 - 1, {"big": 2**60}, -0.0]
    expected = {id(v): _rfc8785_or_error(v) for v in [plain, *awkward]}
    calls: list[object] = []
    original = rfc8785.dumps

    def counting(value: object) -> bytes:
        calls.append(value)
        return bytes(original(value))

    monkeypatch.setattr(rfc8785, "dumps", counting)
    assert canonical_bytes(plain) == expected[id(plain)]
    assert calls == []
    for value in awkward:
        wanted = expected[id(value)]
        if isinstance(wanted, bytes):
            assert canonical_bytes(value) == wanted
        else:
            with pytest.raises(wanted):
                canonical_bytes(value)
    assert len(calls) == len(awkward)


def _rfc8785_or_error(value: object) -> bytes | type[Exception]:
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, ValueError) as error:
        return type(error)


@given(st.binary(max_size=5000), st.integers(1, 700), st.lists(st.integers(1, 900), max_size=12))
def test_window_digests_do_not_depend_on_how_the_stream_is_cut(
    data: bytes, size: int, cuts: list[int]
) -> None:
    windows = WindowDigests(size)
    position = 0
    for cut in cuts:
        windows.update(data[position : position + cut])
        position += cut
    windows.update(data[position:])
    expected = [hashlib.sha256(data[i : i + size]).hexdigest() for i in range(0, len(data), size)]
    assert windows.finish() == expected
