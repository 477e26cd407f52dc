"""Faults: what acquisition, extraction, export and the custody log do when the machine
misbehaves, and the proof that every guarantee still holds.

Each fault is made real where it can be, injected at one named OS-level seam where not:

* EIO reading a file: ``evidence_kit.acquire.read_chunk`` (the one place file bytes are
  read, from ``sources.filesystem``) is wrapped for chosen files: a read that would cover
  the chosen offset returns the bytes before it (a short read, as the kernel gives) and the
  read at the offset raises EIO.
* EIO reading a disk image: ``evidence_kit.sources.disk.read_at`` fails every read that
  overlaps a chosen sector (seeded random sets of sectors).
* EACCES: real, by running ``python -m evidence_kit acquire`` as the user nobody
  (``setpriv``) over chmod-ed files and folders.
* A file changed while read: the ``read_chunk`` wrapper changes the file (truncates, grows,
  overwrites, replaces, deletes, touches) right after its first chunk was read.
* A folder removed or replaced while walked: ``os.listdir`` and ``os.stat`` are wrapped,
  filtered by the walked folder's descriptor, and act just after the acquisition's walk
  (not the free-space prescan before it) listed or lstat-ed the folder.
* Disk full: a real small tmpfs, filled with ``posix_fallocate`` to a chosen free space,
  as the output of acquire, extract and export, and under the custody log; ``os.write``
  refusing the custody event with ENOSPC (or writing half of it first).
* Output I/O errors: ``os.fsync`` failing with EIO on the bundle's temporary file; outputs
  on a read-only tmpfs or read-only bind mount.
* A source on a read-only bind mount, acquired as root and as nobody.

Every test records its figure (``tests/assurance/figures.py``): tried = faults made,
detected = faults after which every guarantee held, reasons = the outcome of each.
Mounting needs root: those tests skip, visibly, where it is not allowed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyrage
import pytest

from evidence_kit import acquire as acquire_module
from evidence_kit.acquire import AcquireRequest, ImageRequest, acquire
from evidence_kit.bundle import ContentReader, open_container, unlock
from evidence_kit.hashing import THREAD_THRESHOLD
from evidence_kit.models import Finding, ItemRecord, Manifest, ReadError
from evidence_kit.naming import path_bytes
from evidence_kit.sources import disk
from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.assurance.figures import Figures
from tests.conftest import CASE, CASE_ARGS, AgeKey, SigningKey, items_by_path, read_manifest

Cli = Callable[..., Any]

MiB = 1 << 20
CHUNK = acquire_module.CHUNK_SIZE
SECTOR = 512
DAY_NS = 86_400 * 10**9
O_NOATIME: int = getattr(os, "O_NOATIME", 0)
NOBODY = 65534
SEED = 20260117  # every random byte and every random choice below comes from it


# --------------------------------------------------------------------------- helpers


def fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def run_cli(cli: Cli, *args: str | Path) -> Any:
    """The in-process CLI; however it ends, no Python traceback reaches the user."""
    result = cli(*args)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def acquire_args(key: AgeKey, out: Path, *sources: Path) -> list[str | Path]:
    return ["acquire", *sources, "--out", out, *CASE_ARGS, "--recipient", key.recipient,
            "--unattended", "--quiet"]  # fmt: skip


def library_acquire(key: AgeKey, sources: list[Path], out: Path, **options: Any) -> Any:
    return acquire(
        AcquireRequest(
            sources=sources,
            output=out,
            case=CASE,
            recipients=[pyrage.x25519.Recipient.from_str(key.recipient)],
            **options,
        )
    )


def verified_warnings(container: Path, key: AgeKey) -> list[Finding]:
    """Verify with the key; the bundle must verify. Returns the warnings."""
    report = verify_bundle(VerifyRequest(container, key=key.material))
    errors = [(f.code, f.subject) for f in report.findings if f.severity == "error"]
    assert report.verdict == "verified" and not errors, errors
    assert report.contents_checked
    return [f for f in report.findings if f.severity == "warning"]


def acquisition_warnings(warnings: list[Finding]) -> list[Finding]:
    """What acquisition recorded as not clean (not, say, that the bundle is unsigned)."""
    return [f for f in warnings if f.code.startswith("acquired-")]


def warned(warnings: list[Finding], code: str) -> set[str]:
    return {f.subject for f in warnings if f.code == code}


def stored_bytes(container: Path, key: AgeKey, items: list[ItemRecord]) -> dict[int, bytes]:
    """The bytes each item has in the container, read back (every MAC checked)."""
    bundle = open_container(container, trusted=None)
    try:
        unlock(bundle, key.material, trusted=None)
        reader = ContentReader(bundle)
        return {item.id: b"".join(reader.item_chunks(item)) for item in items}
    finally:
        bundle.close()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def age_atimes(root: Path) -> None:
    """Every access time below ``root`` ten days back (so relatime would show a read)."""
    for folder, names, files in os.walk(root):
        for name in [*names, *files]:
            _age(os.path.join(folder, name))
    _age(str(root))


def _age(path: str) -> None:
    info = os.lstat(path)
    os.utime(path, ns=(info.st_atime_ns - 10 * DAY_NS, info.st_mtime_ns), follow_symlinks=False)


Facts = dict[str, int | str]


def snapshot(root: Path) -> dict[bytes, Facts]:
    """Every object below ``root`` (itself too): its lstat facts, atime included, and the
    SHA-256 of each file's content. Files and folders are opened with O_NOATIME (the tests
    run as root), so taking a snapshot changes nothing; a symlink's atime is left out
    (``readlink`` updates it and Linux has no O_NOATIME for it)."""
    facts: dict[bytes, Facts] = {}

    def visit(path: bytes, rel: bytes) -> None:
        info = os.lstat(path)
        entry: Facts = {
            "mode": info.st_mode,
            "size": info.st_size,
            "uid": info.st_uid,
            "gid": info.st_gid,
            "inode": info.st_ino,
            "nlink": info.st_nlink,
            "mtime": info.st_mtime_ns,
            "ctime": info.st_ctime_ns,
            "atime": info.st_atime_ns,
        }
        facts[rel] = entry
        if stat.S_ISLNK(info.st_mode):
            del entry["atime"]
            entry["target"] = os.readlink(path).hex()
        elif stat.S_ISREG(info.st_mode):
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | O_NOATIME)
            digest = hashlib.sha256()
            try:
                while chunk := os.read(fd, 4 * MiB):
                    digest.update(chunk)
            finally:
                os.close(fd)
            entry["sha256"] = digest.hexdigest()
        elif stat.S_ISDIR(info.st_mode):
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | O_NOATIME)
            try:
                names = sorted(os.fsencode(n) for n in os.listdir(fd))
            finally:
                os.close(fd)
            for name in names:
                visit(path + b"/" + name, rel + b"/" + name)

    visit(os.fsencode(root), b".")
    return facts


def without(facts: dict[bytes, Facts], *fields: str) -> dict[bytes, Facts]:
    return {k: {f: v for f, v in e.items() if f not in fields} for k, e in facts.items()}


def listing(folder: Path) -> list[str]:
    """Everything below ``folder``, relative, sorted (temp files included)."""
    found = []
    for parent, names, files in os.walk(folder):
        for name in [*names, *files]:
            found.append(os.path.relpath(os.path.join(parent, name), folder))
    return sorted(found)


def mount(*arguments: str) -> None:
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small or read-only file system")
    done = subprocess.run(["mount", *arguments], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mount {' '.join(arguments)} is not permitted here: {done.stderr.strip()}")


def unmount(point: Path) -> None:
    subprocess.run(["umount", str(point)], check=True, capture_output=True)


@contextlib.contextmanager
def tmpfs(point: Path, options: str = "size=20m") -> Iterator[Path]:
    """A real tmpfs at ``point`` for the duration (root only; skipped where not allowed)."""
    point.mkdir(exist_ok=True)
    mount("-t", "tmpfs", "-o", options, "tmpfs", str(point))
    try:
        yield point
    finally:
        unmount(point)


@contextlib.contextmanager
def read_only_bind(source: Path, point: Path) -> Iterator[Path]:
    """``source`` seen read-only at ``point`` (``mount --bind`` then ``remount,ro,bind``)."""
    point.mkdir(exist_ok=True)
    mount("--bind", str(source), str(point))
    try:
        done = subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(point)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot remount a bind mount read-only: {done.stderr.strip()}")
        assert os.statvfs(point).f_flag & os.ST_RDONLY
        yield point
    finally:
        unmount(point)


def fill(folder: Path, leave: int) -> None:
    """Take all but ``leave`` bytes of the file system holding ``folder``."""
    fd = os.open(folder / ".filler", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        vfs = os.statvfs(folder)
        free = vfs.f_bavail * vfs.f_frsize
        if free > leave:
            os.posix_fallocate(fd, 0, free - leave)
    finally:
        os.close(fd)


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A folder under /tmp that the user nobody can traverse (removed after)."""
    folder = Path(tempfile.mkdtemp(prefix="ek-faults-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def as_nobody(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m evidence_kit ARGS`` as the user nobody (skipped without setpriv or root)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot run as nobody")
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the user nobody")
    drop = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LANG": "C.UTF-8"}
    probe = subprocess.run(
        [*drop, sys.executable, "-c", "import evidence_kit"],
        capture_output=True, text=True, env=env, cwd=cwd, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"nobody cannot run {sys.executable}: {probe.stderr.strip()[:200]}")
    command = [*drop, sys.executable, "-m", "evidence_kit", *map(str, args)]
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd,
                         timeout=300, check=False)  # fmt: skip
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    return run


