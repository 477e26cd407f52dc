"""Hostile input: every parser of untrusted bytes refuses cleanly, in bounded time and memory.

Assurance given (ASSURANCE.md "Verification", "Extraction", "Container and keys"):

- fuzzing (hypothesis, derandomized; atheris when installed) of the container reader, the
  manifest and custody parsers and ``verify`` end to end, in a child process limited to
  1.5 GiB of address space with a per-example alarm: no exception but the project's own
  errors, no hang, no over-allocation; a changed container never verifies; hostile
  manifests in authentic bundles write nothing outside the destination and no more bytes
  than the manifest's sizes (``tests/assurance/fuzz_targets.py`` holds the targets);
- zip bombs: an outer member marked deflated, overlapping or duplicated directory entries,
  a pack entry that inflates far beyond its manifest size, overlapping pack entries;
- zip-slip names in a correctly signed manifest: nothing lands outside the destination;
- malformed, duplicate-key, non-canonical, wrong-version, wrong-kind manifests with unknown
  or missing fields, in correctly signed bundles: ``verify``, ``inspect`` and ``extract``
  refuse each with its reason code (exit 1), no traceback;
- a key slot that opens to a wrong bundle key which passes WinZip AES's 2-byte password
  check on every member: every member fails on its MAC, nothing is written (the member-level
  case is tests/test_verify_tampering.py
  ``test_member_passing_the_password_check_under_another_key_fails_on_the_mac``).

Bundles with a hostile manifest are written by ``tests/assurance/crafted.py`` with the
project's own writer: encrypted, sealed, signed and recorded in custody event 0, so only
the check under test can refuse them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import stat
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis
import pyrage
import pytest

from evidence_kit import keys, winzip_aes
from evidence_kit.canonical import canonical_bytes
from evidence_kit.container import ContainerReader, read_layout
from evidence_kit.custody import event_line, line_sha256
from evidence_kit.errors import NoUsableKey
from evidence_kit.extract import ExtractRequest, extract_bundle
from evidence_kit.models import (
    CustodyEvent,
    Instant,
    ItemLocation,
    PathName,
    TimestampToken,
    VerificationReport,
)
from evidence_kit.naming import display_name
from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.assurance.crafted import (
    Crafted,
    Draft,
    aes_extra_offsets,
    bomb_pack,
    central_records,
    deflate_bomb,
    file_record,
    folder_record,
    item_record,
    nested_pack,
    patch_member,
    symlink_record,
)
from tests.assurance.figures import Figures
from tests.conftest import PASSPHRASE, AgeKey, SigningKey

REPO = Path(__file__).resolve().parents[2]
COMMAND_CAP = 512 << 20  # address space for one evidence-kit command on a small bundle
Cli = Callable[..., Any]


def limited() -> None:
    """In a child before exec: at most COMMAND_CAP of address space."""
    resource.setrlimit(resource.RLIMIT_AS, (COMMAND_CAP, COMMAND_CAP))


def run_limited(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``python -m evidence_kit ARGS`` in a real process limited to 512 MiB (a bundle of a
    few MB verifies in a quarter of that)."""
    return subprocess.run(
        [sys.executable, "-m", "evidence_kit", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limited,
        check=False,
    )


def no_traceback(output: str) -> None:
    assert "Traceback" not in output
    assert "internal error" not in output


def errors(report: VerificationReport) -> set[str]:
    return {f.code for f in report.findings if f.severity == "error"}


def tree(root: Path, exclude: Path | None = None) -> dict[str, tuple[str, str]]:
    """Every object below ``root`` (links not followed) but the ``exclude`` subtree."""
    found: dict[str, tuple[str, str]] = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if here / d != exclude]
        for name in dirs + files:
            path = here / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                found[str(path)] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                found[str(path)] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                found[str(path)] = (stat.filemode(info.st_mode)[0], "")
    return found


def recipient(age_key: AgeKey) -> pyrage.x25519.Recipient:
    return pyrage.x25519.Recipient.from_str(age_key.recipient)


@pytest.fixture
def draft(age_key: AgeKey, signing_key: SigningKey) -> Draft:
    return Draft(recipient(age_key), signing_key.key)


def verify(crafted: Crafted, age_key: AgeKey, signing_key: SigningKey) -> VerificationReport:
    return verify_bundle(
        VerifyRequest(
            crafted.container, key=age_key.material, trusted=[signing_key.key.public_key()]
        )
    )


# ============================================================================ 1. fuzzing

QUICK = {"layout": 200, "manifest": 200, "custody": 200, "verify": 150, "crafted": 60}
LONG = {"layout": 10_000, "manifest": 4_000, "custody": 6_000, "verify": 4_000, "crafted": 800}
TITLES = {
    "layout": "read_layout on arbitrary, zip-shaped and mutated containers",
    "manifest": "decode_manifest and load_record on arbitrary, JSON-shaped and mutated manifests",
    "custody": "custody log parser, chain and token checks on mutated logs and hostile events",
    "verify": "verify_bundle with the key on mutated containers and custody logs",
    "crafted": "verify and extract on signed bundles with hostile manifests",
}


