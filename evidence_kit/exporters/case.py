"""CASE/UCO JSON-LD: the bundle's files, its acquisition and its custody as one graph.

The document conforms to CASE 1.5.0 (UCO 1.5.0), the version ``case_validate`` of
case-utils 0.18.0 checks by default, with no finding of any severity. It holds:

* every item of the manifest as an observable: ``uco-observable:File`` (files, hard
  links), ``Directory``, ``SymbolicLink`` (with the path it holds), ``File`` and ``Image``
  (disk images) or ``FileSystemObject`` (anything else), each with a ``FileFacet`` (name;
  path relative to the folder ``extract --out`` writes; size from ``lstat``; modified,
  accessed and metadata-change times) and, when its bytes are stored, a
  ``ContentDataFacet`` (bytes stored, MIME type, one ``uco-types:Hash`` per digest);
* the container as a ``File`` with its size and SHA-256;
* the acquisition as a ``case-investigation:InvestigativeAction``: performed by the
  examiner, at the case location, on the computer that ran it, started and finished as
  the provenance says, with evidence-kit and its libraries (and the seal's signing key)
  as instruments, the sources as objects, and a ``ProvenanceRecord`` (the evidence
  number as exhibit number), the container and every item as results;
* every custody event as an ``InvestigativeAction`` (action, actor, time, location,
  note, who received a hand-over, the signing key), informed by the one before, acting
  on the container, with a ``ProvenanceRecord`` as its result;
* the case as a ``case-investigation:Investigation`` (case number, description; the
  notes as an ``Annotation``) listing every node but the items.

Names and paths are the manifest's display form (:func:`evidence_kit.naming.display_name`):
UTF-8, with backslashes doubled and control characters and undecodable bytes escaped, so
two different names never look the same and the exact bytes can be recovered from it.
Times are the RFC 3339 UTC forms of the manifest and the custody log (absent when outside
years 1-9999). Fixed labels are English, not translated, so that the output does not
depend on the locale.

Every node is named ``urn:uuid:`` + a UUID 5 derived from the bundle id and the node's
role (``item/<id>``, ``container``, ``custody/<seq>``...); facets and hashes are named by
the inherence scheme of case-utils (``case_utils.inherent_uuid``). Two exports of one
bundle are byte-identical, and the nodes of exports of one bundle made at different
times join up when their graphs are merged. The JSON is UTF-8 with sorted keys, one node
a line, written item by item.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from cryptography.hazmat.primitives import serialization

from evidence_kit.exporters.source import ExportSource
from evidence_kit.models import CustodyEvent, Instant, ItemRecord, PathName, SourceRecord
from evidence_kit.naming import display_name

CASE_VERSION = "1.5.0"

_UCO = "https://ontology.unifiedcyberontology.org/uco/"
CONTEXT: dict[str, str] = {
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "uco-action": _UCO + "action/",
    "uco-core": _UCO + "core/",
    "uco-identity": _UCO + "identity/",
    "uco-location": _UCO + "location/",
    "uco-observable": _UCO + "observable/",
    "uco-tool": _UCO + "tool/",
    "uco-types": _UCO + "types/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}

# uco-vocabulary:HashNameVocab spellings; UCO 1.4.0 and later type them as xsd:string.
HASH_METHODS = {"md5": "MD5", "sha1": "SHA1", "sha256": "SHA256", "sha512": "SHA512"}

_ITEM_CLASSES: dict[str, list[str]] = {
    "file": ["uco-observable:File"],
    "hardlink": ["uco-observable:File"],
    "directory": ["uco-observable:Directory"],
    "symlink": ["uco-observable:SymbolicLink"],
    "disk-image": ["uco-observable:File", "uco-observable:Image"],
}
_OTHER_CLASSES = ["uco-observable:FileSystemObject"]

Node = dict[str, Any]


class NodeNames:
    """The IRIs of one bundle's nodes: ``urn:uuid:`` and a UUID 5 of the bundle and role."""

    def __init__(self, bundle_id: str) -> None:
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:evidence-kit:bundle:{bundle_id}")

    def node(self, role: str) -> str:
        return f"urn:uuid:{uuid.uuid5(self.namespace, role)}"

    def item(self, item_id: int) -> str:
        return self.node(f"item/{item_id}")

    @staticmethod
    def facet(owner: str, facet_class: str) -> str:
        """The ``facet_class`` facet of ``owner``: a UUID 5 of the owner's UUID and the
        class IRI, as ``case_utils.inherent_uuid.get_facet_uriref`` makes it."""
        prefix, local = facet_class.split(":", 1)
        owner_uuid = uuid.UUID(owner.removeprefix("urn:uuid:"))
        return f"urn:uuid:{uuid.uuid5(owner_uuid, CONTEXT[prefix] + local)}"

    @staticmethod
    def hash(algorithm: str, hex_digest: str) -> str:
        """A hash is named by its method and value alone, as
        ``case_utils.inherent_uuid.hash_method_value_uuid`` names it."""
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'urn:hash::{algorithm}:{hex_digest}')}"


