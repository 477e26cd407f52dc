"""Fuzz targets over every parser of hostile input, run in a child process with hard limits.

``python -m tests.assurance.fuzz_targets hypothesis TARGET=N [TARGET=N ...]`` runs each
target for N hypothesis examples (``derandomize=True``: the same examples every run);
``python -m tests.assurance.fuzz_targets atheris TARGET RUNS`` runs one target under
atheris (libFuzzer, fixed ``-seed``). The process limits its own address space with
``RLIMIT_AS`` (1.5 GiB) before it reads any input, so an over-allocation is a
MemoryError, counted as a failure, and arms ``SIGALRM`` around every example, so a hang
is a failure too. It prints one JSON summary line per target.

Targets (what each may do; anything else is an unexpected outcome):

- ``layout``: ``read_layout`` on arbitrary bytes, zip-shaped bytes and mutated containers:
  returns a Layout, never raises;
- ``manifest``: ``decode_manifest`` and ``load_record`` on arbitrary, JSON-shaped and
  mutated manifests: a result or MalformedRecord;
- ``custody``: ``parse_custody_log``, ``check_chain``, ``verify_tokens`` on mutated logs
  and on well-formed events with hostile values: never raise;
- ``verify``: ``verify_bundle`` with the key on mutated containers and logs: a report or
  one of the project's errors; a changed container never verifies;
- ``crafted``: authentic (encrypted, sealed, signed) bundles whose manifest holds hostile
  items; ``verify_bundle`` and ``extract_bundle``: a report or the project's errors,
  nothing written outside the destination, no more bytes than the manifest's sizes.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import io
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from evidence_kit.acquire import AcquireRequest, acquire
from evidence_kit.bundle import open_container, unlock
from evidence_kit.canonical import MalformedRecord, load_record
from evidence_kit.container import read_layout
from evidence_kit.custody import (
    check_chain,
    custody_log_path,
    event_line,
    parse_custody_log,
)
from evidence_kit.custody_append import NewEvent, append_event
from evidence_kit.errors import EvidenceKitError
from evidence_kit.extract import ExtractRequest, extract_bundle
from evidence_kit.keys import KeyMaterial, fingerprint
from evidence_kit.manifest import decode_manifest
from evidence_kit.models import (
    CustodyEvent,
    Instant,
    ItemLocation,
    ItemRecord,
    Manifest,
    PathName,
    Seal,
    Signature,
    TimestampToken,
)
from evidence_kit.naming import path_name
from evidence_kit.timestamps import verify_tokens
from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.assurance.crafted import (
    CASE,
    Draft,
    file_record,
    folder_record,
    item_record,
    symlink_record,
)

MEMORY_LIMIT = 3 << 29  # 1.5 GiB of address space for the whole fuzzing process
EXAMPLE_SECONDS = 30  # a hang detector, far above any example's normal time
ESCAPE_ROOT = Path("/evidence-kit-hostile-escape")  # an absolute name crafted items aim at


class ExampleTimeout(BaseException):
    """Raised by SIGALRM in an example that ran past EXAMPLE_SECONDS (a hang)."""


class Unexpected(Exception):
    """An outcome the target's contract does not allow."""


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise ExampleTimeout(f"example ran over {EXAMPLE_SECONDS} s")


def limit_memory() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def peak_rss_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


# ------------------------------------------------------------------------------ seeds


@dataclass
class Seeds:
    """A real signed bundle with a three-event custody log, and its keys."""

    folder: Path
    container: bytes
    log: bytes
    manifest: bytes
    identity: pyrage.x25519.Identity
    signing_key: Ed25519PrivateKey
    container_offsets: list[int] = field(default_factory=list)

    @property
    def material(self) -> KeyMaterial:
        return KeyMaterial(identities=(self.identity,))


def make_seeds(folder: Path) -> Seeds:
    source = folder / "seized"
    (source / "docs").mkdir(parents=True)
    (source / "empty").mkdir()
    (source / "a.txt").write_bytes(b"alpha\n")
    (source / "docs" / "b.csv").write_bytes(b"name,phone\n" + bytes(range(256)) * 4)
    (source / "link").symlink_to("a.txt")
    identity = pyrage.x25519.Identity.generate()
    signing_key = Ed25519PrivateKey.generate()
    output = folder / "seed.zip"
    acquire(
        AcquireRequest(
            sources=[source],
            output=output,
            case=CASE,
            recipients=[identity.to_public()],
            signing_key=signing_key,
        )
    )
    for action, extra in (("transferred", {"to": "Lab 7 intake"}), ("received", {})):
        append_event(output, NewEvent(action, "Officer Wu", **extra), signing_key)
    bundle = open_container(output, trusted=None)
    try:
        unlock(bundle, KeyMaterial(identities=(identity,)), trusted=None)
        assert bundle.manifest_bytes is not None
        manifest = bundle.manifest_bytes
    finally:
        bundle.close()
    container = output.read_bytes()
    return Seeds(
        folder,
        container,
        custody_log_path(output).read_bytes(),
        manifest,
        identity,
        signing_key,
        zip_offsets(container),
    )


