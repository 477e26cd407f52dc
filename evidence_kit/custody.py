"""The custody log: JSON Lines beside the container, one signed, hash-chained event a line.

Each line is the RFC 8785 form of a :class:`~evidence_kit.models.CustodyEvent`. The
signature covers the event without its ``signature`` field; ``prev_event_sha256`` is the
SHA-256 of the previous line's bytes (without the newline), so editing, dropping,
reordering or inserting an event breaks the chain at the first bad event. The log holds no
file names: it is not encrypted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence_kit import keys
from evidence_kit.canonical import MalformedRecord, canonical_bytes, decimal_integer, load_record
from evidence_kit.i18n import _
from evidence_kit.models import CustodyEvent, CustodySummary, Finding

MAX_LOG_BYTES = 64 << 20


def custody_log_path(container: Path) -> Path:
    """``B.zip`` -> ``B.custody.jsonl`` (other names get ``.custody.jsonl`` appended)."""
    if container.suffix.lower() == ".zip":
        return container.with_suffix(".custody.jsonl")
    return container.with_name(container.name + ".custody.jsonl")


def signing_bytes(event: CustodyEvent) -> bytes:
    data: dict[str, Any] = event.model_dump(mode="json")
    data.pop("signature")
    return canonical_bytes(data)


def sign_event(event: CustodyEvent, key: Ed25519PrivateKey | None) -> CustodyEvent:
    if key is None:
        return event
    public_fingerprint = keys.fingerprint(key.public_key())
    unsigned = event.model_copy(update={"actor_key_fingerprint": public_fingerprint})
    return unsigned.model_copy(update={"signature": keys.sign(key, signing_bytes(unsigned))})


def event_line(event: CustodyEvent) -> bytes:
    return canonical_bytes(event) + b"\n"


def line_sha256(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


@dataclass
class CustodyLog:
    """A parsed log: the events that parsed, and what was wrong with the rest."""

    path: Path
    events: list[CustodyEvent] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    torn_bytes: int = 0

    @property
    def head_sha256(self) -> str | None:
        return line_sha256(self.lines[-1]) if self.lines else None

    def summary(self) -> CustodySummary:
        return CustodySummary(
            events=len(self.events),
            head_sha256=self.head_sha256,
            actions=[event.action for event in self.events],
            signed_events=sum(1 for event in self.events if event.signature is not None),
        )


def _finding(code: str, subject: str, message: str, **values: str | None) -> Finding:
    return Finding(code=code, severity="error", subject=subject, message=message, **values)


def read_custody_log(path: Path) -> CustodyLog:
    """Parse every line strictly; a torn or malformed line is a finding, never skipped."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_LOG_BYTES + 1)
    except FileNotFoundError:
        log = CustodyLog(path)
        log.findings.append(
            _finding("custody-log-missing", str(path), _("no custody log beside the container"))
        )
        return log
    except OSError as error:
        log = CustodyLog(path)
        log.findings.append(
            _finding("custody-log-unreadable", str(path), error.strerror or str(error))
        )
        return log
    return parse_custody_log(path, data)


def parse_custody_log(path: Path, data: bytes) -> CustodyLog:
    """The log in ``data`` (read from ``path``), line by line."""
    log = CustodyLog(path)
    if len(data) > MAX_LOG_BYTES:
        log.findings.append(
            _finding("custody-log-too-large", str(path), _("custody log over 64 MiB"))
        )
        return log
    if not data:
        log.findings.append(_finding("custody-log-empty", str(path), _("the custody log is empty")))
        return log
    raw_lines = data.split(b"\n")
    torn = raw_lines.pop()  # what follows the last newline: empty unless torn
    for number, raw in enumerate(raw_lines):
        subject = _("custody event {n}").format(n=number)
        try:
            event = load_record(CustodyEvent, raw, require_canonical=True)
        except MalformedRecord as error:
            log.findings.append(_finding("custody-event-malformed", subject, str(error)))
            return log
        log.events.append(event)
        log.lines.append(raw + b"\n")
    if torn:
        log.torn_bytes = len(torn)
        log.findings.append(
            _finding(
                "custody-log-torn",
                _("custody event {n}").format(n=len(raw_lines)),
                _("the last line is incomplete (no newline): a write was interrupted"),
            )
        )
    return log


