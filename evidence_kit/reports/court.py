"""The court report: one self-contained, printable page about one bundle.

The bundle is verified first (every check ``verify`` runs, with the key given), and the
report is filled from that very run and from the bundle it read: case and evidence,
the acquisition (who, when, where, with which tool and versions), every check with what
was compared, the items with their digests (in pages, for bundles of 100,000 items),
the custody timeline, signers, timestamp tokens, anomalies, and the stock-tool commands
that re-check it all without evidence-kit.

A certification section (hash certification, worded for no particular jurisdiction)
is filled in only when verification passed with the contents checked; otherwise the
report says why it was withheld. The page has no external assets and every value is
autoescaped: names in a manifest are hostile input.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence_kit import clock
from evidence_kit.atomic import AtomicFile, output_error
from evidence_kit.bundle import Bundle, trusted_fingerprints
from evidence_kit.custody import custody_log_path
from evidence_kit.custody_append import Recorder
from evidence_kit.custody_report import Anchor, event_views, handovers
from evidence_kit.errors import UsageError
from evidence_kit.exporters.hash_lists import hash_list_line
from evidence_kit.exporters.source import STORED_KINDS
from evidence_kit.i18n import _
from evidence_kit.keys import KeyMaterial
from evidence_kit.manifest import ItemTable
from evidence_kit.models import ItemRecord, ManifestHead, ReportResult, VerificationReport
from evidence_kit.naming import path_bytes
from evidence_kit.progress import Progress
from evidence_kit.provenance import TOOL
from evidence_kit.reports.pdf import require_pdf_renderer, write_pdf
from evidence_kit.reports.templates import report_template
from evidence_kit.timestamps import DEFAULT_SKEW_SECONDS
from evidence_kit.verify import VerifyRequest, verify_bundle

ITEMS_PER_PAGE = 500
MAX_PROBLEMS_LISTED = 1000
DEFAULT_MAX_ITEMS = 5000
ReportFormat = Literal["html", "pdf"]


@dataclass(frozen=True)
class ReportRequest:
    container: Path
    output: Path
    key: KeyMaterial | None = field(default=None, repr=False)
    trusted: tuple[Ed25519PublicKey, ...] = ()
    tsa_roots: tuple[x509.Certificate, ...] = ()
    anchor: Anchor | None = None
    skew_seconds: int = DEFAULT_SKEW_SECONDS
    certifier: str | None = None
    max_items: int = DEFAULT_MAX_ITEMS
    overwrite: bool = False
    record: Recorder | None = None


@dataclass
class ItemSurvey:
    """One pass over the items before the page is written: the problems to list first,
    and the SHA-256 of the complete item list in the form ``export --format sha256sum``
    writes, which ties every item's digest to the report however few rows it shows."""

    problems: list[ItemRecord] = field(default_factory=list)
    problem_count: int = 0
    stored: int = 0
    hash_list_sha256: str = ""


@dataclass
class ItemPage:
    first: int
    last: int
    items: list[ItemRecord]


def report_format(output: Path) -> ReportFormat:
    return "pdf" if output.suffix.lower() == ".pdf" else "html"