def _ref(iri: str) -> dict[str, str]:
    return {"@id": iri}


def _refs(iris: Iterable[str | None]) -> list[dict[str, str]]:
    return [_ref(iri) for iri in iris if iri is not None]


def _integer(value: int | None) -> dict[str, str] | None:
    return None if value is None else {"@type": "xsd:integer", "@value": str(value)}


def _date_time(instant: Instant | None) -> dict[str, str] | None:
    if instant is None or instant.utc is None:
        return None
    return {"@type": "xsd:dateTime", "@value": instant.utc}


def _present(node: Node) -> Node:
    """``node`` without the properties that have no value."""
    return {key: value for key, value in node.items() if value is not None and value != []}


def _facet(owner: str, facet_class: str, properties: Node) -> Node:
    return _present(
        {"@id": NodeNames.facet(owner, facet_class), "@type": facet_class, **properties}
    )


def _file_facet(owner: str, path: str, properties: Node) -> Node:
    """A FileFacet; ``path`` is a display form, ``/``-separated, its last part the name."""
    return _facet(
        owner,
        "uco-observable:FileFacet",
        {"uco-observable:fileName": path.rsplit("/", 1)[-1], **properties},
    )


def _content_facet(owner: str, digests: dict[str, str], properties: Node) -> Node:
    hashes = []
    for algorithm in sorted(digests):
        value = digests[algorithm].lower()
        hashes.append(
            {
                "@id": NodeNames.hash(algorithm, value),
                "@type": "uco-types:Hash",
                "uco-types:hashMethod": HASH_METHODS[algorithm],
                "uco-types:hashValue": {"@type": "xsd:hexBinary", "@value": value},
            }
        )
    return _facet(
        owner, "uco-observable:ContentDataFacet", {"uco-observable:hash": hashes, **properties}
    )


def _item_nodes(names: NodeNames, item: ItemRecord) -> Iterator[Node]:
    """The observable of one item, and for a symbolic link the path it holds."""
    iri = names.item(item.id)
    facets = [
        _file_facet(
            iri,
            item.path.display,
            {
                "uco-observable:filePath": item.path.display,
                "uco-observable:sizeInBytes": _integer(item.size),
                "uco-observable:accessedTime": _date_time(item.atime),
                "uco-observable:modifiedTime": _date_time(item.mtime),
                "uco-observable:metadataChangeTime": _date_time(item.ctime),
                "uco-observable:isDirectory": True if item.kind == "directory" else None,
            },
        )
    ]
    if item.digests:
        facets.append(
            _content_facet(
                iri,
                item.digests,
                {
                    "uco-observable:sizeInBytes": _integer(item.stored_size),
                    "uco-observable:mimeType": item.mime_type,
                },
            )
        )
    if item.kind == "disk-image":
        facets.append(_facet(iri, "uco-observable:ImageFacet", {"uco-observable:imageType": "raw"}))
    target = None
    if item.kind == "symlink" and item.symlink_target is not None:
        target = names.node(f"item/{item.id}/target")
        facets.append(
            _facet(
                iri, "uco-observable:SymbolicLinkFacet", {"uco-observable:targetFile": _ref(target)}
            )
        )
    yield _present(
        {
            "@id": iri,
            "@type": _ITEM_CLASSES.get(item.kind, _OTHER_CLASSES),
            "uco-core:hasFacet": facets,
            "uco-core:tag": None if item.status == "ok" else [item.status],
        }
    )
    if target is not None and item.symlink_target is not None:
        yield _link_target_node(target, item.symlink_target)


def _link_target_node(iri: str, target: PathName) -> Node:
    """The path a symbolic link holds, as recorded (never followed nor resolved)."""
    facet = _facet(iri, "uco-observable:FileFacet", {"uco-observable:filePath": target.display})
    return {"@id": iri, "@type": _OTHER_CLASSES, "uco-core:hasFacet": [facet]}


def _source_node(names: NodeNames, source: SourceRecord) -> Node:
    """A SOURCE argument of the acquisition, by its absolute path."""
    iri = names.node(f"source/{source.index}")
    path = {"uco-observable:filePath": source.path.display}
    return {
        "@id": iri,
        "@type": _ITEM_CLASSES.get(source.kind, _OTHER_CLASSES),
        "uco-core:hasFacet": [_file_facet(iri, source.path.display, path)],
    }