def check_chain(
    log: CustodyLog,
    *,
    container_sha256: str | None,
    trusted: set[str] | None,
) -> list[Finding]:
    """Every link, signature, sequence number and time; the container against every event."""
    findings: list[Finding] = []
    previous_line: bytes | None = None
    previous_ns: int | None = None
    first = log.events[0] if log.events else None
    for index, (event, line) in enumerate(zip(log.events, log.lines, strict=True)):
        subject = _("custody event {n} ({action})").format(n=index, action=event.action)
        if event.seq != index:
            findings.append(
                _finding(
                    "custody-sequence-broken",
                    subject,
                    _("sequence number out of place"),
                    expected=str(index),
                    actual=str(event.seq),
                )
            )
        expected_prev = line_sha256(previous_line) if previous_line is not None else None
        if event.prev_event_sha256 != expected_prev:
            findings.append(
                _finding(
                    "custody-chain-broken",
                    subject,
                    _("does not link to the event before it"),
                    expected=expected_prev,
                    actual=event.prev_event_sha256,
                )
            )
        if index == 0 and event.action != "acquired":
            findings.append(
                _finding("custody-first-event", subject, _("the first event must be 'acquired'"))
            )
        if first is not None and event.bundle_id != first.bundle_id:
            findings.append(
                _finding(
                    "custody-bundle-id-mismatch",
                    subject,
                    _("names another bundle"),
                    expected=first.bundle_id,
                    actual=event.bundle_id,
                )
            )
        ns = decimal_integer(event.time.ns)
        if ns is not None and previous_ns is not None and ns < previous_ns:
            findings.append(  # clocks are set wrong more often than logs are forged
                Finding(
                    code="custody-time-order",
                    severity="warning",
                    subject=subject,
                    message=_("earlier than the event before it: a clock was wrong, or the "
                              "events are out of order"),
                )
            )  # fmt: skip
        previous_ns = ns if ns is not None else previous_ns
        findings.extend(_check_event_signature(event, subject, trusted))
        if container_sha256 is not None and event.container_sha256 != container_sha256:
            findings.append(
                _finding(
                    "custody-container-hash-mismatch",
                    subject,
                    _("the container is not the one this event recorded"),
                    expected=event.container_sha256,
                    actual=container_sha256,
                )
            )
        previous_line = line
    return findings


def _check_event_signature(
    event: CustodyEvent, subject: str, trusted: set[str] | None
) -> list[Finding]:
    if event.signature is None:
        if trusted is not None:
            return [
                _finding(
                    "custody-event-unsigned", subject, _("unsigned, but known signers are required")
                )
            ]
        return [
            Finding(
                code="custody-event-unsigned",
                severity="warning",
                subject=subject,
                message=_("this event is not signed"),
            )
        ]
    reason = keys.check_signature(event.signature, signing_bytes(event))
    if reason is not None:
        return [_finding(reason, subject, _("the event's signature does not hold"))]
    if event.actor_key_fingerprint != event.signature.fingerprint:
        return [
            _finding(
                "custody-signer-mismatch", subject, _("signed by a key other than the actor's")
            )
        ]
    if trusted is not None and event.signature.fingerprint not in trusted:
        return [
            _finding(
                "custody-signer-untrusted",
                subject,
                _("signed by a key not given with --trust"),
                actual=event.signature.fingerprint,
            )
        ]
    return []


__all__ = [
    "CustodyLog",
    "check_chain",
    "custody_log_path",
    "event_line",
    "line_sha256",
    "read_custody_log",
    "sign_event",
    "signing_bytes",
]