# ------------------------------------------------------------------ 1. EIO on a file


EIO_SIZE = 2 * CHUNK + 4096 + 7
EIO_OFFSETS = (0, 1, 4095, 4096, 4097, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 1234,
               EIO_SIZE - 1, EIO_SIZE)  # fmt: skip
LARGE_SIZE = THREAD_THRESHOLD + CHUNK + 99  # digested on the second thread
LARGE_OFFSET = THREAD_THRESHOLD + 4321
ALGORITHMS = ("sha256", "sha1", "md5")


class BadOffsets:
    """Wraps ``acquire.read_chunk``: for a chosen file in ``folder``, the read that would
    cover its bad offset returns only the bytes before it, and the read at it raises."""

    def __init__(self, real: Callable[[int, int], bytes], folder: Path, bad: dict[str, int]):
        self.real, self.folder, self.bad = real, str(folder), bad
        self.raised: dict[str, int] = {}

    def __call__(self, fd: int, size: int) -> bytes:
        parent, name = os.path.split(fd_path(fd))
        offset = self.bad.get(name) if parent == self.folder else None
        if offset is not None:
            position = os.lseek(fd, 0, os.SEEK_CUR)
            if position <= offset < position + size:
                if position < offset:
                    return self.real(fd, offset - position)
                self.raised[name] = position
                raise OSError(errno.EIO, os.strerror(errno.EIO))
        return self.real(fd, size)


