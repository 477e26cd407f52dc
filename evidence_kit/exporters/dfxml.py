"""DFXML (Digital Forensics XML) of a bundle: one ``<fileobject>`` per item.

The document declares DFXML version 1.2.0 and follows the DFXML working group's schema
(``dfxml.xsd``): its elements in the schema's order, and evidence-kit's own facts in a
namespace of its own where the schema allows other namespaces, so ``xmllint --schema
dfxml.xsd`` accepts it. It holds:

* ``<metadata>``: ``dc:type`` ("File system walk"), the bundle id as ``dc:identifier``,
  the examiner as ``dc:creator``, the end of the acquisition as ``dc:date`` and the case
  description as ``dc:description``;
* ``<creator>``: the acquisition that recorded every fact below (the manifest's
  provenance): ``program`` and ``version``, an ``execution_environment`` (``host``, the
  platform as ``os_sysname``, ``uid``, ``username``, the command line with secrets
  removed, ``start_time``; the end as ``ek:finish_time``), and one ``<library
  name= version=>`` per library the acquisition recorded;
* ``<source>``: the container's file name as ``image_filename``, with the case fields,
  the bundle id and the container's SHA-256 as ``ek:`` attributes;
* one ``<fileobject>`` per item of the manifest, in its order: ``filename`` (the path
  relative to the folder ``extract --out`` writes), ``error`` (the item's status when
  not ``ok``, and its unreadable ranges), ``id`` (the item id), ``name_type`` and
  ``meta_type`` (The Sleuth Kit's letters and numbers), ``filesize`` (from ``lstat``),
  ``inode``, ``mode`` (``st_mode``, base 10), ``nlink``, ``uid``, ``gid``, ``mtime``,
  ``ctime`` and ``atime`` (ISO 8601 UTC with nanoseconds), ``link_target``,
  ``libmagic`` (libmagic's description) and one ``hashdigest`` per digest of the bytes
  stored; then ``ek:item`` (kind, status, bytes stored, MIME type, the item a hard link
  repeats), ``ek:read_error`` per unreadable range and ``ek:extension_mismatch``.

Evidence-kit's own elements and attributes are in the namespace :data:`EK_NAMESPACE`
(prefix ``ek``), where DFXML allows other namespaces. No ``crtime`` is written (the
manifest records no birth time) and no ``prec`` (the schema counts it in whole seconds;
times are the file system's nanoseconds). A time outside the years 1-9999 is written as
``ek:time`` with its nanoseconds since the epoch instead.

Names: ``<filename>`` and ``<link_target>`` hold the manifest's display form
(:func:`evidence_kit.naming.display_name`: UTF-8, backslashes doubled, control
characters and undecodable bytes escaped; U+FFFE and U+FFFF, which XML 1.0 cannot hold,
written ``\\ufffe`` and ``\\uffff``). When that text is not exactly the name (its UTF-8
encoding differs from the name's bytes), the exact bytes follow as ``<ek:filename
encoding="base64">`` (``<ek:link_target ...>``), so every name is recovered byte for
byte: the base64 value when present, else the UTF-8 of ``<filename>``. Free text (case
fields, command line, host) is written as :func:`evidence_kit.naming.printable_text`
makes it. Fixed labels are English, not translated, so that the output does not depend
on the locale. The document is written item by item, and two exports of one bundle are
byte-identical.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from typing import BinaryIO
from xml.sax.saxutils import escape, quoteattr

from evidence_kit.exporters.source import ExportSource
from evidence_kit.models import Instant, ItemRecord, PathName
from evidence_kit.naming import display_name, path_bytes, printable_text
from evidence_kit.provenance import TOOL

DFXML_VERSION = "1.2.0"
DFXML_NAMESPACE = "http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML"
DC_NAMESPACE = "http://purl.org/dc/elements/1.1/"
EK_NAMESPACE = "https://evidence-kit.invalid/dfxml/1"

# The Sleuth Kit's name types (TSK_FS_NAME_TYPE) and meta types (TSK_FS_META_TYPE).
NAME_TYPES = {
    "file": "r",
    "hardlink": "r",
    "disk-image": "r",
    "directory": "d",
    "symlink": "l",
    "fifo": "p",
    "socket": "s",
    "char-device": "c",
    "block-device": "b",
    "unknown": "-",
}
META_TYPES = {
    "r": 1,
    "d": 2,
    "p": 3,
    "c": 4,
    "b": 5,
    "l": 6,
    "s": 8,
}
# XML 1.0 characters a name's display form may still hold but a document may not.
_NOT_XML = {0xFFFE: "\\ufffe", 0xFFFF: "\\uffff"}


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 cannot hold escaped (controls, surrogates,
    U+FFFE and U+FFFF); text that is already a display form gains no new ambiguity."""
    return printable_text(text).translate(_NOT_XML)


