"""Known-hashes files in hashdeep's own format, that ``hashdeep -a`` audits an extracted
tree against.

The file is what ``hashdeep -l -r .`` itself writes (format ``HASHDEEP-1.0``): two
``%%%%`` header lines naming the columns, ``##`` comment lines, then one line per stored
file (hard links and disk images included) of ``size,<digests>,filename``. The columns
are every digest of the bundle that hashdeep computes, in hashdeep's order: ``md5`` and
``sha1`` when the bundle was acquired with them, ``sha256`` always (hashdeep has no
SHA-512; its Tiger and Whirlpool are not digests a bundle holds). ``size`` is the number
of bytes stored, which ``extract`` writes.

Names are the exact bytes of the item's path, undecoded, relative to the folder ``extract
--out DIR`` writes and prefixed with ``./``: hashdeep matches a file to its line by the
name it prints for it, and ``cd DIR && hashdeep -a -vv -k LIST -o f -l -r .`` prints
exactly those names. ``-o f`` makes hashdeep read regular files only, so the symlinks
``extract`` recreates (which hashdeep would otherwise follow) are neither read twice nor
reported as new files. That audit passes only when every listed file is present with
its digests and no other regular file is in ``DIR``: a changed byte, a missing file and
an added one each make it print ``Audit failed`` and exit 1.

The name is the last field, so commas in it need no escaping; hashdeep has no escape
for a newline or a carriage return, so a bundle holding such a name is refused (use
``--format sha256sum``, which escapes them) rather than written as a list whose audit
could only fail. A bundle with no stored file is refused too: hashdeep cannot audit
against an empty list. The file is deterministic: two exports of one bundle are
byte-identical.
"""

from __future__ import annotations

import os
import shlex
from typing import BinaryIO

from evidence_kit.errors import UsageError
from evidence_kit.exporters.source import ExportSource
from evidence_kit.i18n import _
from evidence_kit.models import ItemRecord
from evidence_kit.naming import display_name, path_bytes, printable_text

# What hashdeep 4.4 computes (md5, sha1, sha256, tiger, whirlpool) and a bundle may hold.
HASHDEEP_ALGORITHMS = ("md5", "sha1", "sha256")
AUDIT_COMMAND = "hashdeep -a -vv -k {out} -o f -l -r ."
_UNSAFE_IN_NAMES = (b"\n", b"\r")


def hashdeep_columns(algorithms: list[str]) -> list[str]:
    """The digest columns for a bundle acquired with ``algorithms``, in hashdeep's order."""
    return [name for name in HASHDEEP_ALGORITHMS if name in algorithms]


def hashdeep_header(source: ExportSource, columns: list[str]) -> bytes:
    """The ``%%%%`` lines and ``##`` comments: where the list comes from, how to audit."""
    manifest = source.manifest
    case = manifest.case
    origin = (
        f"evidence-kit {manifest.provenance.tool.version}, bundle {manifest.bundle_id}"
        f" (case {case.case_number}, evidence {case.evidence_number})"
    )
    container = shlex.quote(display_name(os.fsencode(source.container.name)))
    lines = [
        "%%%% HASHDEEP-1.0",
        "%%%% size," + ",".join(columns) + ",filename",
        "## Invoked from: " + printable_text(origin),
        "## $ evidence-kit export " + container + " --format hashdeep",
        "## Names are relative to the folder 'evidence-kit extract' writes; audit with:",
        "## cd EXTRACTED && " + AUDIT_COMMAND.format(out="THIS_FILE"),
        "## ",
    ]
    return "".join(line + "\n" for line in lines).encode("utf-8")


def hashdeep_line(item: ItemRecord, columns: list[str]) -> bytes:
    """One ``size,digests...,./name`` line; UsageError for a name hashdeep cannot hold."""
    name = path_bytes(item.path)
    if any(unsafe in name for unsafe in _UNSAFE_IN_NAMES):
        raise UsageError(
            _("hashdeep cannot list {name}: its name holds a line break").format(
                name=item.path.display
            ),
            hint=_("Use --format sha256sum, which escapes line breaks in names."),
        )
    size = item.stored_size if item.stored_size is not None else item.size
    fields = [str(size)] + [item.digests[column] for column in columns]
    return ",".join(fields).encode("ascii") + b",./" + name + b"\n"


def write_hashdeep(source: ExportSource, out: BinaryIO) -> int:
    """``write_file`` for ``--format hashdeep``: the header, then one line per stored file."""
    columns = hashdeep_columns(source.manifest.hash_algorithms)
    out.write(hashdeep_header(source, columns))
    entries = 0
    for item in source.stored_items():
        out.write(hashdeep_line(item, columns))
        entries += 1
    if entries == 0:
        raise UsageError(_("this bundle holds no stored file; hashdeep cannot audit an empty list"))
    return entries


__all__ = [
    "AUDIT_COMMAND",
    "HASHDEEP_ALGORITHMS",
    "hashdeep_columns",
    "hashdeep_header",
    "hashdeep_line",
    "write_hashdeep",
]
