"""export --format bagit: a BagIt 1.0 bag that bagit-python validates, byte for byte,
and that fails its validation once anything in it changes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bagit  # the consumer: bagit-python (Library of Congress)
import pytest

from evidence_kit import __version__
from evidence_kit.acquire import ImageRequest
from evidence_kit.custody import read_custody_log
from evidence_kit.exporters.bagit import NOT_IN_PAYLOAD, UnrepresentableName, manifest_path
from tests.conftest import CASE, AgeKey, Bundle, MakeBundle, SigningKey, require_tool

HOSTILE = {
    "back\\slash.txt": b"one",
    "new\nline.txt": b"two",
    "carriage\rreturn.txt": b"three",
    "100% sure.txt": b"four",
    "  spaces  .txt": b"five",
    " leading space.txt": b"six",
    "客户名单.csv": "张伟,17012345678\n".encode(),
}
ALL_ALGORITHMS = ("sha256", "sha512", "sha1", "md5")


@pytest.fixture
def hostile_tree(tmp_path: Path) -> Path:
    """Hostile names in subfolders, a hard link, a symlink, a fifo and an empty folder."""
    root = tmp_path / "seized"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    for name, data in HOSTILE.items():
        (root / "sub" / name).write_bytes(data)
    (root / "sub" / "deeper" / "large.bin").write_bytes(bytes(range(256)) * 8192)
    os.link(root / "sub" / "new\nline.txt", root / "sub" / "deeper" / "hard link.txt")
    (root / "link-to-sub").symlink_to("sub")
    os.mkfifo(root / "pipe")
    return root


def regular_files(root: Path) -> dict[str, bytes]:
    """Every regular file below ``root``'s parent, as the bag's payload names it."""
    return {
        "data/" + str(path.relative_to(root.parent)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def cli_json(cli: Any, *args: str | Path) -> tuple[int, dict[str, Any]]:
    result = cli(*args, "--json")
    assert "Traceback" not in result.stderr
    return result.exit_code, json.loads(result.stdout)


def export_bag(cli: Any, bundle: Bundle, out: Path, key: AgeKey, *extra: str | Path) -> Any:
    return cli_json(cli, "export", bundle.container, "--format", "bagit", "--out", out,
                    "--identity", key.identity_file, *extra)  # fmt: skip


def bagit_cli_validates(bag: Path) -> subprocess.CompletedProcess[str]:
    """``bagit.py --validate`` as a person runs it (the script installed beside Python)."""
    script = Path(sys.executable).with_name("bagit.py")
    command = str(script) if script.exists() else require_tool("bagit.py")
    return subprocess.run([command, "--validate", str(bag)], capture_output=True, text=True,
                          check=False)  # fmt: skip


def test_bagit_python_validates_the_bag_of_a_hostile_tree(
    cli: Any, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(hostile_tree, hash_algorithms=ALL_ALGORITHMS)
    out = tmp_path / "bag"
    status, result = export_bag(cli, bundle, out, age_key)
    assert status == 0, result
    expected = regular_files(hostile_tree)
    assert result["entries"] == len(expected) == len(HOSTILE) + 2

    bag = bagit.Bag(str(out))
    assert bag.validate(fast=False) and bag.validate(fast=True)
    assert sorted(bag.algorithms) == sorted(ALL_ALGORITHMS)
    checked = bagit_cli_validates(out)
    assert checked.returncode == 0 and "is valid" in checked.stderr, checked.stderr

    assert bag.payload_entries().keys() == expected.keys()
    for name, data in expected.items():
        assert (out / name).read_bytes() == data
    linked = out / "data/seized/sub/new\nline.txt", out / "data/seized/sub/deeper/hard link.txt"
    assert os.path.samefile(*linked)  # one file, two names, each listed and checked
    assert bag.info["Payload-Oxum"] == f"{sum(map(len, expected.values()))}.{len(expected)}"
    manifest = (out / "manifest-sha256.txt").read_text(encoding="utf-8")
    assert "  data/seized/sub/new%0Aline.txt\n" in manifest
    assert "  data/seized/sub/carriage%0Dreturn.txt\n" in manifest
    assert "  data/seized/sub/100% sure.txt\n" in manifest

    rows = (out / NOT_IN_PAYLOAD).read_text(encoding="utf-8").splitlines()
    assert rows == [  # in manifest order; seized/empty is in data/, but no manifest lists it
        "kind\tstatus\tpath\tsymlink-target",
        "directory\tok\tseized/empty\t",
        "symlink\tok\tseized/link-to-sub\tsub",
        "fifo\tok\tseized/pipe\t",
    ]
    assert NOT_IN_PAYLOAD in bag.tagfile_entries()


def test_bag_info_and_bagit_txt_say_what_the_bag_is(
    cli: Any, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(hostile_tree)
    out = tmp_path / "bag"
    assert export_bag(cli, bundle, out, age_key)[0] == 0
    assert (out / "bagit.txt").read_bytes() == (
        b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    )
    info = bagit.Bag(str(out)).info
    assert info["External-Identifier"] == bundle.result.bundle_id
    assert info["Bag-Software-Agent"] == f"evidence-kit {__version__}"
    assert info["Case-Number"] == CASE.case_number
    assert info["Evidence-Number"] == CASE.evidence_number
    assert info["Examiner"] == CASE.examiner
    assert info["External-Description"] == CASE.description
    assert info["Bundle-SHA256"] == hashlib.sha256(bundle.container.read_bytes()).hexdigest()
    assert bundle.result.bundle_id in info["Internal-Sender-Description"]
    assert len(info["Bagging-Date"]) == 10 and info["Bagging-Date"][4] == "-"
    # a bundle acquired with SHA-256 only has SHA-256 manifests only
    assert sorted(p.name for p in out.glob("*manifest-*")) == [
        "manifest-sha256.txt",
        "tagmanifest-sha256.txt",
    ]


def test_a_disk_image_is_one_payload_file(
    cli: Any, make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    image = tmp_path / "suspect-disk.img"
    image.write_bytes(os.urandom(3 * 1024 * 1024))
    bundle = make_bundle([], image=ImageRequest(image, window_size=1024 * 1024))
    out = tmp_path / "bag"
    status, result = export_bag(cli, bundle, out, age_key)
    assert status == 0 and result["entries"] == 1, result
    bag = bagit.Bag(str(out))
    assert bag.validate(fast=False)
    assert list(bag.payload_entries()) == ["data/suspect-disk.img"]
    assert (out / "data/suspect-disk.img").read_bytes() == image.read_bytes()
    assert bag.info["Payload-Oxum"] == f"{3 * 1024 * 1024}.1"


def change_a_byte(bag: Path) -> None:
    victim = bag / "data/seized/sub/carriage\rreturn.txt"
    victim.write_bytes(b"THREE")  # same size: the Payload-Oxum still matches


def rename_a_file(bag: Path) -> None:
    victim = bag / "data/seized/sub/客户名单.csv"
    victim.rename(victim.with_name("renamed.csv"))  # same size: the Payload-Oxum still matches


def delete_a_file(bag: Path) -> None:
    (bag / "data/seized/sub/100% sure.txt").unlink()


def add_a_file(bag: Path) -> None:
    (bag / "data/seized/sub/planted.txt").write_bytes(b"planted")


def edit_bag_info(bag: Path) -> None:
    info = bag / "bag-info.txt"
    info.write_text(info.read_text().replace(CASE.examiner, "Someone Else"))


@pytest.mark.parametrize(
    ("tamper", "details"),
    [
        (change_a_byte, {("ChecksumMismatch", "data/seized/sub/carriage\rreturn.txt")}),
        (rename_a_file, {("FileMissing", "data/seized/sub/客户名单.csv"),
                         ("UnexpectedFile", "data/seized/sub/renamed.csv")}),
        (edit_bag_info, {("ChecksumMismatch", "bag-info.txt")}),
        (delete_a_file, "Payload-Oxum validation failed"),
        (add_a_file, "Payload-Oxum validation failed"),
    ],
)  # fmt: skip
def test_validation_fails_once_the_bag_is_changed(
    cli: Any, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path,
    tamper: Callable[[Path], None], details: set[tuple[str, str]] | str,
) -> None:  # fmt: skip
    bundle = make_bundle(hostile_tree, hash_algorithms=("sha256", "md5"))
    out = tmp_path / "bag"
    assert export_bag(cli, bundle, out, age_key)[0] == 0
    assert bagit.Bag(str(out)).is_valid()
    tamper(out)
    with pytest.raises(bagit.BagValidationError) as caught:
        bagit.Bag(str(out)).validate(fast=False)
    if isinstance(details, str):  # a file more or less: the Payload-Oxum check fails first
        assert caught.value.message.startswith(details)
    else:  # the typed errors: one per algorithm for a changed file
        found = {(type(d).__name__, d.path) for d in caught.value.details}
        assert found == details
        if "ChecksumMismatch" in str(details):
            assert {d.algorithm for d in caught.value.details} == {"sha256", "md5"}
    assert bagit_cli_validates(out).returncode == 1


def test_a_name_that_is_not_utf8_is_refused_and_nothing_is_written(
    cli: Any, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    (hostile_tree / "sub" / "raw-\udcff-name.bin").write_bytes(b"not UTF-8 in its name")
    bundle = make_bundle(hostile_tree)
    exports = tmp_path / "exports"
    exports.mkdir()
    status, error = export_bag(cli, bundle, exports / "bag", age_key)
    assert status == 2, error
    assert "seized/sub/raw-\\xff-name.bin" in error["message"] and "UTF-8" in error["message"]
    assert "--format sha256sum" in error["hint"]
    assert list(exports.iterdir()) == []  # no bag, no temporary folder beside it


def test_names_equal_after_unicode_normalisation_are_refused(
    cli: Any, make_bundle: MakeBundle, tmp_path: Path, age_key: AgeKey
) -> None:
    """bagit-python compares names after NFC: two such names would be one to it."""
    root = tmp_path / "seized"
    root.mkdir()
    (root / unicodedata.normalize("NFC", "café.txt")).write_bytes(b"composed")
    (root / unicodedata.normalize("NFD", "café.txt")).write_bytes(b"decomposed")
    status, error = export_bag(cli, make_bundle(root), tmp_path / "bag", age_key)
    assert status == 2 and "NFC" in error["message"], error
    assert not (tmp_path / "bag").exists()


@pytest.mark.parametrize(
    "name",
    ["x\n\n\ny.txt", "x\r\r\ry.txt", "page\x0cbreak.txt", "next\x85line.txt",
     "line\u2028separator.txt", "trailing space ", "trailing nbsp\xa0", "a%0Ab.txt"],
)  # fmt: skip
def test_refused_names_are_names_bagit_python_reads_back_as_others(
    name: str, tmp_path: Path
) -> None:
    """Each refused name, written as bagit-python itself writes names, fails its own
    validation: the refusal keeps a bag from listing a file validators cannot find."""
    with pytest.raises(UnrepresentableName):
        manifest_path(name.encode())
    bag = tmp_path / "bag"
    (bag / "data").mkdir(parents=True)
    (bag / "data" / name).write_bytes(b"x")
    (bag / "bagit.txt").write_bytes(b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    line = f"{hashlib.sha256(b'x').hexdigest()}  data/{bagit._encode_filename(name)}\n"
    (bag / "manifest-sha256.txt").write_text(line, encoding="utf-8")
    assert not bagit.Bag(str(bag)).is_valid()


@pytest.mark.parametrize("name", ["a%25b.txt", "a%0ab.txt", "a%0db.txt"])
def test_names_that_look_percent_encoded_are_refused(name: str) -> None:
    """RFC 8493 readers decode these; bagit-python does not: no line suits both."""
    with pytest.raises(UnrepresentableName):
        manifest_path(name.encode())
    assert manifest_path(b"100%.txt") == "data/100%.txt"
    assert manifest_path(b"a\nb\rc") == "data/a%0Ab%0Dc"


def test_an_existing_out_folder_is_refused_and_untouched(
    cli: Any, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(hostile_tree)
    out = tmp_path / "bag"
    out.mkdir()
    (out / "keep.txt").write_text("keep me")
    status, error = export_bag(cli, bundle, out, age_key)
    assert status == 2 and "already exists" in error["message"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag", "out", "seized"]


def test_a_signed_export_is_recorded_as_an_exported_custody_event(
    cli: Any, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path,
    signing_key: SigningKey,
) -> None:  # fmt: skip
    bundle = make_bundle(hostile_tree)
    out = tmp_path / "bag"
    status, result = export_bag(cli, bundle, out, age_key, "--sign", signing_key.private_pem,
                                "--actor", "Lab 7, examiner Wu")  # fmt: skip
    assert status == 0, result
    events = read_custody_log(bundle.custody_log).events
    assert [e.action for e in events] == ["acquired", "exported"]
    assert events[1].note == f"bagit export, {len(HOSTILE) + 2} entries"
    assert result["recorded_event"]["event"]["seq"] == 1
    assert bagit.Bag(str(out)).is_valid()
    assert cli("verify", bundle.container, "--identity", age_key.identity_file, "-q").exit_code == 0