_FIELDS = {
    b"PK\x03\x04": (0, 4, 6, 8, 10, 12, 14, 18, 22, 26, 28, 30),
    b"PK\x01\x02": (0, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 30, 32, 34, 36, 38, 42, 46),
    b"PK\x05\x06": (0, 4, 6, 8, 10, 12, 16, 20, 22),
    b"\x01\x99": (0, 2, 4, 6, 8, 9),  # the WinZip AES extra field
}


def zip_offsets(data: bytes) -> list[int]:
    """Offsets of every header field of every zip structure in ``data``."""
    found: set[int] = set()
    for signature, fields in _FIELDS.items():
        start = data.find(signature)
        while start >= 0:
            found.update(start + f for f in fields if start + f < len(data))
            start = data.find(signature, start + 1)
    return sorted(found)


# -------------------------------------------------------------------------- mutations

INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)  # fmt: skip
SIGNATURES = (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07",
              b"PK\x07\x08", b"\x01\x99\x07\x00\x02\x00AE\x03\x00\x00")  # fmt: skip
Op = tuple[Any, ...]


def mutation_ops(offsets: list[int], size: int, max_ops: int = 6) -> st.SearchStrategy[list[Op]]:
    """Byte flips, field writes, insertions, deletions, splices (copies of one zip
    structure over or before another) and truncations, at structure offsets or anywhere."""
    offset = st.one_of(st.sampled_from(offsets), st.integers(0, size + 64)) if offsets else (
        st.integers(0, size + 64)
    )  # fmt: skip
    value = st.one_of(st.sampled_from(INTERESTING), st.integers(0, 2**64 - 1))
    op = st.one_of(
        st.tuples(st.just("flip"), offset, st.integers(1, 255)),
        st.tuples(st.just("set"), offset, st.sampled_from([1, 2, 4, 8]), value),
        st.tuples(st.just("insert"), offset, st.one_of(st.sampled_from(SIGNATURES),
                                                       st.binary(min_size=1, max_size=64))),
        st.tuples(st.just("delete"), offset, st.integers(1, 300)),
        st.tuples(st.just("splice"), offset, offset, st.integers(1, 2048)),
        st.tuples(st.just("overwrite"), offset, offset, st.integers(1, 512)),
        st.tuples(st.just("truncate"), offset),
        st.tuples(st.just("append"), st.sampled_from(SIGNATURES) | st.binary(max_size=64)),
    )  # fmt: skip
    return st.lists(op, min_size=1, max_size=max_ops)


def apply_ops(data: bytes, ops: list[Op]) -> bytes:
    out = bytearray(data)
    for op in ops:
        kind, where = op[0], op[1] % (len(out) + 1) if isinstance(op[1], int) else 0
        if kind == "flip" and where < len(out):
            out[where] ^= op[2]
        elif kind == "set":
            width, number = op[2], op[3] % (1 << (8 * op[2]))
            out[where : where + width] = number.to_bytes(width, "little")
        elif kind == "insert":
            out[where:where] = op[2]
        elif kind == "delete":
            del out[where : where + op[2]]
        elif kind == "splice":
            source = op[2] % (len(out) + 1)
            out[where:where] = out[source : source + op[3]]
        elif kind == "overwrite":
            source = op[2] % (len(out) + 1)
            piece = out[source : source + op[3]]
            out[where : where + len(piece)] = piece
        elif kind == "truncate":
            del out[where:]
        elif kind == "append":
            out += op[1]
    return bytes(out)


HOSTILE_JSON = (
    b"9" * 5000,  # beyond Python's 4,300-digit int conversion limit
    b"-" + b"9" * 4400,
    b"18446744073709551616",
    b"9007199254740993",  # 2**53 + 1
    b"1e999999",
    b"-0",
    b"0.0",
    b"1E400",
    b"NaN",
    b"-Infinity",
    b'"\\ud800"',  # a lone surrogate
    b'"\\udfff\\ud800"',
    b'"\xed\xa0\x80"',  # a surrogate encoded in UTF-8: invalid UTF-8
    b'"\xff\xfe"',
    b'"\\u0000"',
    b'"' + b"a" * (1 << 20) + b'"',
    b"[" * 50_000 + b"]" * 50_000,
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    b"null",
    b"true",
    b"{}",
    b"[]",
    b'""',
    b'{"schema_version":2}',
)


def json_ops(size: int, max_ops: int = 4) -> st.SearchStrategy[list[Op]]:
    """Edits that keep JSON mostly well-formed: a hostile value after a key, a duplicated
    key, a lone surrogate inside a string, a key renamed, whitespace."""
    where = st.integers(0, size)
    op = st.one_of(
        st.tuples(st.just("value"), where, st.sampled_from(HOSTILE_JSON)),
        st.tuples(st.just("duplicate-key"), where),
        st.tuples(st.just("surrogate"), where, st.sampled_from([b"\\ud800", b"\\udc80x",
                                                                b"\\ud83d\\ude00"])),
        st.tuples(st.just("rename-key"), where, st.sampled_from([b"extra", b"", b"items",
                                                                 b"schema_version", b"kind"])),
        st.tuples(st.just("space"), where, st.sampled_from([b" ", b"\n", b"\t", b"\r\n"])),
    )  # fmt: skip
    return st.lists(op, min_size=1, max_size=max_ops)


def _key_starts(data: bytes) -> list[int]:
    """Offsets of the opening quote of every object key in compact JSON."""
    starts = []
    for marker in (b'{"', b',"'):
        position = data.find(marker)
        while position >= 0:
            starts.append(position + 1)
            position = data.find(marker, position + 1)
    return sorted(starts)