def write_report(request: ReportRequest, progress: Progress | None = None) -> ReportResult:
    """Verify the bundle, then write the report (also when verification failed: the
    report says so, and withholds the certification)."""
    chosen = report_format(request.output)
    if request.output.exists() and not request.overwrite:
        raise UsageError(
            _("{path} already exists; refusing to replace it").format(path=request.output),
            hint=_("Choose another --out, or pass --overwrite."),
        )
    if chosen == "pdf":
        require_pdf_renderer()
    written: dict[str, int] = {}

    def render(bundle: Bundle, verification: VerificationReport) -> None:
        context = report_context(bundle, verification, request)
        written["total"] = context["item_count"]
        written["items"] = context["items_listed"]
        with AtomicFile(request.output) as out:
            try:
                pieces = report_template().generate(**context)
                if chosen == "pdf":
                    write_pdf("".join(pieces), out.file)
                else:
                    for piece in pieces:
                        out.file.write(piece.encode("utf-8"))
                out.commit(overwrite=request.overwrite)
            except OSError as error:
                raise output_error(request.output, error) from None

    verification = verify_bundle(
        VerifyRequest(
            container=request.container,
            key=request.key,
            trusted=request.trusted,
            anchor=request.anchor,
            tsa_roots=request.tsa_roots,
            skew_seconds=request.skew_seconds,
        ),
        progress,
        then=render,
    )
    withheld = certification_withheld(verification)
    recorded = None
    if request.record is not None:
        outcome = _("court report ({format}): {verdict}, {n} items listed").format(
            format=chosen, verdict=verification.verdict, n=written["items"]
        )
        recorded = request.record.record(
            request.container, "exported", outcome, verification.container_sha256
        )
    return ReportResult(
        container=str(request.container),
        bundle_id=verification.bundle_id,
        output=str(request.output),
        format=chosen,
        verdict=verification.verdict,
        contents_checked=verification.contents_checked,
        certified=withheld is None,
        certification_withheld=withheld,
        items=written["items"],
        items_total=written["total"],
        findings=len(verification.findings),
        recorded_event=recorded,
    )


def certification_withheld(verification: VerificationReport) -> str | None:
    """Why no certificate can be issued, or None when it can."""
    if verification.verdict != "verified":
        errors = sum(1 for f in verification.findings if f.severity == "error")
        return _(
            "verification did not pass ({n} problems); a certificate is issued only for a "
            "bundle that verifies"
        ).format(n=errors)
    if not verification.contents_checked:
        return _(
            "the contents were not checked (no key was given); a certificate needs every "
            "item's digest recomputed"
        )
    return None


def reservations(verification: VerificationReport) -> list[str]:
    """What a certificate must state beside a pass: warnings and checks not made."""
    notes = [f"{f.code}: {f.message}" for f in verification.findings if f.severity == "warning"]
    if verification.seal == "unsigned":
        notes.append(_("the manifest is sealed but not signed: no signer vouches for it"))
    if verification.seal == "signed" and verification.signer_trusted is None:
        notes.append(
            _("the signer's key was not compared with a list of known keys (no --trust given)")
        )
    if any(t.verified is None for t in verification.timestamps):
        notes.append(_("timestamp tokens were not verified (no trusted TSA root given)"))
    return notes


def report_context(
    bundle: Bundle, verification: VerificationReport, request: ReportRequest
) -> dict[str, Any]:
    """Everything the template shows; the item pages are read lazily while it renders."""
    trusted = trusted_fingerprints(list(request.trusted))
    manifest = bundle.manifest
    items = bundle.items
    views = event_views(bundle.custody, bundle.container_sha256, trusted)
    count = len(items) if items is not None else 0
    withheld = certification_withheld(verification)
    return {
        "_": _,
        "tool": f"{TOOL.name} {TOOL.version}",
        "generated": clock.now(),
        "container_name": request.container.name,
        "container_size": _size(request.container),
        "custody_log_name": custody_log_path(request.container).name,
        "v": verification,
        "manifest": manifest,
        "manifest_sha256": bundle.manifest_sha256,
        "seal": bundle.seal,
        "events": views,
        "event0": bundle.custody.events[0] if bundle.custody.events else None,
        "handovers": handovers(bundle.custody.events),
        "head": bundle.custody.head_sha256,
        "tokens": {e.seq: e.timestamp for e in bundle.custody.events if e.timestamp},
        "item_count": count,
        "items_listed": min(count, max(request.max_items, 0)),
        "item_pages": _pages(items, request.max_items) if items is not None else iter(()),
        "survey": survey_items(items) if items is not None else ItemSurvey(),
        "withheld": withheld,
        "reservations": reservations(verification),
        "certifier": request.certifier,
        "stock_commands": stock_commands(request.container, verification, manifest),
    }


