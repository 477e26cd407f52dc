"""Acquisition fidelity: what goes into a bundle is exactly what the source held, read once.

Assurance given (ASSURANCE.md "Acquisition fidelity"): recorded digests equal independent
hashlib digests of the source and of the bytes extracted back out; the digest is of the
bytes stored, from one read; the source is not changed (content, size, mtime, ctime, and
atime when O_NOATIME is allowed; the fallback is recorded when it is refused); files that
change while read and files that cannot be read are flagged with their evidence and the
run goes on (exit 3); symlinks, FIFOs, sockets and devices are recorded and never followed
or opened; hard links are recorded as such; lying extensions are flagged; extra digests
are exact; provenance is recorded; the sample case acquires as documented; and (slow)
more than 65,535 items and a file over 4 GiB round-trip.

Names and times are covered in tests/test_acquire_names_and_times.py.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import getpass
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import stat
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pyrage
import pytest

import evidence_kit
from evidence_kit import acquire as acquire_module
from evidence_kit.acquire import AcquireRequest, acquire
from evidence_kit.bundle import ContentReader, open_container, unlock
from evidence_kit.extract import ExtractRequest, extract_bundle
from evidence_kit.models import AcquireResult, ItemRecord, ReadError
from evidence_kit.naming import path_bytes
from evidence_kit.sources import filesystem
from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.conftest import (
    CASE,
    CASE_ARGS,
    PASSPHRASE,
    REPO,
    SAMPLE_CASES,
    AgeKey,
    MakeBundle,
    items_by_path,
    read_manifest,
)

MiB = 1 << 20
DAY_NS = 86_400 * 10**9
O_NOATIME: int = getattr(os, "O_NOATIME", 0)
EVIDENCE_KIT = REPO / ".venv" / "bin" / "evidence-kit"

CliInvoke = Callable[..., Any]


# ------------------------------------------------------------------------------ helpers


def stored_sha256(container: Path, key: AgeKey, items: list[ItemRecord]) -> dict[int, str]:
    """SHA-256 of each item's bytes as stored in the container (read back, MAC checked)."""
    bundle = open_container(container, trusted=None)
    try:
        unlock(bundle, key.material, trusted=None)
        reader = ContentReader(bundle)
        result = {}
        for item in items:
            digest = hashlib.sha256()
            for chunk in reader.item_chunks(item):
                digest.update(chunk)
            result[item.id] = digest.hexdigest()
        return result
    finally:
        bundle.close()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def verify_with_key(container: Path, key: AgeKey) -> list[str]:
    """Error codes of a keyed verification ([] when it verified)."""
    report = verify_bundle(VerifyRequest(container, key=key.material))
    errors = [f.code for f in report.findings if f.severity == "error"]
    assert (report.verdict == "verified") == (not errors)
    assert report.contents_checked
    return errors


def cli_acquire(cli: CliInvoke, key: AgeKey, out: Path, *sources: Path) -> Any:
    return cli(
        "acquire",
        *sources,
        "--out",
        out,
        *CASE_ARGS,
        "--recipient",
        key.recipient,
        "--unattended",
        "--json",
        "--quiet",
    )


def recipient_of(key: AgeKey) -> list[pyrage.x25519.Recipient]:
    return [pyrage.x25519.Recipient.from_str(key.recipient)]


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging forever) if the block takes longer than ``seconds``."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"still running after {seconds} s: something blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def write_sparse(path: Path, size: int, pieces: dict[int, bytes]) -> None:
    """A sparse file of ``size`` bytes with ``pieces`` (offset -> bytes) written in it."""
    with path.open("wb") as out:
        out.truncate(size)
        for offset, data in pieces.items():
            out.seek(offset)
            out.write(data)