def apply_json_ops(data: bytes, ops: list[Op]) -> bytes:
    out = bytes(data)
    for op in ops:
        keys = _key_starts(out)
        if not keys:
            out += op[2] if op[0] == "value" else b""
            continue
        start = keys[op[1] % len(keys)]
        colon = out.find(b'":', start + 1)
        if colon < 0:
            continue
        key = out[start : colon + 1]  # with both quotes
        value_start = colon + 2
        if op[0] == "value":
            end = value_start
            while end < len(out) and out[end : end + 1] not in (b",", b"}", b"]"):
                end += 1
            out = out[:value_start] + op[2] + out[end:]
        elif op[0] == "duplicate-key":
            out = out[:start] + key + b":null," + out[start:]
        elif op[0] == "surrogate":
            if out[value_start : value_start + 1] == b'"':
                out = out[: value_start + 1] + op[2] + out[value_start + 1 :]
        elif op[0] == "rename-key":
            out = out[:start] + b'"' + op[2] + b'"' + out[colon + 1 :]
        elif op[0] == "space":
            out = out[:value_start] + op[2] + out[value_start:]
    return out


def json_text() -> st.SearchStrategy[bytes]:
    """JSON-shaped text with hostile leaves, duplicate keys and odd nesting."""
    leaf = st.one_of(
        st.sampled_from(HOSTILE_JSON[:16] + HOSTILE_JSON[18:]),
        st.integers().map(lambda n: str(n).encode()),
        st.text(max_size=20).map(lambda s: json.dumps(s).encode()),
    )

    def nest(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
        pair = st.tuples(st.sampled_from(["items", "kind", "a", "schema_version", "a"]), children)
        return st.one_of(
            st.lists(children, max_size=4).map(lambda xs: b"[" + b",".join(xs) + b"]"),
            st.lists(pair, max_size=4).map(
                lambda kv: b"{" + b",".join(json.dumps(k).encode() + b":" + v for k, v in kv)
                + b"}"
            ),
        )  # fmt: skip

    return st.recursive(leaf, nest, max_leaves=12)


# ---------------------------------------------------------------------------- running


@dataclass
class Tally:
    """What a target saw: outcomes by class, unexpected outcomes, property counts."""

    target: str
    examples: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[dict[str, str]] = field(default_factory=list)
    properties: dict[str, list[int]] = field(default_factory=dict)  # name -> [tried, held]
    slowest: float = 0.0

    def check(self, name: str, held: bool) -> None:
        counts = self.properties.setdefault(name, [0, 0])
        counts[0] += 1
        counts[1] += int(held)

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "examples": self.examples,
            "outcomes": dict(self.outcomes),
            "unexpected": self.unexpected,
            "properties": self.properties,
            "slowest_seconds": round(self.slowest, 3),
            "peak_rss_mib": peak_rss_mib(),
        }


def run_example(tally: Tally, artifacts: Path, data: bytes, body: Callable[[], str]) -> None:
    """Run one example under the alarm; record its outcome or why it was unexpected."""
    tally.examples += 1
    started = time.monotonic()
    signal.alarm(EXAMPLE_SECONDS)
    try:
        tally.outcomes[body()] += 1
    except (Exception, ExampleTimeout) as error:  # what is counted
        saved = artifacts / f"{tally.target}-{tally.examples:06d}.bin"
        saved.write_bytes(data)
        tally.outcomes[f"UNEXPECTED:{type(error).__name__}"] += 1
        tally.unexpected.append(
            {
                "error": f"{type(error).__name__}: {str(error)[:300]}",
                "traceback": "".join(traceback.format_exception(error))[-2000:],
                "input": str(saved),
            }
        )
    finally:
        signal.alarm(0)
        tally.slowest = max(tally.slowest, time.monotonic() - started)


QUIET = settings(
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: every input is saved instead
    suppress_health_check=list(HealthCheck),
)


def weighted(branches: list[tuple[int, st.SearchStrategy[Any]]]) -> st.SearchStrategy[Any]:
    """One of ``branches``, each drawn in proportion to its weight."""
    table = [strategy for weight, strategy in branches for _copy in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda index: table[index])


# ----------------------------------------------------------------- target: read_layout


def layout_body(data: bytes) -> str:
    layout = read_layout(io.BytesIO(data))
    if not layout.problems:
        return "no-problem"
    return "problem:" + layout.problems[0].code


