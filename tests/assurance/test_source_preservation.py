"""The source is left as it was, in every acquisition mode, and by ``verify --against``.

Every entry below the evidence folder (and a folder outside it that a symbolic link
points into) is recorded before and after: content SHA-256, symbolic link target, size,
mode, owner, group, inode, link count, device number, mtime, ctime, atime (in ns) and
extended attributes. Atimes are first moved ten days into the past, so that ``relatime``
would update them on any read or listing (a control shows it does on this mount). The
test itself never moves what it measures: it lists folders and reads files through
descriptors opened with ``O_NOATIME`` and records every stat before it reads a byte.

Each mode is a real ``python -m evidence_kit acquire`` run, then ``verify --against``.
What may change is what docs/format.md says: reading a symbolic link's target
(``readlink(2)``) updates the link's own atime; a user who does not own a file cannot use
``O_NOATIME`` on it, so its atime may change, and the manifest must say so
(``noatime: false``) for exactly those items; and a loop device reads its backing file
through the kernel, which may update that file's atime. Every change is named in the
figures; any other change fails.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from evidence_kit.models import ItemRecord, Manifest
from evidence_kit.naming import path_bytes
from tests.assurance.figures import Figures
from tests.conftest import CASE_ARGS, AgeKey, read_manifest, require_tool
from tests.tsa import LocalTsa

TOOL = (sys.executable, "-m", "evidence_kit")
O_NOATIME: int = getattr(os, "O_NOATIME", 0)
NOBODY = 65534
DAY_NS = 86_400 * 10**9
AGE_DAYS = 10
MIB = 1 << 20
RUN_TIMEOUT = 300


# --------------------------------------------------------------------- the snapshot


@dataclass(frozen=True)
class Entry:
    """What ``lstat`` and the extended attributes say about one object."""

    mode: int
    uid: int
    gid: int
    size: int
    inode: int
    nlink: int
    rdev: int
    mtime_ns: int
    ctime_ns: int
    atime_ns: int
    xattrs: tuple[tuple[str, bytes], ...]


FIELDS = tuple(Entry.__dataclass_fields__)


def _xattrs(path: bytes) -> tuple[tuple[str, bytes], ...]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as error:
        if error.errno in (errno.ENOTSUP, errno.EPERM):
            return ()
        raise
    return tuple(sorted((n, os.getxattr(path, n, follow_symlinks=False)) for n in names))


def _walk(root: bytes) -> Iterator[tuple[bytes, os.stat_result]]:
    """``root`` and everything below it, with its ``lstat``; folders are listed through
    a descriptor opened with ``O_NOATIME`` (a plain listing would move their atime)."""
    info = os.lstat(root)
    yield root, info
    if not stat.S_ISDIR(info.st_mode):
        return
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | O_NOATIME)
    try:
        names = sorted(os.listdir(fd))
    finally:
        os.close(fd)
    for name in names:
        yield from _walk(os.path.join(root, os.fsencode(name)))


def stat_snapshot(roots: list[Path]) -> dict[bytes, Entry]:
    """Every entry's metadata; nothing is opened but folders (``O_NOATIME``)."""
    entries = {}
    for root in roots:
        for path, info in _walk(os.fsencode(root)):
            entries[path] = Entry(
                stat.S_IMODE(info.st_mode) | stat.S_IFMT(info.st_mode),
                info.st_uid,
                info.st_gid,
                info.st_size,
                info.st_ino,
                info.st_nlink,
                info.st_rdev,
                info.st_mtime_ns,
                info.st_ctime_ns,
                info.st_atime_ns,
                _xattrs(path),
            )
    return entries


