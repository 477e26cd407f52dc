"""export --format case: CASE/UCO JSON-LD that ``case_validate`` accepts.

Assurance given:

- ``case_validate`` (case-utils, CASE 1.5.0, offline) finds nothing, not even an
  informational finding, in the export of a bundle with hostile names and in that of a
  signed bundle with several custody events; and it rejects a copy with a non-hex hash
  value and a node of the wrong class, so the validator really checks;
- read back with rdflib, the graph says exactly what the bundle says: each file with its
  name, size and SHA-256 (and MD5) as computed here from the seized bytes, the container
  and its SHA-256, the acquisition by the examiner with evidence-kit, and one action per
  custody event with its actor, recipient, place, note and signing key;
- two exports of one bundle are byte-identical, and a later export names every node of
  an earlier one the same way; facet and hash names follow case-utils' own scheme, and
  the CASE version written is the one the installed ``case_validate`` checks;
- a signed export is recorded as an ``exported`` custody event, which later exports show.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from case_utils.inherent_uuid import get_facet_uriref, hash_method_value_uuid
from case_utils.ontology.version_info import CURRENT_CASE_VERSION
from cryptography.hazmat.primitives import serialization
from rdflib import RDF, XSD, Graph, Literal, Namespace, URIRef
from rdflib.term import Node

from evidence_kit import __version__
from evidence_kit.custody import read_custody_log
from evidence_kit.exporters.case import CASE_VERSION
from evidence_kit.naming import display_name
from tests.conftest import CASE, AgeKey, MakeBundle, SigningKey, read_manifest, require_tool

Cli = Callable[..., Any]

UCO = "https://ontology.unifiedcyberontology.org/uco/"
ACTION = Namespace(UCO + "action/")
CORE = Namespace(UCO + "core/")
OBSERVABLE = Namespace(UCO + "observable/")
TOOL = Namespace(UCO + "tool/")
TYPES = Namespace(UCO + "types/")
INVESTIGATION = Namespace("https://ontology.caseontology.org/case/investigation/")

HOSTILE = {
    "back\\slash.txt": b"one",
    "new\nline.txt": b"two",
    "<script>alert(1)<\\script>.html": b"<b>three</b>",
    "客户名单.csv": "张伟,17012345678\n".encode(),
    "raw-\udcff-name.bin": b"not UTF-8 in its name",  # the byte 0xff, via surrogateescape
}
OFFICER = "Insp. Wang Lei, Tianhe forensic unit"
RECEIVER = "Lab reception <Li Na>"
LAB = "Guangzhou forensic lab, room 3"


@pytest.fixture
def hostile_tree(tmp_path: Path) -> Path:
    root = tmp_path / "seized"
    (root / "sub").mkdir(parents=True)
    (root / "empty folder").mkdir()
    for name, data in HOSTILE.items():
        (root / "sub" / name).write_bytes(data)
    (root / "link").symlink_to("sub/客户名单.csv")
    return root


def case_validate() -> str:
    """The console script installed beside this Python, else the one on PATH."""
    beside = shutil.which("case_validate", path=str(Path(sys.executable).parent))
    return beside or require_tool("case_validate")


def run_case_validate(document: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([case_validate(), str(document)], capture_output=True, text=True,
                          check=False, timeout=300)  # fmt: skip


def export(cli: Cli, container: Path, out: Path, age_key: AgeKey, *options: str | Path) -> Any:
    result = cli("export", container, "--format", "case", "--out", out,
                 "--identity", age_key.identity_file, *options, "--json")  # fmt: skip
    assert result.exit_code == 0 and "Traceback" not in result.stderr, result.output
    return json.loads(result.stdout)


def load(document: Path) -> Graph:
    with warnings.catch_warnings():  # rdflib's own JSON-LD parser uses its deprecated class
        warnings.filterwarnings("ignore", "ConjunctiveGraph is deprecated", DeprecationWarning)
        return Graph().parse(document, format="json-ld")


def facets(graph: Graph, node: Node, facet_class: URIRef) -> list[Node]:
    return [f for f in graph.objects(node, CORE.hasFacet) if (f, RDF.type, facet_class) in graph]


def observables_by_path(graph: Graph) -> dict[str, Node]:
    """Every node with a FileFacet, by its filePath (which must be unique)."""
    found: dict[str, Node] = {}
    for facet, path in graph.subject_objects(OBSERVABLE.filePath):
        (owner,) = graph.subjects(CORE.hasFacet, facet)
        assert str(path) not in found, path
        found[str(path)] = owner
    return found


def hashes(graph: Graph, node: Node) -> dict[str, str]:
    """hashMethod -> hashValue of the node's ContentDataFacet."""
    (content,) = facets(graph, node, OBSERVABLE.ContentDataFacet)
    found = {}
    for digest in graph.objects(content, OBSERVABLE.hash):
        value = graph.value(digest, TYPES.hashValue)
        assert isinstance(value, Literal) and value.datatype == XSD.hexBinary
        found[str(graph.value(digest, TYPES.hashMethod))] = str(value)
    return found