def zip_shaped() -> st.SearchStrategy[bytes]:
    """A local-header start, a body, a central record and an end record with random
    fields pointing into it: gets past the first checks more often than random bytes."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        body = b"PK\x03\x04" + draw(st.binary(max_size=200))
        count = draw(st.sampled_from([0, 1, 2, 0xFFFF]))
        central = b"PK\x01\x02" + draw(st.binary(min_size=42, max_size=120))
        zip64 = b""
        if draw(st.booleans()):
            zip64 = (
                b"PK\x06\x06"
                + (44).to_bytes(8, "little")
                + draw(st.binary(min_size=36, max_size=36))
                + (len(body)).to_bytes(8, "little")
                + b"PK\x06\x07"
                + bytes(4)
                + (len(body) + len(central)).to_bytes(8, "little")
                + (1).to_bytes(4, "little")
            )
        eocd = (
            b"PK\x05\x06"
            + bytes(4)
            + count.to_bytes(2, "little") * 2
            + draw(st.sampled_from([len(central), 0xFFFFFFFF, 0])).to_bytes(4, "little")
            + draw(st.sampled_from([len(body), 0xFFFFFFFF, 0])).to_bytes(4, "little")
            + draw(st.sampled_from([b"\x00\x00", b"\x05\x00"]))
        )
        return body + central + zip64 + eocd

    return build()


def run_layout(seeds: Seeds, examples: int, artifacts: Path) -> Tally:
    tally = Tally("layout")
    inputs = st.one_of(
        st.binary(max_size=4096),
        zip_shaped(),
        mutation_ops(seeds.container_offsets, len(seeds.container)).map(
            lambda ops: apply_ops(seeds.container, ops)
        ),
    )

    @settings(QUIET, max_examples=examples)
    @given(inputs)
    def fuzz(data: bytes) -> None:
        run_example(tally, artifacts, data, lambda: layout_body(data))

    fuzz()
    return tally


# ------------------------------------------------------------------ target: manifests


def manifest_body(data: bytes) -> str:
    outcomes = []
    try:
        _head, items = decode_manifest(data)
        for item in items:  # parsed lazily: every checked item must parse again
            assert isinstance(item, ItemRecord)
        outcomes.append("decoded")
    except MalformedRecord:
        outcomes.append("malformed")
    for model in (Manifest, Seal):
        try:
            load_record(model, data, require_canonical=True)
            outcomes.append("loaded")
        except MalformedRecord:
            outcomes.append("malformed")
    return "/".join(outcomes)


HOSTILE_VALUES: list[Any] = [
    10**4000,
    -(2**63),
    2**53 + 1,
    float("nan"),
    float("inf"),
    -0.0,
    1.5,
    True,
    None,
    "\ud800",
    "x" * 100_000,
    [],
    {},
    {"unknown": 1},
    "../../x",
    "",
    [[[[[]]]]],
]


HOSTILE_TEXT = ["\ud800", "x\udfff", "\u0000", "../../x", "", "x" * 100_000, "\u202e", "é"]
HOSTILE_INTEGERS = [-1, 0, 2**31, 2**53 + 1, 10**4000, -(10**20)]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value inside a parsed JSON document (containers too)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def structured_manifest(seed: bytes) -> st.SearchStrategy[bytes]:
    """The seed manifest parsed, values replaced (often by a hostile value of the same
    type, so it passes validation), deleted or added, written back as compact sorted JSON:
    gets past the parser to validation and the canonical-form check."""
    document = json.loads(seed)
    paths = _paths(document)
    hostile = st.one_of(st.sampled_from(HOSTILE_VALUES), st.integers(), st.text(max_size=30))

    def like(value: Any) -> st.SearchStrategy[Any]:
        if isinstance(value, bool) or value is None:
            return hostile
        if isinstance(value, str):
            return st.sampled_from(HOSTILE_TEXT) | st.text(max_size=30)
        if isinstance(value, int):
            return st.sampled_from(HOSTILE_INTEGERS) | st.integers()
        return hostile

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        doc = json.loads(seed)
        for _change in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(paths))
            parent: Any = doc
            try:
                for step in path[:-1]:
                    parent = parent[step]
                current = parent[path[-1]]
            except (KeyError, IndexError, TypeError):
                continue  # an earlier change removed it
            action = draw(st.sampled_from(["like", "like", "any", "delete", "add"]))
            if action == "like":
                parent[path[-1]] = draw(like(current))
            elif action == "any":
                parent[path[-1]] = draw(hostile)
            elif action == "delete" and isinstance(parent, dict):
                del parent[path[-1]]
            elif action == "add" and isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=8))] = draw(hostile)
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8", errors="backslashreplace")

    del document
    return build()


def run_manifest(seeds: Seeds, examples: int, artifacts: Path) -> Tally:
    tally = Tally("manifest")
    seed = seeds.manifest
    structured = structured_manifest(seed)  # the branch that reaches the deepest checks
    inputs = weighted(
        [
            (1, st.binary(max_size=2048)),
            (1, json_text()),
            (1, json_ops(len(seed)).map(lambda ops: apply_json_ops(seed, ops))),
            (1, mutation_ops([], len(seed), max_ops=3).map(lambda ops: apply_ops(seed, ops))),
            (4, structured),
        ]
    )

    @settings(QUIET, max_examples=examples)
    @given(inputs)
    def fuzz(data: bytes) -> None:
        run_example(tally, artifacts, data, lambda: manifest_body(data))

    fuzz()
    return tally


# --------------------------------------------------------------------- target: custody


def custody_body(data: bytes, container_sha256: str, trusted: set[str] | None) -> str:
    log = parse_custody_log(Path("fuzz.custody.jsonl"), data)
    findings = check_chain(log, container_sha256=container_sha256, trusted=trusted)
    verify_tokens(log, [])
    log.summary()
    codes = sorted({f.code for f in [*log.findings, *findings] if f.severity == "error"})
    return ",".join(codes[:2]) or "intact"


def line_ops(count: int) -> st.SearchStrategy[list[Op]]:
    line = st.integers(0, count + 1)
    op = st.one_of(
        st.tuples(st.just("drop"), line),
        st.tuples(st.just("duplicate"), line),
        st.tuples(st.just("swap"), line, line),
        st.tuples(st.just("insert"), line, st.sampled_from(HOSTILE_JSON) | st.binary(max_size=80)),
        st.tuples(st.just("strip-newline"), line),
    )
    return st.lists(op, min_size=1, max_size=4)


def apply_line_ops(data: bytes, ops: list[Op]) -> bytes:
    lines = data.split(b"\n")
    for op in ops:
        index = op[1] % (len(lines) or 1)
        if not lines:
            lines = [b""]
        if op[0] == "drop":
            del lines[index]
        elif op[0] == "duplicate":
            lines.insert(index, lines[index])
        elif op[0] == "swap":
            other = op[2] % len(lines)
            lines[index], lines[other] = lines[other], lines[index]
        elif op[0] == "insert":
            lines.insert(index, op[2])
        elif op[0] == "strip-newline" and index + 1 < len(lines):
            lines[index : index + 2] = [lines[index] + lines[index + 1]]
    return b"\n".join(lines)


def hostile_events(seed_log: bytes) -> st.SearchStrategy[bytes]:
    """Well-formed, canonical events with hostile values (they parse, so the chain, the
    signatures and the timestamp tokens are checked): times, numbers, hashes, keys."""
    first = CustodyEvent.model_validate_json(seed_log.split(b"\n")[0])
    text = st.text(max_size=40)
    base64_text = st.one_of(
        st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()), text
    )
    ns = st.one_of(
        st.sampled_from(["", "x", "-1", "0", "9" * 30, "9" * 5000, "1e9", " 1", "٣", "²"]),
        st.integers(-(2**70), 2**70).map(str),
    )
    signature = st.builds(
        Signature,
        public_key_pem=st.one_of(text, st.just(first.signature.public_key_pem if first.signature
                                                else "")),
        fingerprint=text,
        value_b64=base64_text,
    )  # fmt: skip
    token = st.builds(
        TimestampToken,
        tsa_url=text,
        stamped_seq=st.integers(-3, 5),
        stamped_line_sha256=st.one_of(text, st.just(hashlib.sha256(seed_log.split(b"\n")[0])
                                                     .hexdigest())),
        hash_algorithm=st.sampled_from(["sha256", "sha512", "md5", "shake_128", "nope", ""]),
        requested_at=st.builds(Instant, ns=ns, utc=st.none() | text),
        nonce=st.one_of(text, st.integers(0, 2**80).map(str)),
        gen_time=st.none() | text | st.sampled_from(["2026-01-01T00:00:00Z", "9999-99-99"]),
        request_der_b64=base64_text,
        response_der_b64=base64_text,
    )  # fmt: skip
    changes = st.fixed_dictionaries(
        {},
        optional={
            "seq": st.integers(-(2**53), 2**53),
            "action": st.sampled_from(["acquired", "timestamped", "verified", "", "x" * 300]),
            "time": st.builds(Instant, ns=ns, utc=st.none() | text),
            "prev_event_sha256": st.none() | text,
            "container_sha256": text,
            "bundle_id": text,
            "item_count": st.none() | st.integers(-(2**53), 2**53),
            "timestamp": st.none() | token,
            "signature": st.none() | signature,
            "actor_key_fingerprint": st.none() | text,
        },
    )

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        lines = [line for line in seed_log.split(b"\n") if line]
        index = draw(st.integers(0, len(lines)))
        event = first.model_copy(update=draw(changes))
        try:
            line = event_line(event)
        except ValueError:  # RFC 8785 cannot write it (e.g. a lone surrogate): raw JSON
            line = json.dumps(event.model_dump(mode="json")).encode("utf-8", "backslashreplace")
            line += b"\n"
        lines.insert(index, line.rstrip(b"\n"))
        return b"\n".join(lines) + b"\n"

    return build()


def run_custody(seeds: Seeds, examples: int, artifacts: Path) -> Tally:
    tally = Tally("custody")
    log = seeds.log
    container_sha256 = hashlib.sha256(seeds.container).hexdigest()
    trusted = {fingerprint(seeds.signing_key.public_key())}
    inputs = st.one_of(
        st.binary(max_size=2048),
        line_ops(log.count(b"\n")).map(lambda ops: apply_line_ops(log, ops)),
        mutation_ops([], len(log), max_ops=3).map(lambda ops: apply_ops(log, ops)),
        json_ops(len(log), max_ops=2).map(lambda ops: apply_json_ops(log, ops)),
        hostile_events(log),
    )

    @settings(QUIET, max_examples=examples)
    @given(inputs, st.booleans())
    def fuzz(data: bytes, with_trust: bool) -> None:
        run_example(
            tally,
            artifacts,
            data,
            lambda: custody_body(data, container_sha256, trusted if with_trust else None),
        )

    fuzz()
    return tally


# ---------------------------------------------------------------------- target: verify


def forged_log(seed_log: bytes, container: bytes) -> bytes:
    """Event 0 re-written unsigned over ``container``'s SHA-256, as an attacker would."""
    first = CustodyEvent.model_validate_json(seed_log.split(b"\n")[0])
    forged = first.model_copy(
        update={
            "container_sha256": hashlib.sha256(container).hexdigest(),
            "signature": None,
            "actor_key_fingerprint": None,
        }
    )
    return event_line(forged)