def content_snapshot(entries: dict[bytes, Entry]) -> dict[bytes, str]:
    """SHA-256 of every regular file and block device (read with ``O_NOATIME``) and the
    target of every symbolic link (``readlink`` moves the link's atime: call this only
    before the atimes are set, or after the last stat snapshot)."""
    contents = {}
    for path, entry in entries.items():
        if stat.S_ISLNK(entry.mode):
            contents[path] = "target " + os.readlink(path).hex()
        elif stat.S_ISREG(entry.mode) or stat.S_ISBLK(entry.mode):
            digest = hashlib.sha256()
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | O_NOATIME)
            try:
                while chunk := os.read(fd, MIB):
                    digest.update(chunk)
            finally:
                os.close(fd)
            contents[path] = "sha256 " + digest.hexdigest()
    return contents


def age_atimes(entries: dict[bytes, Entry]) -> None:
    """Every atime ``AGE_DAYS`` into the past (mtime kept), links included."""
    for path, entry in entries.items():
        atime = entry.atime_ns - AGE_DAYS * DAY_NS
        os.utime(path, ns=(atime, entry.mtime_ns), follow_symlinks=False)


def atime_is_observable(folder: Path) -> bool:
    """Control: on this mount, does a plain read or a plain listing move an old atime?"""
    probe = folder / "atime-control"
    probe.mkdir()
    (probe / "file.txt").write_bytes(b"control\n")
    entries = stat_snapshot([probe])
    age_atimes(entries)
    before = stat_snapshot([probe])
    (probe / "file.txt").read_bytes()
    os.listdir(probe)
    after = stat_snapshot([probe])
    shutil.rmtree(probe)
    return all(after[p].atime_ns != before[p].atime_ns for p in before)


# ---------------------------------------------------------------------- the evidence


@dataclass
class Evidence:
    base: Path
    out: Path
    identity: Path
    image: Path
    roots: list[Path] = field(default_factory=list)
    owned_by_nobody: set[bytes] = field(default_factory=set)

    @property
    def folder(self) -> Path:
        return self.base / "evidence"


def build_evidence(base: Path, age_key: AgeKey, *, nobody: bool) -> Evidence:
    """A seizure with every kind of object: plain files (empty, small, over the pack
    limit), deep and empty folders, links inside, outside, dangling and in a loop, hard
    links, a FIFO, a socket, a character device (where mknod is allowed), extended
    attributes, and a raw disk image."""
    folder, outside, out = base / "evidence", base / "outside", base / "out"
    tree, special = folder / "tree", folder / "special"
    for made in (tree / "docs" / "deep", special / "empty" / "nested-empty", outside, out):
        made.mkdir(parents=True)
    (tree / "docs" / "a.txt").write_text("name,phone\n张伟,17012345678\n")
    (tree / "docs" / "deep" / "b.bin").write_bytes(os.urandom(200_000))
    (tree / "docs" / "empty.txt").write_bytes(b"")
    (tree / "big.bin").write_bytes(os.urandom(1_500_000))
    (folder / "loose.bin").write_bytes(os.urandom(5_000))
    (outside / "target.txt").write_text("outside the evidence: never to be read\n")
    (special / "file.txt").write_text("linked to\n")
    (special / "inside-link").symlink_to("file.txt")
    (special / "folder-link").symlink_to("empty")
    (special / "outside-link").symlink_to("../../outside/target.txt")
    (special / "absolute-link").symlink_to(outside / "target.txt")
    (special / "dangling-link").symlink_to("nowhere")
    (special / "loop-a").symlink_to("loop-b")
    (special / "loop-b").symlink_to("loop-a")
    os.link(special / "file.txt", special / "hard-link.txt")
    os.mkfifo(special / "pipe")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(special / "socket"))
    with contextlib.suppress(PermissionError):  # refused in some containers: the rest stands
        os.mknod(special / "null-device", 0o644 | stat.S_IFCHR, os.makedev(1, 3))
    os.setxattr(special / "file.txt", "user.origin", b"seized phone")
    os.setxattr(special / "empty", "user.note", b"\x00\xffbinary")
    image = folder / "disk.img"
    with image.open("wb") as disk:
        disk.truncate(8 * MIB)
        disk.write(os.urandom(MIB))
        disk.seek(6 * MIB)
        disk.write(os.urandom(MIB))
    identity = base / "lab.key"
    shutil.copyfile(age_key.identity_file, identity)
    evidence = Evidence(base, out, identity, image, roots=[folder, outside])
    for path in base.rglob("*"):
        if not path.is_symlink() and path.is_dir():
            path.chmod(0o755)
        elif not path.is_symlink() and path.is_file():
            path.chmod(0o644)
    identity.chmod(0o600)
    if nobody:
        for path in (out, base / "home", identity):
            path.mkdir(exist_ok=True) if path.suffix != ".key" else None
            os.chown(path, NOBODY, NOBODY)
        mine = [tree / "docs", tree / "docs" / "a.txt", special / "empty", tree / "big.bin"]
        for path in mine:
            os.chown(path, NOBODY, NOBODY)
        evidence.owned_by_nobody = {os.fsencode(p) for p in mine}
    return evidence