def png_bytes() -> bytes:
    """A valid 1x1 RGB PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def make_sqlite(path: Path) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("CREATE TABLE contacts (name TEXT, phone TEXT)")
        connection.execute("INSERT INTO contacts VALUES ('Wang Fang', '17098765432')")
        connection.commit()
    finally:
        connection.close()


# ------------------------------------------------------------ 1. digests and round trip


def test_every_file_digest_equals_hashlib_and_extracted_bytes_hash_the_same(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    """Sizes around the page size, 1 MiB (packed), 1 MiB + 1 (own member), a sparse 50 MB file
    and an empty folder: manifest SHA-256 == hashlib, and the extracted copies hash the same."""
    root = tmp_path / "seized"
    root.mkdir()
    contents = {
        "size-0.bin": b"",
        "size-1.bin": b"\x00",
        "size-4095.bin": os.urandom(4095),
        "size-4096.bin": os.urandom(4096),
        "size-4097.bin": os.urandom(4097),
        "one-mib.bin": os.urandom(MiB),
        "one-mib-plus-one.bin": os.urandom(MiB + 1),
    }
    for name, data in contents.items():
        (root / name).write_bytes(data)
    sparse = root / "sparse.img"
    write_sparse(sparse, 50_000_000, {0: b"MBR!", 12_345_678: b"middle", 49_999_990: b"end-bytes!"})
    assert os.stat(sparse).st_blocks * 512 < 1_000_000, (
        "the test file system did not keep it sparse"
    )
    (root / "empty-folder").mkdir()
    expected = {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    expected["sparse.img"] = sha256_of(sparse)

    bundle = make_bundle(root)
    manifest, _raw = read_manifest(bundle.container, age_key)
    items = items_by_path(manifest)

    assert bundle.result.complete
    for name, digest in expected.items():
        item = items[b"seized/" + name.encode()]
        assert (item.kind, item.status) == ("file", "ok")
        assert item.digests == {"sha256": digest}, name
        assert item.stored_size == item.size == os.stat(root / name).st_size
    assert items[b"seized/one-mib.bin"].location is not None
    assert items[b"seized/one-mib.bin"].location.inner is not None, "1 MiB belongs in a pack"
    for own in ("one-mib-plus-one.bin", "sparse.img"):
        location = items[b"seized/" + own.encode()].location
        assert location is not None and location.inner is None, f"{own} needs its own member"
        assert location.member.startswith("item/")
    folder = items[b"seized/empty-folder"]
    assert (folder.kind, folder.status, folder.location) == ("directory", "ok", None)
    stored = stored_sha256(
        bundle.container, age_key, [items[b"seized/" + n.encode()] for n in expected]
    )
    assert sorted(stored.values()) == sorted(expected.values())

    out = tmp_path / "extracted"
    result = extract_bundle(ExtractRequest(bundle.container, out, key=age_key.material))
    assert result.complete, result.findings
    for name, digest in expected.items():
        assert sha256_of(out / "seized" / name) == digest, name
    assert (out / "seized" / "empty-folder").is_dir()
    assert not (out / "seized" / "empty-folder").is_symlink()
    assert list((out / "seized" / "empty-folder").iterdir()) == []


# ------------------------------------------------------------------------- 2. one read


def test_digest_is_of_the_bytes_read_once_and_stored_not_of_a_second_read(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read returns bytes that differ from what is on disk (so any second read would
    differ): the manifest digest equals the stored content's digest, not the disk's."""
    root = tmp_path / "seized"
    root.mkdir()
    small, large = os.urandom(5000), os.urandom(2 * MiB + 77)
    (root / "small.bin").write_bytes(small)
    (root / "large.bin").write_bytes(large)
    real_read = filesystem.read_chunk
    reads: list[int] = []

    def flipping_read(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        reads.append(len(data))
        return bytes(b ^ 0x5A for b in data)

    monkeypatch.setattr(acquire_module, "read_chunk", flipping_read)
    bundle = make_bundle(root)
    monkeypatch.undo()

    assert sum(reads) == len(small) + len(large), "each byte must be read exactly once"
    manifest, _raw = read_manifest(bundle.container, age_key)
    items = items_by_path(manifest)
    files = [item for item in items.values() if item.kind == "file"]
    stored = stored_sha256(bundle.container, age_key, files)
    for name, data in (("small.bin", small), ("large.bin", large)):
        item = items[b"seized/" + name.encode()]
        flipped = hashlib.sha256(bytes(b ^ 0x5A for b in data)).hexdigest()
        assert item.digests["sha256"] == stored[item.id] == flipped
        assert item.digests["sha256"] != hashlib.sha256(data).hexdigest()
    assert verify_with_key(bundle.container, age_key) == []


# ------------------------------------------------------------- 3. the source is untouched


def _build_untouched_tree(tmp_path: Path) -> tuple[Path, list[Path], dict[Path, bytes]]:
    """A tree with files, folders, a symlink, and a second source that is a single file."""
    root = tmp_path / "seized"
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "empty").mkdir()
    contents = {
        root / "docs" / "a.txt": b"alpha\n",
        root / "docs" / "deep" / "b.bin": os.urandom(3 * MiB),
        root / "docs" / "deep" / "zero.bin": b"",
        root / "top.csv": "name,phone\n张伟,17012345678\n".encode(),
        tmp_path / "loose-file.txt": b"a source that is a file\n",
    }
    for path, data in contents.items():
        path.write_bytes(data)
    (root / "link").symlink_to("docs/a.txt")
    objects = [
        root,
        root / "docs",
        root / "docs" / "deep",
        root / "empty",
        root / "link",
        *contents,
    ]
    return root, objects, contents


def _stat_snapshot(paths: list[Path]) -> dict[Path, tuple[int, int, int, int, int, int]]:
    """(mode, size, inode, mtime_ns, ctime_ns, atime_ns) by lstat, which touches nothing."""
    result = {}
    for path in paths:
        info = os.lstat(path)
        result[path] = (
            info.st_mode,
            info.st_size,
            info.st_ino,
            info.st_mtime_ns,
            info.st_ctime_ns,
            info.st_atime_ns,
        )
    return result


def _age_atimes(paths: list[Path], days: int) -> None:
    """Move atimes ``days`` into the past (so relatime would update them on any access)."""
    for path in paths:
        info = os.lstat(path)
        os.utime(
            path, ns=(info.st_atime_ns - days * DAY_NS, info.st_mtime_ns), follow_symlinks=False
        )


