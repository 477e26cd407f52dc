"""Extraction is safe: it writes only inside the destination, never through a symlink, never
over an existing file, and only bytes that verified (ASSURANCE.md "Extraction").

Hostile names are made the honest way: acquisition's walk is wrapped so chosen entries get a
crafted ``relpath``, and the bundle is then genuinely sealed with those names in its manifest.
Tampered members are made by flipping a byte in the real container and rewriting the custody
log's container hash, so extraction gets past the bundle-level checks and meets the bad member.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pyzipper

from evidence_kit import acquire as acquire_module
from evidence_kit.bundle import ContentReader, open_container, unlock
from evidence_kit.container import read_layout
from evidence_kit.custody import custody_log_path, event_line
from evidence_kit.errors import VerificationFailed
from evidence_kit.extract import ExtractRequest, extract_bundle
from evidence_kit.models import CustodyEvent, ExtractResult, ItemRecord, Manifest
from evidence_kit.naming import display_name, path_bytes
from evidence_kit.sources import filesystem
from tests.conftest import AgeKey, Bundle, MakeBundle, read_manifest

Cli = Callable[..., Any]

# --------------------------------------------------------------------------- helpers


def rename_on_walk(monkeypatch: pytest.MonkeyPatch, renames: dict[bytes, bytes]) -> None:
    """Acquisition sees ``renames[relpath]`` instead of the real relpath of those entries."""
    real_walk = filesystem.walk

    def walk(source: int, path: str, label: bytes) -> Iterator[filesystem.SourceEntry]:
        for entry in real_walk(source, path, label):
            new = renames.get(entry.relpath)
            yield entry if new is None else dataclasses.replace(entry, relpath=new)

    monkeypatch.setattr(acquire_module, "walk", walk)


def snapshot(root: Path, exclude: Path) -> dict[str, tuple[str, str]]:
    """Every object under ``root`` (symlinks not followed) except the ``exclude`` subtree."""
    found: dict[str, tuple[str, str]] = {}
    for folder, dirnames, filenames in os.walk(root):
        here = Path(folder)
        dirnames[:] = [d for d in dirnames if here / d != exclude]
        for name in dirnames + filenames:
            path = here / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                found[str(path.relative_to(root))] = ("symlink", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[str(path.relative_to(root))] = ("file", digest)
            else:
                found[str(path.relative_to(root))] = (stat.filemode(info.st_mode)[0], "")
    return found


def partial_files(root: Path) -> list[str]:
    """Temp files extraction might have left anywhere below ``root`` (dot files included)."""
    return [
        os.path.join(folder, name)
        for folder, _dirs, names in os.walk(root)
        for name in names
        if name.endswith(".partial")
    ]


def bundle_password(container: Path, age_key: AgeKey) -> bytes:
    bundle = open_container(container, trusted=None)
    try:
        unlock(bundle, age_key.material, trusted=None)
        assert bundle.key is not None
        return bundle.key.password
    finally:
        bundle.close()


def item_by_path(manifest: Manifest, path: str) -> ItemRecord:
    matches = [item for item in manifest.items if item.path.display == path]
    assert len(matches) == 1, path
    return matches[0]


def flip_member_byte(container: Path, member: str) -> None:
    """Flip one byte in the middle of ``member``'s stored (encrypted) data."""
    with container.open("rb") as handle:
        layout = read_layout(handle)
    entry = layout.entry(member)
    assert entry is not None and entry.compressed_size > 100, member
    data = bytearray(container.read_bytes())
    data[entry.data_offset + entry.compressed_size // 2] ^= 0x40
    container.write_bytes(bytes(data))


def reseal_custody_hash(container: Path) -> None:
    """Make the (unsigned) event 0 record the container's current SHA-256."""
    log = custody_log_path(container)
    lines = log.read_bytes().splitlines()
    assert len(lines) == 1
    event = CustodyEvent.model_validate_json(lines[0])
    assert event.signature is None
    current = hashlib.sha256(container.read_bytes()).hexdigest()
    log.write_bytes(event_line(event.model_copy(update={"container_sha256": current})))


def extract_json(cli: Cli, bundle: Bundle, destination: Path, age_key: AgeKey) -> Any:
    result = cli(
        "extract",
        bundle.container,
        "--out",
        destination,
        "--identity",
        age_key.identity_file,
        "--json",
        "--quiet",
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result


def outcome_of(result: ExtractResult, path: str) -> tuple[str, str | None]:
    matches = [(i.outcome, i.reason) for i in result.items if i.path == path]
    assert len(matches) == 1, path
    return matches[0]


# ---------------------------------------------------------------------- hostile names


def test_hostile_names_write_nothing_outside_the_destination(
    monkeypatch: pytest.MonkeyPatch, make_bundle: MakeBundle, tmp_path: Path, age_key: AgeKey
) -> None:
    """Names that could escape are refused by name; the safe items still come out."""
    source = tmp_path / "seized"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "child.txt").write_bytes(b"child of a renamed folder")
    (source / "safe.txt").write_bytes(b"safe content")
    (source / "lnk").symlink_to("safe.txt")
    hostile: dict[bytes, bytes] = {
        b"seized/f00": b"../../escape-dotdot",
        b"seized/f01": os.fsencode(tmp_path / "escape-absolute"),
        b"seized/f02": b"seized/../../escape-middle",
        b"seized/f03": b"seized/a\x00b",
        b"seized/f04": b"seized/a//b",
        b"seized/f05": b".",
        b"seized/f06": b"seized/./f06",
        b"seized/f07": b"seized/trailing/",
        b"seized/f08": b"seized/" + b"x" * 256,
        b"seized/f09": b"",
        b"seized/f10": b"..",
        b"seized/f11": b"/evidence-kit-test-escape-root",
        b"seized/lnk": b"../../escape-link",
        b"seized/sub": b"../escape-folder",
    }
    safe_renames = {b"seized/backslash": b"C:\\x"}  # one legal Linux name: stays inside
    for relpath in [*hostile, *safe_renames]:
        name = relpath.removeprefix(b"seized/").decode()
        if name not in ("lnk", "sub"):
            (source / name).write_bytes(b"content of " + relpath)
    rename_on_walk(monkeypatch, hostile | safe_renames)
    bundle = make_bundle(source)
    manifest = read_manifest(bundle.container, age_key)[0]
    assert {path_bytes(i.path) for i in manifest.items} >= set(hostile.values())

    destination = tmp_path / "arena" / "level" / "dest"
    destination.parent.mkdir(parents=True)
    before = snapshot(tmp_path, exclude=destination)
    result = extract_bundle(ExtractRequest(bundle.container, destination, key=age_key.material))

    assert snapshot(tmp_path, exclude=destination) == before
    assert not Path("/evidence-kit-test-escape-root").exists()
    unsafe = {f.subject for f in result.findings if f.code == "extract-unsafe-name"}
    assert unsafe == {display_name(name) for name in hostile.values()}
    assert {f.code for f in result.findings} == {"extract-unsafe-name"}
    assert (destination / "C:\\x").read_bytes() == b"content of seized/backslash"
    assert (destination / "seized" / "safe.txt").read_bytes() == b"safe content"
    assert (destination / "seized" / "sub" / "child.txt").read_bytes() == (
        b"child of a renamed folder"
    )
    every_object = {
        str(Path(folder, name).relative_to(destination))
        for folder, dirs, files in os.walk(destination)
        for name in dirs + files
    }
    assert every_object == {
        "C:\\x",
        "seized",
        "seized/safe.txt",
        "seized/sub",
        "seized/sub/child.txt",
    }


# ------------------------------------------------------------- symlinks in the destination


def test_a_symlinked_folder_in_the_destination_is_never_written_through(
    make_bundle: MakeBundle, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    bundle = make_bundle(small_tree)
    outside = tmp_path / "outside"
    outside.mkdir()
    destination = tmp_path / "dest"
    destination.mkdir()
    (destination / "seized").symlink_to(outside)

    result = extract_bundle(ExtractRequest(bundle.container, destination, key=age_key.material))

    assert list(outside.iterdir()) == []
    assert os.readlink(destination / "seized") == str(outside)
    assert result.written == 0
    assert {item.outcome for item in result.items} == {"failed"}
    assert {f.code for f in result.findings} == {"extract-write-failed"}
    assert len(result.findings) == len(result.items)
    assert not result.complete


def test_a_bundled_symlink_cannot_redirect_a_later_file_outside(
    monkeypatch: pytest.MonkeyPatch, make_bundle: MakeBundle, tmp_path: Path, age_key: AgeKey
) -> None:
    """``seized/link -> OUTSIDE`` then a file at ``seized/link/pwn.txt``: nothing lands outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    source = tmp_path / "seized"
    source.mkdir()
    (source / "link").symlink_to(outside)
    (source / "zz.txt").write_bytes(b"would escape")
    rename_on_walk(monkeypatch, {b"seized/zz.txt": b"seized/link/pwn.txt"})
    bundle = make_bundle(source)
    destination = tmp_path / "dest"

    result = extract_bundle(ExtractRequest(bundle.container, destination, key=age_key.material))

    assert list(outside.iterdir()) == []
    link_copy = destination / "seized" / "link"
    assert not link_copy.is_symlink()
    assert outcome_of(result, "seized/link") == ("failed", "extract-collision")
    assert (link_copy / "pwn.txt").read_bytes() == b"would escape"  # inside, in a real folder


def test_a_symlink_at_a_files_destination_name_is_a_collision_and_its_target_untouched(
    make_bundle: MakeBundle, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    bundle = make_bundle(small_tree)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    destination = tmp_path / "dest"
    (destination / "seized" / "docs").mkdir(parents=True)
    (destination / "seized" / "docs" / "customers.csv").symlink_to(victim)

    result = extract_bundle(ExtractRequest(bundle.container, destination, key=age_key.material))

    assert victim.read_bytes() == b"keep me"
    assert (destination / "seized" / "docs" / "customers.csv").is_symlink()
    assert outcome_of(result, "seized/docs/customers.csv") == ("failed", "extract-collision")
    assert [f.code for f in result.findings] == ["extract-collision"]
    assert (destination / "seized" / "large.bin").read_bytes() == (
        small_tree / "large.bin"
    ).read_bytes()


# -------------------------------------------------------------------------- collisions


def test_an_existing_file_is_reported_as_a_collision_never_overwritten_and_exits_5(
    cli: Cli, make_bundle: MakeBundle, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    bundle = make_bundle(small_tree)
    destination = tmp_path / "dest"
    existing = destination / "seized" / "docs" / "customers.csv"
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"the examiner's own notes")

    result = extract_json(cli, bundle, destination, age_key)

    assert result.exit_code == 5
    document = json.loads(result.stdout)
    assert [(f["code"], f["subject"]) for f in document["findings"]] == [
        ("extract-collision", "seized/docs/customers.csv")
    ]
    assert existing.read_bytes() == b"the examiner's own notes"
    assert (destination / "seized" / "docs" / "deep" / "random.bin").read_bytes() == (
        small_tree / "docs" / "deep" / "random.bin"
    ).read_bytes()
    assert partial_files(destination) == []


@pytest.mark.skip(reason="needs a case-insensitive file system; the test machines use ext4")
def test_names_colliding_only_on_a_case_insensitive_file_system() -> None:
    """``A.txt`` and ``a.txt`` on a case-insensitive destination: one is a collision."""


# ------------------------------------------------------------------- tampered members


@pytest.mark.parametrize("role", ["item", "pack"])
def test_a_tampered_member_leaves_no_file_and_no_partial_and_exits_1(
    role: str,
    cli: Cli,
    make_bundle: MakeBundle,
    small_tree: Path,
    tmp_path: Path,
    age_key: AgeKey,
) -> None:
    bundle = make_bundle(small_tree)
    manifest = read_manifest(bundle.container, age_key)[0]
    large = item_by_path(manifest, "seized/large.bin")
    small = item_by_path(manifest, "seized/docs/deep/random.bin")
    assert large.location is not None and large.location.inner is None
    assert small.location is not None and small.location.inner is not None
    target = large if role == "item" else small
    assert target.location is not None
    flip_member_byte(bundle.container, target.location.member)
    reseal_custody_hash(bundle.container)
    victims = {
        item.path.display
        for item in manifest.items
        if item.location is not None and item.location.member == target.location.member
    }
    destination = tmp_path / "dest"

    result = extract_json(cli, bundle, destination, age_key)

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    failed = {(f["subject"], f["code"]) for f in document["findings"]}
    assert {subject for subject, _code in failed} == victims
    assert {code for _subject, code in failed} <= {
        "member-authentication-failed",
        "item-digest-mismatch",
    }
    for victim in victims:
        assert not (destination / victim).exists(), victim
    assert partial_files(destination) == []
    survivors = [
        item for item in manifest.items if item.kind == "file" and item.path.display not in victims
    ]
    assert survivors
    for item in survivors:
        copy = destination / item.path.display
        original = small_tree.parent / item.path.display
        assert copy.read_bytes() == original.read_bytes(), item.path.display


def test_pyzipper_extract_leaves_a_partial_file_for_a_tampered_member(
    make_bundle: MakeBundle, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    """Why extraction does its own temp-and-rename: the stock call leaves the bad bytes."""
    bundle = make_bundle(small_tree)
    large = item_by_path(read_manifest(bundle.container, age_key)[0], "seized/large.bin")
    assert large.location is not None
    password = bundle_password(bundle.container, age_key)
    flip_member_byte(bundle.container, large.location.member)
    out = tmp_path / "pyzipper-out"
    with pyzipper.AESZipFile(bundle.container) as archive:
        archive.setpassword(password)
        with pytest.raises(pyzipper.BadZipFile, match="Bad HMAC"):
            archive.extract(large.location.member, path=out)
    leftover = out / large.location.member
    assert leftover.is_file()
    assert leftover.stat().st_size > 0


# ------------------------------------------------------------------ bundle-level refusal


@pytest.mark.parametrize("damage", ["custody-log-missing", "custody-container-hash-mismatch"])
@pytest.mark.parametrize("destination_exists", [False, True])
def test_a_bundle_failing_bundle_level_checks_is_refused_and_nothing_written(
    damage: str,
    destination_exists: bool,
    cli: Cli,
    make_bundle: MakeBundle,
    small_tree: Path,
    tmp_path: Path,
    age_key: AgeKey,
) -> None:
    bundle = make_bundle(small_tree)
    if damage == "custody-log-missing":
        bundle.custody_log.unlink()
    else:
        large = item_by_path(read_manifest(bundle.container, age_key)[0], "seized/large.bin")
        assert large.location is not None
        flip_member_byte(bundle.container, large.location.member)
    destination = tmp_path / "dest"
    if destination_exists:
        destination.mkdir()

    result = extract_json(cli, bundle, destination, age_key)

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert (document["kind"], document["exit_code"]) == ("evidence-kit/error", 1)
    assert document["message"].startswith("refusing to extract")
    assert f"({damage}:" in document["message"]
    if destination_exists:
        assert list(destination.iterdir()) == []
    else:
        assert not destination.exists()
    with pytest.raises(VerificationFailed):
        extract_bundle(ExtractRequest(bundle.container, destination, key=age_key.material))
    assert destination.exists() == destination_exists


def test_a_bundle_with_an_altered_key_slot_is_refused_as_altered_not_as_a_wrong_key(
    cli: Cli, make_bundle: MakeBundle, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    bundle = make_bundle(small_tree)
    flip_member_byte(bundle.container, "keyslots/00-x25519.age")
    destination = tmp_path / "dest"

    result = extract_json(cli, bundle, destination, age_key)

    assert not destination.exists()
    assert result.exit_code == 1, result.stderr


# ---------------------------------------------------------------------- size and bytes


def test_every_extracted_file_has_the_manifests_size_and_digest(
    make_bundle: MakeBundle, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    bundle = make_bundle(small_tree, hash_algorithms=("sha256", "md5"))
    manifest = read_manifest(bundle.container, age_key)[0]
    destination = tmp_path / "dest"

    result = extract_bundle(ExtractRequest(bundle.container, destination, key=age_key.material))

    assert result.complete, result.findings
    files = [item for item in manifest.items if item.kind == "file"]
    assert len(files) == 4
    assert result.bytes_written == sum(item.stored_size or 0 for item in files)
    for item in files:
        data = (destination / item.path.display).read_bytes()
        assert len(data) == item.stored_size, item.path.display
        assert hashlib.sha256(data).hexdigest() == item.digests["sha256"]
        assert hashlib.md5(data).hexdigest() == item.digests["md5"]  # noqa: S324 (a digest match)


def test_output_is_capped_at_the_manifests_size(
    monkeypatch: pytest.MonkeyPatch,
    make_bundle: MakeBundle,
    small_tree: Path,
    tmp_path: Path,
    age_key: AgeKey,
) -> None:
    """A member that yields more than recorded (injected at the read) is cut off, not written."""
    bundle = make_bundle(small_tree)
    real_chunks = ContentReader.item_chunks
    extra_pulled = 0

    def endless(self: ContentReader, item: ItemRecord) -> Iterator[bytes]:
        nonlocal extra_pulled
        yield from real_chunks(self, item)
        if item.path.display == "seized/large.bin":
            while True:  # a stream that never ends: only the cap stops it
                extra_pulled += 1
                yield b"\0" * 65536

    monkeypatch.setattr(ContentReader, "item_chunks", endless)
    destination = tmp_path / "dest"

    result = extract_bundle(ExtractRequest(bundle.container, destination, key=age_key.material))

    assert [(f.code, f.subject) for f in result.findings] == [
        ("item-size-mismatch", "seized/large.bin")
    ]
    assert extra_pulled == 1
    assert not (destination / "seized" / "large.bin").exists()
    assert partial_files(destination) == []


# ------------------------------------------------------------------- metadata restored


def test_times_modes_empty_folders_fifos_and_hard_links_are_restored(
    make_bundle: MakeBundle, tmp_path: Path, age_key: AgeKey
) -> None:
    source = tmp_path / "seized"
    (source / "sub" / "deeper").mkdir(parents=True)
    (source / "empty").mkdir()
    (source / "script.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (source / "script.sh").chmod(0o755)
    (source / "sub" / "deeper" / "data.bin").write_bytes(os.urandom(3000))
    (source / "sub" / "big.bin").write_bytes(os.urandom(1_200_000))
    (source / "hard-a").write_bytes(b"one inode, two names")
    os.link(source / "hard-a", source / "hard-b")
    (source / "link").symlink_to("sub/deeper/data.bin")
    os.mkfifo(source / "pipe")
    objects = [
        "script.sh",
        "sub/deeper/data.bin",
        "sub/big.bin",
        "hard-a",
        "link",
        "pipe",
        "sub/deeper",
        "sub",
        "empty",
        ".",
    ]  # deepest folders last: setting a child's time does not touch its folder's
    for number, name in enumerate(objects):
        mtime = 1_500_000_000_000_000_000 + number * 86_400_000_000_123
        os.utime(source / name, ns=(mtime, mtime), follow_symlinks=False)
    recorded = {name: (source / name).lstat().st_mtime_ns for name in objects}
    bundle = make_bundle(source)
    destination = tmp_path / "dest"

    result = extract_bundle(ExtractRequest(bundle.container, destination, key=age_key.material))

    assert result.complete, result.findings
    copy = destination / "seized"
    for name, mtime in recorded.items():
        if name != "pipe":
            assert (copy / name).lstat().st_mtime_ns == mtime, name
    for name in ("script.sh", "sub/deeper/data.bin", "sub/big.bin", "hard-a", "hard-b"):
        assert stat.S_IMODE((copy / name).lstat().st_mode) == 0o600, name
    for name in (".", "sub", "sub/deeper", "empty"):
        assert stat.S_IMODE((copy / name).lstat().st_mode) == 0o700, name
    assert list((copy / "empty").iterdir()) == []
    assert os.readlink(copy / "link") == "sub/deeper/data.bin"
    assert (copy / "hard-a").stat().st_ino == (copy / "hard-b").stat().st_ino
    assert (copy / "hard-a").stat().st_nlink == 2
    assert outcome_of(result, "seized/hard-b")[0] == "hardlink"
    assert outcome_of(result, "seized/pipe")[0] == "not-materialised"
    assert not os.path.lexists(copy / "pipe")


# ---------------------------------------------------------------- the bundle is left alone


def test_extraction_never_touches_the_container_or_its_custody_log(
    make_bundle: MakeBundle, small_tree: Path, tmp_path: Path, age_key: AgeKey
) -> None:
    bundle = make_bundle(small_tree)

    def state(path: Path) -> tuple[bytes, int, int]:
        info = path.stat()
        return path.read_bytes(), info.st_mtime_ns, info.st_size

    before = (state(bundle.container), state(bundle.custody_log))
    result = extract_bundle(ExtractRequest(bundle.container, tmp_path / "d", key=age_key.material))
    assert result.complete
    assert (state(bundle.container), state(bundle.custody_log)) == before
    assert sorted(p.name for p in bundle.container.parent.iterdir()) == sorted(
        [bundle.container.name, bundle.custody_log.name]
    )


def test_a_wrong_key_exits_4_and_creates_no_destination(
    cli: Cli, make_bundle: MakeBundle, small_tree: Path, tmp_path: Path, other_age_key: AgeKey
) -> None:
    bundle = make_bundle(small_tree)
    destination = tmp_path / "dest"

    result = extract_json(cli, bundle, destination, other_age_key)

    assert result.exit_code == 4
    assert "no key slot opens" in result.stderr
    assert not destination.exists()