@pytest.fixture
def base() -> Iterator[Path]:
    """A folder under /tmp the user nobody can traverse (removed afterwards)."""
    folder = Path(tempfile.mkdtemp(prefix="ek-source-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------ the modes


@dataclass(frozen=True)
class Mode:
    name: str
    sources: Callable[[Evidence], list[Path]]
    options: tuple[str, ...] = ()
    image: bool = False
    loop: bool = False
    tsa: bool = False
    nobody: bool = False


def _tree(e: Evidence) -> list[Path]:
    return [e.folder / "tree"]


MODES = [
    Mode("one file", lambda e: [e.folder / "tree" / "docs" / "a.txt"]),
    Mode("a folder", _tree),
    Mode(
        "several sources",
        lambda e: [e.folder / "tree" / "docs", e.folder / "loose.bin", e.folder / "special"],
    ),
    Mode(
        "links, hard links, empty folders, fifo, socket, device", lambda e: [e.folder / "special"]
    ),
    Mode("--image on a raw image file", lambda e: [e.image], image=True),
    Mode("--image on a read-only loop device", lambda e: [e.image], image=True, loop=True),
    Mode(
        "--hash sha256,sha1,md5",
        lambda e: [e.folder / "tree", e.folder / "special"],
        options=("--hash", "sha256,sha1,md5"),
    ),
    Mode("with a TSA", _tree, tsa=True),
    Mode(
        "--unattended",
        lambda e: [e.folder / "tree", e.folder / "special"],
        options=("--unattended",),
    ),
    Mode("as the user nobody", lambda e: [e.folder / "tree", e.folder / "special"], nobody=True),
]
FAST = {
    "links, hard links, empty folders, fifo, socket, device",
    "--image on a raw image file",
    "as the user nobody",
}


def _params() -> list[object]:
    return [
        pytest.param(mode, id=mode.name, marks=() if mode.name in FAST else pytest.mark.slow)
        for mode in MODES
    ]


# --------------------------------------------------------------------- running it


def _command(mode: Mode, *args: str | Path) -> list[str]:
    words = [*TOOL, *(str(a) for a in args)]
    if mode.nobody:
        setpriv = require_tool("setpriv")
        return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *words]
    return words


def _run(mode: Mode, evidence: Evidence, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(evidence.base / "home"),
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        _command(mode, *args), capture_output=True, text=True, env=env, cwd=evidence.out,
        timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done


@dataclass
class Comparison:
    """Entry by entry, what changed and whether the docs say it may."""

    compared: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    undocumented: list[str] = field(default_factory=list)
    bad_entries: set[bytes] = field(default_factory=set)
    changed: dict[str, list[bytes]] = field(default_factory=dict)  # reason -> entries


def compare(
    before: dict[bytes, Entry],
    after: dict[bytes, Entry],
    documented: Callable[[bytes, Entry, str], str | None],
) -> Comparison:
    result = Comparison()
    assert sorted(after) == sorted(before), (
        f"entries added {sorted(set(after) - set(before))}, "
        f"removed {sorted(set(before) - set(after))}"
    )
    for path, old in before.items():
        new = after[path]
        result.compared += 1
        changed = [name for name in FIELDS if getattr(old, name) != getattr(new, name)]
        if not changed:
            result.outcomes["unchanged"] += 1
            continue
        reasons = [documented(path, old, name) for name in changed]
        for name, reason in zip(changed, reasons, strict=True):
            if reason is None:
                result.bad_entries.add(path)
                result.undocumented.append(
                    f"{path.decode(errors='replace')}: {name} "
                    f"{getattr(old, name)!r} -> {getattr(new, name)!r}"
                )
        outcome = " + ".join(sorted({r or "UNDOCUMENTED" for r in reasons}))
        result.outcomes[outcome] += 1
        result.changed.setdefault(outcome, []).append(path)
    return result


def _items(manifest: Manifest) -> dict[bytes, ItemRecord]:
    """Manifest items by the absolute path of the object they record: the source's path,
    then the item's path below its label (the source's base name)."""
    found = {}
    for item in manifest.items:
        source = path_bytes(manifest.sources[item.source].path)
        label, below = os.path.basename(source), path_bytes(item.path)
        assert below == label or below.startswith(label + b"/"), item.path.display
        found[source + below[len(label) :]] = item
    return found


def attach_read_only_loop(image: Path, cleanup: contextlib.ExitStack) -> Path:
    """``image`` on a free loop device, read-only (skips visibly where that is refused)."""
    losetup = require_tool("losetup")
    attach = subprocess.run(
        [losetup, "-f", "--show", "-r", str(image)], capture_output=True, text=True, check=False
    )
    if attach.returncode != 0 or not attach.stdout.strip():
        pytest.skip(f"cannot attach a loop device here: {attach.stderr.strip()}")
    device = Path(attach.stdout.strip())
    cleanup.callback(subprocess.run, [losetup, "-d", str(device)], check=False)
    return device


@pytest.mark.parametrize("mode", _params())
def test_acquisition_and_verify_against_leave_the_source_unchanged(
    mode: Mode, base: Path, age_key: AgeKey, figures: Figures, request: pytest.FixtureRequest
) -> None:
    if not O_NOATIME:
        pytest.skip("this platform has no O_NOATIME")
    if mode.nobody and os.geteuid() != 0:
        pytest.skip("needs root to switch to the user nobody")
    evidence = build_evidence(base, age_key, nobody=mode.nobody)
    observable = atime_is_observable(base)
    loop: Path | None = None
    with contextlib.ExitStack() as cleanup:
        if mode.loop:
            loop = attach_read_only_loop(evidence.image, cleanup)
            evidence.roots.append(loop)
        if mode.nobody:
            probe = subprocess.run(_command(mode, "--version"), capture_output=True, check=False)
            if probe.returncode != 0:
                pytest.skip(f"nobody cannot run the tool: {probe.stderr[-300:]!r}")
        extra: list[str | Path] = list(mode.options)
        if mode.tsa:
            tsa: LocalTsa = request.getfixturevalue("local_tsa")
            extra += ["--tsa", tsa.url]
        sources = mode.sources(evidence) if not mode.loop else []
        given: list[str | Path] = list(sources)
        if mode.image:
            given = ["--image", loop or evidence.image]
        container = evidence.out / "B.zip"

        entries = stat_snapshot(evidence.roots)
        contents_before = content_snapshot(entries)
        age_atimes(entries)
        before = stat_snapshot(evidence.roots)
        acquired = _run(mode, evidence, "acquire", *given, "--out", container, *CASE_ARGS,
                        "--recipient", age_key.recipient, "--json", *extra)  # fmt: skip
        assert acquired.returncode == 0, acquired.stderr
        after_acquire = stat_snapshot(evidence.roots)
        against = [loop] if loop else [evidence.image] if mode.image else sources
        verified = _run(mode, evidence, "verify", container, "--identity", evidence.identity,
                        *(w for a in against for w in ("--against", a)), "--json")  # fmt: skip
        report = json.loads(verified.stdout)
        assert (verified.returncode, report["verdict"]) == (0, "verified"), report["findings"]
        after_verify = stat_snapshot(evidence.roots)
        contents_after = content_snapshot(after_verify)

    manifest, _raw = read_manifest(container, age_key)
    items = _items(manifest)
    assert set(items) <= set(before), "an item that is not in the source"
    below = [os.fsencode(p) for p in ([loop or evidence.image] if mode.image else sources)]
    acquired_entries = {p for p in before if any(p == s or p.startswith(s + b"/") for s in below)}
    assert set(items) == acquired_entries, "every acquired entry has its item"
    assert json.loads(acquired.stdout)["complete"] is True

    def refused(path: bytes) -> bool:
        """O_NOATIME is refused to nobody on what it does not own."""
        return mode.nobody and path not in evidence.owned_by_nobody

    def documented(path: bytes, old: Entry, name: str) -> str | None:
        if name != "atime_ns":
            return None
        if stat.S_ISLNK(old.mode):
            return "symlink atime (readlink)"
        if mode.nobody and refused(path) and (stat.S_ISREG(old.mode) or stat.S_ISDIR(old.mode)):
            return "atime where O_NOATIME was refused"
        if mode.loop and path == os.fsencode(evidence.image):
            return "backing file atime (the kernel loop driver reads it)"
        return None

    by_acquire = compare(before, after_acquire, documented)
    by_verify = compare(after_acquire, after_verify, documented)
    assert contents_after == contents_before, "content or link target changed"

    # The manifest tells the truth about O_NOATIME, item by item: true exactly where it was
    # used; an atime that moved is never recorded as kept, and (where this mount shows
    # atimes) every file or folder recorded as read without O_NOATIME did move.
    dishonest = []
    for path, item in items.items():
        moved = after_acquire[path].atime_ns != before[path].atime_ns
        if item.kind in ("file", "directory", "disk-image"):
            expected = not refused(path)
            if item.noatime is not expected:
                dishonest.append(
                    f"{item.path.display}: noatime {item.noatime}, expected {expected}"
                )
            if observable and item.noatime is False and not moved:
                dishonest.append(f"{item.path.display}: noatime false, yet its atime held")
        if moved and item.noatime is True:
            dishonest.append(f"{item.path.display}: atime moved, yet noatime: true")
    for source in manifest.sources:
        if source.noatime is not (not mode.nobody):  # nobody: refused somewhere in each source
            dishonest.append(f"source {source.path.display}: noatime {source.noatime}")

    changed = {
        step: {
            reason: sorted(
                os.path.relpath(p, os.fsencode(base)).decode(errors="replace") for p in paths
            )
            for reason, paths in comparison.changed.items()
        }
        for step, comparison in (("acquire", by_acquire), ("verify --against", by_verify))
    }
    compared = by_acquire.compared + by_verify.compared
    held = compared - len(by_acquire.bad_entries) - len(by_verify.bad_entries)
    reasons = list((by_acquire.outcomes + by_verify.outcomes).elements())
    note = (
        f"{by_acquire.compared} entries compared after acquire and after verify --against; "
        f"changes: {changed}; atime observable on this mount: {observable}"
    )
    figures.record(f"source preservation: {mode.name}", compared, held, reasons, note)
    every = "entries compared after acquire and after verify --against, in every mode"
    figures.record("source preservation: every mode", compared, held, reasons, every)
    problems = [f"acquire changed the source: {u}" for u in by_acquire.undocumented]
    problems += [f"verify --against changed the source: {u}" for u in by_verify.undocumented]
    problems += [f"manifest: {d}" for d in dishonest]
    assert problems == [], "\n".join(problems)
