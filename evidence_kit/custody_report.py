"""Reading a custody log for people: the timeline, the hand-overs, the head, anchors.

No key is needed for any of it: the log holds no file names and is not encrypted, and
the container is only hashed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence_kit import keys
from evidence_kit.custody import (
    CustodyLog,
    check_chain,
    custody_log_path,
    line_sha256,
    read_custody_log,
    signing_bytes,
)
from evidence_kit.custody_append import measure_container
from evidence_kit.errors import UsageError
from evidence_kit.i18n import _
from evidence_kit.models import CustodyEvent, CustodyEventView, CustodyReport, Finding, Handover

_ANCHOR = re.compile(r"^([0-9a-fA-F]{64})(?::([0-9]+))?$")


@dataclass(frozen=True)
class Anchor:
    """A log head written down earlier (on a paper form): its hash, and maybe its count."""

    head_sha256: str
    count: int | None = None


def parse_anchor(text: str) -> Anchor:
    """``HASH`` or ``HASH:COUNT`` as ``custody show`` prints it."""
    match = _ANCHOR.match(text.strip())
    if match is None or (match.group(2) is not None and int(match.group(2)) < 1):
        raise UsageError(
            _("--expect-head {text!r}: expected a SHA-256 (64 hex digits), "
              "optionally followed by ':' and the event count").format(text=text)
        )  # fmt: skip
    count = int(match.group(2)) if match.group(2) is not None else None
    return Anchor(match.group(1).lower(), count)


def check_anchor(log: CustodyLog, anchor: Anchor) -> list[Finding]:
    """The anchored event is still in the log, at its place: nothing up to it was removed
    or rewritten (events appended after it are fine)."""
    subject = _("custody log head {head}").format(head=anchor.head_sha256[:16] + "…")
    positions = [i for i, line in enumerate(log.lines) if line_sha256(line) == anchor.head_sha256]
    if not positions:
        return [
            Finding(
                code="custody-anchor-missing",
                severity="error",
                subject=subject,
                message=_("no event in the log has the expected head hash: events were removed "
                          "or rewritten since it was written down"),
                expected=anchor.head_sha256,
                actual=log.head_sha256,
            )
        ]  # fmt: skip
    if anchor.count is not None and positions[0] + 1 != anchor.count:
        return [
            Finding(
                code="custody-anchor-count-mismatch",
                severity="error",
                subject=subject,
                message=_("the expected head is not at the expected event count"),
                expected=str(anchor.count),
                actual=str(positions[0] + 1),
            )
        ]
    return []


def handovers(events: list[CustodyEvent]) -> list[Handover]:
    """Each 'transferred' event, closed by the first later 'received' event."""
    result = []
    for index, event in enumerate(events):
        if event.action != "transferred":
            continue
        closing = next((e for e in events[index + 1 :] if e.action == "received"), None)
        if closing is None:
            status = "not-acknowledged"
        elif event.to is not None and closing.actor.strip() != event.to.strip():
            status = "received-by-another"
        else:
            status = "acknowledged"
        result.append(
            Handover(
                transferred_seq=event.seq,
                transferred_by=event.actor,
                to=event.to,
                received_seq=closing.seq if closing else None,
                received_by=closing.actor if closing else None,
                status=status,  # type: ignore[arg-type]
            )
        )
    return result


def custody_report(
    container: Path,
    *,
    trusted: tuple[Ed25519PublicKey, ...] = (),
    anchor: Anchor | None = None,
) -> CustodyReport:
    """The custody timeline of ``container``, checked as ``verify`` checks it."""
    container_sha256 = measure_container(container)
    log_path = custody_log_path(container)
    log = read_custody_log(log_path)
    required = {keys.fingerprint(key) for key in trusted} if trusted else None
    findings = list(log.findings)
    findings += check_chain(log, container_sha256=container_sha256, trusted=required)
    if anchor is not None:
        findings += check_anchor(log, anchor)
    transfers = handovers(log.events)
    for handover in transfers:
        if handover.status != "acknowledged":
            findings.append(_handover_finding(handover))
    first = log.events[0] if log.events else None
    return CustodyReport(
        container=str(container),
        custody_log=str(log_path),
        container_sha256=container_sha256,
        bundle_id=first.bundle_id if first else None,
        case_number=first.case_number if first else None,
        evidence_number=first.evidence_number if first else None,
        verdict="broken" if any(f.severity == "error" for f in findings) else "intact",
        head_sha256=log.head_sha256,
        event_count=len(log.events),
        events=event_views(log, container_sha256, required),
        handovers=transfers,
        findings=findings,
    )


def _handover_finding(handover: Handover) -> Finding:
    subject = _("custody event {n} (transferred)").format(n=handover.transferred_seq)
    if handover.status == "not-acknowledged":
        return Finding(
            code="custody-handover-not-acknowledged",
            severity="warning",
            subject=subject,
            message=_("transferred to {to}, but no 'received' event follows").format(
                to=handover.to
            ),
        )
    return Finding(
        code="custody-handover-received-by-another",
        severity="warning",
        subject=subject,
        message=_("transferred to {to}, received by {by}").format(
            to=handover.to, by=handover.received_by
        ),
        expected=handover.to,
        actual=handover.received_by,
    )


def event_views(
    log: CustodyLog, container_sha256: str | None, required: set[str] | None
) -> list[CustodyEventView]:
    """The timeline: each event with its signature checked and its container digest
    compared with ``container_sha256`` (the container as measured now)."""
    return [
        _view(event, line, container_sha256, required)
        for event, line in zip(log.events, log.lines, strict=True)
    ]


def _view(
    event: CustodyEvent, line: bytes, container_sha256: str | None, required: set[str] | None
) -> CustodyEventView:
    signature = event.signature
    valid = trusted = None
    if signature is not None:
        valid = keys.check_signature(signature, signing_bytes(event)) is None
    if required is not None:
        trusted = signature is not None and signature.fingerprint in required
    return CustodyEventView(
        seq=event.seq,
        action=event.action,
        time_utc=event.time.utc,
        clock_source=event.time.clock_source,
        actor=event.actor,
        to=event.to,
        location=event.location,
        note=event.note,
        actor_key_fingerprint=event.actor_key_fingerprint,
        signed=signature is not None,
        signature_valid=valid,
        signer_trusted=trusted,
        container_sha256=event.container_sha256,
        container_matches=(
            None if container_sha256 is None else event.container_sha256 == container_sha256
        ),
        line_sha256=line_sha256(line),
    )


__all__ = [
    "Anchor",
    "check_anchor",
    "custody_report",
    "event_views",
    "handovers",
    "parse_anchor",
]
