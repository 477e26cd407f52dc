"""Known-file lists: what sha256sum, md5sum and hashdeep really write is read exactly;
anything else is refused with the line that does not parse."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence_kit.errors import UsageError
from evidence_kit.lab.known_files import known_lists, read_hash_list
from tests.conftest import AgeKey, Bundle, require_tool

NAMES = ["hosts", "with space.dll", "back\\slash.sys", "new\nline.exe", "中文.txt", "-dash"]


@pytest.fixture
def system_files(tmp_path: Path) -> Path:
    root = tmp_path / "system"
    root.mkdir()
    for index, name in enumerate(NAMES):
        (root / name).write_bytes(f"system file {index}\n".encode())
    return root


def parsed(data: bytes) -> tuple[str, list[tuple[str, str, bytes]]]:
    list_format, entries = read_hash_list(io.BytesIO(data), "test list")
    return list_format, list(entries)


@pytest.mark.parametrize("tool", ["sha256sum", "md5sum", "sha1sum", "sha512sum"])
def test_coreutils_lists_are_read_name_for_name_escapes_included(
    system_files: Path, tool: str
) -> None:
    require_tool(tool)
    for style in ([], ["--tag"]):
        output = subprocess.run([tool, *style, "--", *NAMES], cwd=system_files,
                                capture_output=True, check=True).stdout  # fmt: skip
        list_format, entries = parsed(output)
        algorithm = tool.removesuffix("sum")
        assert list_format == "sha256sum"
        expected = [
            (algorithm, hashlib.new(algorithm, (system_files / n).read_bytes()).hexdigest(),
             n.encode())
            for n in NAMES
        ]  # fmt: skip
        assert entries == expected


def test_binary_mode_and_crlf_lines_and_upper_case_digests_are_read(system_files: Path) -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    data = f"{digest.upper()} *C:\\Windows\\notepad.exe\r\n\r\n{digest}  other\n".encode()
    _format, entries = parsed(data)
    assert entries == [
        ("sha256", digest, b"C:\\Windows\\notepad.exe"),
        ("sha256", digest, b"other"),
    ]


def test_hashdeep_lists_are_read_every_digest_of_every_row(system_files: Path) -> None:
    require_tool("hashdeep")
    (system_files / "new\nline.exe").unlink()  # hashdeep writes a line break as it is
    output = subprocess.run(["hashdeep", "-c", "md5,sha1,sha256,tiger", "-r", "-l", "."],
                            cwd=system_files, capture_output=True, check=True).stdout  # fmt: skip
    list_format, entries = parsed(output)
    assert list_format == "hashdeep"
    for name in (n for n in NAMES if "\n" not in n):
        content = (system_files / name).read_bytes()
        for algorithm in ("md5", "sha1", "sha256"):
            assert (algorithm, hashlib.new(algorithm, content).hexdigest(),
                    f"./{name}".encode()) in entries  # fmt: skip
    assert not [e for e in entries if e[0] == "tiger"]
    assert len(entries) == 3 * (len(NAMES) - 1)


def test_a_hashdeep_list_broken_by_a_name_with_a_line_break_is_refused_at_that_line(
    system_files: Path,
) -> None:
    require_tool("hashdeep")
    output = subprocess.run(["hashdeep", "-c", "sha256", "-r", "-l", "."], cwd=system_files,
                            capture_output=True, check=True).stdout  # fmt: skip
    broken = output.splitlines().index(b"line.exe") + 1
    with pytest.raises(UsageError, match=f"line {broken}: expected 3 comma-separated fields"):
        parsed(output)


def test_an_export_hashdeep_list_from_a_bundle_is_a_known_files_list(
    cli: Callable[..., Any],
    make_bundle: Callable[..., Bundle],
    system_files: Path,
    age_key: AgeKey,
    tmp_path: Path,
) -> None:
    bundle = make_bundle(system_files, name="reference", hash_algorithms=("sha256", "md5"))
    exported = tmp_path / "reference.hashdeep"
    result = cli("export", bundle.container, "--format", "hashdeep", "--out", exported, "-i",
                 age_key.identity_file)  # fmt: skip
    if result.exit_code == 2 and "line break" in result.stderr:
        (system_files / "new\nline.exe").unlink()
        bundle = make_bundle(system_files, name="reference2", hash_algorithms=("sha256", "md5"))
        result = cli("export", bundle.container, "--format", "hashdeep", "--out", exported,
                     "-i", age_key.identity_file)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    register = tmp_path / "register.sqlite"
    added = cli("lab", "known", "add", exported, "--register", register, "--json")
    assert added.exit_code == 0, added.stderr
    report = json.loads(added.stdout)["hash_list"]
    files = [p for p in system_files.iterdir() if p.is_file()]
    assert report["format"] == "hashdeep" and report["entries"] == 2 * len(files)
    again = json.loads(cli("lab", "known", "add", exported, "--register", register,
                           "--json").stdout)  # fmt: skip
    assert again["already_present"] is True
    listed = json.loads(cli("lab", "known", "list", "--register", register, "--json").stdout)
    assert [entry["name"] for entry in listed["lists"]] == ["reference.hashdeep"]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "no digest"),
        (b"\n\n", "no digest"),
        (b"not a hash list\n", "line 1: not a 'HEX  NAME' line"),
        (b"%s  ok\nzz  bad\n" % (b"a" * 64), "line 2"),
        (b"%s  short digest\n" % (b"a" * 30), "30 hex digits"),
        (b"SHA256 (x) = %s\n" % (b"a" * 32), "does not fit sha256"),
        (b"%%%% HASHDEEP-1.0\n%%%% size,md5,filename\n12,abc,name\n", "line 3: not a md5"),
        (b"%%%% HASHDEEP-1.0\n12," + b"a" * 32 + b",name\n", "before the %%%% header"),
        (b"%%%% HASHDEEP-1.0\n%%%% size,tiger,filename\n", "no MD5, SHA-1"),
        (b"%%%% HASHDEEP-1.0\n%%%% size,md5,filename\n", "no digest"),
        (b"%%%% HASHDEEP-1.0\n%%%% size,md5,filename\nx," + b"a" * 32 + b",n\n", "size"),
    ],
    ids=[
        "empty",
        "blank",
        "prose",
        "bad-second-line",
        "short",
        "bsd-mismatch",
        "hashdeep-bad-digest",
        "hashdeep-no-header",
        "hashdeep-no-known-column",
        "hashdeep-no-rows",
        "hashdeep-bad-size",
    ],
)
def test_a_list_that_does_not_parse_is_refused_naming_the_line(data: bytes, says: str) -> None:
    with pytest.raises(UsageError, match=says.replace("(", r"\(")):
        parsed(data)


def test_a_bad_list_adds_nothing_and_exits_2(cli: Callable[..., Any], tmp_path: Path) -> None:
    register = tmp_path / "register.sqlite"
    good = tmp_path / "good.sha256"
    good.write_text(f"{'a' * 64}  one\n")
    assert cli("lab", "known", "add", good, "--register", register).exit_code == 0
    bad = tmp_path / "bad.sha256"
    bad.write_text(f"{'b' * 64}  two\n" * 1000 + "garbage\n")
    result = cli("lab", "known", "add", bad, "--register", register)
    assert result.exit_code == 2 and "bad.sha256, line 1001" in result.stderr
    listed = json.loads(cli("lab", "known", "list", "--register", register, "--json").stdout)
    assert [entry["name"] for entry in listed["lists"]] == ["good.sha256"]
    missing = cli("lab", "known", "add", tmp_path / "nowhere.txt", "--register", register)
    assert missing.exit_code == 2 and "no such hash list" in missing.stderr


def test_two_runs_adding_one_list_at_once_add_it_once(tmp_path: Path) -> None:
    register = tmp_path / "register.sqlite"
    hash_list = tmp_path / "os.sha256"
    hash_list.write_text("".join(f"{index:064x}  file{index}\n" for index in range(20_000)))
    command = [sys.executable, "-m", "evidence_kit", "lab", "known", "add", str(hash_list),
               "--register", str(register), "--json"]  # fmt: skip
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)]  # fmt: skip
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _out, err in outputs]
    present = sorted(json.loads(out)["already_present"] for out, _err in outputs)
    assert present == [False, True]
    listed = known_lists(register)
    assert [(entry.name, entry.entries) for entry in listed.lists] == [("os.sha256", 20_000)]


def test_a_folder_given_as_the_list_is_a_usage_error(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    result = cli("lab", "known", "add", tmp_path, "--register", tmp_path / "register.sqlite")
    assert result.exit_code == 2 and "is a folder, not a hash list" in result.stderr
