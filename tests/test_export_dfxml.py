"""export --format dfxml: DFXML that the DFXML working group's schema accepts.

Assurance given:

- ``xmllint --schema`` with the DFXML schema (tests/assets/dfxml, see PROVENANCE.md)
  validates the export of a bundle with hostile names, symlinks, a hard link, a fifo and
  md5, sha1, sha256 and sha512 digests; and it rejects a copy with a non-integer file
  size and one with a fileobject's elements out of order, so the validator really checks;
- read back with the standard library's XML parser, every item is a fileobject whose id,
  size, digests, bytes stored, kind, mode, owner and times are the manifest's;
- every name (``<script>``, ``&``, quotes, newline, carriage return, tab, a control
  character, backslash, Chinese, a byte that is not UTF-8, U+FFFE, a bidirectional
  control) and every symlink target is recovered byte for byte, and ``<filename>`` is
  the manifest's display form;
- the creator, source and metadata carry the acquisition's provenance and the case;
- an item's problems reach DFXML's ``<error>``; two exports of a bundle are identical.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence_kit.exporters import EXPORT_FORMATS
from evidence_kit.exporters.dfxml import DFXML_NAMESPACE, EK_NAMESPACE, item_error
from evidence_kit.models import ReadError
from evidence_kit.naming import path_bytes
from tests.conftest import CASE, AgeKey, MakeBundle, read_manifest, require_tool

Cli = Callable[..., Any]

SCHEMA = Path(__file__).parent / "assets" / "dfxml" / "dfxml.xsd"
D = "{" + DFXML_NAMESPACE + "}"
EK = "{" + EK_NAMESPACE + "}"
DC = "{http://purl.org/dc/elements/1.1/}"

NAME_TYPES = {"file": "r", "hardlink": "r", "directory": "d", "symlink": "l", "fifo": "p"}
HOSTILE_NAMES = [
    b"<script>alert(1)<\\script>.html",
    b"a & b.txt",
    b"\"double\" 'single'.txt",
    b"new\nline.txt",
    b"carriage\rreturn.txt",
    b"tab\there.txt",
    b"control\x01char.txt",
    b"back\\slash.txt",
    "客户名单.csv".encode(),
    b"raw-\xff-name.bin",
    "not-xml-\ufffe.txt".encode(),
    "bidi-\u202egnp.exe".encode(),
    b"]]>cdata-end.txt",
]


@pytest.fixture
def hostile_tree(tmp_path: Path) -> Path:
    root = tmp_path / "seized"
    (root / "sub").mkdir(parents=True)
    for number, name in enumerate(HOSTILE_NAMES):
        (root / "sub" / os.fsdecode(name)).write_bytes(b"content %d" % number)
    (root / "large.bin").write_bytes(bytes(range(256)) * 4096)
    os.link(root / "large.bin", root / "sub" / "hard-link.bin")
    (root / "link-to-sub").symlink_to("sub")
    (root / "odd-link").symlink_to(os.fsdecode(b"target-\xfe\n<&>"))
    os.mkfifo(root / "fifo")
    return root


def export_dfxml(cli: Cli, container: Path, age_key: AgeKey, out: Path) -> dict[str, Any]:
    result = cli("export", container, "--format", "dfxml", "--out", out,
                 "--identity", age_key.identity_file, "--json")  # fmt: skip
    assert "Traceback" not in result.stderr
    assert result.exit_code == 0, result.stdout + result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def validate(document: Path) -> subprocess.CompletedProcess[bytes]:
    """The check the export prints, with the schema copy in tests/assets/dfxml."""
    require_tool("xmllint")
    hint = EXPORT_FORMATS["dfxml"].check_hint.replace("DFXML_SCHEMA", str(SCHEMA.parent))
    command = shlex.split(hint.format(out=document))
    assert command[:4] == ["xmllint", "--noout", "--schema", str(SCHEMA)]
    return subprocess.run(command, capture_output=True, check=False)


def fileobjects(document: Path) -> dict[int, ET.Element]:
    root = ET.parse(document).getroot()  # noqa: S314 (our own output, under test)
    assert root.tag == D + "dfxml"
    return {int(f.findtext(D + "id", "")): f for f in root.iter(D + "fileobject")}


def exact_name(fileobject: ET.Element, element: str) -> bytes:
    """A name as the format says to read it: the base64 bytes when given, else the text."""
    exact = fileobject.find(EK + element)
    if exact is not None:
        assert exact.get("encoding") == "base64"
        return base64.b64decode(exact.text or "", validate=True)
    return (fileobject.findtext(D + element) or "").encode("utf-8")


def test_the_export_validates_against_the_dfxml_schema_and_broken_copies_do_not(
    cli: Cli, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(hostile_tree, hash_algorithms=("sha256", "sha1", "md5", "sha512"))
    out = tmp_path / "bundle.dfxml"
    result = export_dfxml(cli, bundle.container, age_key, out)
    manifest, _ = read_manifest(bundle.container, age_key)
    assert result["entries"] == len(manifest.items)
    checked = validate(out)
    assert checked.returncode == 0, checked.stderr
    assert b"validates" in checked.stderr

    text = out.read_text(encoding="utf-8")
    first_size = text.index("<filesize>") + len("<filesize>")
    not_a_number = tmp_path / "not-a-number.dfxml"
    not_a_number.write_text(text[:first_size] + "12 bytes" + text[text.index("<", first_size) :])
    rejected = validate(not_a_number)
    assert rejected.returncode != 0 and b"filesize" in rejected.stderr

    out_of_order = tmp_path / "out-of-order.dfxml"  # <id> before <filename>
    out_of_order.write_text(re.sub(r"(    <filename>.*\n)(    <id>.*\n)", r"\2\1", text, count=1))
    assert out_of_order.read_text() != text
    rejected = validate(out_of_order)
    assert rejected.returncode != 0 and b"id" in rejected.stderr


def test_every_item_has_the_manifest_facts(
    cli: Cli, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(hostile_tree, hash_algorithms=("sha256", "md5"))
    out = tmp_path / "bundle.dfxml"
    export_dfxml(cli, bundle.container, age_key, out)
    objects = fileobjects(out)
    manifest, _ = read_manifest(bundle.container, age_key)
    assert sorted(objects) == [item.id for item in manifest.items]
    stored = 0
    for item in manifest.items:
        element = objects[item.id]
        facts = element.find(EK + "item")
        assert facts is not None
        assert int(element.findtext(D + "filesize", "")) == item.size
        digests = {d.get("type"): d.text for d in element.iter(D + "hashdigest")}
        assert digests == item.digests
        assert (facts.get("kind"), facts.get("status")) == (item.kind, item.status)
        assert element.findtext(D + "name_type") == NAME_TYPES[item.kind]
        if item.location is not None:
            stored += 1
            assert set(digests) == {"sha256", "md5"}
            assert int(facts.get("stored_size", "")) == item.stored_size
        assert int(element.findtext(D + "mode", "")) == item.mode
        assert element.findtext(D + "inode") == item.inode
        assert (element.findtext(D + "uid"), element.findtext(D + "gid")) == (
            str(item.uid), str(item.gid))  # fmt: skip
        assert element.findtext(D + "mtime") == item.mtime.utc
        assert element.findtext(D + "atime") == item.atime.utc
        assert element.findtext(D + "ctime") == item.ctime.utc
        assert element.find(D + "error") is None  # every item was read completely
    assert stored == len(HOSTILE_NAMES) + 2
    hard_link = next(i for i in manifest.items if i.kind == "hardlink")
    link_facts = objects[hard_link.id].find(EK + "item")
    assert link_facts is not None and link_facts.get("hardlink_of") == str(hard_link.hardlink_of)


def test_hostile_names_and_link_targets_round_trip_exactly(
    cli: Cli, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(hostile_tree)
    out = tmp_path / "bundle.dfxml"
    export_dfxml(cli, bundle.container, age_key, out)
    objects = fileobjects(out)  # expat: the document is well-formed XML 1.0
    manifest, _ = read_manifest(bundle.container, age_key)
    names = set()
    for item in manifest.items:
        element = objects[item.id]
        name = exact_name(element, "filename")
        assert name == path_bytes(item.path)
        names.add(name)
        assert element.findtext(D + "filename") == item.path.display.replace(
            "\ufffe", "\\ufffe")  # fmt: skip
        if item.symlink_target is not None:
            assert exact_name(element, "link_target") == path_bytes(item.symlink_target)
    for hostile in HOSTILE_NAMES:
        assert b"seized/sub/" + hostile in names
    plain = objects[next(i.id for i in manifest.items if i.path.display == "seized/large.bin")]
    assert plain.find(EK + "filename") is None  # a plain name needs no base64
    assert validate(out).returncode == 0


def test_creator_source_and_metadata_carry_the_provenance_and_the_case(
    cli: Cli, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(hostile_tree)
    out = tmp_path / "bundle.dfxml"
    export_dfxml(cli, bundle.container, age_key, out)
    manifest, _ = read_manifest(bundle.container, age_key)
    provenance = manifest.provenance
    root = ET.parse(out).getroot()  # noqa: S314 (our own output, under test)
    assert root.get("version") == "1.2.0"
    assert root.findtext(f"{D}metadata/{DC}identifier") == manifest.bundle_id
    assert root.findtext(f"{D}metadata/{DC}creator") == CASE.examiner
    assert root.findtext(f"{D}metadata/{DC}description") == CASE.description
    creator = root.find(D + "creator")
    assert creator is not None
    assert creator.findtext(D + "program") == "evidence-kit"
    assert creator.findtext(D + "version") == provenance.tool.version
    environment = creator.find(D + "execution_environment")
    assert environment is not None
    assert environment.findtext(D + "host") == provenance.host
    assert environment.findtext(D + "username") == provenance.user
    assert environment.findtext(D + "uid") == str(provenance.uid)
    assert environment.findtext(D + "start_time") == provenance.started.utc
    assert environment.get(EK + "finish_time") == provenance.finished.utc
    libraries = {lib.get("name"): lib.get("version") for lib in creator.iter(D + "library")}
    assert libraries == provenance.libraries
    source = root.find(D + "source")
    assert source is not None
    assert source.findtext(D + "image_filename") == bundle.container.name
    assert source.get(EK + "case_number") == CASE.case_number
    assert source.get(EK + "evidence_number") == CASE.evidence_number
    assert source.get(EK + "location") == CASE.location
    assert source.get(EK + "container_sha256") == bundle.result.container_sha256


def test_two_exports_of_a_bundle_are_identical(
    cli: Cli, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(hostile_tree)
    first, second = tmp_path / "first.dfxml", tmp_path / "second.dfxml"
    export_dfxml(cli, bundle.container, age_key, first)
    export_dfxml(cli, bundle.container, age_key, second)
    assert first.read_bytes() == second.read_bytes()


def test_an_items_problems_reach_dfxml_error(
    make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey
) -> None:
    bundle = make_bundle(hostile_tree)
    manifest, _ = read_manifest(bundle.container, age_key)
    item = next(i for i in manifest.items if i.kind == "file")
    assert item_error(item) == ""
    unreadable = item.model_copy(update={
        "status": "unreadable", "reason": "could not be opened:\nPermission denied", "errno": 13,
        "read_errors": [ReadError(offset=0, length=512, errno=5, error="Input/output error")],
    })  # fmt: skip
    assert item_error(unreadable) == (
        "unreadable: could not be opened:\\x0aPermission denied (errno 13); "
        "1 unreadable byte range(s) stored as zeros"
    )
