"""``lab ingest``: verify bundles, record their receipt, register them and their items.

Per bundle, after its full verification and inside one register transaction: its row
(added, or the one registered before for the same bundle id and container), its items and
digests when it verified, one line of ingest history, and, with a recorder, a signed
``received`` custody event (once per bundle and container). A register error rolls the
bundle back whole; bundles finished before it stay registered.

Outcomes, by what the register held before:

- ``added``: a new bundle; ``already-registered``: the same container verified again
  (nothing changes but the custody head and where it was last seen);
- ``now-verified``: registered before as failed or without a key, verified now;
- ``now-failing``: registered as verified, fails now (its items leave the index);
- ``container-changed``: the bundle id is registered with another container SHA-256.
  Loud: the new container is recorded as failed, never indexed, and every container of
  that bundle id is flagged;
- ``failed`` / ``no-key``: recorded as such, never indexed;
- ``not-recorded``: no bundle id could be read (not a bundle, unreadable file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence_kit import clock
from evidence_kit.custody_append import Recorder
from evidence_kit.errors import EvidenceKitError, NoUsableKey
from evidence_kit.i18n import _
from evidence_kit.keys import KeyMaterial
from evidence_kit.lab.batch import BatchRequest, CheckedBundle, check_bundles, count_verdicts
from evidence_kit.lab.records import IngestedBundle, IngestOutcome, IngestResult
from evidence_kit.lab.register import (
    DEFAULT_LOCK_TIMEOUT,
    BundleFacts,
    BundleRow,
    IngestRun,
    Register,
    open_register,
)
from evidence_kit.models import AppendResult
from evidence_kit.naming import display_name
from evidence_kit.progress import Progress
from evidence_kit.provenance import TOOL
from evidence_kit.timestamps import DEFAULT_SKEW_SECONDS


@dataclass(frozen=True)
class IngestRequest:
    containers: Sequence[Path]
    key: KeyMaterial = field(repr=False)
    register: Path | None = None
    trusted: Sequence[Ed25519PublicKey] = ()
    tsa_roots: Sequence[x509.Certificate] = ()
    skew_seconds: int = DEFAULT_SKEW_SECONDS
    record: Recorder | None = None
    jobs: int = 1
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT


def ingest_bundles(request: IngestRequest, progress: Progress | None = None) -> IngestResult:
    """Verify and register every container of ``request``; see the module's docstring."""
    if request.key.empty:
        raise NoUsableKey(
            _("lab ingest verifies every item, so it needs the lab's key"),
            hint=_("Give --identity or --passphrase-file."),
        )
    started = clock.now()
    register = open_register(request.register, create=True, lock_timeout=request.lock_timeout)
    done: dict[Path, IngestedBundle] = {}
    with register:
        checks = check_bundles(
            BatchRequest(
                containers=request.containers,
                key=request.key,
                trusted=request.trusted,
                tsa_roots=request.tsa_roots,
                skew_seconds=request.skew_seconds,
                jobs=request.jobs,
                index_items=True,
            ),
            progress,
        )
        try:
            for checked in checks:
                try:
                    with _interruptions_held():
                        done[checked.container] = register_bundle(register, checked, request.record)
                except EvidenceKitError as error:
                    error.hint = _(
                        "{n} bundles were registered before this one; run lab ingest again "
                        "for the rest (bundles already registered are recognised)."
                    ).format(n=len(done))
                    raise
        finally:
            checks.close()
    ordered = [done[path] for path in request.containers if path in done]
    return IngestResult(
        register_file=str(register.path),
        bundles=ordered,
        counts=count_verdicts([bundle.check for bundle in ordered]),
        started_at=started,
        tool=TOOL,
        warnings=register.warnings,
    )