def name_text(name: PathName) -> tuple[str, str | None]:
    """What ``<filename>`` holds for ``name``, and the exact bytes as base64 when that
    text is not exactly the name."""
    text = xml_text(name.display)
    exact = path_bytes(name)
    return text, (None if text.encode("utf-8") == exact else name.b64)


class _Document:
    """An indented XML document written piece by piece: text is escaped by
    :func:`xml.sax.saxutils.escape`, attribute values by :func:`~xml.sax.saxutils.quoteattr`
    (which also turns tabs and line breaks into character references). Each top-level
    element is written as soon as it is complete, so memory does not grow with items."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._parts: list[str] = []
        self._depth = 0

    def _open_tag(self, name: str, attrs: Mapping[str, str] | None, close: str) -> None:
        pairs = "".join(f" {key}={quoteattr(value)}" for key, value in (attrs or {}).items())
        self._parts.append(f"\n{'  ' * self._depth}<{name}{pairs}{close}")

    def start(self, name: str, attrs: Mapping[str, str] | None = None) -> None:
        self._open_tag(name, attrs, ">")
        self._depth += 1

    def end(self, name: str) -> None:
        self._depth -= 1
        self._parts.append(f"\n{'  ' * self._depth}</{name}>")
        if self._depth == 1:
            self.flush()

    def element(self, name: str, text: str = "", attrs: Mapping[str, str] | None = None) -> None:
        if text:
            self._open_tag(name, attrs, ">")
            self._parts.append(f"{escape(text)}</{name}>")
        else:
            self._open_tag(name, attrs, "/>")

    def flush(self) -> None:
        self._out.write("".join(self._parts).encode("utf-8"))
        self._parts.clear()

    def begin(self, root: str, attrs: Mapping[str, str]) -> None:
        self._parts.append('<?xml version="1.0" encoding="utf-8"?>')
        self._open_tag(root, attrs, ">")
        self._depth = 1

    def finish(self, root: str) -> None:
        self._depth = 0
        self._parts.append(f"\n</{root}>\n")
        self.flush()


def write_dfxml(source: ExportSource, out: BinaryIO) -> int:
    """``write_file`` for ``--format dfxml``: the document, one fileobject per item."""
    document = _Document(out)
    document.begin(
        "dfxml",
        {
            "xmlns": DFXML_NAMESPACE,
            "xmlns:dc": DC_NAMESPACE,
            "xmlns:ek": EK_NAMESPACE,
            "version": DFXML_VERSION,
            "ek:exported_with": f"{TOOL.name} {TOOL.version}",
        },
    )
    _write_metadata(document, source)
    _write_creator(document, source)
    _write_source(document, source)
    entries = 0
    for item in source.items:
        _write_fileobject(document, item)
        entries += 1
    document.finish("dfxml")
    return entries


def _write_metadata(document: _Document, source: ExportSource) -> None:
    manifest = source.manifest
    document.start("metadata")
    document.element("dc:type", "File system walk")
    document.element("dc:identifier", xml_text(manifest.bundle_id))
    document.element("dc:creator", xml_text(manifest.case.examiner))
    if manifest.provenance.finished.utc is not None:
        document.element("dc:date", manifest.provenance.finished.utc)
    if manifest.case.description:
        document.element("dc:description", xml_text(manifest.case.description))
    document.end("metadata")


def _write_creator(document: _Document, source: ExportSource) -> None:
    provenance = source.manifest.provenance
    document.start("creator")
    document.element("program", xml_text(provenance.tool.name))
    document.element("version", xml_text(provenance.tool.version))
    environment: dict[str, str] = {}
    if provenance.finished.utc is not None:
        environment["ek:finish_time"] = provenance.finished.utc
    document.start("execution_environment", environment)
    document.element("os_sysname", xml_text(provenance.os))
    document.element("host", xml_text(provenance.host))
    document.element("command_line", xml_text(shlex.join(provenance.command_line)))
    document.element("uid", str(provenance.uid))
    document.element("username", xml_text(provenance.user))
    if provenance.started.utc is not None:
        document.element("start_time", provenance.started.utc)
    document.end("execution_environment")
    for name, version in provenance.libraries.items():
        document.element("library", attrs={"name": xml_text(name), "version": xml_text(version)})
    document.end("creator")


def _write_source(document: _Document, source: ExportSource) -> None:
    manifest = source.manifest
    case = manifest.case
    attrs = {
        "ek:bundle_id": manifest.bundle_id,
        "ek:container_sha256": source.container_sha256,
        "ek:case_number": case.case_number,
        "ek:evidence_number": case.evidence_number,
        "ek:examiner": case.examiner,
        "ek:description": case.description,
        "ek:notes": case.notes,
        "ek:location": case.location,
    }
    document.start("source", {key: xml_text(value) for key, value in attrs.items()})
    document.element("image_filename", display_name(os.fsencode(source.container.name)))
    document.end("source")


def _write_fileobject(document: _Document, item: ItemRecord) -> None:
    document.start("fileobject")
    filename, exact_name = name_text(item.path)
    document.element("filename", filename)
    problem = item_error(item)
    if problem:
        document.element("error", problem)
    document.element("id", str(item.id))
    name_type = NAME_TYPES[item.kind]
    document.element("name_type", name_type)
    document.element("filesize", str(item.size))
    if item.inode.isdigit():
        document.element("inode", item.inode)
    if name_type in META_TYPES:
        document.element("meta_type", str(META_TYPES[name_type]))
    document.element("mode", str(item.mode))
    document.element("nlink", str(item.nlink))
    document.element("uid", str(item.uid))
    document.element("gid", str(item.gid))
    outside: dict[str, Instant] = {}
    for label, moment in (("mtime", item.mtime), ("ctime", item.ctime), ("atime", item.atime)):
        if moment.utc is not None:
            document.element(label, moment.utc)
        else:
            outside[label] = moment
    target, exact_target = (None, None)
    if item.symlink_target is not None:
        target, exact_target = name_text(item.symlink_target)
        document.element("link_target", target)
    if item.description:
        document.element("libmagic", xml_text(item.description))
    for algorithm, digest in item.digests.items():
        document.element("hashdigest", digest, {"type": algorithm})
    _write_extensions(document, item, exact_name, exact_target, outside)
    document.end("fileobject")


def _write_extensions(
    document: _Document,
    item: ItemRecord,
    exact_name: str | None,
    exact_target: str | None,
    outside: dict[str, Instant],
) -> None:
    if exact_name is not None:
        document.element("ek:filename", exact_name, {"encoding": "base64"})
    if exact_target is not None:
        document.element("ek:link_target", exact_target, {"encoding": "base64"})
    facts: dict[str, str] = {"kind": item.kind, "status": item.status}
    if item.stored_size is not None:
        facts["stored_size"] = str(item.stored_size)
    if item.mime_type:
        facts["mime_type"] = xml_text(item.mime_type)
    if item.hardlink_of is not None:
        facts["hardlink_of"] = str(item.hardlink_of)
    if item.reason:
        facts["reason"] = xml_text(item.reason)
    if item.errno is not None:
        facts["errno"] = str(item.errno)
    document.element("ek:item", attrs=facts)
    for label, moment in outside.items():
        document.element("ek:time", attrs={"name": label, "ns": moment.ns})
    for error in item.read_errors:
        where = {"offset": str(error.offset), "errno": str(error.errno)}
        if error.length is not None:
            where["length"] = str(error.length)
        where["error"] = xml_text(error.error)
        document.element("ek:read_error", attrs=where)
    if item.extension_mismatch is not None:
        mismatch = item.extension_mismatch
        document.element(
            "ek:extension_mismatch",
            attrs={
                "extension": xml_text(mismatch.extension),
                "expected_mime_type": xml_text(mismatch.expected_mime_type),
                "actual_mime_type": xml_text(mismatch.actual_mime_type),
            },
        )


def item_error(item: ItemRecord) -> str:
    """DFXML's ``<error>`` for an item: its status when not ``ok`` and its unreadable
    ranges, in English; empty for an item read completely."""
    parts: list[str] = []
    if item.status != "ok":
        reason = f": {item.reason}" if item.reason else ""
        number = f" (errno {item.errno})" if item.errno is not None else ""
        parts.append(f"{item.status}{reason}{number}")
    if item.read_errors:
        parts.append(f"{len(item.read_errors)} unreadable byte range(s) stored as zeros")
    return xml_text("; ".join(parts))


__all__ = [
    "DFXML_NAMESPACE",
    "DFXML_VERSION",
    "EK_NAMESPACE",
    "item_error",
    "name_text",
    "write_dfxml",
    "xml_text",
]
