"""export --format sha256sum|md5sum: lists the stock tools check on an extracted tree."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from evidence_kit.custody import read_custody_log
from evidence_kit.exporters.hash_lists import hash_list_line
from evidence_kit.schemas import path_of
from tests.conftest import AgeKey, MakeBundle, SigningKey, require_tool

HOSTILE = {
    "back\\slash.txt": b"one",
    "new\nline.txt": b"two",
    "carriage\rreturn.txt": b"three",
    "  spaces  .txt": b"four",
    "客户名单.csv": "张伟,17012345678\n".encode(),
}


@pytest.fixture
def hostile_tree(tmp_path: Path) -> Path:
    root = tmp_path / "seized"
    (root / "sub").mkdir(parents=True)
    for name, data in HOSTILE.items():
        (root / "sub" / name).write_bytes(data)
    (root / "sub" / "raw-\xff-name.bin").write_bytes(b"not UTF-8 in its name")
    (root / "large.bin").write_bytes(bytes(range(256)) * 8192)
    return root


def cli_json(cli: Any, *args: str | Path) -> tuple[int, dict[str, Any]]:
    result = cli(*args, "--json")
    assert "Traceback" not in result.stderr
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize(("fmt", "tool"), [("sha256sum", "sha256sum"), ("md5sum", "md5sum")])
def test_the_stock_tool_checks_an_extracted_tree_and_catches_a_changed_byte(
    cli: Any, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path,
    fmt: str, tool: str,
) -> None:  # fmt: skip
    checker = require_tool(tool)
    bundle = make_bundle(hostile_tree, hash_algorithms=("sha256", "md5"))
    extracted = tmp_path / "case"
    assert cli("extract", bundle.container, "--out", extracted,
               "--identity", age_key.identity_file, "-q").exit_code == 0  # fmt: skip
    listing = tmp_path / f"list.{fmt}"
    status, result = cli_json(cli, "export", bundle.container, "--format", fmt, "--out", listing,
                              "--identity", age_key.identity_file)  # fmt: skip
    assert status == 0, result
    jsonschema.validate(result, json.loads(path_of("export-result").read_text()))
    assert result["entries"] == len(HOSTILE) + 2
    checked = subprocess.run([checker, "-c", str(listing)], cwd=extracted,
                             capture_output=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(b": OK") == len(HOSTILE) + 2
    victim = extracted / "seized" / "sub" / "new\nline.txt"
    victim.chmod(0o600)
    victim.write_bytes(b"TWO")
    checked = subprocess.run([checker, "-c", str(listing)], cwd=extracted,
                             capture_output=True, check=False)  # fmt: skip
    assert checked.returncode == 1
    assert checked.stdout.count(b"FAILED") == 1 and b"new\\nline.txt: FAILED" in checked.stdout


def test_lines_escape_as_coreutils_does(tmp_path: Path) -> None:
    """Compared with what sha256sum itself prints for the same names."""
    sha256sum = require_tool("sha256sum")
    for name in (b"plain.txt", b"back\\slash", b"new\nline", b"cr\rname", b"sp ace", b"\xff"):
        (tmp_path / name.decode(errors="surrogateescape")).write_bytes(b"x")
        printed = subprocess.run([sha256sum, name], cwd=tmp_path, capture_output=True,
                                 check=True).stdout  # fmt: skip
        digest = printed.lstrip(b"\\")[:64].decode()
        assert hash_list_line(digest, name) == printed


def test_refusals_write_nothing(
    cli: Any, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path,
    other_age_key: AgeKey,
) -> None:  # fmt: skip
    bundle = make_bundle(hostile_tree)  # SHA-256 only
    out = tmp_path / "list"
    key = ("--identity", age_key.identity_file)
    assert (
        cli_json(cli, "export", bundle.container, "--format", "md5sum", "--out", out, *key)[0] == 2
    )
    assert (
        cli_json(cli, "export", bundle.container, "--format", "dfxmlx", "--out", out, *key)[0] == 2
    )
    wrong = cli_json(cli, "export", bundle.container, "--format", "sha256sum", "--out", out,
                     "--identity", other_age_key.identity_file)  # fmt: skip
    assert wrong[0] == 4
    assert not out.exists()
    data = bytearray(bundle.container.read_bytes())
    data[len(data) // 2] ^= 0x01
    bundle.container.write_bytes(bytes(data))
    status, error = cli_json(cli, "export", bundle.container, "--format", "sha256sum",
                             "--out", out, *key)  # fmt: skip
    assert status == 1 and "does not verify" in error["message"]
    assert not out.exists()


def test_existing_output_is_kept_and_a_signed_export_is_recorded(
    cli: Any, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path,
    signing_key: SigningKey,
) -> None:  # fmt: skip
    bundle = make_bundle(hostile_tree)
    out = tmp_path / "list"
    out.write_text("keep me")
    key = ("--identity", age_key.identity_file)
    assert cli_json(cli, "export", bundle.container, "--format", "sha256sum", "--out", out,
                    *key)[0] == 2  # fmt: skip
    assert out.read_text() == "keep me"
    status, result = cli_json(cli, "export", bundle.container, "--format", "sha256sum",
                              "--out", out, "--overwrite", *key, "--sign",
                              signing_key.private_pem, "--actor", "Lab 7, examiner Wu")  # fmt: skip
    assert status == 0, result
    events = read_custody_log(bundle.custody_log).events
    assert [e.action for e in events] == ["acquired", "exported"]
    assert events[1].note == "sha256sum export, 7 entries"
    assert result["recorded_event"]["event"]["seq"] == 1
    assert cli("verify", bundle.container, *key, "-q").exit_code == 0