def run_fuzz(counts: dict[str, int], artifacts: Path) -> dict[str, dict[str, Any]]:
    """The fuzz targets in one child process (1.5 GiB, alarm per example); their tallies."""
    artifacts.mkdir(parents=True, exist_ok=True)
    process = subprocess.run(
        [sys.executable, "-m", "tests.assurance.fuzz_targets", "hypothesis"]
        + [f"{name}={count}" for name, count in counts.items()],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        env=os.environ | {"HOSTILE_ARTIFACTS": str(artifacts)},
        check=False,
    )
    assert process.returncode == 0, process.stderr[-4000:]
    tallies = [json.loads(line) for line in process.stdout.splitlines() if line.startswith("{")]
    return {tally["target"]: tally for tally in tallies}


def publish(figures: Figures, tally: dict[str, Any], label: str, requested: int) -> None:
    """Record the target's figures, then assert what they claim."""
    target = tally["target"]
    unexpected = tally["unexpected"]
    note = (
        f"hypothesis {hypothesis.__version__}, derandomize=True, {requested} examples; child "
        f"process under RLIMIT_AS 1.5 GiB (peak RSS {tally['peak_rss_mib']} MiB), alarm "
        f"30 s per example (slowest {tally['slowest_seconds']} s)"
    )
    figures.record(
        f"fuzz {target} ({label}): {TITLES[target]}",
        tally["examples"],
        tally["examples"] - len(unexpected),
        Counter(tally["outcomes"]).elements(),
        note=note,
    )
    for name, (tried, held) in sorted(tally["properties"].items()):
        figures.record(f"fuzz {target} ({label}): {name}", tried, held, note=note)
    assert tally["examples"] == requested
    assert unexpected == [], unexpected[0]["traceback"]
    for name, (tried, held) in tally["properties"].items():
        assert held == tried, name