def file_value(graph: Graph, node: Node, prop: URIRef) -> Node | None:
    (file_facet,) = facets(graph, node, OBSERVABLE.FileFacet)
    return graph.value(file_facet, prop)


def actions(graph: Graph) -> dict[str, Node]:
    """Investigative actions by their chain: the acquisition first, then each action
    informed by the one before (the custody log's order)."""
    nodes = list(graph.subjects(RDF.type, INVESTIGATION.InvestigativeAction))
    (first,) = [n for n in nodes if (n, INVESTIGATION.wasInformedBy, None) not in graph]
    chain = [first]
    while (after := list(graph.subjects(INVESTIGATION.wasInformedBy, chain[-1]))) != []:
        chain.extend(after)
    assert len(chain) == len(nodes)
    return {f"{i}:{graph.value(node, CORE.name)}": node for i, node in enumerate(chain)}


def name_of(graph: Graph, node: Node | None) -> str:
    return str(graph.value(node, CORE.name))


def test_hostile_names_validate_and_every_file_has_its_own_hashes_and_identical_exports(
    cli: Cli, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(hostile_tree, hash_algorithms=("sha256", "md5"))
    first, second = tmp_path / "first.jsonld", tmp_path / "second.jsonld"
    result = export(cli, bundle.container, first, age_key)
    export(cli, bundle.container, second, age_key)
    assert first.read_bytes() == second.read_bytes()
    manifest, _ = read_manifest(bundle.container, age_key)
    folders_and_link = 4  # seized, seized/sub, seized/empty folder, seized/link
    assert result["entries"] == len(manifest.items) == len(HOSTILE) + folders_and_link

    checked = run_case_validate(first)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Conforms: True" in checked.stdout

    graph = load(first)
    found = observables_by_path(graph)
    for name, data in HOSTILE.items():
        path = "seized/sub/" + display_name(name.encode("utf-8", "surrogateescape"))
        node = found[path]
        assert (node, RDF.type, OBSERVABLE.File) in graph
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert hashes(graph, node) == {"SHA256": hashlib.sha256(data).hexdigest(), "MD5": md5}
        assert str(file_value(graph, node, OBSERVABLE.fileName)) == path.rsplit("/", 1)[1]
        assert file_value(graph, node, OBSERVABLE.sizeInBytes) == Literal(len(data))
    assert "seized/sub/raw-\\xff-name.bin" in found and "seized/sub/back\\\\slash.txt" in found
    assert "seized/sub/<script>alert(1)<\\\\script>.html" in found
    assert (found["seized/empty folder"], RDF.type, OBSERVABLE.Directory) in graph
    link = found["seized/link"]
    assert (link, RDF.type, OBSERVABLE.SymbolicLink) in graph
    (link_facet,) = facets(graph, link, OBSERVABLE.SymbolicLinkFacet)
    target = graph.value(link_facet, OBSERVABLE.targetFile)
    assert target is not None
    assert str(file_value(graph, target, OBSERVABLE.filePath)) == "sub/客户名单.csv"

    container = graph.value(predicate=OBSERVABLE.fileName, object=Literal("bundle.zip"))
    (container_node,) = graph.subjects(CORE.hasFacet, container)
    sha256 = hashlib.sha256(bundle.container.read_bytes()).hexdigest()
    assert hashes(graph, container_node) == {"SHA256": sha256}

    chain = actions(graph)
    assert list(chain) == ["0:acquisition", "1:acquired"]
    acquisition = chain["0:acquisition"]
    assert name_of(graph, graph.value(acquisition, ACTION.performer)) == CASE.examiner
    assert name_of(graph, graph.value(acquisition, ACTION.location)) == CASE.location
    started = graph.value(acquisition, ACTION.startTime)
    assert started == Literal(manifest.provenance.started.utc, datatype=XSD.dateTime)
    tools = {(name_of(graph, t), str(graph.value(t, TOOL.version)))
             for t in graph.objects(acquisition, ACTION.instrument)}  # fmt: skip
    assert ("evidence-kit", __version__) in tools
    (source,) = graph.objects(acquisition, ACTION.object)
    assert source == found[str(hostile_tree)]
    items = {found[item.path.display] for item in manifest.items}
    results = set(graph.objects(acquisition, ACTION.result))
    (record,) = results - items - {container_node}
    assert (record, RDF.type, INVESTIGATION.ProvenanceRecord) in graph
    assert str(graph.value(record, INVESTIGATION.exhibitNumber)) == CASE.evidence_number
    assert set(graph.objects(record, CORE.object)) == items | {container_node}
    (investigation,) = graph.subjects(RDF.type, INVESTIGATION.Investigation)
    assert name_of(graph, investigation) == CASE.case_number


def test_the_case_version_written_is_the_one_case_validate_checks_by_default() -> None:
    assert CURRENT_CASE_VERSION == CASE_VERSION


def test_facet_and_hash_names_follow_the_case_utils_scheme(
    cli: Cli, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(hostile_tree)
    document = tmp_path / "export.jsonld"
    export(cli, bundle.container, document, age_key)
    graph = load(document)
    kb = Namespace("urn:example:kb:")
    checked = 0
    for owner, facet in graph.subject_objects(CORE.hasFacet):
        assert isinstance(owner, URIRef) and isinstance(facet, URIRef)
        facet_class = graph.value(facet, RDF.type)
        assert isinstance(facet_class, URIRef)
        expected = get_facet_uriref(owner, facet_class, namespace=kb)
        assert str(facet)[-36:] == str(expected)[-36:]
        checked += 1
    for digest in graph.subjects(RDF.type, TYPES.Hash):
        method, value = graph.value(digest, TYPES.hashMethod), graph.value(digest, TYPES.hashValue)
        assert isinstance(method, Literal) and isinstance(value, Literal)
        assert str(digest) == f"urn:uuid:{hash_method_value_uuid(method, value)}"
        checked += 1
    assert checked > 2 * len(HOSTILE)


def test_signed_custody_validates_and_a_signed_export_is_recorded(
    cli: Cli, make_bundle: MakeBundle, small_tree: Path, age_key: AgeKey, tmp_path: Path,
    signing_key: SigningKey,
) -> None:  # fmt: skip
    bundle = make_bundle(small_tree, signing_key=signing_key.key)
    sign = ("--sign", signing_key.private_pem)
    for options in (
        ("--action", "transferred", "--actor", OFFICER, "--to", RECEIVER, "--location", LAB,
         "--note", 'sealed bag "4411"\nsecond line'),
        ("--action", "received", "--actor", RECEIVER, "--location", LAB),
        ("--action", "stored", "--actor", RECEIVER, "--location", LAB, "--note", "safe 2"),
    ):  # fmt: skip
        added = cli("custody", "add", bundle.container, *sign, *options)
        assert added.exit_code == 0, added.output

    recorded = tmp_path / "recorded.jsonld"
    result = export(cli, bundle.container, recorded, age_key, *sign, "--actor", OFFICER)
    events = read_custody_log(bundle.custody_log).events
    assert [e.action for e in events] == ["acquired", "transferred", "received", "stored",
                                          "exported"]  # fmt: skip
    assert events[-1].note == f"case export, {result['entries']} entries"
    assert result["recorded_event"]["event"]["seq"] == 4

    later = tmp_path / "later.jsonld"
    export(cli, bundle.container, later, age_key)
    checked = run_case_validate(later)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Conforms: True" in checked.stdout

    earlier_graph, graph = load(recorded), load(later)
    assert set(earlier_graph.subjects()) < set(graph.subjects())  # same names, one event more
    assert list(actions(earlier_graph)) == ["0:acquisition", "1:acquired", "2:transferred",
                                            "3:received", "4:stored"]  # fmt: skip
    chain = actions(graph)
    assert list(chain)[1:] == [f"{i + 1}:{e.action}" for i, e in enumerate(events)]
    container = hashlib.sha256(bundle.container.read_bytes()).hexdigest()
    der = signing_key.key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for (label, action), event in zip(list(chain.items())[1:], events, strict=True):
        assert name_of(graph, graph.value(action, ACTION.performer)) == event.actor, label
        at = Literal(event.time.utc, datatype=XSD.dateTime)
        assert graph.value(action, ACTION.startTime) == at
        place = graph.value(action, ACTION.location)
        assert (name_of(graph, place) if place else "") == event.location
        note = graph.value(action, CORE.description)
        assert (str(note) if note else "") == event.note
        (target,) = graph.objects(action, ACTION.object)
        assert hashes(graph, target) == {"SHA256": container}
        (key,) = graph.objects(action, ACTION.instrument)
        assert hashes(graph, key) == {"SHA256": hashlib.sha256(der).hexdigest()}
        (key_content,) = facets(graph, key, OBSERVABLE.ContentDataFacet)
        payload = graph.value(key_content, OBSERVABLE.dataPayload)
        assert base64.b64decode(str(payload)) == der
        (record,) = graph.objects(action, ACTION.result)
        assert str(graph.value(record, INVESTIGATION.exhibitNumber)) == CASE.evidence_number
    assert key in set(graph.objects(chain["0:acquisition"], ACTION.instrument))  # the seal's
    transferred = chain["2:transferred"]
    assert [name_of(graph, p) for p in graph.objects(transferred, ACTION.participant)] == [RECEIVER]
    assert str(graph.value(transferred, CORE.description)) == 'sealed bag "4411"\nsecond line'
    (investigation,) = graph.subjects(RDF.type, INVESTIGATION.Investigation)
    assert name_of(graph, investigation) == CASE.case_number
    assert str(graph.value(investigation, CORE.description)) == CASE.description


def test_case_validate_rejects_a_non_hex_hash_and_a_node_of_the_wrong_class(
    cli: Cli, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(hostile_tree)
    document = tmp_path / "export.jsonld"
    export(cli, bundle.container, document, age_key)
    text = document.read_text(encoding="utf-8")
    one_hash = hashlib.sha256(HOSTILE["back\\slash.txt"]).hexdigest()
    assert text.count(f'"@value":"{one_hash}"') == 1
    broken = text.replace(f'"@value":"{one_hash}"', '"@value":"not-a-hex-digest"')
    location = '"@type":"uco-location:Location"'
    assert broken.count(location) == 1  # the case location, where the acquisition happened
    broken = broken.replace(location, '"@type":"uco-identity:Identity"')
    broken_copy = tmp_path / "broken.jsonld"
    broken_copy.write_text(broken, encoding="utf-8")
    checked = run_case_validate(broken_copy)
    assert checked.returncode != 0
    assert "Conforms: False" in checked.stdout
    report = checked.stdout
    assert "Result Path: types:hashValue" in report and "not-a-hex-digest" in report
    # the acquisition and event 0 both happened at the case location
    assert report.count("Value does not have class location:Location") == 2
    assert "Results (3):" in report