def stock_commands(
    container: Path, verification: VerificationReport, manifest: ManifestHead | None
) -> list[tuple[str, str]]:
    """What to type to re-check the report's claims with standard tools."""
    name = shlex.quote(container.name)
    log = shlex.quote(custody_log_path(container).name)
    commands = [
        (
            _("The container's SHA-256; it must equal the value in custody event 0"),
            f'sha256sum {name}\nhead -n 1 {log} | grep -o \'"container_sha256":"[0-9a-f]*"\'',
        ),
        (
            _(
                "A kit of the signed bytes, signatures and tokens, and its own check script "
                "(sha256sum, openssl, age, 7-Zip)"
            ),
            f"evidence-kit export {name} --format kit --out kit --identity lab.key\n"
            f"kit/VERIFY.sh {name} lab.key",
        ),
        (_("Open the container with age and 7-Zip"), _open_with_stock_tools(name, manifest)),
    ]
    for check in verification.timestamps:
        stem = f"kit/timestamp-{check.event_seq:04d}"
        commands.append(
            (
                _("The timestamp token of custody event {n} (from the kit: the token beside "
                  "the line it stamps, and its request)").format(n=check.event_seq),
                f"openssl ts -verify -in {stem}.tsr -data {stem}.bin -CAfile tsa-root.pem\n"
                f"openssl ts -verify -in {stem}.tsr -queryfile {stem}.tsq -CAfile tsa-root.pem",
            )
        )  # fmt: skip
    if manifest is not None:
        commands.append(
            (
                _("Every extracted file against the manifest's digests"),
                f"evidence-kit extract {name} --out case --identity lab.key\n"
                f"evidence-kit export {name} --format sha256sum --out list.sha256 "
                "--identity lab.key\ncd case && sha256sum -c ../list.sha256",
            )
        )
    return commands


def _open_with_stock_tools(name: str, manifest: ManifestHead | None) -> str:
    """age opens a key slot (its output is the zip password), 7-Zip reads the password
    from standard input, so it never appears in a command line."""
    slots = manifest.key_slots if manifest is not None else []
    x25519 = next((s.member for s in slots if s.kind == "x25519"), None)
    if x25519 is not None:
        slot = shlex.quote(x25519)
        return f"7zz e -so {name} {slot} | age -d -i lab.key | 7zz t {name}"
    slot = shlex.quote(slots[0].member if slots else "keyslots/00-scrypt.age")
    return (
        f"7zz e -so {name} {slot} > slot.age\n"
        "age -d slot.age      # asks for the passphrase, prints the zip password\n"
        f"7zz t {name}         # asks for that password"
    )


def _pages(items: ItemTable, limit: int) -> Iterator[ItemPage]:
    page: list[ItemRecord] = []
    first = 1
    for number, item in enumerate(items, start=1):
        if number > limit:
            break
        page.append(item)
        if len(page) == ITEMS_PER_PAGE:
            yield ItemPage(first, first + len(page) - 1, page)
            first += len(page)
            page = []
    if page:
        yield ItemPage(first, first + len(page) - 1, page)


def survey_items(items: ItemTable) -> ItemSurvey:
    """The items with a problem (not ok, a lying extension, read errors; the first
    MAX_PROBLEMS_LISTED), and the digest of the complete SHA-256 list."""
    survey = ItemSurvey()
    listing = hashlib.sha256()
    for item in items:
        if item.status != "ok" or item.extension_mismatch is not None or item.read_errors:
            survey.problem_count += 1
            if len(survey.problems) < MAX_PROBLEMS_LISTED:
                survey.problems.append(item)
        if item.kind in STORED_KINDS and item.location is not None:
            survey.stored += 1
            listing.update(hash_list_line(item.digests["sha256"], path_bytes(item.path)))
    survey.hash_list_sha256 = listing.hexdigest()
    return survey


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


__all__ = [
    "DEFAULT_MAX_ITEMS",
    "ITEMS_PER_PAGE",
    "ItemSurvey",
    "ReportRequest",
    "certification_withheld",
    "report_format",
    "reservations",
    "stock_commands",
    "survey_items",
    "write_report",
]