def _key_node(iri: str, fingerprint: str, public_key_pem: str | None) -> Node:
    """An Ed25519 public key: its DER SubjectPublicKeyInfo (base64) and that DER's
    SHA-256, which is the fingerprint evidence-kit shows."""
    der = None
    if public_key_pem is not None:
        try:
            der = serialization.load_pem_public_key(public_key_pem.encode("ascii")).public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        except (ValueError, UnicodeEncodeError):
            der = None
    content = _content_facet(
        iri,
        {"sha256": fingerprint},
        {
            "uco-observable:dataPayload": None if der is None else base64.b64encode(der).decode(),
            "uco-observable:sizeInBytes": _integer(None if der is None else len(der)),
        },
    )
    return {
        "@id": iri,
        "@type": "uco-observable:ObservableObject",
        "uco-core:description": "Ed25519 public key (DER SubjectPublicKeyInfo)",
        "uco-core:hasFacet": [content],
    }


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


class _GraphWriter:
    """Writes ``{"@context": ..., "@graph": [...]}``, one node a line; each top-level
    node once, remembered for the investigation's list."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._first = True
        self.listed: list[str] = []
        self._listed: set[str] = set()
        out.write(b'{"@context":' + _json(CONTEXT) + b',\n"@graph":[\n')

    def write(self, node: Node) -> None:
        self._out.write((b"" if self._first else b",\n") + _json(node))
        self._first = False

    def top(self, node: Node) -> str:
        """Write a node the investigation lists, unless it was written already."""
        iri: str = node["@id"]
        if iri not in self._listed:
            self._listed.add(iri)
            self.listed.append(iri)
            self.write(node)
        return iri

    def close(self) -> None:
        self._out.write(b"\n]}\n")


class _CaseExport:
    """The nodes of one bundle, written in a fixed order."""

    def __init__(self, source: ExportSource, graph: _GraphWriter) -> None:
        self.source = source
        self.graph = graph
        self.names = NodeNames(source.manifest.bundle_id)

    def run(self) -> int:
        examiner = self._examiner()
        container = self.graph.top(self._container())
        items = self._items()
        acquisition = self._acquisition(examiner, container, items)
        previous = acquisition
        for event in self.source.custody.events:
            previous = self._custody_event(event, previous, container)
        self._investigation()
        return len(items)

    def _identity(self, name: str) -> str:
        return self.graph.top(
            {
                "@id": self.names.node(f"identity/{name}"),
                "@type": "uco-identity:Identity",
                "uco-core:name": name,
            }
        )

    def _location(self, text: str) -> str | None:
        if not text:
            return None
        return self.graph.top(
            {
                "@id": self.names.node(f"location/{text}"),
                "@type": "uco-location:Location",
                "uco-core:name": text,
            }
        )

    def _key(self, fingerprint: str | None, public_key_pem: str | None) -> str | None:
        if fingerprint is None:
            return None
        iri = self.names.node(f"key/{fingerprint}")
        return self.graph.top(_key_node(iri, fingerprint, public_key_pem))

    def _record(self, role: str, objects: Iterable[str]) -> str:
        evidence_number = self.source.manifest.case.evidence_number
        return self.graph.top(
            {
                "@id": self.names.node(role),
                "@type": "case-investigation:ProvenanceRecord",
                "case-investigation:exhibitNumber": evidence_number,
                "case-investigation:rootExhibitNumber": [evidence_number],
                "uco-core:object": _refs(objects),
            }
        )

    def _examiner(self) -> str:
        """The examiner's identity, and its examiner role."""
        examiner = self._identity(self.source.manifest.case.examiner)
        role = self.graph.top(
            {
                "@id": self.names.node("role/examiner"),
                "@type": "case-investigation:Examiner",
                "uco-core:name": "examiner",
            }
        )
        self.graph.top(
            {
                "@id": self.names.node("role/examiner/relationship"),
                "@type": "uco-core:Relationship",
                "uco-core:isDirectional": True,
                "uco-core:kindOfRelationship": "Has_Role",
                "uco-core:source": [_ref(examiner)],
                "uco-core:target": _ref(role),
            }
        )
        return examiner

    def _container(self) -> Node:
        iri = self.names.node("container")
        size = os.fstat(self.source.bundle.fp.fileno()).st_size
        name = display_name(os.fsencode(self.source.container.name))
        sha256 = {"sha256": self.source.container_sha256}
        return {
            "@id": iri,
            "@type": "uco-observable:File",
            "uco-core:hasFacet": [
                _file_facet(iri, name, {"uco-observable:sizeInBytes": _integer(size)}),
                _content_facet(
                    iri,
                    sha256,
                    {
                        "uco-observable:mimeType": "application/zip",
                        "uco-observable:sizeInBytes": _integer(size),
                    },
                ),
            ],
        }

    def _items(self) -> list[str]:
        """Write every item; return their IRIs, in manifest order."""
        iris: list[str] = []
        for item in self.source.items:
            for node in _item_nodes(self.names, item):
                self.graph.write(node)
            iris.append(self.names.item(item.id))
        return iris

    def _acquisition(self, examiner: str, container: str, items: list[str]) -> str:
        manifest = self.source.manifest
        provenance = manifest.provenance
        tools = [
            self.graph.top(
                {
                    "@id": self.names.node(role),
                    "@type": "uco-tool:Tool",
                    "uco-core:name": name,
                    "uco-tool:version": version,
                }
            )
            for role, name, version in [
                ("tool", provenance.tool.name, provenance.tool.version),
                *(
                    (f"tool/library/{name}", name, version)
                    for name, version in sorted(provenance.libraries.items())
                ),
            ]
        ]
        computer = self.names.node("computer")
        self.graph.top(
            {
                "@id": computer,
                "@type": "uco-observable:Computer",
                "uco-core:description": provenance.os,
                "uco-core:hasFacet": [
                    _facet(
                        computer,
                        "uco-observable:ComputerSpecificationFacet",
                        {"uco-observable:hostname": provenance.host},
                    )
                ],
            }
        )
        sources = [self.graph.top(_source_node(self.names, s)) for s in manifest.sources]
        signature = self.source.seal.signature
        seal_key = None
        if signature is not None:
            seal_key = self._key(signature.fingerprint, signature.public_key_pem)
        record = self._record("acquisition/record", [container, *items])
        return self.graph.top(
            _present(
                {
                    "@id": self.names.node("acquisition"),
                    "@type": "case-investigation:InvestigativeAction",
                    "uco-core:name": "acquisition",
                    "uco-action:startTime": _date_time(provenance.started),
                    "uco-action:endTime": _date_time(provenance.finished),
                    "uco-action:performer": _ref(examiner),
                    "uco-action:environment": _ref(computer),
                    "uco-action:location": self._optional_ref(
                        self._location(manifest.case.location)
                    ),
                    "uco-action:instrument": _refs([*tools, seal_key]),
                    "uco-action:object": _refs(sources),
                    "uco-action:result": _refs([record, container, *items]),
                }
            )
        )

    def _custody_event(self, event: CustodyEvent, previous: str, container: str) -> str:
        performer = self._identity(event.actor)
        recipient = None if event.to is None else self._identity(event.to)
        pem = None if event.signature is None else event.signature.public_key_pem
        key = self._key(event.actor_key_fingerprint, pem)
        location = self._location(event.location)
        record = self._record(f"custody/{event.seq}/record", [container])
        return self.graph.top(
            _present(
                {
                    "@id": self.names.node(f"custody/{event.seq}"),
                    "@type": "case-investigation:InvestigativeAction",
                    "uco-core:name": event.action,
                    "uco-core:description": event.note or None,
                    "uco-action:startTime": _date_time(event.time),
                    "uco-action:performer": _ref(performer),
                    "uco-action:participant": _refs([recipient]),
                    "uco-action:instrument": _refs([key]),
                    "uco-action:location": self._optional_ref(location),
                    "uco-action:object": [_ref(container)],
                    "uco-action:result": [_ref(record)],
                    "case-investigation:wasInformedBy": [_ref(previous)],
                }
            )
        )

    def _investigation(self) -> None:
        case = self.source.manifest.case
        investigation = self.names.node("investigation")
        if case.notes:
            self.graph.top(
                {
                    "@id": self.names.node("investigation/notes"),
                    "@type": "uco-core:Annotation",
                    "uco-core:description": case.notes,
                    "uco-core:object": [_ref(investigation)],
                }
            )
        self.graph.write(
            _present(
                {
                    "@id": investigation,
                    "@type": "case-investigation:Investigation",
                    "case-investigation:investigationForm": "case",
                    "uco-core:name": case.case_number,
                    "uco-core:description": case.description or None,
                    "uco-core:object": _refs(self.graph.listed),
                }
            )
        )

    @staticmethod
    def _optional_ref(iri: str | None) -> dict[str, str] | None:
        return None if iri is None else _ref(iri)


def write_case(source: ExportSource, out: BinaryIO) -> int:
    """``write_file`` for ``--format case``. Returns the number of items written as
    observables: every item of the manifest, stored or not."""
    graph = _GraphWriter(out)
    entries = _CaseExport(source, graph).run()
    graph.close()
    return entries


__all__ = ["CASE_VERSION", "CONTEXT", "HASH_METHODS", "NodeNames", "write_case"]