def is_line_prefix(log: bytes, original: bytes) -> bool:
    """``log`` is the original with its last whole events dropped (not detectable)."""
    return bool(log) and original.startswith(log) and log.endswith(b"\n")


def deepest_code(findings: list[Any]) -> str:
    """The first error that is not about the custody log (else the first error): the
    check that caught a change, beyond the container hash that always differs."""
    codes = [f.code for f in findings if f.severity == "error"]
    deeper = [c for c in codes if not c.startswith("custody-")]
    return (deeper or codes or [""])[0]


def verify_body(
    seeds: Seeds,
    folder: Path,
    container: bytes,
    log: bytes,
    trust: bool,
    tally: Tally,
    *,
    forged: bool,
) -> str:
    path = folder / "B.zip"
    path.write_bytes(container)
    custody_log_path(path).write_bytes(log)
    trusted = [seeds.signing_key.public_key()] if trust else []
    try:
        report = verify_bundle(VerifyRequest(path, key=seeds.material, trusted=trusted))
    except EvidenceKitError as error:
        outcome = f"raised:{type(error).__name__}"
        verdict = "raised"
    else:
        verdict = report.verdict
        outcome = f"{verdict}:{deepest_code(report.findings)}"
    if container != seeds.container and forged:
        tally.check(
            "a changed container never verifies, custody log forged to match",
            verdict != "verified",
        )
    elif container != seeds.container:
        tally.check("a changed container never verifies", verdict != "verified")
    elif log != seeds.log and not is_line_prefix(log, seeds.log) and not trust:
        pass  # a forged (unsigned) log over the untouched container may verify untrusted
    elif log != seeds.log and not is_line_prefix(log, seeds.log):
        tally.check("a changed log never verifies against trusted signers", verdict != "verified")
    return outcome


