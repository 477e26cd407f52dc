"""export --format hashdeep: a known-hashes file that ``hashdeep -a`` audits an extracted
tree against.

Assurance given, with hashdeep 4.4 run for real:

- the audit command the export prints (``cd EXTRACTED && hashdeep -a -vv -k LIST -o f
  -l -r .``) passes on a tree extracted from a bundle with hostile names (commas, a
  backslash, quotes and markup, spaces, Chinese, a byte that is not UTF-8, names that
  look like hashdeep's own header and comment lines), a hard link, an empty file and a
  symlink to a folder; and it fails for one changed byte, one deleted file and one added
  file, naming the file each time;
- every line is the very line hashdeep writes for the extracted file, byte for byte
  (so non-UTF-8 names are written as their exact bytes), with md5, sha1 and sha256
  columns for a bundle acquired with them and sha256 alone otherwise;
- a name holding a newline or a carriage return, which hashdeep cannot represent, and a
  bundle with no stored file are refused with exit 2 and nothing is written.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence_kit.exporters import EXPORT_FORMATS
from evidence_kit.naming import path_bytes
from tests.conftest import AgeKey, MakeBundle, read_manifest, require_tool

Cli = Callable[..., Any]

HOSTILE = {
    "co,mma,,.txt": b"one",
    "back\\slash.txt": b"two",
    "<script>&\"quotes'.html": b"<b>three</b>",
    "  spaces  .txt": b"four",
    "客户名单.csv": "张伟,17012345678\n".encode(),
    "%%%% HASHDEEP-1.0": b"looks like a header",
    "## comment": b"looks like a comment",
    "empty": b"",
}
RAW_NAME = b"raw-\xff-name.bin"


@pytest.fixture
def hostile_tree(tmp_path: Path) -> Path:
    root = tmp_path / "seized"
    (root / "sub").mkdir(parents=True)
    for name, data in HOSTILE.items():
        (root / "sub" / name).write_bytes(data)
    (root / "sub" / os.fsdecode(RAW_NAME)).write_bytes(b"not UTF-8 in its name")
    (root / "large.bin").write_bytes(bytes(range(256)) * 4096)
    os.link(root / "large.bin", root / "sub" / "hard-link.bin")
    (root / "link-to-sub").symlink_to("sub")
    return root


def cli_json(cli: Cli, *args: str | Path) -> tuple[int, dict[str, Any]]:
    result = cli(*args, "--json")
    assert "Traceback" not in result.stderr
    return result.exit_code, json.loads(result.stdout)


def audit_command(listing: Path) -> list[str]:
    """The command the export tells the user to run in the extracted folder."""
    hint = EXPORT_FORMATS["hashdeep"].check_hint
    prefix = "cd EXTRACTED && "
    assert hint.startswith(prefix)
    return shlex.split(hint[len(prefix) :].format(out=listing))


def audit(listing: Path, extracted: Path) -> subprocess.CompletedProcess[bytes]:
    require_tool("hashdeep")
    return subprocess.run(audit_command(listing), cwd=extracted, capture_output=True, check=False)


def export_and_extract(
    cli: Cli, container: Path, age_key: AgeKey, tmp_path: Path
) -> tuple[Path, Path, dict[str, Any]]:
    extracted = tmp_path / "case"
    assert cli("extract", container, "--out", extracted,
               "--identity", age_key.identity_file, "-q").exit_code == 0  # fmt: skip
    listing = tmp_path / "known.hashdeep"
    status, result = cli_json(cli, "export", container, "--format", "hashdeep", "--out", listing,
                              "--identity", age_key.identity_file)  # fmt: skip
    assert status == 0, result
    return listing, extracted, result


@pytest.mark.parametrize("tampering", ["changed byte", "deleted file", "added file"])
def test_hashdeep_audit_passes_on_the_extracted_tree_and_fails_after_tampering(
    cli: Cli, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path,
    tampering: str,
) -> None:  # fmt: skip
    bundle = make_bundle(hostile_tree, hash_algorithms=("sha256", "sha1", "md5"))
    listing, extracted, result = export_and_extract(cli, bundle.container, age_key, tmp_path)
    stored = len(HOSTILE) + 3  # the raw name, large.bin and its hard link
    assert result["entries"] == stored

    passed = audit(listing, extracted)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert b"hashdeep: Audit passed" in passed.stdout
    assert f"Files matched: {stored}".encode() in passed.stdout

    victim = extracted / "seized" / "sub" / "co,mma,,.txt"
    if tampering == "changed byte":
        victim.chmod(0o600)
        victim.write_bytes(b"onE")
        expected = b"./seized/sub/co,mma,,.txt: No match"
    elif tampering == "deleted file":
        victim.unlink()
        expected = b"./seized/sub/co,mma,,.txt: Known file not used"
    else:
        (extracted / "seized" / "planted.txt").write_bytes(b"not in the bundle")
        expected = b"./seized/planted.txt: No match"
    failed = audit(listing, extracted)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert b"hashdeep: Audit failed" in failed.stdout
    assert expected in failed.stdout


def test_lines_are_those_hashdeep_writes_for_the_extracted_files(
    cli: Cli, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    """hashdeep's own known-hashes lines for the extracted tree, compared byte for byte:
    same sizes, digests and names (the non-UTF-8 one included), in md5,sha1,sha256 order."""
    hashdeep = require_tool("hashdeep")
    bundle = make_bundle(hostile_tree, hash_algorithms=("sha256", "sha1", "md5", "sha512"))
    listing, extracted, _ = export_and_extract(cli, bundle.container, age_key, tmp_path)
    written = listing.read_bytes()
    header, _, body = written.partition(b"## \n")
    assert header.startswith(b"%%%% HASHDEEP-1.0\n%%%% size,md5,sha1,sha256,filename\n")
    own = subprocess.run([hashdeep, "-c", "md5,sha1,sha256", "-o", "f", "-l", "-r", "."],
                         cwd=extracted, capture_output=True, check=True).stdout  # fmt: skip
    assert b"%%%% size,md5,sha1,sha256,filename\n" in own
    own_lines = {line for line in own.splitlines() if not line.startswith((b"%%%%", b"##"))}
    assert set(body.splitlines()) == own_lines
    assert len(own_lines) == len(HOSTILE) + 3
    assert b",./seized/sub/" + RAW_NAME + b"\n" in body
    manifest, _ = read_manifest(bundle.container, age_key)
    for item in manifest.items:
        if item.location is not None:
            line = (
                ",".join(
                    [
                        str(item.stored_size),
                        item.digests["md5"],
                        item.digests["sha1"],
                        item.digests["sha256"],
                    ]
                ).encode()
                + b",./"
                + path_bytes(item.path)
            )
            assert line in body.splitlines()  # fmt: skip


def test_a_sha256_only_bundle_has_one_digest_column(
    cli: Cli, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(hostile_tree)
    listing, extracted, _ = export_and_extract(cli, bundle.container, age_key, tmp_path)
    lines = listing.read_bytes().splitlines()
    assert lines[1] == b"%%%% size,sha256,filename"
    entries = [line for line in lines if not line.startswith((b"%%%%", b"##"))]
    assert all(len(line.split(b",", 2)[1]) == 64 for line in entries)
    passed = audit(listing, extracted)
    assert passed.returncode == 0, passed.stdout + passed.stderr


@pytest.mark.parametrize("name", ["new\nline.txt", "carriage\rreturn.txt"])
def test_a_name_with_a_line_break_is_refused_and_nothing_is_written(
    cli: Cli, make_bundle: MakeBundle, tmp_path: Path, age_key: AgeKey, name: str
) -> None:
    root = tmp_path / "seized"
    root.mkdir()
    (root / "plain.txt").write_bytes(b"fine")
    (root / name).write_bytes(b"cannot be listed")
    bundle = make_bundle(root)
    out = tmp_path / "known.hashdeep"
    status, error = cli_json(cli, "export", bundle.container, "--format", "hashdeep",
                             "--out", out, "--identity", age_key.identity_file)  # fmt: skip
    assert status == 2
    shown = name.replace("\n", "\\n").replace("\r", "\\r")
    assert f"seized/{shown}" in error["message"]
    assert "--format sha256sum" in error["hint"]
    assert not out.exists()
    assert list(tmp_path.glob(".known.hashdeep*")) == []


def test_a_bundle_without_stored_files_is_refused(
    cli: Cli, make_bundle: MakeBundle, tmp_path: Path, age_key: AgeKey
) -> None:
    root = tmp_path / "seized"
    (root / "empty-folder").mkdir(parents=True)
    (root / "link").symlink_to("empty-folder")
    bundle = make_bundle(root)
    out = tmp_path / "known.hashdeep"
    status, error = cli_json(cli, "export", bundle.container, "--format", "hashdeep",
                             "--out", out, "--identity", age_key.identity_file)  # fmt: skip
    assert status == 2 and "no stored file" in error["message"]
    assert not out.exists()