@contextlib.contextmanager
def _interruptions_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM held while one bundle is written: the 'received' event is
    appended inside the register's transaction, so an interruption between the two would
    leave the custody log with an event the rolled-back register does not know of. One
    that comes meanwhile is delivered, to the handler it would have met, as soon as the
    transaction is committed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {
        number: signal.signal(number, lambda received, _frame: caught.append(received))
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            if handler is not None:
                signal.signal(number, handler)
    if caught:
        signal.raise_signal(caught[0])


def register_bundle(
    register: Register, checked: CheckedBundle, record: Recorder | None
) -> IngestedBundle:
    """One bundle into the register, in one transaction (see the module's docstring)."""
    check = checked.check
    if check.bundle_id is None or check.container_sha256 is None:
        return IngestedBundle(check=check, outcome="not-recorded", items_indexed=0,
                              registered_as=None)  # fmt: skip
    status = {"verified": "verified", "failed": "failed", "not-a-bundle": "failed"}.get(
        check.verdict, "no-key"
    )
    facts = BundleFacts(
        bundle_id=check.bundle_id,
        container_sha256=check.container_sha256,
        container_size=check.container_size,
        case_number=check.case_number,
        evidence_number=check.evidence_number,
        case_from=check.case_from,
        status=status,
        seal=check.report.seal if check.report else None,
        signer_fingerprint=check.report.signer_fingerprint if check.report else None,
        item_count=check.items,
        total_bytes=check.bytes,
        custody_head=check.report.custody.head_sha256
        if check.report and check.report.custody
        else None,
        custody_events=check.report.custody.events if check.report and check.report.custody
        else 0,
        path=display_name(os.fsencode(os.path.abspath(checked.container))),
    )  # fmt: skip
    with register.transaction():
        known = register.bundles_with_id(check.bundle_id)
        same = next((row for row in known if row.container_sha256 == check.container_sha256),
                    None)  # fmt: skip
        others = [row for row in known if row.container_sha256 != check.container_sha256]
        indexed = 0
        outcome: IngestOutcome
        if same is None and others:
            outcome = "container-changed"
            row = register.add_bundle(
                dataclasses.replace(facts, status="failed"), container_changed=True
            )
            register.flag_container_changed(other.id for other in others)
        elif same is None:
            outcome = {"verified": "added", "failed": "failed"}.get(status, "no-key")  # type: ignore[assignment]
            row = register.add_bundle(facts, container_changed=False)
            if status == "verified":
                indexed = register.replace_items(row, checked.items or ())
        else:
            row = same.id
            outcome, indexed = _again(register, same, facts, checked)
        appended, problem = None, None
        received_before = same.received_seq if same is not None else None
        if record is not None and received_before is None and outcome != "container-changed":
            appended, problem = _record_receipt(record, checked)
            if appended is not None:
                register.set_custody(
                    row, appended.head_sha256, appended.event_count, appended.event.seq
                )
        register.add_ingest_run(
            IngestRun(
                bundle=row,
                path=check.path,
                container_sha256=check.container_sha256,
                verdict=check.verdict,
                outcome=outcome,
                reasons=check.reasons,
                actor=record.actor if record is not None else None,
                received_seq=appended.event.seq if appended is not None else None,
                host=platform.node(),
            )
        )
    return IngestedBundle(
        check=check,
        outcome=outcome,
        items_indexed=indexed,
        registered_as=row,
        previous_container_sha256=[other.container_sha256 for other in others],
        received_event=appended,
        custody_problem=problem,
    )


def _again(
    register: Register, same: BundleRow, facts: BundleFacts, checked: CheckedBundle
) -> tuple[IngestOutcome, int]:
    """The same container seen again: what changes, given what was registered."""
    if facts.status == "no-key":
        return "no-key", 0  # a key problem here says nothing new about the bundle
    register.update_bundle(same.id, facts)
    if facts.status == "failed":
        register.remove_items(same.id)
        return ("now-failing" if same.status == "verified" else "failed"), 0
    if same.status == "verified":
        return "already-registered", 0
    return "now-verified", register.replace_items(same.id, checked.items or ())


def _record_receipt(
    record: Recorder, checked: CheckedBundle
) -> tuple[AppendResult | None, str | None]:
    """The signed 'received' event; a log that cannot take it is reported, not fatal to
    the registration (the register says the event is missing)."""
    check = checked.check
    summary = {
        "verified": _("verified: {items} items, {bytes} bytes").format(
            items=check.items, bytes=check.bytes
        ),
        "failed": _("verification FAILED: {reasons}").format(reasons=", ".join(check.reasons)),
        "not-a-bundle": _("verification FAILED: {reasons}").format(
            reasons=", ".join(check.reasons)
        ),
    }.get(check.verdict, _("contents not checked: no key opened it"))
    try:
        appended = record.record(
            checked.container,
            "received",
            _("lab intake, {summary}").format(summary=summary),
            check.container_sha256,
        )
    except EvidenceKitError as error:
        return None, error.message
    return appended, None


__all__ = ["IngestRequest", "ingest_bundles", "register_bundle"]