def run_verify(seeds: Seeds, examples: int, artifacts: Path) -> Tally:
    tally = Tally("verify")
    folder = seeds.folder / "verify"
    folder.mkdir()
    changed = mutation_ops(seeds.container_offsets, len(seeds.container), max_ops=2)
    container_ops = weighted([(3, changed), (1, st.just([]))])
    log_ops = st.one_of(
        st.just([]),
        line_ops(seeds.log.count(b"\n")).map(lambda ops: ("lines", ops)),
        mutation_ops([], len(seeds.log), max_ops=2).map(lambda ops: ("bytes", ops)),
    )

    @settings(QUIET, max_examples=examples)
    @given(container_ops, log_ops, st.sampled_from([True, True, True, False]), st.booleans())
    def fuzz(c_ops: list[Op], l_ops: Any, forge: bool, trust: bool) -> None:
        container = apply_ops(seeds.container, c_ops)
        if forge:
            log = forged_log(seeds.log, container)
        elif l_ops:
            kind, ops = l_ops
            log = apply_line_ops(seeds.log, ops) if kind == "lines" else apply_ops(seeds.log, ops)
        else:
            log = seeds.log
        run_example(
            tally,
            artifacts,
            container + b"\n--custody--\n" + log,
            lambda: verify_body(seeds, folder, container, log, trust, tally, forged=forge),
        )

    fuzz()
    return tally


# --------------------------------------------------------------------- target: crafted

HOSTILE_NAMES = (
    b"../../x",
    b"seized/../../x",
    b"a/../../x",
    b"/evidence-kit-hostile-escape/x",
    b"C:\\x",
    b"a\\..\\..\\x",
    b"seized/a\x00b",
    b"seized//x",
    b"seized/./x",
    b"seized/",
    b"",
    b".",
    b"..",
    b"seized/" + b"x" * 256,
    b"seized/link/through.txt",
    b"seized/a.txt",  # a collision with a real item
    b"seized/link",
    b"seized/a.txt/child",
)


def _path_names() -> st.SearchStrategy[PathName]:
    raw = st.one_of(st.sampled_from(HOSTILE_NAMES), st.binary(max_size=40))
    return st.one_of(
        raw.map(path_name),
        st.sampled_from([PathName(b64="!!!", display="bad"), PathName(b64="", display="")]),
    )


@dataclass
class Base:
    """What every crafted example starts from: real content in packs and a member."""

    contents: dict[int, bytes]
    items: list[ItemRecord]


def crafted_base(draft: Draft) -> Base:
    alpha = b"alpha\n"
    blob = bytes(range(256)) * 8
    big = b"large item\n" * 300
    inner = {"00000001": alpha, "00000002": blob}
    pack = draft.pack(inner)
    deflated = draft.pack({"00000006": blob}, deflate=True)
    member = draft.item_member(big)
    items = [
        folder_record(0, b"seized"),
        file_record(1, b"seized/a.txt", alpha, ItemLocation(member=pack, inner="00000001")),
        file_record(2, b"seized/b.bin", blob, ItemLocation(member=pack, inner="00000002")),
        symlink_record(3, b"seized/link", b"/evidence-kit-hostile-escape"),
        item_record(4, b"seized/hard", "hardlink", hardlink_of=1, size=len(alpha),
                    stored_size=len(alpha), digests={"sha256": hashlib.sha256(alpha).hexdigest()},
                    location=ItemLocation(member=pack, inner="00000001")),
        file_record(5, b"seized/large.bin", big, ItemLocation(member=member)),
        file_record(6, b"seized/deflated.bin", blob, ItemLocation(member=deflated,
                                                                   inner="00000006")),
    ]  # fmt: skip
    return Base({1: alpha, 2: blob, 5: big, 6: blob}, items)