def test_eio_at_chosen_offsets_is_recorded_exactly_the_bytes_before_it_are_sealed_and_exit_3(
    cli: Cli, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    rng = random.Random(SEED)
    root = tmp_path / "seized"
    root.mkdir()
    data: dict[str, bytes] = {}
    bad: dict[str, int] = {}
    for offset in EIO_OFFSETS:
        name = f"eio-at-{offset:08d}.bin"
        data[name], bad[name] = rng.randbytes(EIO_SIZE), offset
    data["eio-large.bin"], bad["eio-large.bin"] = rng.randbytes(LARGE_SIZE), LARGE_OFFSET
    good = {"a-first.txt": b"read before the faults\n", "z-last.bin": rng.randbytes(CHUNK + 3)}
    for name, content in (data | good).items():
        (root / name).write_bytes(content)
    age_atimes(root)
    before = snapshot(root)
    faults = BadOffsets(acquire_module.read_chunk, root, bad)
    monkeypatch.setattr(acquire_module, "read_chunk", faults)
    out = tmp_path / "out" / "B.zip"
    out.parent.mkdir()
    result = run_cli(cli, *acquire_args(age_key, out, root), "--hash", "sha1,md5")
    monkeypatch.undo()

    assert result.exit_code == 3, result.stderr
    assert faults.raised == bad, "every chosen offset was reached and failed"
    assert snapshot(root) == before, "the source changed (content, times or atime)"
    manifest, _raw = read_manifest(out, age_key)
    items = items_by_path(manifest)
    targets = [items[b"seized/" + name.encode()] for name in bad]
    stored = stored_bytes(out, age_key, targets)
    warnings = verified_warnings(out, age_key)
    stderr = " ".join(result.stderr.split())
    failures: dict[str, list[str]] = {}
    for name, item in zip(bad, targets, strict=True):
        offset, prefix = bad[name], data[name][: bad[name]]
        wrong = []
        if (item.status, item.errno) != ("unreadable", errno.EIO):
            wrong.append(f"status {item.status} errno {item.errno}")
        if item.read_errors != [ReadError(offset=offset, length=None, errno=errno.EIO,
                                          error=os.strerror(errno.EIO))]:  # fmt: skip
            wrong.append(f"read_errors {item.read_errors}")
        if (item.size, item.stored_size) != (len(data[name]), offset):
            wrong.append(f"size {item.size} stored {item.stored_size}")
        if item.digests != {a: hashlib.new(a, prefix).hexdigest() for a in ALGORITHMS}:
            wrong.append("digests are not those of the bytes before the offset")
        if stored[item.id] != prefix:
            wrong.append("the stored bytes are not the bytes before the offset")
        if f"unreadable: seized/{name}: read error at byte {offset}" not in stderr:
            wrong.append("stderr does not name the item and the offset")
        failures[name] = wrong
    handled = sum(not wrong for wrong in failures.values())
    figures.record(
        "fault: EIO reading a file at a chosen offset",
        len(bad),
        handled,
        [items[b"seized/" + n.encode()].status for n in bad],
        note="offsets 0, 1, 4095-4097, chunk edges, last byte, at EOF, and past 8 MiB "
        f"(threaded digest), content from seed {SEED}; each recorded, bytes before it "
        "sealed, exit 3",
    )
    assert {n: w for n, w in failures.items() if w} == {}
    assert warned(warnings, "acquired-unreadable") == {f"seized/{n}" for n in bad}
    for name, content in good.items():
        item = items[b"seized/" + name.encode()]
        assert (item.status, item.digests["sha256"]) == ("ok", hashlib.sha256(content).hexdigest())
    assert manifest.summary.status_counts == {"ok": 3, "unreadable": len(bad)}


# ------------------------------------------------------------- 2. EIO on a disk image


class BadSectors:
    """Stands in for ``disk.read_at``: every read overlapping a bad sector fails with EIO."""

    def __init__(self, bad: set[int]) -> None:
        self.bad = sorted(bad)

    def __call__(self, fd: int, length: int, offset: int) -> bytes:
        if any(offset < s + SECTOR and s < offset + length for s in self.bad):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return os.pread(fd, length, offset)


def runs_of(sectors: set[int]) -> list[tuple[int, int]]:
    """Adjacent bad sectors as (offset, length) ranges."""
    ranges: list[tuple[int, int]] = []
    for sector in sorted(sectors):
        if ranges and ranges[-1][0] + ranges[-1][1] == sector:
            ranges[-1] = (ranges[-1][0], ranges[-1][1] + SECTOR)
        else:
            ranges.append((sector, SECTOR))
    return ranges


def chosen_sectors(rng: random.Random, size: int) -> set[int]:
    """1 to 5 runs of 1 to 9 bad sectors anywhere, one often across a 1 MiB read boundary."""
    sectors: set[int] = set()
    for _run in range(rng.randint(1, 5)):
        if rng.random() < 0.3:
            start = rng.randrange(1, size // MiB) * MiB - rng.randint(1, 4) * SECTOR
        else:
            start = rng.randrange(0, size // SECTOR - 9) * SECTOR
        sectors.update(start + i * SECTOR for i in range(rng.randint(1, 9)))
    return sectors


def test_eio_at_chosen_sectors_of_a_disk_image_zero_fills_exactly_those_and_seals_the_rest(
    age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    size = 4 * MiB + 7 * SECTOR
    image = tmp_path / "usb-stick.dd"
    original = random.Random(SEED).randbytes(size)
    image.write_bytes(original)
    runs = 12
    outcomes: list[str] = []
    failures: dict[int, str] = {}
    for seed in range(SEED, SEED + runs):
        bad = chosen_sectors(random.Random(seed), size)
        holes = runs_of(bad)
        monkeypatch.setattr(disk, "read_at", BadSectors(bad))
        out = tmp_path / f"image-{seed}.zip"
        result = library_acquire(age_key, [], out, image=ImageRequest(image, MiB, retries=0))
        monkeypatch.undo()
        item = read_manifest(out, age_key)[0].items[0]
        expected = bytearray(original)
        for offset, length in holes:
            expected[offset : offset + length] = bytes(length)
        windows = [hashlib.sha256(expected[i : i + MiB]).hexdigest() for i in range(0, size, MiB)]
        checks = {
            "status": (item.status, item.errno) == ("unreadable", errno.EIO),
            "ranges": [(e.offset, e.length, e.errno) for e in item.read_errors]
            == [(o, n, errno.EIO) for o, n in holes],
            "digest": item.digests["sha256"] == hashlib.sha256(expected).hexdigest(),
            "stored": stored_bytes(out, age_key, [item])[item.id] == expected,
            "windows": item.image is not None and item.image.window_sha256 == windows,
            "zero-filled": result.image is not None
            and result.image.zero_filled_bytes == len(bad) * SECTOR,
            "incomplete": result.complete is False,
            "verifies": warned(verified_warnings(out, age_key), "acquired-unreadable")
            == {"usb-stick.dd"},
            "image untouched": image.read_bytes() == original,
        }
        failed = [name for name, held in checks.items() if not held]
        if failed:
            failures[seed] = f"{holes}: {failed}"
        outcomes.append("zero-filled exactly" if not failed else "wrong: " + ",".join(failed))
    figures.record(
        "fault: EIO at chosen sectors of a disk image",
        runs,
        runs - len(failures),
        outcomes,
        note=f"seeds {SEED}..{SEED + runs - 1}: 1-5 runs of 1-9 bad sectors in a 4 MiB image",
    )
    assert failures == {}


# ---------------------------------------------------------------- 3. EACCES, for real


def test_eacces_as_nobody_records_each_protected_file_and_folder_and_acquires_the_rest(
    world_dir: Path, age_key: AgeKey, figures: Figures
) -> None:
    root = world_dir / "seized"
    root.mkdir()
    readable = {"readable.txt": b"anyone may read this\n", "z-last.txt": b"read after\n"}
    for name, content in readable.items():
        (root / name).write_bytes(content)
    (root / "locked.txt").write_bytes(b"root only\n")
    (root / "locked-folder").mkdir()
    (root / "locked-folder" / "hidden.txt").write_bytes(b"cannot be listed\n")
    (root / "list-only").mkdir()  # r--: names can be listed, not examined
    for name in ("a.txt", "b.txt"):
        (root / "list-only" / name).write_bytes(b"listed, never examined\n")
    (root / "enter-only").mkdir()  # --x: cannot be listed
    (root / "enter-only" / "c.txt").write_bytes(b"reachable only by name\n")
    modes = {"locked.txt": 0o000, "locked-folder": 0o000, "list-only": 0o444,
             "enter-only": 0o111}  # fmt: skip
    for name, mode in modes.items():
        (root / name).chmod(mode)
    out_dir = world_dir / "out"
    out_dir.mkdir()
    os.chown(out_dir, NOBODY, NOBODY)
    age_atimes(root)
    before = snapshot(root)
    out = out_dir / "B.zip"
    run = as_nobody([*acquire_args(age_key, out, root)], world_dir)

    assert run.returncode == 3, run.stderr
    manifest, _raw = read_manifest(out, age_key)
    assert manifest.provenance.user == "nobody"
    items = items_by_path(manifest)
    expected = {  # path: (kind, status, errno)
        "seized/locked.txt": ("file", "unreadable", errno.EACCES),
        "seized/locked-folder": ("directory", "unreadable", errno.EACCES),
        "seized/list-only/a.txt": ("unknown", "unreadable", errno.EACCES),
        "seized/list-only/b.txt": ("unknown", "unreadable", errno.EACCES),
        "seized/enter-only": ("directory", "unreadable", errno.EACCES),
    }
    seen = {p: (items[p.encode()].kind, items[p.encode()].status, items[p.encode()].errno)
            for p in expected if p.encode() in items}  # fmt: skip
    stderr = " ".join(run.stderr.split())
    handled = [p for p in expected if seen.get(p) == expected[p] and f"unreadable: {p}:" in stderr]
    figures.record(
        "fault: EACCES on files and folders (run as nobody)",
        len(expected),
        len(handled),
        [f"{s[1]} errno {s[2]}" for s in seen.values()],
        note="chmod 000 file and folder, r-- folder (entries listed, not examinable), --x "
        "folder; exit 3, the rest acquired",
    )
    assert seen == expected
    assert handled == list(expected), run.stderr
    locked = items[b"seized/locked.txt"]
    assert locked.read_errors == [ReadError(offset=0, length=None, errno=errno.EACCES,
                                            error=os.strerror(errno.EACCES))]  # fmt: skip
    for reason_of in ("seized/list-only/a.txt", "seized/list-only/b.txt"):
        assert "vanished" not in (items[reason_of.encode()].reason or "")
    assert sorted(p.decode() for p in items) == sorted(
        ["seized", "seized/list-only", "seized/readable.txt", "seized/z-last.txt", *expected]
    ), "nothing below the unlistable folders can be recorded"
    for name, content in readable.items():
        item = items[b"seized/" + name.encode()]
        assert (item.status, item.digests["sha256"]) == ("ok", hashlib.sha256(content).hexdigest())
        assert item.noatime is False, "O_NOATIME is refused to nobody on root's files"
    assert [s.noatime for s in manifest.sources] == [False]
    assert warned(verified_warnings(out, age_key), "acquired-unreadable") == set(expected)
    after = snapshot(root)
    # what nobody could open was read without O_NOATIME (recorded above): only atimes moved
    assert without(after, "atime") == without(before, "atime")
    never_opened = [f"./{p.removeprefix('seized/')}".encode() for p in expected]
    assert [after[p]["atime"] for p in never_opened] == [before[p]["atime"] for p in never_opened]


# --------------------------------------------------------- 4. a file changed while read


def _append(data: bytes) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        with path.open("ab") as grown:
            grown.write(data)

    return change


def _overwrite(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, b"\x00OVERWRITTEN\x00", 2 * CHUNK + 10)
    finally:
        os.close(fd)


def _touch(path: Path) -> None:
    info = os.stat(path)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1))


def _regrow(path: Path) -> None:
    size = path.stat().st_size
    os.truncate(path, CHUNK)
    os.truncate(path, size)


def _replace(path: Path) -> None:
    spare = path.with_name("spare")
    spare.write_bytes(b"another file renamed over the one being read\n")
    os.replace(spare, path)


CHANGES: dict[str, Callable[[Path], None]] = {
    "truncated-to-zero.bin": lambda p: os.truncate(p, 0),
    "truncated-below-read.bin": lambda p: os.truncate(p, 1000),
    "truncated-after-read.bin": lambda p: os.truncate(p, CHUNK + CHUNK // 2),
    "truncated-and-regrown.bin": _regrow,
    "grown-by-one-byte.bin": _append(b"\x01"),
    "grown-by-3-mib.bin": _append(b"\xaa" * 3 * MiB),
    "overwritten-in-place.bin": _overwrite,
    "touched-mtime-only.bin": _touch,
    "replaced-by-rename.bin": _replace,
    "deleted-while-read.bin": os.unlink,
}


class ChangeAfterFirstChunk:
    """Wraps ``acquire.read_chunk``: keeps what each read of a file in ``folder`` returned
    and, right after the first chunk of a file named in CHANGES, changes that file."""

    def __init__(self, real: Callable[[int, int], bytes], folder: Path) -> None:
        self.real, self.folder = real, folder
        self.returned: dict[str, list[bytes]] = {}

    def __call__(self, fd: int, size: int) -> bytes:
        data = self.real(fd, size)
        parent, name = os.path.split(fd_path(fd).removesuffix(" (deleted)"))
        if parent == str(self.folder):
            reads = self.returned.setdefault(name, [])
            reads.append(data)
            if len(reads) == 1 and name in CHANGES:
                CHANGES[name](self.folder / name)
        return data


def test_a_file_changed_while_read_is_flagged_with_both_stats_and_what_was_read_is_sealed(
    cli: Cli, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    rng = random.Random(SEED + 1)
    root = tmp_path / "seized"
    root.mkdir()
    original = {name: rng.randbytes(3 * CHUNK) for name in CHANGES}
    steady = {"a-steady.txt": b"does not change\n", "z-steady.bin": rng.randbytes(CHUNK + 1)}
    for name, content in (original | steady).items():
        (root / name).write_bytes(content)
    age_atimes(root)
    before = snapshot(root)
    reads = ChangeAfterFirstChunk(acquire_module.read_chunk, root)
    monkeypatch.setattr(acquire_module, "read_chunk", reads)
    out = tmp_path / "out" / "B.zip"
    out.parent.mkdir()
    result = run_cli(cli, *acquire_args(age_key, out, root))
    monkeypatch.undo()

    assert result.exit_code == 3, result.stderr
    items = items_by_path(read_manifest(out, age_key)[0])
    targets = [items[b"seized/" + name.encode()] for name in CHANGES]
    stored = stored_bytes(out, age_key, targets)
    stderr = " ".join(result.stderr.split())
    failures: dict[str, list[str]] = {}
    for name, item in zip(CHANGES, targets, strict=True):
        read = b"".join(reads.returned[name])
        wrong = []
        if item.status != "changed-during-read" or not item.reason:
            wrong.append(f"status {item.status}")
        if item.stat_before is None or item.stat_after is None:
            wrong.append("stat_before/stat_after missing")
        elif item.stat_before.size != len(original[name]) or item.stat_before == item.stat_after:
            wrong.append("stat_before is not the listing's, or equals stat_after")
        digest = hashlib.sha256(read).hexdigest()
        if (item.stored_size, item.digests["sha256"]) != (len(read), digest):
            wrong.append("digest is not of the bytes read")
        if stored[item.id] != read:
            wrong.append("stored bytes are not the bytes read")
        if f"changed-during-read: seized/{name}" not in stderr:
            wrong.append("not named on stderr")
        failures[name] = wrong
    figures.record(
        "fault: file changed while read",
        len(CHANGES),
        sum(not w for w in failures.values()),
        [t.status for t in targets],
        note="truncated (to 0, below and past the read position, and regrown), grown by 1 "
        "byte and by 3 MiB, overwritten in place, mtime touched, replaced, deleted",
    )
    assert {n: w for n, w in failures.items() if w} == {}
    # what each read saw, in particular
    seen = {name: stored[item.id] for name, item in zip(CHANGES, targets, strict=True)}
    assert seen["truncated-to-zero.bin"] == original["truncated-to-zero.bin"][:CHUNK]
    assert seen["truncated-below-read.bin"] == original["truncated-below-read.bin"][:CHUNK]
    half = CHUNK + CHUNK // 2
    assert seen["truncated-after-read.bin"] == original["truncated-after-read.bin"][:half]
    regrown = original["truncated-and-regrown.bin"][:CHUNK] + bytes(2 * CHUNK)
    assert seen["truncated-and-regrown.bin"] == regrown
    assert seen["grown-by-one-byte.bin"] == original["grown-by-one-byte.bin"] + b"\x01"
    assert seen["replaced-by-rename.bin"] == original["replaced-by-rename.bin"]
    assert seen["deleted-while-read.bin"] == original["deleted-while-read.bin"]
    by_name = dict(zip(CHANGES, targets, strict=True))
    replaced, deleted = by_name["replaced-by-rename.bin"], by_name["deleted-while-read.bin"]
    assert replaced.stat_before and replaced.stat_after
    assert replaced.stat_before.inode != replaced.stat_after.inode
    assert deleted.stat_after is not None and deleted.stat_after.nlink == 0
    grown = by_name["grown-by-one-byte.bin"].stat_after
    assert grown is not None and grown.size == 3 * CHUNK + 1
    for name, content in steady.items():
        item = items[b"seized/" + name.encode()]
        assert (item.status, item.digests["sha256"]) == ("ok", hashlib.sha256(content).hexdigest())
    untouched = [f"./{n}".encode() for n in steady]
    after = snapshot(root)
    assert [after[p] for p in untouched] == [before[p] for p in untouched]
    warnings = verified_warnings(out, age_key)
    assert warned(warnings, "acquired-changed-during-read") == {f"seized/{n}" for n in CHANGES}


# --------------------------------------------- 5. a folder removed or replaced while walked


class AfterWalkCall:
    """Wraps ``os.listdir`` or ``os.stat``: on the second call that lists ``folder`` (or
    lstat-s ``name`` in it), runs ``action`` after the real call (an action that raises
    makes the call fail). The first such call is the free-space prescan's walk; the
    second is the acquisition's."""

    def __init__(
        self, real: Callable[..., Any], folder: Path, name: str | None, action: Callable[[], None]
    ) -> None:
        self.real, self.folder, self.name, self.action = real, str(folder), name, action
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.real(*args, **kwargs)
        if self.name is None:  # os.listdir(fd)
            hit = bool(args) and isinstance(args[0], int) and fd_path(args[0]) == self.folder
        else:  # os.stat(name, dir_fd=parent, follow_symlinks=False)
            parent = kwargs.get("dir_fd")
            hit = args[:1] == (self.name,) and parent is not None and fd_path(parent) == self.folder
        if hit:
            self.calls += 1
            if self.calls == 2:
                self.action()
        return result


SECRET = b"NOT EVIDENCE: outside the seized folder\n"


def _walk_tree(base: Path) -> tuple[Path, Path]:
    outside = base / "outside"
    (outside / "inner").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(SECRET)
    root = base / "seized"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a-before.txt").write_bytes(b"before the folder\n")
    (root / "sub" / "x.txt").write_bytes(b"in the folder\n")
    (root / "sub" / "deeper" / "y.txt").write_bytes(b"deeper\n")
    (root / "z-after.txt").write_bytes(b"after the folder\n")
    return root, outside


def _swap_for_link(path: Path, target: Path) -> Callable[[], None]:
    def swap() -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        path.symlink_to(target)

    return swap


def _raise_eio() -> None:
    raise OSError(errno.EIO, os.strerror(errno.EIO))


# variant: (what is wrapped, folder, name, action, the item, its (kind, status), exit code)
WalkVariant = tuple[str, str, str | None, str, str, tuple[str, str], int]
WALK_VARIANTS: dict[str, WalkVariant] = {
    "subfolder removed after its parent was listed": (
        "listdir", "seized", None, "rmtree sub", "seized/sub", ("unknown", "skipped"), 3),
    "subfolder removed after it was lstat-ed, before it was opened": (
        "stat", "seized", "sub", "rmtree sub", "seized/sub", ("directory", "skipped"), 3),
    "folder removed while its entries were walked": (
        "listdir", "seized/sub", None, "rmtree sub", "seized/sub/x.txt", ("unknown", "skipped"), 3),
    "subfolder replaced by a symlink to outside after it was lstat-ed": (
        "stat", "seized", "sub", "link sub", "seized/sub",
        ("directory", "changed-during-read"), 3),
    "subfolder replaced by a symlink to outside before it was lstat-ed": (
        "listdir", "seized", None, "link sub", "seized/sub", ("symlink", "ok"), 0),
    "listing a folder fails with EIO": (
        "listdir", "seized/sub", None, "eio sub", "seized/sub", ("directory", "unreadable"), 3),
    "lstat of an entry fails with EIO": (
        "stat", "seized", "sub", "eio sub", "seized/sub", ("unknown", "unreadable"), 3),
    "file replaced by a symlink to outside after it was lstat-ed": (
        "stat", "seized", "a-before.txt", "link a-before.txt", "seized/a-before.txt",
        ("file", "changed-during-read"), 3),
}  # fmt: skip


@pytest.mark.parametrize("variant", list(WALK_VARIANTS))
def test_a_folder_removed_replaced_or_failing_while_walked_is_recorded_and_the_walk_goes_on(
    variant: str,
    cli: Cli,
    age_key: AgeKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    figures: Figures,
) -> None:
    wrapped, folder, name, action, subject, expected, exit_code = WALK_VARIANTS[variant]
    root, outside = _walk_tree(tmp_path)
    outside_before = snapshot(outside)
    verb, target = action.split(" ")
    link_to = outside / "secret.txt" if "." in target else outside
    act = {
        "rmtree": lambda: shutil.rmtree(root / target),
        "link": _swap_for_link(root / target, link_to),
        "eio": _raise_eio,
    }[verb]
    real = os.listdir if wrapped == "listdir" else os.stat
    hook = AfterWalkCall(real, tmp_path / folder, name, act)
    monkeypatch.setattr(os, wrapped, hook)
    out = tmp_path / "out" / "B.zip"
    out.parent.mkdir()
    try:
        result = run_cli(cli, *acquire_args(age_key, out, root))
    finally:
        monkeypatch.undo()

    assert hook.calls >= 2, "the fault was never made"
    manifest, _raw = read_manifest(out, age_key)
    items = items_by_path(manifest)
    item = items[subject.encode()]
    secret = hashlib.sha256(SECRET).hexdigest()
    never_followed = all(
        i.digests.get("sha256") != secret
        and not path_bytes(i.path).startswith((b"seized/sub/inner", b"seized/sub/secret"))
        for i in manifest.items
    )
    stderr = " ".join(result.stderr.split())
    named = exit_code == 0 or f"{expected[1]}: {subject}" in stderr
    held = (
        result.exit_code == exit_code
        and (item.kind, item.status) == expected
        and items[b"seized/z-after.txt"].status == "ok"
        and never_followed
        and named
    )
    figures.record(
        "fault: folder removed, replaced or failing while walked",
        1,
        int(held),
        [f"{item.kind} {item.status}"],
        note="removed after its parent's listing, after its lstat, while its entries were "
        "walked; a folder or file swapped for a symlink to outside; EIO listing a folder "
        "or lstat-ing an entry; the walk goes on",
    )
    assert result.exit_code == exit_code, result.stderr
    assert (item.kind, item.status) == expected, item.reason
    assert named, result.stderr
    assert never_followed, "something outside the source was read"
    assert items[b"seized/z-after.txt"].status == "ok", "the walk stopped"
    assert snapshot(outside) == outside_before
    if verb == "eio":
        assert item.errno == errno.EIO, item.reason
    if item.status == "skipped":
        assert item.errno == errno.ENOENT and item.reason and "vanished" in item.reason
    if item.status == "changed-during-read":
        assert item.stat_before is not None and item.stat_after is not None
        assert stat.S_ISLNK(item.stat_after.mode)
        assert item.location is None and item.digests == {}
    if item.kind == "symlink":
        assert item.symlink_target is not None
        assert path_bytes(item.symlink_target) == os.fsencode(outside)
    if (item.kind, item.status) != ("directory", "ok"):
        below = subject.encode() + b"/"
        assert not any(path_bytes(i.path).startswith(below) for i in manifest.items)
    verified_warnings(out, age_key)


# ---------------------------------------------------------------- 6. disk full: acquire


ACQUIRE_LEAVE = (0, 4096, 64 << 10, MiB, 3 * MiB - 4096, 3 * MiB,
                 *(3 * MiB + k * 4096 for k in range(1, 9)), 4 * MiB, 8 * MiB)  # fmt: skip


def _seized_tree(base: Path, seed: int) -> Path:
    rng = random.Random(seed)
    root = base / "seized"
    (root / "docs").mkdir(parents=True)
    (root / "big.bin").write_bytes(rng.randbytes(3 * MiB))
    (root / "small.bin").write_bytes(rng.randbytes(100 << 10))
    (root / "docs" / "a.txt").write_text("customer list\n")
    (root / "docs" / "b.csv").write_text("name,phone\n张伟,17012345678\n")
    return root


class FillAtFirstRead:
    """Wraps ``acquire.read_chunk``: before the first source bytes are read, another writer
    takes all but ``leave`` bytes of the output's file system."""

    def __init__(self, real: Callable[[int, int], bytes], disk_root: Path, leave: int) -> None:
        self.real, self.disk_root, self.leave = real, disk_root, leave
        self.filled = False

    def __call__(self, fd: int, size: int) -> bytes:
        if not self.filled:
            self.filled = True
            fill(self.disk_root, self.leave)
        return self.real(fd, size)


def test_acquire_onto_a_disk_that_fills_leaves_nothing_or_a_bundle_that_verifies(
    cli: Cli, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Figures
) -> None:
    """The output is a real 20 MiB tmpfs: it passes the free-space check, then another
    writer takes all but N bytes of it as the first source bytes are read."""
    root = _seized_tree(tmp_path, SEED + 2)
    age_atimes(root)
    before = snapshot(root)
    outcomes: list[str] = []
    wrong: dict[int, str] = {}
    for leave in ACQUIRE_LEAVE:
        with tmpfs(tmp_path / "small-disk") as disk_root:
            filling = FillAtFirstRead(acquire_module.read_chunk, disk_root, leave)
            monkeypatch.setattr(acquire_module, "read_chunk", filling)
            out = disk_root / "B.zip"
            result = run_cli(cli, *acquire_args(age_key, out, root))
            monkeypatch.undo()
            left = listing(disk_root)
            if result.exit_code == 5:
                outcome = "exit 5, nothing left"
                message = " ".join(result.stderr.split())
                if f"the disk holding {out} is full" not in message or left != [".filler"]:
                    wrong[leave] = f"{message!r}, left {left}"
            elif result.exit_code == 0:
                outcome = "exit 0, bundle verifies"
                verified_warnings(out, age_key)
                if left != [".filler", "B.custody.jsonl", "B.zip"]:
                    wrong[leave] = f"left {left}"
            else:
                outcome = f"exit {result.exit_code}"
                wrong[leave] = result.stderr
            outcomes.append(outcome)
        if snapshot(root) != before:
            wrong[leave] = "the source changed"
    with tmpfs(tmp_path / "small-disk", "size=2m") as disk_root:
        result = run_cli(cli, *acquire_args(age_key, disk_root / "B.zip", root))
        refused = result.exit_code == 5 and "not enough free space" in result.stderr
        outcomes.append("exit 5, refused before writing" if refused else f"exit {result.exit_code}")
        if not refused or listing(disk_root) != []:
            wrong[-1] = result.stderr
    figures.record(
        "fault: disk full under acquire's output",
        len(outcomes),
        len(outcomes) - len(wrong),
        outcomes,
        note="a 20 MiB tmpfs filled to 0 B .. 8 MiB free at the first read (the bundle "
        "needs about 3 MiB), and a 2 MiB tmpfs refused up front",
    )
    assert wrong == {}
    assert {"exit 5, nothing left", "exit 0, bundle verifies"} <= set(outcomes)


# ---------------------------------------------------------------- 7. disk full: extract


EXTRACT_LEAVE = (0, 4096, 512 << 10, MiB + 8192, 3 * MiB, 4 * MiB + 8192, 6 * MiB, 12 * MiB)


def _extractable(base: Path) -> tuple[Path, dict[str, bytes]]:
    rng = random.Random(SEED + 3)
    root = base / "seized"
    (root / "docs").mkdir(parents=True)
    content = {
        "seized/a-big.bin": rng.randbytes(3 * MiB),
        "seized/docs/note.txt": b"a small note\n",
        "seized/docs/photo.bin": rng.randbytes(MiB),
        "seized/z-last.bin": rng.randbytes(2 * MiB),
    }
    for rel, data in content.items():
        (base / rel).write_bytes(data)
    return root, content


def test_extract_onto_a_disk_that_is_full_writes_only_whole_verified_files_and_exits_5(
    cli: Cli, age_key: AgeKey, tmp_path: Path, figures: Figures
) -> None:
    root, content = _extractable(tmp_path)
    container = tmp_path / "B.zip"
    library_acquire(age_key, [root], container)
    log = container.with_name("B.custody.jsonl")
    bundle_before = (file_digest(container), file_digest(log))
    outcomes: list[str] = []
    wrong: dict[int, str] = {}
    for leave in EXTRACT_LEAVE:
        with tmpfs(tmp_path / "small-disk") as disk_root:
            fill(disk_root, leave)
            destination = disk_root / "restored"
            result = run_cli(cli, "extract", container, "--out", destination,
                             "--identity", age_key.identity_file, "--quiet")  # fmt: skip
            left = listing(disk_root)
            written = {
                rel: (destination / rel).read_bytes()
                for rel in content
                if (destination / rel).is_file()
            }
            partial = [p for p in left if p.endswith(".partial")]
            whole = all(written[rel] == content[rel] for rel in written)
            if result.exit_code == 5:
                outcome = "exit 5, only whole verified files"
                if "is full" not in result.stderr or partial or not whole:
                    wrong[leave] = f"{result.stderr!r} partial {partial} whole {whole}"
                if len(written) == len(content):
                    wrong[leave] = "exit 5 although every file was written"
            elif result.exit_code == 0:
                outcome = "exit 0, every file written"
                if written != content or partial:
                    wrong[leave] = f"written {sorted(written)}"
            else:
                outcome = f"exit {result.exit_code}"
                wrong[leave] = result.stderr
            outcomes.append(outcome)
        if (file_digest(container), file_digest(log)) != bundle_before:
            wrong[leave] = "the bundle or its custody log changed"
    figures.record(
        "fault: disk full under extract's destination",
        len(outcomes),
        len(outcomes) - len(wrong),
        outcomes,
        note="a 20 MiB tmpfs filled to 0 B .. 12 MiB free (the evidence is 6 MiB)",
    )
    assert wrong == {}
    assert {"exit 5, only whole verified files", "exit 0, every file written"} <= set(outcomes)


def test_extract_on_a_full_disk_names_the_destination_and_does_not_claim_nothing_was_left(
    cli: Cli, age_key: AgeKey, tmp_path: Path
) -> None:
    root, content = _extractable(tmp_path)
    container = tmp_path / "B.zip"
    library_acquire(age_key, [root], container)
    with tmpfs(tmp_path / "small-disk") as disk_root:
        fill(disk_root, 4 * MiB + 8192)  # room for the first file, not the next ones
        destination = disk_root / "restored"
        result = run_cli(cli, "extract", container, "--out", destination,
                         "--identity", age_key.identity_file, "--quiet")  # fmt: skip
        assert result.exit_code == 5
        assert (destination / "seized" / "a-big.bin").read_bytes() == content["seized/a-big.bin"]
        message = " ".join(result.stderr.split())
        assert str(destination) in message, message
        assert "Nothing was left" not in message, message


# ----------------------------------------------------------------- 8. disk full: export


EXPORT_RUNS = (("sha256sum", 0), ("hashdeep", 0), ("dfxml", 0), ("case", 0), ("bagit", 0),
               ("bagit", 2 * MiB), ("kit", 0))  # fmt: skip


@pytest.fixture
def exportable(age_key: AgeKey, tmp_path: Path) -> Path:
    root, _content = _extractable(tmp_path)
    container = tmp_path / "B.zip"
    library_acquire(age_key, [root], container)
    return container


def _export_onto_full_disk(
    cli: Cli, age_key: AgeKey, container: Path, disk_root: Path, format: str, leave: int
) -> tuple[Any, Path, list[str]]:
    fill(disk_root, leave)
    out = disk_root / f"export.{format}"
    result = run_cli(cli, "export", container, "--format", format, "--out", out,
                     "--identity", age_key.identity_file)  # fmt: skip
    return result, out, listing(disk_root)


def test_export_onto_a_full_disk_exits_5_and_leaves_nothing_at_out(
    cli: Cli, age_key: AgeKey, exportable: Path, tmp_path: Path, figures: Figures
) -> None:
    log = exportable.with_name("B.custody.jsonl")
    bundle_before = (file_digest(exportable), file_digest(log))
    outcomes: list[str] = []
    wrong: dict[str, str] = {}
    for format, leave in EXPORT_RUNS:
        with tmpfs(tmp_path / "small-disk") as disk_root:
            result, out, left = _export_onto_full_disk(cli, age_key, exportable, disk_root,
                                                       format, leave)  # fmt: skip
            held = result.exit_code == 5 and not out.exists() and left == [".filler"]
            outcomes.append(f"exit {result.exit_code}" + (", nothing left" if held else ""))
            if not held:
                wrong[f"{format}@{leave}"] = f"exit {result.exit_code}, left {left}"
        if (file_digest(exportable), file_digest(log)) != bundle_before:
            wrong[format] = "the bundle or its custody log changed"
    figures.record(
        "fault: disk full under export's output",
        len(EXPORT_RUNS),
        len(EXPORT_RUNS) - len(wrong),
        outcomes,
        note="sha256sum, hashdeep, dfxml, case, bagit (full, and 2 MiB free), kit",
    )
    assert wrong == {}


@pytest.mark.parametrize(
    "format",
    [
        "sha256sum",
        "dfxml",
        "bagit",
        "kit",
    ],
)  # fmt: skip
def test_export_onto_a_full_disk_says_the_disk_holding_out_is_full(
    format: str, cli: Cli, age_key: AgeKey, exportable: Path, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "small-disk") as disk_root:
        result, out, _left = _export_onto_full_disk(cli, age_key, exportable, disk_root,
                                                    format, 0)  # fmt: skip
    assert result.exit_code == 5
    message = " ".join(result.stderr.split())
    assert f"the disk holding {out} is full" in message, message


# ------------------------------------------------------------ 9. disk full: custody add


def _custody_add(cli: Cli, container: Path, key: SigningKey, actor: str) -> Any:
    return run_cli(cli, "custody", "add", container, "--action", "stored", "--actor", actor,
                   "--sign", key.private_pem)  # fmt: skip


def _log_fd_write(
    log: Path, real: Callable[[int, bytes], int], first_half: bool
) -> Callable[[int, Any], int]:
    """Wraps ``os.write``: writes to the custody log fail with ENOSPC, optionally after a
    first write that took half the line (a short write, as a filling disk gives)."""
    calls: list[int] = []

    def write(fd: int, data: Any) -> int:
        if fd_path(fd) != str(log):
            return real(fd, data)
        calls.append(len(data))
        if first_half and len(calls) == 1:
            return real(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return write


def _custody_outcome(result: Any, log: Path, before: bytes, figures: Figures) -> bool:
    after = log.read_bytes()
    if result.exit_code == 5 and after == before and "is full" in result.stderr:
        outcome = "exit 5, log byte-identical"
    elif after.startswith(before) and not after.endswith(b"\n"):
        outcome = f"exit {result.exit_code}, log ends in a torn line"
    else:
        outcome = f"exit {result.exit_code}, log changed"
    held = outcome == "exit 5, log byte-identical"
    figures.record(
        "fault: disk full appending a custody event",
        1,
        int(held),
        [outcome],
        note="os.write refusing with ENOSPC; a half line written then ENOSPC; a real tmpfs "
        "whose log page holds less than the event",
    )
    return held


def test_custody_add_refused_with_enospc_exits_5_and_leaves_the_log_byte_identical(
    cli: Cli, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, figures: Figures,
) -> None:  # fmt: skip
    root, _content = _extractable(tmp_path)
    container = tmp_path / "B.zip"
    library_acquire(age_key, [root], container)
    log = container.with_name("B.custody.jsonl")
    before = log.read_bytes()
    monkeypatch.setattr(os, "write", _log_fd_write(log, os.write, first_half=False))
    result = _custody_add(cli, container, signing_key, "Store clerk")
    monkeypatch.undo()
    assert _custody_outcome(result, log, before, figures), (result.exit_code, result.stderr)
    assert f"the disk holding {log} is full" in " ".join(result.stderr.split())
    assert _custody_add(cli, container, signing_key, "Store clerk").exit_code == 0


@pytest.mark.parametrize("how", ["half a line, then ENOSPC", "real tmpfs"])
def test_custody_add_on_a_disk_that_fills_mid_event_leaves_the_log_byte_identical(
    how: str, cli: Cli, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, figures: Figures,
) -> None:  # fmt: skip
    root = tmp_path / "seized"
    root.mkdir()
    (root / "note.txt").write_bytes(b"a small seizure\n")
    with contextlib.ExitStack() as stack:
        if how == "real tmpfs":
            folder = stack.enter_context(tmpfs(tmp_path / "small-disk"))
        else:
            folder = tmp_path / "out"
            folder.mkdir()
        container = folder / "B.zip"
        library_acquire(age_key, [root], container)
        log = container.with_name("B.custody.jsonl")
        if how == "real tmpfs":
            # events until the log's last page has room for part of the next one only
            for _event in range(8):
                if 0 < -len(log.read_bytes()) % 4096 < 600:
                    break
                assert _custody_add(cli, container, signing_key, "Store clerk").exit_code == 0
            assert 0 < -len(log.read_bytes()) % 4096 < 600
            fill(folder, 0)
        else:
            monkeypatch.setattr(os, "write", _log_fd_write(log, os.write, first_half=True))
        before = log.read_bytes()
        result = _custody_add(cli, container, signing_key, "Store clerk")
        monkeypatch.undo()
        held = _custody_outcome(result, log, before, figures)
    assert held, (result.exit_code, result.stderr)


# ------------------------------------------------------------ 10. output I/O errors


def test_an_output_io_error_exits_5_and_leaves_nothing_and_the_log_alone(
    cli: Cli, age_key: AgeKey, signing_key: SigningKey, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, figures: Figures,
) -> None:  # fmt: skip
    root = _seized_tree(tmp_path, SEED + 4)
    outcomes: dict[str, bool] = {}

    # EIO from fsync of the bundle's temporary file (a write the disk lost)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        if fd_path(fd).startswith(str(out_dir) + "/"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    result = run_cli(cli, *acquire_args(age_key, out_dir / "B.zip", root))
    monkeypatch.undo()
    message = " ".join(result.stderr.split())
    outcomes["acquire, EIO on fsync"] = (
        result.exit_code == 5
        and f"cannot write {out_dir / 'B.zip'}: Input/output error" in message
        and listing(out_dir) == []
    )

    # a read-only output file system
    with tmpfs(tmp_path / "ro-disk", "ro,size=1m") as ro:
        result = run_cli(cli, *acquire_args(age_key, ro / "B.zip", root))
        outcomes["acquire onto a read-only tmpfs"] = (
            result.exit_code == 5 and str(ro) in result.stderr and listing(ro) == []
        )
    made = out_dir / "B.zip"
    library_acquire(age_key, [root], made)
    with tmpfs(tmp_path / "ro-disk", "ro,size=1m") as ro:
        result = run_cli(cli, "extract", made, "--out", ro / "restored",
                         "--identity", age_key.identity_file, "--quiet")  # fmt: skip
        outcomes["extract onto a read-only tmpfs"] = (
            result.exit_code == 5 and "Read-only file system" in result.stderr
            and listing(ro) == []
        )  # fmt: skip

    # the custody log on a read-only mount
    log_before = made.with_name("B.custody.jsonl").read_bytes()
    with read_only_bind(out_dir, tmp_path / "ro-bundle") as ro_bundle:
        result = _custody_add(cli, ro_bundle / "B.zip", signing_key, "Store clerk")
        outcomes["custody add, log on a read-only mount"] = (
            result.exit_code == 5
            and "Read-only file system" in result.stderr
            and (ro_bundle / "B.custody.jsonl").read_bytes() == log_before
        )
    figures.record(
        "fault: output I/O error (EIO on fsync, read-only file system)",
        len(outcomes),
        sum(outcomes.values()),
        [f"{what}: {'exit 5, nothing written' if ok else 'NOT handled'}"
         for what, ok in outcomes.items()],
    )  # fmt: skip
    assert outcomes == dict.fromkeys(outcomes, True)


# ------------------------------------------------------ 11. a source on a read-only mount


def _ro_source(base: Path) -> Path:
    root = base / "seized"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "a.txt").write_bytes(b"alpha\n")
    (root / "b.bin").write_bytes(random.Random(SEED + 5).randbytes(CHUNK + 17))
    (root / "mine.txt").write_bytes(b"owned by nobody\n")
    (root / "link").symlink_to("docs/a.txt")
    for path in (root, root / "docs", root / "docs" / "a.txt", root / "b.bin"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    os.chown(root / "mine.txt", NOBODY, NOBODY)
    age_atimes(root)
    return root


def test_a_source_on_a_read_only_mount_is_acquired_untouched_with_o_noatime_told_truly(
    cli: Cli, age_key: AgeKey, world_dir: Path, figures: Figures
) -> None:
    if not O_NOATIME:
        pytest.skip("this platform has no O_NOATIME")
    root = _ro_source(world_dir)
    before = snapshot(root)
    outcomes: dict[str, bool] = {}
    out_dir = world_dir / "out"
    out_dir.mkdir()
    os.chown(out_dir, NOBODY, NOBODY)
    with read_only_bind(root, world_dir / "ro") as ro:
        # as root: O_NOATIME everywhere
        root_out = out_dir / "as-root.zip"
        result = run_cli(cli, *acquire_args(age_key, root_out, ro))
        manifest, _raw = read_manifest(root_out, age_key)
        opened = [i for i in manifest.items if i.kind in ("file", "directory")]
        outcomes["as root"] = (
            result.exit_code == 0
            and [s.noatime for s in manifest.sources] == [True]
            and all(i.noatime is True for i in opened)
            and not acquisition_warnings(verified_warnings(root_out, age_key))
        )
        # as nobody: refused on root's files and folders, granted on its own
        nobody_out = out_dir / "as-nobody.zip"
        run = as_nobody(acquire_args(age_key, nobody_out, ro), world_dir)
        nobody_manifest: Manifest = read_manifest(nobody_out, age_key)[0]
        truth = {  # O_NOATIME is granted to the owner only (or to root)
            path_bytes(i.path): i.noatime
            == (os.lstat(ro.parent / os.fsdecode(path_bytes(i.path))).st_uid == NOBODY)
            for i in nobody_manifest.items
            if i.kind in ("file", "directory")
        }
        outcomes["as nobody"] = (
            run.returncode == 0
            and [s.noatime for s in nobody_manifest.sources] == [False]
            and all(truth.values())
            and not acquisition_warnings(verified_warnings(nobody_out, age_key))
        )
        still_read_only = bool(os.statvfs(ro).f_flag & os.ST_RDONLY)
    unchanged = snapshot(root) == before
    figures.record(
        "fault: source on a read-only mount",
        len(outcomes),
        sum(ok and unchanged and still_read_only for ok in outcomes.values()),
        [f"{who}: {'acquired, O_NOATIME told truly' if ok else 'NOT as guaranteed'}"
         for who, ok in outcomes.items()],
        note="a read-only bind mount, acquired as root and as nobody; nothing written to it",
    )  # fmt: skip
    assert outcomes == {"as root": True, "as nobody": True}, (truth, run.stderr)
    assert still_read_only
    assert unchanged, "the source changed (content, times or atime)"
    items = items_by_path(nobody_manifest)
    assert items[b"ro/mine.txt"].noatime is True
    assert items[b"ro/b.bin"].noatime is False
    assert sorted(items) == [b"ro", b"ro/b.bin", b"ro/docs", b"ro/docs/a.txt", b"ro/link",
                             b"ro/mine.txt"]  # fmt: skip