@pytest.fixture(scope="module")
def quick_fuzz(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return run_fuzz(QUICK, tmp_path_factory.mktemp("fuzz-artifacts"))


@pytest.mark.parametrize("target", list(QUICK))
def test_fuzzed_input_only_ever_gives_the_projects_own_outcomes(
    quick_fuzz: dict[str, dict[str, Any]], figures: Figures, target: str
) -> None:
    """A few hundred examples per target: each outcome is one the target's contract allows
    (see fuzz_targets), in time and within 1.5 GiB, and every property held."""
    publish(figures, quick_fuzz[target], "quick", QUICK[target])


@pytest.mark.slow
@pytest.mark.parametrize(
    "target",
    [name for name in LONG],
)
def test_long_fuzz_only_ever_gives_the_projects_own_outcomes(
    tmp_path: Path, figures: Figures, target: str
) -> None:
    tally = run_fuzz({target: LONG[target]}, tmp_path / "artifacts")[target]
    publish(figures, tally, "long", LONG[target])


ATHERIS_RUNS = {"layout": 50_000, "manifest": 20_000, "custody": 20_000, "verify": 3_000}


@pytest.mark.slow
@pytest.mark.parametrize("target", list(ATHERIS_RUNS))
def test_atheris_finds_no_crash(tmp_path: Path, figures: Figures, target: str) -> None:
    """Coverage-guided fuzzing (libFuzzer through atheris, fixed seed) from a real input:
    an uncaught exception, a hang (30 s) or 1.5 GiB of RSS stops it with an exit status."""
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    runs = ATHERIS_RUNS[target]
    process = subprocess.run(
        [sys.executable, "-m", "tests.assurance.fuzz_targets", "atheris", target, str(runs)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    done = [line for line in process.stderr.splitlines() if line.startswith("Done ")]
    executed = int(done[-1].split()[1]) if done else 0
    figures.record(
        f"fuzz {target} (atheris): {TITLES[target]}",
        executed,
        executed if process.returncode == 0 else 0,
        [f"exit {process.returncode}"],
        note="atheris (libFuzzer) -seed=20260117, -rss_limit_mb=1536, -timeout=30",
    )
    assert process.returncode == 0, process.stderr[-4000:]
    assert executed >= runs


# ============================================================================ 2. zip bombs


def bomb_bundle(draft: Draft, folder: Path, inflated: int) -> Crafted:
    """A signed bundle whose manifest says 10 bytes for an item whose pack entry is a
    deflate stream of ``inflated`` zero bytes."""
    pack = draft.raw_member("pack", bomb_pack("00000001", inflated))
    location = ItemLocation(member=pack, inner="00000001")
    items = [
        folder_record(0, b"seized"),
        file_record(1, b"seized/small.bin", bytes(10), location),
    ]
    return draft.write(folder / "B.zip", draft.manifest(items))


def test_a_pack_entry_inflating_beyond_its_size_is_refused_and_nothing_written(
    draft: Draft, tmp_path: Path, age_key: AgeKey, signing_key: SigningKey, figures: Figures
) -> None:
    """64 MiB of zeros from a 66 KB deflate stream, where the manifest says 10 bytes: verify
    and extract refuse the pack (packs are written stored: a deflated entry is malformed,
    refused before anything is inflated); extract writes nothing, not even a temp file."""
    crafted = bomb_bundle(draft, tmp_path, 64 << 20)
    report = verify(crafted, age_key, signing_key)
    destination = tmp_path / "dest"
    result = extract_bundle(ExtractRequest(crafted.container, destination, key=age_key.material))
    written = [p for p in destination.rglob("*") if p.is_file()]
    codes = sorted(errors(report)) + [f.code for f in result.findings]
    figures.record(
        "zip bomb: pack entry inflating to 64 MiB where the manifest says 10 bytes",
        2,
        int(report.verdict == "failed") + int(not result.complete and not written),
        codes,
        note="verify and extract, in process",
    )
    assert report.verdict == "failed"
    assert "pack-malformed" in errors(report)
    assert {f.code for f in result.findings} == {"pack-malformed"}
    assert written == []


@pytest.mark.parametrize("command", ["verify", pytest.param("extract", marks=pytest.mark.slow)])
def test_a_pack_entry_inflating_to_1_gib_stays_within_memory(
    draft: Draft, tmp_path: Path, age_key: AgeKey, signing_key: SigningKey, command: str
) -> None:
    """A 1 MB pack that inflates to 1 GiB where the manifest says 10 bytes, in a process
    limited to 512 MiB: the refusal must come from the size or the method (exit 1, a reason
    code), not from running out of memory (exit 5)."""
    crafted = bomb_bundle(draft, tmp_path, 1 << 30)
    destination = tmp_path / "dest"
    extra = ["--out", destination] if command == "extract" else []
    process = run_limited(
        command, crafted.container, "--identity", age_key.identity_file, *extra, "--quiet"
    )
    no_traceback(process.stderr)
    assert not [p for p in destination.rglob("*") if p.is_file()]
    assert "out of memory" not in process.stderr
    assert process.returncode == 1, process.stderr[-2000:]


def replace_then_check(
    draft: Draft,
    crafted: Crafted,
    data: bytes,
    age_key: AgeKey,
    signing_key: SigningKey,
    cli: Cli,
) -> tuple[set[str], str]:
    """Put the altered container in place (custody event 0 signed again over it), verify
    it, extract it (exit 1, nothing written); the error codes and extract's output."""
    altered = draft.replace(crafted, data)
    found = errors(verify(altered, age_key, signing_key))
    destination = crafted.container.parent / "dest"
    extracted = cli("extract", altered.container, "--identity", age_key.identity_file,
                    "--out", destination, "--quiet")  # fmt: skip
    no_traceback(extracted.output)
    assert extracted.exit_code == 1, extracted.output
    assert not destination.exists() or not any(destination.iterdir())
    assert "custody-container-hash-mismatch" not in found  # the alteration is vouched for
    return found, extracted.output


def small_bundle(draft: Draft, tmp_path: Path, big: bytes = b"large content\n" * 100) -> Crafted:
    member = draft.item_member(big)
    location = draft.store(1, b"alpha\n")
    items = [
        folder_record(0, b"seized"),
        file_record(1, b"seized/a.txt", b"alpha\n", location),
        file_record(2, b"seized/big.bin", big, ItemLocation(member=member)),
    ]
    return draft.write(tmp_path / "B.zip", draft.manifest(items))


DEFLATE = 8


@pytest.mark.parametrize(
    ("where", "code"),
    [("aes-extra", "zip-aes-parameters"), ("method", "zip-plaintext-member")],
    ids=["aes-actual-method-deflate", "zip-method-deflate"],
)
def test_an_outer_member_marked_deflated_is_refused_before_anything_inflates(
    draft: Draft,
    tmp_path: Path,
    age_key: AgeKey,
    signing_key: SigningKey,
    figures: Figures,
    cli: Cli,
    where: str,
    code: str,
) -> None:
    """A member holding a 1 MB deflate stream of 1 GiB whose headers say deflate (inside
    the AES extra, or as the zip method), in both headers, with the custody log re-signed
    over the change: refused by the layout check, by name, before any member is decrypted
    or inflated; ``extract`` as a real process limited to 512 MiB exits 1."""
    crafted = small_bundle(draft, tmp_path, deflate_bomb(1 << 30))
    data = crafted.container.read_bytes()
    if where == "aes-extra":
        local, central = aes_extra_offsets(data, "item/000001")
        data = patch_member(data, "item/000001", {local + 5: ("<H", DEFLATE)},
                            {central + 5: ("<H", DEFLATE)})  # fmt: skip
    else:
        data = patch_member(data, "item/000001", {8: ("<H", DEFLATE)}, {10: ("<H", DEFLATE)})
    found, extracted = replace_then_check(draft, crafted, data, age_key, signing_key, cli)
    destination = tmp_path / "dest-limited"
    process = run_limited("extract", crafted.container, "--identity", age_key.identity_file,
                          "--out", destination)  # fmt: skip
    no_traceback(process.stderr)
    figures.record(
        "zip bomb: outer member marked deflated (both headers, custody re-signed)",
        1,
        int(code in found and code in extracted and process.returncode == 1),
        [code],
        note="the member holds 1 MB of deflate that would inflate to 1 GiB",
    )
    assert code in found
    assert code in extracted
    assert process.returncode == 1, process.stderr[-2000:]
    assert code in process.stderr
    assert not destination.exists()


def with_central_copy(data: bytes, name: str, rename: str | None, offset: int | None) -> bytes:
    """The container with one more central record: a copy of ``name``'s, under ``rename``
    (same length) and pointing at ``offset`` when given; end record adjusted."""
    records = central_records(data)
    start = records[name]
    name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, start + 28)
    record = bytearray(data[start : start + 46 + name_length + extra_length + comment_length])
    if rename is not None:
        assert len(rename) == name_length
        record[46 : 46 + name_length] = rename.encode()
    if offset is not None:
        struct.pack_into("<I", record, 42, offset)
    count, size, directory = struct.unpack_from("<HII", data, len(data) - 12)
    end = bytearray(data[-22:])
    struct.pack_into("<HHI", end, 8, count + 1, count + 1, size + len(record))
    return data[: directory + size] + bytes(record) + bytes(end)


def local_offset(data: bytes, name: str) -> int:
    (offset,) = struct.unpack_from("<I", data, central_records(data)[name] + 42)
    return int(offset)


OVERLAPS: dict[str, tuple[Callable[[bytes], bytes], set[str]]] = {
    "the same member listed twice": (
        lambda d: with_central_copy(d, "pack/000001", None, None),
        {"zip-duplicate-name", "zip-overlap"},
    ),
    "a second name for one member's data": (
        lambda d: with_central_copy(d, "pack/000001", "pack/000009", None),
        {"zip-overlap", "zip-local-header-mismatch"},
    ),
    "every member pointing at one local header": (
        lambda d: with_central_copy(
            with_central_copy(d, "item/000001", "item/000002", local_offset(d, "item/000001")),
            "item/000001",
            "item/000003",
            local_offset(d, "item/000001"),
        ),
        {"zip-overlap", "zip-local-header-mismatch"},
    ),
    "a member starting inside another's data": (
        lambda d: patch_member(
            d, "seal.json", {}, {42: ("<I", local_offset(d, "manifest.json") + 200)}
        ),
        {"zip-local-header-mismatch"},
    ),
}


@pytest.mark.parametrize("case", list(OVERLAPS))
def test_overlapping_directory_entries_are_refused_with_a_reason(
    draft: Draft,
    tmp_path: Path,
    age_key: AgeKey,
    signing_key: SigningKey,
    figures: Figures,
    cli: Cli,
    case: str,
) -> None:
    """Directory entries that share or overlap member data (the shape of overlap zip
    bombs), custody re-signed over the change: verify and extract refuse, extract exits 1
    naming a reason, and nothing is written."""
    crafted = small_bundle(draft, tmp_path)
    change, expected = OVERLAPS[case]
    found, extracted = replace_then_check(
        draft, crafted, change(crafted.container.read_bytes()), age_key, signing_key, cli
    )
    figures.record(
        "zip bomb: overlapping or duplicated directory entries",
        1,
        int(expected <= found),
        sorted(found & expected),
    )
    assert expected <= found, found
    assert "refusing to extract" in extracted
    assert any(code in extracted for code in found)


def test_overlapping_entries_inside_a_pack_are_refused(
    draft: Draft, tmp_path: Path, age_key: AgeKey, signing_key: SigningKey
) -> None:
    """Two items whose pack entries overlap (one entry's header and data lie inside the
    other's data), the manifest consistent with both: the pack is not as written."""
    pack, outer_content = nested_pack("00000001", "00000002", b"inner item\n")
    member = draft.raw_member("pack", pack)
    outer = ItemLocation(member=member, inner="00000001")
    inner = ItemLocation(member=member, inner="00000002")
    items = [
        folder_record(0, b"seized"),
        file_record(1, b"seized/outer", outer_content, outer),
        file_record(2, b"seized/inner", b"inner item\n", inner),
    ]
    crafted = draft.write(tmp_path / "B.zip", draft.manifest(items))
    report = verify(crafted, age_key, signing_key)
    assert report.verdict == "failed"


def test_a_member_larger_than_its_manifest_size_writes_nothing(
    draft: Draft, tmp_path: Path, age_key: AgeKey, signing_key: SigningKey, figures: Figures
) -> None:
    """Sizes that lie, in a signed manifest: an item saying 5 bytes whose pack entry holds
    100 KB, and a member record saying 1 MiB for a 2 MiB member. Refused by size; extract
    writes no byte of either and leaves no temp file."""
    content = bytes(range(256)) * 400
    location = draft.store(1, content)
    big = b"x" * ((1 << 20) + 1)
    member = draft.raw_member("item", big + bytes((2 << 20) - len(big)), size=1 << 20)
    items = [
        folder_record(0, b"seized"),
        file_record(1, b"seized/small", content, location, stored_size=5, size=5),
        file_record(2, b"seized/large", big, ItemLocation(member=member)),
    ]
    crafted = draft.write(tmp_path / "B.zip", draft.manifest(items))
    report = verify(crafted, age_key, signing_key)
    destination = tmp_path / "dest"
    result = extract_bundle(ExtractRequest(crafted.container, destination, key=age_key.material))
    files = [p for p in destination.rglob("*") if not p.is_dir()]
    codes = {f.code for f in result.findings}
    figures.record(
        "size lies in a signed manifest: item and member larger than recorded",
        2,
        int("item-size-mismatch" in codes) + int("member-size-mismatch" in codes),
        sorted(codes),
        note="extract writes nothing of either",
    )
    assert {"item-size-mismatch", "member-size-mismatch"} <= errors(report)
    assert codes == {"item-size-mismatch", "member-size-mismatch"}
    assert files == []


# ======================================================================== 3. zip-slip names


def test_hostile_names_in_a_signed_manifest_go_nowhere_outside(
    draft: Draft, tmp_path: Path, age_key: AgeKey, signing_key: SigningKey, figures: Figures
) -> None:
    """Names that climb, are absolute, hold NUL or empty components, and a symlink to
    outside followed by a file, a folder and a file in it "through" it: every escaping
    name is refused by name; backslashes are ordinary bytes on Linux and stay inside; the
    whole temporary tree outside the destination is unchanged."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "canary.txt").write_bytes(b"canary")
    absolute = os.fsencode(tmp_path / "absolute-escape")
    refused = [
        b"../../x",
        absolute + b"/x",
        absolute,
        b"a/../../x",
        b"seized/../../x",
        b"seized/a\x00b",
        b"seized//x",
        b"seized/./x",
        b"seized/trailing/",
        b"",
        b".",
        b"..",
        b"seized/" + b"x" * 256,
        b"/evidence-kit-hostile-escape/x",
    ]
    literal = [b"C:\\x", b"a\\..\\..\\x", b"seized\\..\\..\\y"]
    items = [folder_record(0, b"seized")]
    for name in refused + literal:
        content = b"content of " + name
        items.append(file_record(len(items), name, content, draft.store(len(items), content)))
    through = [
        symlink_record(len(items), b"seized/link", os.fsencode(outside)),
        symlink_record(len(items) + 1, b"seized/up", b"../../../outside"),
    ]
    items += through
    pwn = b"would land outside"
    items.append(file_record(len(items), b"seized/link/pwn.txt", pwn, draft.store(len(items), pwn)))
    items.append(folder_record(len(items), b"seized/up/sub"))
    items.append(file_record(len(items), b"seized/up/sub/f", pwn, draft.store(len(items), pwn)))
    last = items[-1]
    items.append(
        item_record(len(items), b"../../hardlink", "hardlink", hardlink_of=len(refused) + 1,
                    size=len(pwn), stored_size=len(pwn), location=last.location,
                    digests=last.digests)
    )  # fmt: skip
    crafted = draft.write(tmp_path / "B.zip", draft.manifest(items))
    assert verify(crafted, age_key, signing_key).verdict == "verified"  # authentic
    destination = tmp_path / "a" / "b" / "dest"
    destination.parent.mkdir(parents=True)
    before = tree(tmp_path, exclude=destination)

    result = extract_bundle(ExtractRequest(crafted.container, destination, key=age_key.material))

    assert tree(tmp_path, exclude=destination) == before
    assert not Path("/evidence-kit-hostile-escape").exists()
    unsafe = {f.subject for f in result.findings if f.code == "extract-unsafe-name"}
    assert unsafe == {display_name(n) for n in [*refused, b"../../hardlink"]}
    for name in literal:  # one component with backslashes in it, inside the destination
        assert (destination / os.fsdecode(name)).read_bytes() == b"content of " + name
    for path in destination.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert Path(os.path.realpath(path)).is_relative_to(destination), path
    assert (destination / "seized" / "link" / "pwn.txt").read_bytes() == pwn  # a real folder
    assert not (destination / "seized" / "link").is_symlink()
    collided = {f.subject for f in result.findings if f.code == "extract-collision"}
    assert collided == {"seized/link", "seized/up"}
    escapes = len(refused) + 1 + 3  # the hard link and the three writes through symlinks
    figures.record(
        "extract: hostile names in a signed manifest (zip-slip)",
        escapes + len(literal),
        len(unsafe) + 3 + len(literal),
        ["extract-unsafe-name"] * len(unsafe) + ["written inside a real folder"] * 3
        + ["one literal name inside"] * len(literal),
        note="nothing outside the destination changed; the two links collided with folders",
    )  # fmt: skip


def test_hostile_names_through_the_cli_exit_non_zero_without_traceback(
    draft: Draft, tmp_path: Path, age_key: AgeKey, cli: Cli
) -> None:
    content = b"x"
    items = [file_record(0, b"../../x", content, draft.store(0, content))]
    crafted = draft.write(tmp_path / "B.zip", draft.manifest(items))
    destination = tmp_path / "a" / "dest"
    destination.parent.mkdir()
    result = cli("extract", crafted.container, "--identity", age_key.identity_file,
                 "--out", destination, "--quiet")  # fmt: skip
    no_traceback(result.output)
    assert result.exit_code == 1  # hostile content, like a tampered item
    assert "extract-unsafe-name" in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("target", [b"a\x00b", None], ids=["nul-in-target", "target-not-base64"])
def test_a_symlink_target_that_is_no_name_is_refused_by_name(
    draft: Draft, tmp_path: Path, age_key: AgeKey, target: bytes | None
) -> None:
    record = symlink_record(0, b"seized-link", target or b"x")
    if target is None:
        record = record.model_copy(update={"symlink_target": PathName(b64="!!", display="!!")})
    crafted = draft.write(tmp_path / "B.zip", draft.manifest([record]))
    destination = tmp_path / "dest"
    result = extract_bundle(ExtractRequest(crafted.container, destination, key=age_key.material))
    assert [f.code for f in result.findings] == ["extract-unsafe-name"]
    assert list(destination.iterdir()) == []


# ========================================================================= 4. manifests


def edit_json(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    """Parse, change, write back canonically: a well-formed manifest that is wrong."""

    def edit(data: bytes) -> bytes:
        document = json.loads(data)
        change(document)
        return canonical_bytes(document)

    return edit


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in path[:-1]:
            target = target[key]
        if value is _DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return change


_DELETE = object()
MANIFESTS: dict[str, Callable[[bytes], bytes]] = {
    "truncated JSON": lambda d: d[:-1],
    "not JSON": lambda d: b"\x00\xffPK\x03\x04",
    "empty": lambda d: b"",
    "a JSON array": lambda d: b"[" + d + b"]",
    "duplicate key in the head": lambda d: b'{"bundle_id":"x",' + d[1:],
    "duplicate key in an item": lambda d: d.replace(b'"items":[{', b'"items":[{"atime":null,', 1),
    "whitespace (not canonical)": lambda d: d.replace(b'":', b'": ', 1),
    "escaped key (not canonical)": lambda d: d.replace(b'"bundle_id"', b'"bundle\\u005fid"', 1),
    "schema_version 2": edit_json(_set(["schema_version"], 2)),
    "schema_version as text": edit_json(_set(["schema_version"], "1")),
    "kind of another record": edit_json(_set(["kind"], "evidence-kit/seal")),
    "unknown field in the head": edit_json(_set(["comment"], "added")),
    "unknown field in an item": edit_json(_set(["items", 0, "comment"], "added")),
    "missing field in the head": edit_json(_set(["summary"], _DELETE)),
    "missing field in an item": edit_json(_set(["items", 0, "kind"], _DELETE)),
    "missing items": edit_json(_set(["items"], _DELETE)),
    "items not a list": edit_json(_set(["items"], {"0": {}})),
    "a 5,000-digit number": lambda d: d.replace(b'"schema_version":1', b'"schema_version":'
                                                + b"9" * 5000),
    "a lone surrogate in the head": lambda d: d.replace(b'"examiner":"', b'"examiner":"\\ud800', 1),
    "NaN": lambda d: d.replace(b'"schema_version":1', b'"schema_version":NaN'),
    "nested 100,000 deep": lambda d: d.replace(b'"schema_version":1', b'"schema_version":'
                                               + b"[" * 100_000 + b"]" * 100_000),
    "an unsupported hash algorithm": edit_json(_set(["hash_algorithms"], ["sha256", "whirlpool"])),
    "no SHA-256": edit_json(_set(["hash_algorithms"], ["md5"])),
}  # fmt: skip


@pytest.fixture(scope="module")
def manifest_refusals(
    tmp_path_factory: pytest.TempPathFactory, age_key: AgeKey, signing_key: SigningKey
) -> dict[str, tuple[Crafted, bytes]]:
    """One signed bundle per hostile manifest (seal and custody event 0 over its bytes)."""
    folder = tmp_path_factory.mktemp("manifests")
    bundles = {}
    for number, (name, change) in enumerate(MANIFESTS.items()):
        draft = Draft(recipient(age_key), signing_key.key)
        items = [
            folder_record(0, b"seized"),
            file_record(1, b"seized/a.txt", b"alpha\n", draft.store(1, b"alpha\n")),
        ]
        good = draft.manifest(items)
        bad = change(good)
        assert bad != good, name
        (folder / str(number)).mkdir()
        bundles[name] = (draft.write(folder / str(number) / "B.zip", bad), good)
    return bundles


@pytest.mark.parametrize("name", list(MANIFESTS))
def test_a_hostile_manifest_is_refused_by_verify_inspect_and_extract(
    manifest_refusals: dict[str, tuple[Crafted, bytes]],
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path: Path,
    cli: Cli,
    figures: Figures,
    name: str,
) -> None:
    """Signed, sealed, recorded in custody, and still not a manifest: each command exits 1
    naming manifest-malformed, without a traceback; extract creates nothing."""
    crafted, _good = manifest_refusals[name]
    key = ("--identity", age_key.identity_file)
    verified = cli("verify", crafted.container, *key, "--trust", signing_key.public_pem,
                   "--json", "--quiet")  # fmt: skip
    inspected = cli("inspect", crafted.container, *key)
    destination = tmp_path / "dest"
    extracted = cli("extract", crafted.container, *key, "--out", destination, "--quiet")
    outcomes = []
    for command, result in (("verify", verified), ("inspect", inspected), ("extract", extracted)):
        no_traceback(result.output)
        outcomes.append(result.exit_code == 1 and "manifest-malformed" in result.output)
        assert result.exit_code == 1, (command, result.output[-1500:])
    codes = {f["code"] for f in json.loads(verified.stdout)["findings"]}
    figures.record(
        "hostile manifests in signed bundles: verify, inspect, extract",
        3,
        sum(outcomes),
        ["manifest-malformed"] * sum(outcomes),
        note=f"{len(MANIFESTS)} manifests, each refused by all three commands (exit 1)",
    )
    assert codes - {"manifest-unsigned"} == {"manifest-malformed"}
    assert "manifest-malformed" in inspected.output
    assert "manifest-malformed" in extracted.output
    assert not destination.exists() or not any(destination.iterdir())


CUSTODY_LINES: dict[str, Callable[[bytes], bytes]] = {
    "a 5,000-digit sequence number": lambda line: line.replace(b'"seq":0', b'"seq":' + b"9" * 5000),
    "a lone surrogate": lambda line: line.replace(b'"note":"', b'"note":"\\udc80', 1),
    "NaN": lambda line: line.replace(b'"seq":0', b'"seq":NaN'),
    "a duplicate key": lambda line: b'{"seq":0,' + line[1:],
    "nested 100,000 deep": lambda line: line.replace(b'"seq":0', b'"seq":' + b"[" * 100_000
                                                     + b"]" * 100_000),
    "invalid UTF-8": lambda line: line.replace(b'"note":"', b'"note":"\xff\xfe', 1),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CUSTODY_LINES))
def test_a_hostile_custody_event_is_a_finding_not_a_crash(
    draft: Draft, tmp_path: Path, cli: Cli, figures: Figures, name: str
) -> None:
    """Anyone can edit the custody log: ``verify`` without a key reads it first, and must
    report custody-event-malformed (exit 1), never a traceback."""
    crafted = draft.write(tmp_path / "B.zip", draft.manifest([folder_record(0, b"seized")]))
    line = crafted.custody_log.read_bytes().rstrip(b"\n")
    crafted.custody_log.write_bytes(CUSTODY_LINES[name](line) + b"\n")
    result = cli("verify", crafted.container, "--json", "--quiet")
    no_traceback(result.output)
    codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
    figures.record(
        "hostile custody event 0: verify without a key",
        1,
        int(result.exit_code == 1 and "custody-event-malformed" in codes),
        sorted(codes),
    )
    assert result.exit_code == 1
    assert "custody-event-malformed" in codes


def hostile_second_event(crafted: Crafted, **changes: Any) -> None:
    """Append to the crafted bundle's log a second event, canonical and linked, with
    ``changes`` (its signature no longer holds: anyone can write such a line)."""
    line = crafted.custody_log.read_bytes()
    first = CustodyEvent.model_validate_json(line)
    second = first.model_copy(
        update={"seq": 1, "action": "received", "prev_event_sha256": line_sha256(line)} | changes
    )
    crafted.custody_log.write_bytes(line + event_line(second))


def token(stamped_seq: int, requested_ns: str, gen_time: str | None) -> TimestampToken:
    """A token record as a hostile log may hold it (no TSA ever made it)."""
    return TimestampToken(
        tsa_url="http://127.0.0.1:1/tsa",
        stamped_seq=stamped_seq,
        stamped_line_sha256="0" * 64,
        hash_algorithm="sha512",
        requested_at=Instant(ns=requested_ns, utc=None),
        nonce="1",
        gen_time=gen_time,
        request_der_b64="",
        response_der_b64="",
    )


def test_a_token_stamping_a_missing_event_is_a_finding_not_a_crash(
    draft: Draft, tmp_path: Path
) -> None:
    """A 'timestamped' event claiming seq 5 whose token stamps event 3, in a log of two
    lines: ``verify`` (no key needed) must report it, not fail with an IndexError. (A real
    process: the crash leaves the container open, which pytest would report later.)"""
    crafted = draft.write(tmp_path / "B.zip", draft.manifest([folder_record(0, b"seized")]))
    stamp = token(3, "1700000000000000000", None)
    hostile_second_event(crafted, seq=5, action="timestamped", timestamp=stamp)
    process = run_limited("verify", crafted.container, "--json", "--quiet")
    no_traceback(process.stderr)
    assert process.returncode == 1
    assert "custody-sequence-broken" in {f["code"] for f in json.loads(process.stdout)["findings"]}


@pytest.mark.parametrize("ns", ["²", "9" * 5000], ids=["superscript-two", "5000-digits"])
def test_an_event_time_that_is_not_a_number_is_a_finding_not_a_crash(
    draft: Draft, tmp_path: Path, ns: str
) -> None:
    """``Instant.ns`` is a string (RFC 8785 cannot hold such integers): a hostile log line
    with a time that is digits only to ``str.isdigit`` must not crash ``verify``."""
    crafted = draft.write(tmp_path / "B.zip", draft.manifest([folder_record(0, b"seized")]))
    hostile_second_event(crafted, time=Instant(ns=ns, utc=None))
    process = run_limited("verify", crafted.container, "--json", "--quiet")
    no_traceback(process.stderr)
    assert process.returncode == 1


def test_a_token_request_time_that_is_not_a_number_is_a_finding_not_a_crash(
    draft: Draft, tmp_path: Path
) -> None:
    """A 'timestamped' event whose token's request time is '²' (digits to str.isdigit):
    ``verify`` must report the token, not crash computing the clock offset."""
    crafted = draft.write(tmp_path / "B.zip", draft.manifest([folder_record(0, b"seized")]))
    stamp = token(0, "²", "2026-01-01T00:00:00.000000Z")
    hostile_second_event(crafted, action="timestamped", timestamp=stamp)
    process = run_limited("verify", crafted.container, "--json", "--quiet")
    no_traceback(process.stderr)
    assert process.returncode == 1


def test_a_seal_with_a_5000_digit_number_is_malformed(
    draft: Draft, tmp_path: Path, age_key: AgeKey, signing_key: SigningKey
) -> None:
    items = [folder_record(0, b"seized")]
    seal = b'{"bundle_id":"x","kind":"evidence-kit/seal","schema_version":' + b"1" * 5000 + b"}"
    crafted = draft.write(tmp_path / "B.zip", draft.manifest(items), seal=seal)
    assert "seal-malformed" in errors(verify(crafted, age_key, signing_key))


# ================================================================ 5. the 2-byte key check


def colliding_keys(salt: bytes) -> tuple[keys.BundleKey, keys.BundleKey]:
    """Two bundle keys whose WinZip AES password verifiers agree for ``salt``: a birthday
    search over a fixed sequence of keys (deterministic; 92 derivations for the salt used)."""
    seen: dict[bytes, keys.BundleKey] = {}
    for number in range(100_000):
        key = keys.BundleKey(hashlib.sha256(b"candidate %d" % number).digest())
        verifier = winzip_aes.derive_keys(key.password, salt)[2]
        if verifier in seen:
            return seen[verifier], key
        seen[verifier] = key
    raise AssertionError("no collision")


class _FixedSalt:
    """Stands in for the ``os`` module inside ``winzip_aes``: its one call, urandom, gives
    the chosen salt, so every member of the container is encrypted with it."""

    def __init__(self, salt: bytes) -> None:
        self.salt = salt

    def urandom(self, size: int) -> bytes:
        assert size == len(self.salt)
        return self.salt


def test_a_key_slot_giving_a_wrong_key_that_passes_the_2_byte_check_fails_on_every_mac(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    age_key: AgeKey,
    signing_key: SigningKey,
    cli: Cli,
    figures: Figures,
) -> None:
    """A bundle whose key slot (for the right identity) holds another bundle key K', and
    whose members were all encrypted under K with one salt for which K and K' share the
    2-byte password verifier: every member gets past the check under K' and must fail on
    its MAC; verify and extract exit 1 (not 4: the slot did open), nothing is written.

    The salt is chosen by standing in for ``os.urandom`` as winzip_aes sees it (the real
    writer draws a new salt per member; tests/test_verify_tampering.py checks they differ).
    """
    salt = hashlib.sha256(b"evidence-kit hostile input: one salt").digest()[:16]
    real, wrong = colliding_keys(salt)
    monkeypatch.setattr(winzip_aes, "os", _FixedSalt(salt))
    draft = Draft(recipient(age_key), signing_key.key, key=real)
    draft.slots = keys.make_key_slots(wrong, [recipient(age_key)], None)
    content = b"evidence\n" * 1000
    large = content * 120
    items = [
        folder_record(0, b"seized"),
        file_record(1, b"seized/a.bin", content, draft.store(1, content)),
        file_record(2, b"seized/b.bin", large, ItemLocation(member=draft.item_member(large))),
    ]
    crafted = draft.write(tmp_path / "B.zip", draft.manifest(items))
    monkeypatch.undo()

    with crafted.container.open("rb") as handle:
        layout = read_layout(handle)
        encrypted = [e for e in layout.entries if e.encrypted]
        outcomes = []
        for entry in encrypted:
            handle.seek(entry.data_offset)
            assert handle.read(len(salt)) == salt
            reader = ContainerReader(handle, wrong, layout)
            try:
                reader.read(entry.name, entry.size)
                outcomes.append("decrypted")
            except winzip_aes.BadMac:
                outcomes.append("BadMac")
            except winzip_aes.WrongPassword:
                outcomes.append("WrongPassword")
        assert ContainerReader(handle, real, layout).read("manifest.json", 1 << 20)  # control
    figures.record(
        "wrong bundle key passing WinZip's 2-byte check on every member",
        len(outcomes),
        outcomes.count("BadMac"),
        outcomes,
        note="key slot for the right identity holding another key; salt fixed for the test",
    )
    assert outcomes == ["BadMac"] * len(encrypted)

    report = verify_bundle(VerifyRequest(crafted.container, key=age_key.material))
    failed = [f for f in report.findings if f.code == "member-authentication-failed"]
    assert report.verdict == "failed"
    assert {f.subject for f in failed} == {"manifest.json", "seal.json"}
    assert all("HMAC" in f.message for f in failed)  # past the password check, caught at EOF
    destination = tmp_path / "dest"
    result = cli("extract", crafted.container, "--identity", age_key.identity_file,
                 "--out", destination, "--quiet")  # fmt: skip
    no_traceback(result.output)
    assert result.exit_code == 1
    assert not destination.exists() or not any(destination.iterdir())


@pytest.mark.slow
def test_wrong_passphrases_are_rejected_by_the_age_header_mac(
    tmp_path: Path, signing_key: SigningKey, cli: Cli, figures: Figures
) -> None:
    """A passphrase slot (age scrypt): near-miss passphrases are refused by age's header
    MAC before any bundle key exists; no usable key (exit 4), nothing written."""
    draft = Draft(pyrage.x25519.Identity.generate().to_public(), signing_key.key)
    draft.slots = keys.make_key_slots(draft.key, [], PASSPHRASE)
    crafted = draft.write(tmp_path / "B.zip", draft.manifest([folder_record(0, b"seized")]))
    wrong = [PASSPHRASE[:-1] + "2", PASSPHRASE.upper(), PASSPHRASE + " ", PASSPHRASE[1:]]
    outcomes = []
    for number, passphrase in enumerate(wrong):
        path = tmp_path / f"wrong{number}.txt"
        path.write_text(passphrase)
        destination = tmp_path / f"dest{number}"
        result = cli("extract", crafted.container, "--passphrase-file", path,
                     "--out", destination, "--quiet")  # fmt: skip
        no_traceback(result.output)
        outcomes.append(result.exit_code)
        assert not destination.exists()
        with pytest.raises(NoUsableKey):
            keys.open_key_slots(
                [(s.member, s.data) for s in draft.slots], keys.KeyMaterial(passphrase=passphrase)
            )
    figures.record(
        "wrong passphrases on an age scrypt key slot",
        len(wrong),
        outcomes.count(4),
        [f"exit {code}" for code in outcomes],
    )
    assert outcomes == [4] * len(wrong)


def test_the_crafting_tools_make_bundles_that_verify(
    draft: Draft, tmp_path: Path, age_key: AgeKey, signing_key: SigningKey
) -> None:
    """Every refusal above is the check's, not the crafting's: the same tools with an
    honest manifest give a bundle that verifies against the trusted signer and extracts."""
    crafted = small_bundle(draft, tmp_path)
    report = verify(crafted, age_key, signing_key)
    assert report.verdict == "verified", report.findings
    assert report.seal == "signed"
    result = extract_bundle(ExtractRequest(crafted.container, tmp_path / "d", key=age_key.material))
    assert result.complete
    assert (tmp_path / "d" / "seized" / "a.txt").read_bytes() == b"alpha\n"
    layout = read_layout(io.BytesIO(crafted.container.read_bytes()))
    assert layout.problems == []
