"""Acquisition fidelity for names and times: exact bytes in, exact bytes out.

Assurance given (ASSURANCE.md "Acquisition fidelity", odd names and exact times): names
that zip metadata cannot hold (non-UTF-8 bytes, NFC vs NFD, case-only differences,
newlines, backslashes, a leading dash, Chinese and emoji, 255-byte components, a path
longer than PATH_MAX) are recorded as their exact bytes, shown in an escaped display
form without raw control characters, and recreated byte for byte on extraction. Times
(1970, before 1970, year 2200, arbitrary nanoseconds) are recorded as exact nanosecond
strings with RFC 3339 UTC, and restored exactly on the extracted copies.
"""

from __future__ import annotations

import hashlib
import os
import stat
import unicodedata
from pathlib import Path

import pytest

from evidence_kit.extract import ExtractRequest, extract_bundle
from evidence_kit.naming import path_bytes
from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.conftest import AgeKey, MakeBundle, items_by_path, read_manifest

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PATH_MAX = 4096


def write_at(dir_fd: int, name: bytes, data: bytes) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def tree_of(dir_fd: int, prefix: bytes) -> dict[bytes, bytes | None]:
    """Every object below ``dir_fd`` by exact relative bytes: file content, None for folders.

    Walks by descriptor, so paths longer than PATH_MAX work.
    """
    found: dict[bytes, bytes | None] = {}
    for name in os.listdir(dir_fd):
        raw = os.fsencode(name)
        relpath = prefix + b"/" + raw
        info = os.stat(raw, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode):
            found[relpath] = None
            child = os.open(raw, DIRECTORY_FLAGS, dir_fd=dir_fd)
            try:
                found.update(tree_of(child, relpath))
            finally:
                os.close(child)
        else:
            assert stat.S_ISREG(info.st_mode), relpath
            fd = os.open(raw, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
            try:
                data = b""
                while chunk := os.read(fd, 1 << 20):
                    data += chunk
            finally:
                os.close(fd)
            found[relpath] = data
    return found


def tree_at(root: Path, label: bytes) -> dict[bytes, bytes | None]:
    fd = os.open(root, DIRECTORY_FLAGS)
    try:
        return {label: None, **tree_of(fd, label)}
    finally:
        os.close(fd)


ODD_NAMES = [
    b"caf\xe9.txt",  # Latin-1, not UTF-8
    unicodedata.normalize("NFC", "é.txt").encode(),
    unicodedata.normalize("NFD", "é.txt").encode(),
    b"Case.txt",
    b"case.txt",
    b"CASE.txt",
    b"new\nline.txt",
    b"carriage\rreturn.txt",
    b"tab\there.txt",
    b"\x1b[31mred.txt",
    b"back\\slash.txt",
    b"-leading-dash.txt",
    b"--help",
    "证据 聊天记录📱🔑.txt".encode(),
    b"n" * 251 + b".txt",
    ("文" * 85).encode(),
    b" leading and trailing space ",
    "nel\u0085c1.txt".encode(),  # a C1 control, valid UTF-8
    b"raw\x9bbyte.txt",  # a lone C1 byte, not UTF-8
    "line\u2028separator.txt".encode(),
    "bidi\u202etxt.exe".encode(),  # right-to-left override: shows as "bidiexe.txt"
]
UNSAFE_IN_DISPLAY = {
    *range(0x20),
    *range(0x7F, 0xA0),
    0x2028,
    0x2029,
    0x200E,
    0x200F,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
    0xFEFF,
}


def build_odd_tree(root: Path) -> tuple[dict[bytes, bytes | None], bytes]:
    """The odd names at the top, in an odd folder, and one path longer than PATH_MAX.

    Returns the expected tree (exact relative bytes below the label) and the deep path.
    """
    root.mkdir()
    expected: dict[bytes, bytes | None] = {b"seized": None}
    top = os.open(root, DIRECTORY_FLAGS)
    try:
        for name in ODD_NAMES:
            assert len(name) <= 255
            content = b"content of " + name
            write_at(top, name, content)
            expected[b"seized/" + name] = content
        folder = "目录\nwith newline".encode()
        os.mkdir(folder, dir_fd=top)
        expected[b"seized/" + folder] = None
        inner = os.open(folder, DIRECTORY_FLAGS, dir_fd=top)
        try:
            write_at(inner, b"caf\xe9 inside.txt", b"nested odd name")
            expected[b"seized/" + folder + b"/caf\xe9 inside.txt"] = b"nested odd name"
        finally:
            os.close(inner)
        relpath = b"seized"
        parent = os.dup(top)
        try:
            for level in range(24):
                component = f"{level:02d}-".encode() + b"d" * 197
                os.mkdir(component, dir_fd=parent)
                relpath += b"/" + component
                expected[relpath] = None
                child = os.open(component, DIRECTORY_FLAGS, dir_fd=parent)
                os.close(parent)
                parent = child
            write_at(parent, b"bottom.txt", b"very deep")
            relpath += b"/bottom.txt"
            expected[relpath] = b"very deep"
        finally:
            os.close(parent)
    finally:
        os.close(top)
    assert len(relpath) > PATH_MAX
    return expected, relpath


def test_odd_names_survive_exactly_and_are_recreated_byte_for_byte(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    root = tmp_path / "seized"
    expected, deep = build_odd_tree(root)
    assert tree_at(root, b"seized") == expected  # the file system kept every name apart

    bundle = make_bundle(root)
    manifest, _raw = read_manifest(bundle.container, age_key)
    items = items_by_path(manifest)

    assert bundle.result.complete, bundle.result.problems
    assert set(items) == set(expected)
    for relpath, content in expected.items():
        item = items[relpath]
        if content is None:
            assert (item.kind, item.status) == ("directory", "ok"), relpath
        else:
            assert (item.kind, item.status) == ("file", "ok"), relpath
            assert item.digests["sha256"] == hashlib.sha256(content).hexdigest(), relpath
    assert items[deep].stored_size == len(b"very deep")
    report = verify_bundle(VerifyRequest(bundle.container, key=age_key.material, against=[root]))
    assert report.verdict == "verified", report.findings  # the source re-read by exact names

    out = tmp_path / "extracted"
    result = extract_bundle(ExtractRequest(bundle.container, out, key=age_key.material))
    assert result.complete, result.findings
    assert tree_at(out / "seized", b"seized") == expected


def test_display_form_escapes_control_characters_and_undecodable_bytes(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    root = tmp_path / "seized"
    build_odd_tree(root)
    items = items_by_path(read_manifest(make_bundle(root).container, age_key)[0])

    for item in items.values():
        display = item.path.display
        assert not any(ord(c) in UNSAFE_IN_DISPLAY for c in display), repr(display)
    displays = {item.path.display for item in items.values()}
    assert len(displays) == len(items), "two names share one display form"
    assert items[b"seized/new\nline.txt"].path.display == "seized/new\\nline.txt"
    assert items[b"seized/carriage\rreturn.txt"].path.display == "seized/carriage\\rreturn.txt"
    assert items[b"seized/tab\there.txt"].path.display == "seized/tab\\there.txt"
    assert items[b"seized/\x1b[31mred.txt"].path.display == "seized/\\x1b[31mred.txt"
    assert items[b"seized/caf\xe9.txt"].path.display == "seized/caf\\xe9.txt"
    assert items[b"seized/back\\slash.txt"].path.display == "seized/back\\\\slash.txt"
    assert items["seized/nel\u0085c1.txt".encode()].path.display == "seized/nel\\u0085c1.txt"
    assert items[b"seized/raw\x9bbyte.txt"].path.display == "seized/raw\\x9bbyte.txt"
    line_separator = "seized/line\u2028separator.txt".encode()
    assert items[line_separator].path.display == "seized/line\\u2028separator.txt"
    assert items["seized/bidi\u202etxt.exe".encode()].path.display == "seized/bidi\\u202etxt.exe"
    emoji = "证据 聊天记录📱🔑.txt"
    assert items[b"seized/" + emoji.encode()].path.display == "seized/" + emoji
    nfc, nfd = (unicodedata.normalize(form, "é.txt") for form in ("NFC", "NFD"))
    assert items[b"seized/" + nfc.encode()].path.display == "seized/" + nfc
    assert items[b"seized/" + nfd.encode()].path.display == "seized/" + nfd


def test_odd_source_folder_name_becomes_the_exact_label(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    """The SOURCE folder's own name (not UTF-8, with a newline) is kept exactly as the label."""
    label = b"\xe9vidence\n-2026"
    source = os.path.join(os.fsencode(tmp_path), label)
    os.mkdir(source)
    fd = os.open(source, DIRECTORY_FLAGS)
    try:
        write_at(fd, b"inside.txt", b"inside")
    finally:
        os.close(fd)

    bundle = make_bundle(Path(os.fsdecode(source)))
    manifest, _raw = read_manifest(bundle.container, age_key)

    assert set(items_by_path(manifest)) == {label, label + b"/inside.txt"}
    assert path_bytes(manifest.sources[0].path) == source
    assert manifest.sources[0].label == "\\xe9vidence\\n-2026"
    out = tmp_path / "extracted"
    result = extract_bundle(ExtractRequest(bundle.container, out, key=age_key.material))
    assert result.complete, result.findings
    copy = os.path.join(os.fsencode(out), label)
    assert tree_at(Path(os.fsdecode(copy)), label) == {
        label: None,
        label + b"/inside.txt": b"inside",
    }


# ------------------------------------------------------------------------------- times

NS = 10**9
TIMES = {
    "epoch.txt": (0, "1970-01-01T00:00:00Z"),
    "before-1970.txt": (-1_000_000_123, "1969-12-31T23:59:58.999999877Z"),
    "year-2200.txt": (7_258_118_400 * NS + 123_456_789, "2200-01-01T00:00:00.123456789Z"),
    "nanoseconds.txt": (1_700_000_000 * NS + 123_456_789, "2023-11-14T22:13:20.123456789Z"),
    "one-ns.txt": (1, "1970-01-01T00:00:00.000000001Z"),
}
FOLDER_TIME = (4_102_444_800 * NS + 999_999_999, "2100-01-01T00:00:00.999999999Z")
LINK_TIME = (-86_400 * NS * 365, "1969-01-01T00:00:00Z")


def test_times_are_recorded_exactly_and_restored_exactly(
    make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    """1970, before 1970, 2200 and nanoseconds: manifest ns strings equal the exact integers,
    RFC 3339 strings are exact, and extraction restores mtime_ns on the copies."""
    root = tmp_path / "seized"
    folder = root / "folder"
    folder.mkdir(parents=True)
    for name, (ns, _utc) in TIMES.items():
        path = folder / name
        path.write_bytes(name.encode())
        os.utime(path, ns=(ns, ns))
    link = folder / "link"
    link.symlink_to("epoch.txt")
    os.utime(link, ns=(LINK_TIME[0], LINK_TIME[0]), follow_symlinks=False)
    os.utime(folder, ns=(FOLDER_TIME[0], FOLDER_TIME[0]))
    held = {p: os.lstat(p).st_mtime_ns for p in [*(folder / n for n in TIMES), link, folder]}
    wanted = {**{folder / n: t[0] for n, t in TIMES.items()}, link: LINK_TIME[0]}
    wanted[folder] = FOLDER_TIME[0]
    if held != wanted:
        pytest.skip(f"this file system does not hold these times exactly: {held}")

    bundle = make_bundle(root)
    manifest, raw = read_manifest(bundle.container, age_key)
    items = items_by_path(manifest)

    cases = {
        **{b"seized/folder/" + n.encode(): t for n, t in TIMES.items()},
        b"seized/folder/link": LINK_TIME,
        b"seized/folder": FOLDER_TIME,
    }
    for relpath, (ns, utc) in cases.items():
        item = items[relpath]
        assert (item.mtime.ns, item.mtime.utc) == (str(ns), utc), relpath
        if item.kind != "symlink":  # reading a link's target sets its atime (readlink(2))
            assert (item.atime.ns, item.atime.utc) == (str(ns), utc), relpath
        assert item.mtime.clock_source is None
    big = str(TIMES["year-2200.txt"][0])
    assert int(big) > 2**53
    assert f'"ns":"{big}"'.encode() in raw, "ns must be a JSON string (RFC 8785 limit)"

    out = tmp_path / "extracted"
    result = extract_bundle(ExtractRequest(bundle.container, out, key=age_key.material))
    assert result.complete, result.findings
    copy = out / "seized" / "folder"
    for name, (ns, _utc) in TIMES.items():
        assert os.lstat(copy / name).st_mtime_ns == ns, name
        assert (copy / name).read_bytes() == name.encode()
    assert os.lstat(copy / "link").st_mtime_ns == LINK_TIME[0]
    assert os.lstat(copy).st_mtime_ns == FOLDER_TIME[0]