def item_changes() -> st.SearchStrategy[dict[str, Any]]:
    size = st.sampled_from([-1, 0, 1, 5, 6, 2047, 2048, 2049, 3300, 2**31, 2**53])
    member = st.sampled_from(
        [
            "pack/000001",
            "pack/000002",
            "item/000001",
            "pack/999999",
            "manifest.json",
            "seal.json",
            "keyslots/00-x25519.age",
            "../x",
        ]
    )
    inner = st.sampled_from([None, "00000001", "00000002", "00000006", "nope", "../../x", ""])
    digest = st.sampled_from(["0" * 64, hashlib.sha256(b"alpha\n").hexdigest(), "zz", ""])
    return st.fixed_dictionaries(
        {},
        optional={
            "path": _path_names(),
            "kind": st.sampled_from(["file", "directory", "symlink", "hardlink", "fifo",
                                     "disk-image", "unknown"]),
            "status": st.sampled_from(["ok", "changed-during-read", "unreadable", "skipped"]),
            "size": size,
            "stored_size": st.none() | size,
            "location": st.none() | st.builds(ItemLocation, member=member, inner=inner),
            "digests": st.dictionaries(st.sampled_from(["sha256", "md5", "sha1", "nope"]),
                                       digest, max_size=2),
            "symlink_target": st.none() | _path_names(),
            "hardlink_of": st.none() | st.integers(-1, 9) | st.just(2**53),
            "mtime": st.builds(Instant, ns=st.sampled_from(["0", "-1", "x", "9" * 30]),
                               utc=st.none()),
            "id": st.integers(-1, 9),
        },
    )  # fmt: skip


def head_changes() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "hash_algorithms": st.sampled_from(
                [
                    ["sha256", "md5"],
                    ["sha1", "sha256", "sha512"],
                    [],
                    ["md5"],
                    ["sha256", "nope"],
                    ["sha256", "shake_128"],
                    ["sha256", "sha256"],
                ]
            ),
            "members": st.sampled_from(["drop", "duplicate", "size", "padding", "sha", "role"]),
        },
    )


def _members(base: list[Any], how: str) -> list[Any]:
    members = list(base)
    first = members[0]
    if how == "drop":
        return members[1:]
    if how == "duplicate":
        return [*members, first]
    update = {
        "size": {"size": first.size + 1},
        "padding": {"padding": first.size + 7},
        "sha": {"sha256": "0" * 64},
        "role": {"role": "item" if first.role == "pack" else "pack"},
    }[how]
    return [first.model_copy(update=update), *members[1:]]


@dataclass
class Sandbox:
    """A folder with a canary beside the destination: nothing outside ``dest`` may change."""

    root: Path
    dest: Path

    @classmethod
    def make(cls, parent: Path) -> Sandbox:
        root = Path(tempfile.mkdtemp(dir=parent))
        (root / "outside").mkdir()
        (root / "outside" / "canary.txt").write_bytes(b"canary")
        dest = root / "level1" / "level2" / "dest"
        dest.parent.mkdir(parents=True)
        return cls(root, dest)

    def outside(self) -> dict[str, tuple[int, int]]:
        found = {}
        for folder, dirs, files in os.walk(self.root):
            here = Path(folder)
            dirs[:] = [d for d in dirs if here / d != self.dest]
            for name in dirs + files:
                info = (here / name).lstat()
                found[str(here / name)] = (info.st_mode, info.st_size)
        return found


def written_bytes(dest: Path) -> tuple[int, list[str]]:
    """Bytes of distinct regular files under ``dest``, and any temp files left there."""
    seen: set[int] = set()
    total = 0
    partial = []
    for folder, _dirs, files in os.walk(dest):
        for name in files:
            info = (Path(folder) / name).lstat()
            if name.endswith(".partial"):
                partial.append(name)
            if info.st_ino not in seen and not os.path.islink(Path(folder) / name):
                seen.add(info.st_ino)
                total += info.st_size
    return total, partial