def _spy_on_metadata_writes(patch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record (call, resolved target) of every utime/chmod/chown/truncate-like call."""
    calls: list[tuple[str, str]] = []
    names = (
        "utime",
        "chmod",
        "lchmod",
        "fchmod",
        "chown",
        "lchown",
        "fchown",
        "truncate",
        "ftruncate",
        "setxattr",
        "removexattr",
        "chflags",
        "lchflags",
    )

    def target(path: Any, dir_fd: int | None) -> str:
        if isinstance(path, int):
            return fd_path(path)
        name = os.fsdecode(path)
        return os.path.join(fd_path(dir_fd), name) if dir_fd is not None else os.path.abspath(name)

    for name in names:
        real = getattr(os, name, None)
        if real is None:
            continue

        def spy(path: Any, *args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            calls.append((_name, target(path, kw.get("dir_fd"))))
            return _real(path, *args, **kw)

        patch.setattr(os, name, spy)
    return calls


def test_source_content_size_mtime_ctime_unchanged_by_acquisition(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing about the source moves, and no utime/chmod/chown/xattr call ever targets it."""
    root, objects, contents = _build_untouched_tree(tmp_path)
    before = _stat_snapshot(objects)
    with monkeypatch.context() as patch:
        touched = _spy_on_metadata_writes(patch)
        bundle = make_bundle([root, tmp_path / "loose-file.txt"])
    after = _stat_snapshot(objects)
    sources = (str(root), str(tmp_path / "loose-file.txt"))
    assert [t for t in touched if t[1].startswith(sources)] == [], "metadata written on source"
    assert bundle.result.complete
    for path in objects:
        assert before[path][:5] == after[path][:5], f"{path} changed (mode/size/ino/mtime/ctime)"
    for path, data in contents.items():
        assert path.read_bytes() == data
    assert os.readlink(root / "link") == "docs/a.txt"


def test_source_atimes_unchanged_by_acquisition_and_verify_against(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    """Atimes of files and folders, set 10 days in the past, survive acquisition (O_NOATIME)
    and `verify --against`. A control first shows plain reads and scandir DO move them here."""
    if not O_NOATIME:
        pytest.skip("this platform has no O_NOATIME")
    control = tmp_path / "control"
    control.mkdir()
    (control / "file.txt").write_bytes(b"control content\n")
    _age_atimes([control, control / "file.txt"], days=10)
    control_before = _stat_snapshot([control, control / "file.txt"])
    with open(control / "file.txt", "rb") as plain:  # a plain read, on purpose
        plain.read()
    with os.scandir(control) as listing:
        list(listing)
    control_after = _stat_snapshot([control, control / "file.txt"])
    file_moved = control_after[control / "file.txt"][5] != control_before[control / "file.txt"][5]
    folder_moved = control_after[control][5] != control_before[control][5]
    if not (file_moved and folder_moved):
        pytest.skip(
            "control failed: plain reads/scandir do not change atime on this mount "
            f"(noatime?): file moved={file_moved}, folder moved={folder_moved}"
        )

    root, objects, _contents = _build_untouched_tree(tmp_path)
    checked = [p for p in objects if not p.is_symlink()]  # readlink(2) itself sets a link's atime
    _age_atimes(checked, days=10)
    before = _stat_snapshot(checked)
    bundle = make_bundle([root, tmp_path / "loose-file.txt"])
    after_acquire = _stat_snapshot(checked)
    report = verify_bundle(
        VerifyRequest(
            bundle.container, key=age_key.material, against=[root, tmp_path / "loose-file.txt"]
        )
    )
    after_verify = _stat_snapshot(checked)

    assert report.verdict == "verified", report.findings
    for path in checked:
        assert after_acquire[path] == before[path], f"acquire changed {path}"
        assert after_verify[path] == before[path], f"verify --against changed {path}"
    manifest, _raw = read_manifest(bundle.container, age_key)
    assert all(source.noatime for source in manifest.sources)
    for item in manifest.items:
        if item.kind in ("file", "directory"):
            assert item.noatime is True, item.path.display


# ------------------------------------------------------------------- 4. O_NOATIME refused


def test_noatime_refused_falls_back_and_says_so(
    make_bundle: MakeBundle, age_key: AgeKey, small_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EPERM for O_NOATIME (not the owner): acquisition still succeeds, and every file, every
    folder and the source record `noatime: false`."""
    if not O_NOATIME:
        pytest.skip("this platform has no O_NOATIME")
    real_open = os.open
    refused: list[object] = []

    def refuse_noatime(
        path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None
    ) -> int:
        if flags & O_NOATIME:
            refused.append(path)
            raise PermissionError(errno.EPERM, "Operation not permitted", path)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", refuse_noatime)  # the os module filesystem.py uses
    bundle = make_bundle(small_tree)
    monkeypatch.undo()

    assert refused, "the O_NOATIME attempt was never made"
    assert bundle.result.complete
    manifest, _raw = read_manifest(bundle.container, age_key)
    assert [source.noatime for source in manifest.sources] == [False]
    opened = [i for i in manifest.items if i.kind in ("file", "directory")]
    assert len(opened) == 8
    for item in opened:
        assert item.noatime is False, item.path.display
        assert item.status == "ok"
    customers = items_by_path(manifest)[b"seized/docs/customers.csv"]
    expected = hashlib.sha256((small_tree / "docs" / "customers.csv").read_bytes()).hexdigest()
    assert customers.digests["sha256"] == expected
    assert verify_with_key(bundle.container, age_key) == []


def test_noatime_used_and_recorded_when_permitted(
    make_bundle: MakeBundle, age_key: AgeKey, small_tree: Path
) -> None:
    if not O_NOATIME:
        pytest.skip("this platform has no O_NOATIME")
    bundle = make_bundle(small_tree)
    manifest, _raw = read_manifest(bundle.container, age_key)
    assert [source.noatime for source in manifest.sources] == [True]
    for item in manifest.items:
        assert item.noatime is (True if item.kind in ("file", "directory") else None)


# --------------------------------------------------------------- 5. changed during read


def _changing_tree(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path / "seized"
    root.mkdir()
    contents = {
        "appended.log": b"first line\n" * 10,
        "truncated.bin": os.urandom(3 * MiB),
        "replaced.bin": os.urandom(3 * MiB),
        "grown.bin": b"small at first\n",
        "overwritten.bin": os.urandom(3 * MiB),
        "steady.txt": b"does not change\n",
    }
    for name, data in contents.items():
        (root / name).write_bytes(data)
    # an old mtime, so the in-place write below cannot land in the same clock tick
    os.utime(root / "overwritten.bin", ns=(10**18, 10**18))
    return root, contents


OVERWRITE_AT, OVERWRITE = 2 * MiB + 3, b"\x00OVERWRITTEN IN PLACE\x00"
GROWTH = 2 * MiB + 5  # a packed-size file that outgrows the pack limit while read


def _change_after_first_chunk(monkeypatch: pytest.MonkeyPatch, root: Path, spare: Path) -> None:
    """After the first chunk of each target: append to two (one past the pack limit),
    overwrite one in place (same size), truncate one, rename another file over one."""
    real_read = filesystem.read_chunk
    done: set[str] = set()

    def changing_read(fd: int, size: int) -> bytes:
        data = real_read(fd, size)
        name = os.path.basename(fd_path(fd))
        if name in done or not fd_path(fd).startswith(str(root)):
            return data
        done.add(name)
        if name == "appended.log":
            with (root / name).open("ab") as log:
                log.write(b"appended while read\n")
        elif name == "grown.bin":
            with (root / name).open("ab") as grown:
                grown.write(b"\xaa" * GROWTH)
        elif name == "overwritten.bin":
            fd_out = os.open(root / name, os.O_WRONLY)
            try:
                os.pwrite(fd_out, OVERWRITE, OVERWRITE_AT)
            finally:
                os.close(fd_out)
        elif name == "truncated.bin":
            os.truncate(root / name, 1000)
        elif name == "replaced.bin":
            spare.write_bytes(b"a different file renamed over the original\n")
            os.replace(spare, root / name)
        return data

    monkeypatch.setattr(acquire_module, "read_chunk", changing_read)


def test_file_appended_truncated_or_replaced_during_read_is_flagged_with_both_stats(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, contents = _changing_tree(tmp_path)
    _change_after_first_chunk(monkeypatch, root, tmp_path / "spare")
    bundle = make_bundle(root)
    monkeypatch.undo()

    result = bundle.result
    assert result.complete is False
    assert sorted((p.path, p.status) for p in result.problems) == [
        ("seized/appended.log", "changed-during-read"),
        ("seized/grown.bin", "changed-during-read"),
        ("seized/overwritten.bin", "changed-during-read"),
        ("seized/replaced.bin", "changed-during-read"),
        ("seized/truncated.bin", "changed-during-read"),
    ]
    manifest, _raw = read_manifest(bundle.container, age_key)
    items = items_by_path(manifest)
    for name in ("appended.log", "grown.bin", "overwritten.bin", "truncated.bin", "replaced.bin"):
        item = items[b"seized/" + name.encode()]
        assert item.status == "changed-during-read", name
        assert item.reason
        assert item.stat_before is not None and item.stat_after is not None, name
        assert item.stat_before != item.stat_after, name
        assert item.stat_before.size == len(contents[name])

    appended = items[b"seized/appended.log"]
    assert appended.stat_after is not None
    assert appended.stat_after.size == len(contents["appended.log"]) + 20
    truncated = items[b"seized/truncated.bin"]
    assert truncated.stat_after is not None and truncated.stat_after.size == 1000
    assert truncated.stored_size == MiB
    assert (
        truncated.digests["sha256"] == hashlib.sha256(contents["truncated.bin"][:MiB]).hexdigest()
    )
    replaced = items[b"seized/replaced.bin"]
    assert replaced.stat_before is not None and replaced.stat_after is not None
    assert replaced.stat_before.inode != replaced.stat_after.inode
    # what was read (the original, through the open descriptor) is what is recorded
    assert replaced.digests["sha256"] == hashlib.sha256(contents["replaced.bin"]).hexdigest()
    steady = items[b"seized/steady.txt"]
    assert (steady.status, steady.stat_before, steady.stat_after) == ("ok", None, None)
    grown = items[b"seized/grown.bin"]
    grown_bytes = contents["grown.bin"] + b"\xaa" * GROWTH
    assert grown.stored_size == len(grown_bytes)
    assert grown.digests["sha256"] == hashlib.sha256(grown_bytes).hexdigest()
    assert grown.stat_after is not None and grown.stat_after.size == len(grown_bytes)
    overwritten = items[b"seized/overwritten.bin"]
    assert overwritten.stat_before is not None and overwritten.stat_after is not None
    assert overwritten.stat_before.size == overwritten.stat_after.size
    assert overwritten.stat_before.mtime_ns != overwritten.stat_after.mtime_ns
    seen = bytearray(contents["overwritten.bin"])  # what the one read saw: the new bytes
    seen[OVERWRITE_AT : OVERWRITE_AT + len(OVERWRITE)] = OVERWRITE
    assert overwritten.digests["sha256"] == hashlib.sha256(seen).hexdigest()
    changed = [appended, grown, overwritten, truncated, replaced]
    stored = stored_sha256(bundle.container, age_key, changed)
    for item in changed:
        assert stored[item.id] == item.digests["sha256"], item.path.display
    assert verify_with_key(bundle.container, age_key) == []


def test_file_appended_between_listing_and_open_keeps_the_listing_stat_as_before(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "seized"
    root.mkdir()
    original = b"as listed\n"
    (root / "late.log").write_bytes(original)
    real_open = filesystem.open_readonly

    def appending_open(name: str, flags: int, dir_fd: int | None) -> tuple[int, bool]:
        if name == "late.log":
            with (root / name).open("ab") as log:
                log.write(b"written after the listing\n")
        return real_open(name, flags, dir_fd)

    monkeypatch.setattr(acquire_module, "open_readonly", appending_open)
    bundle = make_bundle(root)
    monkeypatch.undo()

    item = items_by_path(read_manifest(bundle.container, age_key)[0])[b"seized/late.log"]
    assert item.status == "changed-during-read"
    assert item.size == len(original)
    assert item.stat_before is not None and item.stat_after is not None
    assert item.stat_before.size == len(original), "stat_before must be the listing's lstat"
    assert item.stat_before != item.stat_after


def _swap_before_open(
    monkeypatch: pytest.MonkeyPatch, root: Path, swaps: dict[str, Callable[[Path], None]]
) -> None:
    """Replace a file (already lstat-ed by the walk) just before acquisition opens it."""
    real_open = filesystem.open_readonly

    def swapping_open(name: str, flags: int, dir_fd: int | None) -> tuple[int, bool]:
        swap = swaps.pop(name, None)
        if swap is not None:
            (root / name).unlink()
            swap(root / name)
        return real_open(name, flags, dir_fd)

    monkeypatch.setattr(acquire_module, "open_readonly", swapping_open)


def test_file_swapped_for_fifo_or_folder_before_open_is_changed_and_nothing_blocks(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "seized"
    root.mkdir()
    for name in ("to-fifo.txt", "to-folder.txt", "z-after.txt"):
        (root / name).write_bytes(b"a regular file when listed\n")
    _swap_before_open(
        monkeypatch, root, {"to-fifo.txt": os.mkfifo, "to-folder.txt": lambda p: p.mkdir()}
    )
    with deadline(120):
        bundle = make_bundle(root)
    monkeypatch.undo()

    items = items_by_path(read_manifest(bundle.container, age_key)[0])
    for name, is_kind in (("to-fifo.txt", stat.S_ISFIFO), ("to-folder.txt", stat.S_ISDIR)):
        item = items[b"seized/" + name.encode()]
        assert item.status == "changed-during-read", name
        assert item.stat_before is not None and stat.S_ISREG(item.stat_before.mode)
        assert item.stat_after is not None and is_kind(item.stat_after.mode), name
        assert item.location is None and item.digests == {}
    assert items[b"seized/z-after.txt"].status == "ok"
    assert bundle.result.complete is False


def test_file_swapped_for_symlink_before_open_is_changed_and_not_followed(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside-secret.txt"
    outside.write_bytes(b"NOT EVIDENCE: outside the seized folder\n")
    root = tmp_path / "seized"
    root.mkdir()
    (root / "to-link.txt").write_bytes(b"a regular file when listed\n")
    _swap_before_open(monkeypatch, root, {"to-link.txt": lambda p: p.symlink_to(outside)})
    bundle = make_bundle(root)
    monkeypatch.undo()

    item = items_by_path(read_manifest(bundle.container, age_key)[0])[b"seized/to-link.txt"]
    assert item.location is None and item.digests == {}, "the symlink was followed"
    assert bundle.result.complete is False
    assert item.status == "changed-during-read"
    assert item.stat_before is not None and stat.S_ISREG(item.stat_before.mode)
    assert item.stat_after is not None and stat.S_ISLNK(item.stat_after.mode)


def test_changed_during_read_exits_3_on_the_command_line(
    cli: CliInvoke, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _contents = _changing_tree(tmp_path)
    _change_after_first_chunk(monkeypatch, root, tmp_path / "spare")
    out = tmp_path / "B.zip"
    result = cli_acquire(cli, age_key, out, root)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    reported = AcquireResult.model_validate_json(result.stdout)
    assert reported.complete is False
    assert {p.status for p in reported.problems} == {"changed-during-read"}
    assert len(reported.problems) == 5
    assert out.is_file()


# ------------------------------------------------------------------------ 6. unreadable


def test_open_refused_eacces_is_recorded_and_the_run_goes_on(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "seized"
    root.mkdir()
    (root / "a-before.txt").write_bytes(b"before\n")
    (root / "secret.txt").write_bytes(b"you may not read me\n")
    (root / "z-after.txt").write_bytes(b"after\n")
    real_open = filesystem.open_readonly

    def refusing_open(name: str, flags: int, dir_fd: int | None) -> tuple[int, bool]:
        if name == "secret.txt":
            raise PermissionError(errno.EACCES, "Permission denied", name)
        return real_open(name, flags, dir_fd)

    monkeypatch.setattr(acquire_module, "open_readonly", refusing_open)
    bundle = make_bundle(root)
    monkeypatch.undo()

    assert bundle.result.complete is False
    assert [(p.path, p.status) for p in bundle.result.problems] == [
        ("seized/secret.txt", "unreadable")
    ]
    items = items_by_path(read_manifest(bundle.container, age_key)[0])
    secret = items[b"seized/secret.txt"]
    assert (secret.kind, secret.status, secret.errno) == ("file", "unreadable", errno.EACCES)
    assert secret.read_errors == [
        ReadError(offset=0, length=None, errno=errno.EACCES, error="Permission denied")
    ]
    assert secret.location is None and secret.digests == {}
    for name, data in (("a-before.txt", b"before\n"), ("z-after.txt", b"after\n")):
        item = items[b"seized/" + name.encode()]
        assert item.status == "ok"
        assert item.digests["sha256"] == hashlib.sha256(data).hexdigest()


def test_read_error_eio_mid_file_records_offset_and_keeps_the_stored_prefix(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "seized"
    root.mkdir()
    failing = os.urandom(3 * MiB + 123)
    (root / "bad-sector.bin").write_bytes(failing)
    (root / "fine.bin").write_bytes(b"fine\n")
    real_read = filesystem.read_chunk
    calls: list[int] = []

    def eio_on_second_read(fd: int, size: int) -> bytes:
        if fd_path(fd).endswith("/bad-sector.bin"):
            if len(calls) == 1:
                raise OSError(errno.EIO, "Input/output error")
            data = real_read(fd, size)
            calls.append(len(data))
            return data
        return real_read(fd, size)

    monkeypatch.setattr(acquire_module, "read_chunk", eio_on_second_read)
    bundle = make_bundle(root)
    monkeypatch.undo()

    read_before = sum(calls)
    assert 0 < read_before < len(failing)
    assert bundle.result.complete is False
    manifest, _raw = read_manifest(bundle.container, age_key)
    items = items_by_path(manifest)
    bad = items[b"seized/bad-sector.bin"]
    assert (bad.status, bad.errno) == ("unreadable", errno.EIO)
    assert len(bad.read_errors) == 1
    assert (bad.read_errors[0].offset, bad.read_errors[0].errno) == (read_before, errno.EIO)
    assert bad.stored_size == read_before
    prefix_digest = hashlib.sha256(failing[:read_before]).hexdigest()
    assert bad.digests["sha256"] == prefix_digest
    assert stored_sha256(bundle.container, age_key, [bad])[bad.id] == prefix_digest
    fine = items[b"seized/fine.bin"]
    assert (fine.status, fine.digests["sha256"]) == ("ok", hashlib.sha256(b"fine\n").hexdigest())
    report = verify_bundle(VerifyRequest(bundle.container, key=age_key.material))
    assert report.verdict == "verified", report.findings
    assert ("acquired-unreadable", "seized/bad-sector.bin") in {
        (f.code, f.subject) for f in report.findings if f.severity == "warning"
    }


def test_unreadable_items_exit_3_on_the_command_line(
    cli: CliInvoke, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "seized"
    root.mkdir()
    (root / "secret.txt").write_bytes(b"no\n")
    (root / "bad.bin").write_bytes(os.urandom(2 * MiB))
    (root / "ok.txt").write_bytes(b"ok\n")
    real_open, real_read = filesystem.open_readonly, filesystem.read_chunk

    def refusing_open(name: str, flags: int, dir_fd: int | None) -> tuple[int, bool]:
        if name == "secret.txt":
            raise PermissionError(errno.EACCES, "Permission denied", name)
        return real_open(name, flags, dir_fd)

    def failing_read(fd: int, size: int) -> bytes:
        if fd_path(fd).endswith("/bad.bin"):
            raise OSError(errno.EIO, "Input/output error")
        return real_read(fd, size)

    monkeypatch.setattr(acquire_module, "open_readonly", refusing_open)
    monkeypatch.setattr(acquire_module, "read_chunk", failing_read)
    result = cli_acquire(cli, age_key, tmp_path / "B.zip", root)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    reported = AcquireResult.model_validate_json(result.stdout)
    assert sorted((p.path, p.status) for p in reported.problems) == [
        ("seized/bad.bin", "unreadable"),
        ("seized/secret.txt", "unreadable"),
    ]
    assert reported.summary.status_counts == {"ok": 2, "unreadable": 2}


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A folder under /tmp that the user nobody can traverse and write (removed after)."""
    folder = Path(tempfile.mkdtemp(prefix="ek-fidelity-", dir="/tmp"))
    folder.chmod(0o777)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_real_unprivileged_acquisition_records_eacces_and_noatime_fallback(
    world_dir: Path, age_key: AgeKey
) -> None:
    """As user nobody, for real: a chmod-000 file is unreadable (errno 13, offset 0), a
    chmod-000 folder is unreadable, other files are acquired, O_NOATIME is refused on root's
    files (fallback recorded), exit 3."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv is not installed (util-linux)")
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the user nobody")
    drop = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    probe = subprocess.run(
        [*drop, str(EVIDENCE_KIT), "--version"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"nobody cannot run {EVIDENCE_KIT}: {probe.stderr.strip()[:200]}")
    root = world_dir / "seized"
    root.mkdir()
    root.chmod(0o755)
    readable = root / "readable.txt"
    readable.write_bytes(b"anyone may read this\n")
    readable.chmod(0o644)
    locked = root / "locked.txt"
    locked.write_bytes(b"root only\n")
    locked.chmod(0o000)
    locked_folder = root / "locked-folder"
    locked_folder.mkdir()
    (locked_folder / "hidden.txt").write_bytes(b"cannot be listed\n")
    locked_folder.chmod(0o000)
    out = world_dir / "B.zip"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(world_dir),
        "LANG": "C.UTF-8",
    }
    run = subprocess.run(
        [
            *drop,
            str(EVIDENCE_KIT),
            "acquire",
            str(root),
            "--out",
            str(out),
            *CASE_ARGS,
            "--recipient",
            age_key.recipient,
            "--unattended",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=world_dir,
        timeout=120,
        check=False,
    )
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    reported = json.loads(run.stdout)
    assert [(p["path"], p["status"]) for p in reported["problems"]] == [
        ("seized/locked-folder", "unreadable"),
        ("seized/locked.txt", "unreadable"),
    ]
    manifest, _raw = read_manifest(out, age_key)
    assert manifest.provenance.user == "nobody"
    items = items_by_path(manifest)
    lock = items[b"seized/locked.txt"]
    assert (lock.status, lock.errno) == ("unreadable", errno.EACCES)
    assert [(e.offset, e.errno) for e in lock.read_errors] == [(0, errno.EACCES)]
    folder = items[b"seized/locked-folder"]
    assert (folder.kind, folder.status, folder.errno) == ("directory", "unreadable", errno.EACCES)
    assert sorted(items) == [
        b"seized",
        b"seized/locked-folder",
        b"seized/locked.txt",
        b"seized/readable.txt",
    ]
    good = items[b"seized/readable.txt"]
    assert good.status == "ok"
    assert good.digests["sha256"] == hashlib.sha256(b"anyone may read this\n").hexdigest()
    if O_NOATIME:
        assert good.noatime is False and items[b"seized"].noatime is False
        assert [s.noatime for s in manifest.sources] == [False]


# ----------------------------------------------------- 7. links and special objects


def test_symlinks_are_recorded_with_exact_targets_and_never_followed(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    big = outside / "big.bin"
    big.write_bytes(os.urandom(3 * MiB))
    root = tmp_path / "seized"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.txt").write_bytes(b"inside\n")
    targets = {
        "inside": b"docs/a.txt",
        "outside-absolute": os.fsencode(big),
        "outside-relative": b"../outside/big.bin",
        "dangling": b"no/such/file",
        "loop-a": b"loop-b",
        "loop-b": b"loop-a",
        "self": b"self",
        "folder-link": b"docs",
    }
    for name, target in targets.items():
        os.symlink(target, os.fsencode(root / name))

    bundle = make_bundle(root)
    manifest, _raw = read_manifest(bundle.container, age_key)
    items = items_by_path(manifest)

    assert bundle.result.complete
    for name, target in targets.items():
        item = items[b"seized/" + name.encode()]
        assert (item.kind, item.status) == ("symlink", "ok"), name
        assert item.symlink_target is not None and path_bytes(item.symlink_target) == target
        assert (item.location, item.digests, item.stored_size) == (None, {}, None)
    assert not [p for p in items if p.startswith(b"seized/folder-link/")], "folder link followed"
    assert sorted(items) == sorted(
        [b"seized", b"seized/docs", b"seized/docs/a.txt"]
        + [b"seized/" + n.encode() for n in targets]
    )
    assert manifest.summary.bytes == len(b"inside\n")
    assert sum(m.size for m in manifest.members) < 64 * 1024
    assert bundle.container.stat().st_size < MiB, "the 3 MiB target found its way in"

    out = tmp_path / "extracted"
    result = extract_bundle(ExtractRequest(bundle.container, out, key=age_key.material))
    assert result.complete, result.findings
    for name, target in targets.items():
        copy = out / "seized" / name
        assert copy.is_symlink() and os.readlink(os.fsencode(copy)) == target


@pytest.fixture
def open_spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every name handed to os.open while the test runs."""
    real_open = os.open
    names: list[str] = []

    def spying_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        names.append(os.path.basename(os.fsdecode(path)))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", spying_open)
    return names


def test_fifo_and_socket_are_recorded_and_never_opened(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path, open_spy: list[str]
) -> None:
    root = tmp_path / "seized"
    root.mkdir()
    (root / "before.txt").write_bytes(b"x")
    os.mkfifo(root / "pipe")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(root / "sock"))
        with deadline(120):
            bundle = make_bundle(root)
    finally:
        listener.close()

    assert "pipe" not in open_spy and "sock" not in open_spy
    assert "before.txt" in open_spy, "the spy did not see the walk's opens"
    items = items_by_path(read_manifest(bundle.container, age_key)[0])
    pipe, sock = items[b"seized/pipe"], items[b"seized/sock"]
    assert (pipe.kind, pipe.status, pipe.location, pipe.digests) == ("fifo", "ok", None, {})
    assert (sock.kind, sock.status, sock.location, sock.digests) == ("socket", "ok", None, {})
    assert stat.S_ISFIFO(pipe.mode) and stat.S_ISSOCK(sock.mode)
    assert bundle.result.complete
    assert bundle.result.summary.other == 2


def test_char_device_is_recorded_with_rdev_and_never_opened(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path, open_spy: list[str]
) -> None:
    root = tmp_path / "seized"
    root.mkdir()
    device = os.makedev(1, 3)
    try:
        os.mknod(root / "null-device", stat.S_IFCHR | 0o600, device)
    except OSError as error:
        pytest.skip(f"mknod is not permitted here: {error.strerror}")
    bundle = make_bundle(root)
    assert "null-device" not in open_spy
    item = items_by_path(read_manifest(bundle.container, age_key)[0])[b"seized/null-device"]
    assert (item.kind, item.status, item.rdev) == ("char-device", "ok", str(device))
    assert (item.location, item.digests) == (None, {})


def test_hard_links_are_recorded_as_such_and_recreated_as_hard_links(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    root = tmp_path / "seized"
    (root / "sub").mkdir(parents=True)
    small, large = b"one inode, three names\n", os.urandom(2 * MiB)
    (root / "a.txt").write_bytes(small)
    os.link(root / "a.txt", root / "b-link.txt")
    os.link(root / "a.txt", root / "sub" / "c-link.txt")
    (root / "big-1.bin").write_bytes(large)
    os.link(root / "big-1.bin", root / "big-2.bin")

    bundle = make_bundle(root)
    manifest, _raw = read_manifest(bundle.container, age_key)
    items = items_by_path(manifest)

    first, big_first = items[b"seized/a.txt"], items[b"seized/big-1.bin"]
    assert (first.kind, first.status) == ("file", "ok")
    assert first.digests == {"sha256": hashlib.sha256(small).hexdigest()}
    for name in (b"seized/b-link.txt", b"seized/sub/c-link.txt"):
        link = items[name]
        assert (link.kind, link.status, link.hardlink_of) == ("hardlink", "ok", first.id)
        assert (link.digests, link.location) == (first.digests, first.location)
        assert link.inode == first.inode
    second = items[b"seized/big-2.bin"]
    assert (second.kind, second.hardlink_of) == ("hardlink", big_first.id)
    assert second.digests == big_first.digests == {"sha256": hashlib.sha256(large).hexdigest()}
    assert [m.role for m in manifest.members].count("item") == 1, "a linked file stored twice"
    assert manifest.summary.bytes == len(small) + len(large)

    out = tmp_path / "extracted"
    result = extract_bundle(ExtractRequest(bundle.container, out, key=age_key.material))
    assert result.complete, result.findings
    copies = [out / "seized" / p for p in ("a.txt", "b-link.txt", "sub/c-link.txt")]
    assert len({os.stat(p).st_ino for p in copies}) == 1
    assert os.stat(copies[0]).st_nlink == 3
    assert copies[2].read_bytes() == small
    big_copies = [out / "seized" / "big-1.bin", out / "seized" / "big-2.bin"]
    assert os.stat(big_copies[0]).st_ino == os.stat(big_copies[1]).st_ino
    assert sha256_of(big_copies[1]) == hashlib.sha256(large).hexdigest()


def test_extended_attributes_are_recorded_exactly(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    root = tmp_path / "seized"
    (root / "folder").mkdir(parents=True)
    (root / "file.txt").write_bytes(b"x")
    values = {"user.origin": b"\x00\xffbinary\nvalue", "user.where.from": "下载".encode()}
    try:
        for name, value in values.items():
            os.setxattr(root / "file.txt", name, value)
        os.setxattr(root / "folder", "user.folder", b"on a folder")
    except OSError as error:
        pytest.skip(f"user xattrs are not supported here: {error.strerror}")
    items = items_by_path(read_manifest(make_bundle(root).container, age_key)[0])
    recorded = items[b"seized/file.txt"].xattrs
    assert {k: base64.b64decode(v) for k, v in recorded.items() if k.startswith("user.")} == values
    folder = items[b"seized/folder"].xattrs
    assert base64.b64decode(folder["user.folder"]) == b"on a folder"


# -------------------------------------------------------------------- 10. extension lies


def test_extension_that_lies_is_flagged_and_honest_ones_are_not(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    root = tmp_path / "seized"
    root.mkdir()
    make_sqlite(root / "photo.jpg")
    (root / "honest.csv").write_text("name,phone\nWang Fang,17098765432\n")
    (root / "honest.txt").write_text("just some notes\n")
    (root / "honest.png").write_bytes(png_bytes())

    items = items_by_path(read_manifest(make_bundle(root).container, age_key)[0])

    photo = items[b"seized/photo.jpg"]
    assert photo.mime_type == "application/vnd.sqlite3"
    assert photo.extension_mismatch is not None
    assert photo.extension_mismatch.extension == ".jpg"
    assert photo.extension_mismatch.expected_mime_type == "image/jpeg"
    assert photo.extension_mismatch.actual_mime_type == "application/vnd.sqlite3"
    assert items[b"seized/honest.png"].mime_type == "image/png"
    for name in (b"honest.csv", b"honest.txt", b"honest.png"):
        assert items[b"seized/" + name].extension_mismatch is None, name


# ------------------------------------------------------------------ 11. extra digests


def test_extra_hash_algorithms_are_exact_and_verify(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    root = tmp_path / "seized"
    root.mkdir()
    contents = {
        "empty": b"",
        "small.txt": b"small\n",
        "medium.bin": os.urandom(300_000),
        "large.bin": os.urandom(MiB + 4097),
    }
    for name, data in contents.items():
        (root / name).write_bytes(data)
    os.link(root / "small.txt", root / "small-link.txt")
    algorithms = ("sha256", "sha1", "md5")

    bundle = make_bundle(root, hash_algorithms=algorithms)
    manifest, _raw = read_manifest(bundle.container, age_key)
    items = items_by_path(manifest)

    assert manifest.hash_algorithms == list(algorithms)
    contents["small-link.txt"] = contents["small.txt"]
    for name, data in contents.items():
        item = items[b"seized/" + name.encode()]
        assert item.digests == {a: hashlib.new(a, data).hexdigest() for a in algorithms}, name
    assert verify_with_key(bundle.container, age_key) == []


# ---------------------------------------------------------------------- 12. provenance


def test_provenance_records_tool_libraries_host_user_and_times(
    make_bundle: MakeBundle, age_key: AgeKey, small_tree: Path
) -> None:
    command_line = [
        "evidence-kit",
        "acquire",
        "--passphrase=hunter2-not-for-logs",
        "--password",
        "s3cret-value-xyz",
        "--passphrase-file",
        "/media/usb/pass.txt",
        str(small_tree),
    ]
    bundle = make_bundle(small_tree, command_line=command_line)
    manifest, raw = read_manifest(bundle.container, age_key)
    provenance = manifest.provenance

    assert (provenance.tool.name, provenance.tool.version) == (
        "evidence-kit",
        evidence_kit.__version__,
    )
    assert re.fullmatch(r"\d+\.\d+", provenance.libraries["libmagic"])
    for library in ("python", "openssl", "pyzipper", "pyrage", "cryptography", "python-magic"):
        assert provenance.libraries[library] not in ("", "not installed"), library
    assert provenance.host == socket.gethostname()
    assert provenance.user == getpass.getuser()
    assert provenance.uid == os.getuid()
    assert provenance.started.clock_source == provenance.finished.clock_source == "local"
    started, finished = int(provenance.started.ns), int(provenance.finished.ns)
    assert started <= finished
    files = [i for i in manifest.items if i.kind == "file"]
    assert files
    for item in files:
        assert item.read_at is not None and item.read_at.clock_source == "local"
        assert started <= int(item.read_at.ns) <= finished
    assert b"hunter2-not-for-logs" not in raw and b"s3cret-value-xyz" not in raw
    assert provenance.command_line == [
        "evidence-kit",
        "acquire",
        "--passphrase=<redacted>",
        "--password",
        "<redacted>",
        "--passphrase-file",
        "/media/usb/pass.txt",
        str(small_tree),
    ]


def test_command_line_run_records_its_argv_and_never_the_passphrase(
    age_key: AgeKey, passphrase_file: Path, small_tree: Path, tmp_path: Path
) -> None:
    """The real CLI: the recorded command line is its argv; the passphrase given in a file
    appears nowhere (manifest, custody log, output)."""
    out = tmp_path / "B.zip"
    args = [
        "acquire",
        str(small_tree),
        "--out",
        str(out),
        *CASE_ARGS,
        "--recipient",
        age_key.recipient,
        "--passphrase-file",
        str(passphrase_file),
        "--unattended",
        "--json",
    ]
    env = {k: v for k, v in os.environ.items() if k != "EVIDENCE_KIT_PASSPHRASE"}
    run = subprocess.run(
        [str(EVIDENCE_KIT), *args], capture_output=True, env=env, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    manifest, raw = read_manifest(out, age_key)
    assert manifest.provenance.command_line == ["evidence-kit", *args]
    secret = PASSPHRASE.encode()
    for blob in (
        raw,
        run.stdout,
        run.stderr,
        out.read_bytes(),
        (tmp_path / "B.custody.jsonl").read_bytes(),
    ):
        assert secret not in blob


# -------------------------------------------------------------------- 13. sample case


def test_sample_phone_dump_acquires_as_documented(make_bundle: MakeBundle, age_key: AgeKey) -> None:
    seized = SAMPLE_CASES / "phone-dump" / "seized"
    listed: dict[bytes, str] = {}
    for line in (SAMPLE_CASES / "MANIFEST.sha256").read_text(encoding="utf-8").splitlines():
        digest, _sep, name = line.partition("  ")
        if name.startswith("phone-dump/seized/"):
            listed[b"seized/" + name.removeprefix("phone-dump/seized/").encode()] = digest
    assert len(listed) >= 10

    bundle = make_bundle(seized)
    items = items_by_path(read_manifest(bundle.container, age_key)[0])

    assert bundle.result.complete
    files = {path: item for path, item in items.items() if item.kind == "file"}
    assert sorted(files) == sorted(listed)
    for path, digest in listed.items():
        assert files[path].digests["sha256"] == digest, path
    link = items[b"seized/phone/sdcard/Download/latest.txt"]
    assert link.kind == "symlink" and link.symlink_target is not None
    assert path_bytes(link.symlink_target) == b"../Documents/notes.txt"
    empty = items[b"seized/phone/sdcard/Download/unfinished.crdownload"]
    assert (empty.size, empty.stored_size) == (0, 0)
    assert empty.digests["sha256"] == hashlib.sha256(b"").hexdigest()
    photo = items[b"seized/phone/sdcard/DCIM/IMG_2041.jpg"]
    assert photo.extension_mismatch is not None
    assert photo.extension_mismatch.actual_mime_type == "application/vnd.sqlite3"
    assert photo.extension_mismatch.expected_mime_type == "image/jpeg"
    mismatched = [p for p, i in items.items() if i.extension_mismatch is not None]
    assert mismatched == [b"seized/phone/sdcard/DCIM/IMG_2041.jpg"]


# --------------------------------------------------------------------- 14. slow: scale


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A folder removed right after the test (pytest keeps tmp_path of recent runs)."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _acquire_into(scratch: Path, source: Path, key: AgeKey) -> tuple[Path, AcquireResult]:
    output = scratch / "bundle.zip"
    result = acquire(
        AcquireRequest(sources=[source], output=output, case=CASE, recipients=recipient_of(key))
    )
    return output, result


@pytest.mark.slow
def test_more_than_65535_items_round_trip(scratch: Path, age_key: AgeKey) -> None:
    root = scratch / "seized"
    folders, per_folder = 7, 10_000
    expected: dict[bytes, bytes] = {}
    for f in range(folders):
        folder = root / f"folder-{f}"
        folder.mkdir(parents=True)
        for i in range(per_folder):
            # mostly empty (libmagic costs ~1 ms per non-empty file), every 100th tiny
            data = f"{f}-{i}\n".encode() if i % 100 == 0 else b""
            name = f"f{i:05d}"
            (folder / name).write_bytes(data)
            expected[f"seized/folder-{f}/{name}".encode()] = data
    total_items = 1 + folders + folders * per_folder
    assert total_items > 65_535

    container, result = _acquire_into(scratch, root, age_key)

    assert result.complete
    assert result.summary.items == total_items
    assert result.summary.files == folders * per_folder
    manifest, _raw = read_manifest(container, age_key)
    assert len(manifest.items) == total_items
    items = items_by_path(manifest)
    for path, data in expected.items():
        assert items[path].digests["sha256"] == hashlib.sha256(data).hexdigest()
    report = verify_bundle(VerifyRequest(container, key=age_key.material))
    assert report.verdict == "verified", report.findings[:5]
    assert report.items_checked == folders * per_folder
    sample = [items[b"seized/folder-6/f09900"], items[b"seized/folder-0/f00000"]]
    stored = stored_sha256(container, age_key, sample)
    assert stored[sample[0].id] == hashlib.sha256(b"6-9900\n").hexdigest()


@pytest.mark.slow
def test_file_over_4_gib_round_trips_with_zip64(scratch: Path, age_key: AgeKey) -> None:
    size = 4 * (1 << 30) + 200 * MiB + 12_345
    needed = 3 * size
    if shutil.disk_usage(scratch).free < needed:
        pytest.skip(f"needs {needed} bytes free for a >4 GiB bundle and its extracted copy")
    root = scratch / "seized"
    root.mkdir()
    big = root / "disk.img"
    write_sparse(
        big,
        size,
        {
            0: b"START-OF-IMAGE",
            (1 << 32) - 7: b"ACROSS-THE-4GiB-BOUNDARY",
            size - 12: b"END-OF-IMAGE",
        },
    )
    expected = sha256_of(big)

    container, result = _acquire_into(scratch, root, age_key)

    assert result.complete
    assert container.stat().st_size > size
    manifest, _raw = read_manifest(container, age_key)
    item = items_by_path(manifest)[b"seized/disk.img"]
    assert (item.stored_size, item.digests["sha256"]) == (size, expected)
    assert item.location is not None
    member = next(m for m in manifest.members if m.name == item.location.member)
    assert member.size - member.padding == size, "content size of the member"
    assert member.size > 1 << 32
    report = verify_bundle(VerifyRequest(container, key=age_key.material))
    assert report.verdict == "verified", report.findings
    assert report.bytes_checked == size
    out = scratch / "extracted"
    extracted = extract_bundle(ExtractRequest(container, out, key=age_key.material))
    assert extracted.complete, extracted.findings
    copy = out / "seized" / "disk.img"
    assert copy.stat().st_size == size
    assert sha256_of(copy) == expected