def crafted_body(
    seeds: Seeds,
    parent: Path,
    changes: list[tuple[int, dict[str, Any]]],
    extra: list[dict[str, Any]],
    head: dict[str, Any],
    tally: Tally,
) -> str:
    draft = Draft(seeds.identity.to_public(), seeds.signing_key)
    base = crafted_base(draft)
    items = list(base.items)
    for index, update in changes:
        items[index % len(items)] = items[index % len(items)].model_copy(update=update)
    for update in extra:
        items.append(items[0].model_copy(update=update))
    fields: dict[str, Any] = {}
    if "hash_algorithms" in head:
        fields["hash_algorithms"] = head["hash_algorithms"]
    if "members" in head:
        fields["members"] = _members(draft.records, head["members"])
    sandbox = Sandbox.make(parent)
    try:
        crafted = draft.write(sandbox.root / "B.zip", draft.manifest(items, **fields))
        before = sandbox.outside()
        outcomes = []
        try:
            report = verify_bundle(
                VerifyRequest(
                    crafted.container,
                    key=seeds.material,
                    trusted=[seeds.signing_key.public_key()],
                )
            )
            code = deepest_code(report.findings)
            outcomes.append(f"verify:{report.verdict}")
        except EvidenceKitError as error:
            outcomes.append(f"verify:raised:{type(error).__name__}")
            code = ""
        try:
            result = extract_bundle(
                ExtractRequest(crafted.container, sandbox.dest, key=seeds.material)
            )
            outcomes.append(f"extract:{'complete' if result.complete else 'findings'}")
        except EvidenceKitError as error:
            outcomes.append(f"extract:raised:{type(error).__name__}")
        claims = sum(max(i.stored_size or 0, 0) for i in items if i.kind != "directory")
        total, partial = written_bytes(sandbox.dest)
        tally.check("nothing written outside the destination", sandbox.outside() == before)
        tally.check("no absolute escape", not ESCAPE_ROOT.exists())
        tally.check("no more bytes written than the manifest's sizes", total <= claims)
        tally.check("no temp file left", not partial)
        outcomes.append(code)
        return " ".join(outcomes)
    finally:
        shutil.rmtree(sandbox.root, ignore_errors=True)


def run_crafted(seeds: Seeds, examples: int, artifacts: Path) -> Tally:
    tally = Tally("crafted")
    parent = seeds.folder / "crafted"
    parent.mkdir()

    @settings(QUIET, max_examples=examples)
    @given(
        st.lists(st.tuples(st.integers(0, 6), item_changes()), max_size=3),
        st.lists(item_changes(), max_size=2),
        head_changes(),
    )
    def fuzz(
        changes: list[tuple[int, dict[str, Any]]],
        extra: list[dict[str, Any]],
        head: dict[str, Any],
    ) -> None:
        description = repr((changes, extra, head)).encode()
        run_example(
            tally,
            artifacts,
            description,
            lambda: crafted_body(seeds, parent, changes, extra, head, tally),
        )

    fuzz()
    return tally


TARGETS: dict[str, Callable[[Seeds, int, Path], Tally]] = {
    "layout": run_layout,
    "manifest": run_manifest,
    "custody": run_custody,
    "verify": run_verify,
    "crafted": run_crafted,
}


# ---------------------------------------------------------------------------- atheris


def atheris_body(target: str, seeds: Seeds, data: bytes) -> None:
    """One libFuzzer input; anything but the target's allowed outcomes propagates."""
    if target == "layout":
        layout_body(data)
    elif target == "manifest":
        manifest_body(data)
    elif target == "custody":
        custody_body(data, hashlib.sha256(seeds.container).hexdigest(), None)
    elif target == "verify":
        folder = seeds.folder / "atheris"
        folder.mkdir(exist_ok=True)
        scratch = Tally("verify")
        log = forged_log(seeds.log, data)
        verify_body(seeds, folder, data, log, False, scratch, forged=True)
        if any(held < tried for tried, held in scratch.properties.values()):
            raise Unexpected("a changed container verified")
    else:
        raise SystemExit(f"unknown target {target}")


def instrument_project(atheris: Any) -> int:
    """Coverage feedback from evidence-kit's own functions (all of Python would take
    minutes to instrument and would steer the fuzzer into the libraries)."""
    count = 0
    for candidate in gc.get_objects():
        if isinstance(candidate, types.FunctionType) and str(candidate.__module__).startswith(
            "evidence_kit"
        ):
            atheris.instrument_func(candidate)
            count += 1
    return count


def run_atheris(target: str, runs: int, workdir: Path) -> int:
    import atheris  # only here: an optional tool

    seeds = make_seeds(workdir)
    corpus = workdir / "corpus"
    corpus.mkdir()
    seed_input = {
        "layout": seeds.container,
        "verify": seeds.container,
        "manifest": seeds.manifest,
        "custody": seeds.log,
    }[target]
    (corpus / "seed").write_bytes(seed_input)
    instrument_project(atheris)

    def one(data: bytes) -> None:
        signal.alarm(EXAMPLE_SECONDS)
        try:
            atheris_body(target, seeds, data)
        finally:
            signal.alarm(0)

    limit_memory()
    argv = [
        sys.argv[0],
        f"-runs={runs}",
        "-seed=20260117",
        f"-max_len={max(len(seed_input) * 2, 4096)}",
        "-rss_limit_mb=1536",
        f"-timeout={EXAMPLE_SECONDS}",
        f"-artifact_prefix={workdir}/",
        str(corpus),
    ]
    atheris.Setup(argv, one)
    atheris.Fuzz()
    return 0


# ------------------------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGALRM, _alarm)
    mode = argv[0]
    with tempfile.TemporaryDirectory(prefix="hostile-") as scratch:
        workdir = Path(scratch)
        if mode == "atheris":
            return run_atheris(argv[1], int(argv[2]), workdir)
        artifacts = Path(os.environ.get("HOSTILE_ARTIFACTS", workdir / "artifacts"))
        artifacts.mkdir(parents=True, exist_ok=True)
        seeds = make_seeds(workdir / "seeds")
        limit_memory()
        for spec in argv[1:]:
            name, count = spec.split("=")
            tally = TARGETS[name](seeds, int(count), artifacts)
            print(json.dumps(tally.as_json()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
