"""The custody log: a hash-chained, signed event list that names the first bad event.

Assurance given (ASSURANCE.md "Custody, signatures, time"; DESIGN.md section 3):

- a log of several signed events (acquired, transferred, received, stored), built by hand the
  way ``custody add`` will append them, verifies;
- editing any event (with or without re-signing), deleting a middle event, reordering two,
  inserting one, a duplicate JSON key, a malformed or torn line each fail, and the FIRST
  finding names the first bad event (``custody event N``) with a precise reason code;
- dropping the last event cannot be seen from the log alone: a test documents it, and shows
  that the head hash and event count the report prints (the paper form's anchor) change;
- with ``--trust`` an unsigned event or one signed by another key fails; an event that
  recorded another container, another bundle, an earlier time or another actor's key fails.

Verification runs without a bundle key here: every custody check is key-less.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence_kit import keys
from evidence_kit.acquire import AcquireRequest, acquire
from evidence_kit.canonical import load_record
from evidence_kit.clock import instant_from_ns
from evidence_kit.custody import (
    custody_log_path,
    event_line,
    line_sha256,
    read_custody_log,
    sign_event,
    signing_bytes,
)
from evidence_kit.models import CustodyEvent, VerificationReport
from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.conftest import CASE, AgeKey, SigningKey

Cli = Callable[..., Any]
SECOND = 1_000_000_000


@dataclass(frozen=True)
class Chain:
    """A sealed container and a four-event custody log, as bytes (tests work on copies)."""

    container: bytes
    lines: list[bytes]  # each with its newline
    first: CustodyEvent


def make_event(
    first: CustodyEvent,
    previous_line: bytes,
    seq: int,
    action: str,
    key: Ed25519PrivateKey | None,
    **fields: Any,
) -> CustodyEvent:
    """A later event as ``custody add`` will write it: linked to the line before it."""
    values: dict[str, Any] = {
        "seq": seq,
        "action": action,
        "time": instant_from_ns(int(first.time.ns) + seq * 3600 * SECOND, "local"),
        "actor": f"actor {seq}",
        "location": "Guangzhou forensic lab",
        "bundle_id": first.bundle_id,
        "container_sha256": first.container_sha256,
        "prev_event_sha256": line_sha256(previous_line),
    }
    values.update(fields)
    return sign_event(CustodyEvent(**values), key)


@pytest.fixture(scope="module")
def chain(
    tmp_path_factory: pytest.TempPathFactory, age_key: AgeKey, signing_key: SigningKey
) -> Chain:
    folder = tmp_path_factory.mktemp("chain")
    source = folder / "customers.csv"
    source.write_text("name,phone\n张伟,17012345678\n")
    output = folder / "B.zip"
    acquire(
        AcquireRequest(
            sources=[source],
            output=output,
            case=CASE,
            recipients=[pyrage.x25519.Recipient.from_str(age_key.recipient)],
            signing_key=signing_key.key,
        )
    )
    lines = [custody_log_path(output).read_bytes()]
    first = load_record(CustodyEvent, lines[0].rstrip(b"\n"))
    for seq, action, extra in [
        (1, "transferred", {"to": "Lab reception"}),
        (2, "received", {}),
        (3, "stored", {"note": "evidence locker 4"}),
    ]:
        event = make_event(first, lines[-1], seq, action, signing_key.key, **extra)
        lines.append(event_line(event))
    return Chain(output.read_bytes(), lines, first)


def place(chain: Chain, folder: Path, lines: list[bytes] | bytes | None = None) -> Path:
    container = folder / "B.zip"
    container.write_bytes(chain.container)
    data = lines if isinstance(lines, bytes) else b"".join(chain.lines if lines is None else lines)
    custody_log_path(container).write_bytes(data)
    return container


def verify(container: Path, *trusted: Ed25519PrivateKey) -> VerificationReport:
    return verify_bundle(VerifyRequest(container, trusted=[key.public_key() for key in trusted]))


def first_finding(report: VerificationReport) -> tuple[str, int]:
    """(code, event number) of the first finding, which must name a custody event."""
    finding = report.findings[0]
    match = re.match(r"^custody event (\d+)(?: \(|$)", finding.subject)
    assert match, finding
    return finding.code, int(match.group(1))


def reparse(line: bytes) -> CustodyEvent:
    return load_record(CustodyEvent, line.rstrip(b"\n"), require_canonical=True)


# ------------------------------------------------------------------------------- baseline


def test_hand_built_chain_of_four_signed_events_verifies(
    chain: Chain, tmp_path: Path, signing_key: SigningKey
) -> None:
    container = place(chain, tmp_path)
    report = verify(container, signing_key.key)
    assert report.verdict == "verified", report.findings
    assert report.findings == []
    assert report.custody is not None
    assert report.custody.events == 4
    assert report.custody.signed_events == 4
    assert report.custody.actions == ["acquired", "transferred", "received", "stored"]
    assert report.custody.head_sha256 == line_sha256(chain.lines[-1])
    for previous, line in zip(chain.lines, chain.lines[1:], strict=False):
        assert reparse(line).prev_event_sha256 == line_sha256(previous)


# ----------------------------------------------------------------------- edits and moves


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_edited_event_fails_at_that_event(
    chain: Chain, tmp_path: Path, signing_key: SigningKey, index: int
) -> None:
    """A canonical edit (location) without the signer's key: its signature fails there,
    and the next event no longer links to it."""
    lines = list(chain.lines)
    edited = reparse(lines[index]).model_copy(update={"location": "somewhere else"})
    lines[index] = event_line(edited)
    report = verify(place(chain, tmp_path, lines))
    assert report.verdict == "failed"
    assert first_finding(report) == ("signature-invalid", index)
    if index < 3:
        assert any(
            f.code == "custody-chain-broken" and f.subject.startswith(f"custody event {index + 1}")
            for f in report.findings
        )


@pytest.mark.parametrize("index", [1, 2, 3])
def test_one_byte_edit_inside_a_value_fails_at_that_event(
    chain: Chain, tmp_path: Path, index: int
) -> None:
    lines = list(chain.lines)
    assert lines[index].count(f"actor {index}".encode()) == 1
    lines[index] = lines[index].replace(f"actor {index}".encode(), f"actor {index + 5}".encode())
    report = verify(place(chain, tmp_path, lines))
    assert report.verdict == "failed"
    assert first_finding(report) == ("signature-invalid", index)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_edited_and_re_signed_event_breaks_the_chain_at_the_next(
    chain: Chain, tmp_path: Path, signing_key: SigningKey, index: int
) -> None:
    """Even the signer cannot rewrite history: the following event holds the old hash."""
    lines = list(chain.lines)
    event = reparse(lines[index]).model_copy(update={"note": "rewritten", "signature": None})
    lines[index] = event_line(sign_event(event, signing_key.key))
    report = verify(place(chain, tmp_path, lines), signing_key.key)
    assert report.verdict == "failed"
    assert first_finding(report) == ("custody-chain-broken", index + 1)


@pytest.mark.parametrize("index", [1, 2])
def test_deleted_middle_event_fails_where_it_was(chain: Chain, tmp_path: Path, index: int) -> None:
    lines = [line for number, line in enumerate(chain.lines) if number != index]
    report = verify(place(chain, tmp_path, lines))
    assert report.verdict == "failed"
    assert first_finding(report) == ("custody-sequence-broken", index)
    codes_there = {
        f.code for f in report.findings if f.subject.startswith(f"custody event {index} ")
    }
    assert codes_there == {"custody-sequence-broken", "custody-chain-broken"}


def test_reordered_events_fail_at_the_first_moved(chain: Chain, tmp_path: Path) -> None:
    lines = list(chain.lines)
    lines[1], lines[2] = lines[2], lines[1]
    report = verify(place(chain, tmp_path, lines))
    assert report.verdict == "failed"
    assert first_finding(report) == ("custody-sequence-broken", 1)


def test_inserted_event_fails_at_the_event_after_it(
    chain: Chain, tmp_path: Path, signing_key: SigningKey
) -> None:
    """A well-formed, signed event slipped in after event 1 fits there; event 2, now third
    after it, neither follows in sequence nor links to it."""
    inserted = make_event(chain.first, chain.lines[1], 2, "transferred", signing_key.key)
    lines = [*chain.lines[:2], event_line(inserted), *chain.lines[2:]]
    report = verify(place(chain, tmp_path, lines), signing_key.key)
    assert report.verdict == "failed"
    assert first_finding(report) == ("custody-sequence-broken", 3)
    assert "custody-chain-broken" in {
        f.code for f in report.findings if f.subject.startswith("custody event 3 ")
    }


def test_duplicated_event_fails_at_the_copy(chain: Chain, tmp_path: Path) -> None:
    lines = [*chain.lines[:2], chain.lines[1], *chain.lines[2:]]
    report = verify(place(chain, tmp_path, lines))
    assert first_finding(report) == ("custody-sequence-broken", 2)


def test_duplicate_json_key_is_malformed(chain: Chain, tmp_path: Path) -> None:
    lines = list(chain.lines)
    assert lines[2].startswith(b'{"action":"received",')
    lines[2] = b'{"action":"stored",' + lines[2][1:]
    report = verify(place(chain, tmp_path, lines))
    assert report.verdict == "failed"
    assert first_finding(report) == ("custody-event-malformed", 2)
    assert "duplicate" in report.findings[0].message


@pytest.mark.parametrize(
    ("index", "replacement"),
    [
        (1, b"\n"),
        (2, b"not json\n"),
        (3, b"[1, 2]\n"),
        (1, b'{"a":1,"a":2}\n'),
    ],
    ids=["blank-line", "not-json", "not-an-object", "duplicate-key-object"],
)
def test_malformed_line_fails_at_that_event(
    chain: Chain, tmp_path: Path, index: int, replacement: bytes
) -> None:
    lines = list(chain.lines)
    lines[index] = replacement
    report = verify(place(chain, tmp_path, lines))
    assert report.verdict == "failed"
    assert first_finding(report) == ("custody-event-malformed", index)


def test_non_canonical_line_is_malformed(chain: Chain, tmp_path: Path) -> None:
    """Same JSON value, other bytes (a space): the signed form is the canonical one."""
    lines = list(chain.lines)
    lines[2] = lines[2].replace(b'"seq":2', b'"seq": 2')
    report = verify(place(chain, tmp_path, lines))
    assert first_finding(report) == ("custody-event-malformed", 2)
    assert "canonical" in report.findings[0].message


@pytest.mark.parametrize("cut", [1, 2], ids=["newline-missing", "half-a-line"])
def test_torn_last_line_is_reported(chain: Chain, tmp_path: Path, cut: int) -> None:
    last = chain.lines[-1]
    torn = last[:-1] if cut == 1 else last[: len(last) // 2]
    container = place(chain, tmp_path, [*chain.lines[:-1], torn])
    report = verify(container)
    assert report.verdict == "failed"
    assert first_finding(report) == ("custody-log-torn", 3)
    assert report.custody is not None
    assert report.custody.events == 3  # the complete lines, still checked
    assert read_custody_log(custody_log_path(container)).events[-1].action == "received"


def test_empty_log_fails(chain: Chain, tmp_path: Path) -> None:
    report = verify(place(chain, tmp_path, b""))
    assert report.verdict == "failed"
    assert report.findings[0].code == "custody-log-empty"


# --------------------------------------------------------- what the log alone cannot see


@pytest.mark.parametrize("dropped", [1, 2, 3])
def test_dropping_last_events_passes_but_changes_the_head(
    chain: Chain, tmp_path: Path, signing_key: SigningKey, cli: Cli, dropped: int
) -> None:
    """A known limit: a log cut after a complete line is a valid shorter log. Only an anchor
    kept elsewhere (the head hash and count on the paper form) shows the loss."""
    kept = chain.lines[: len(chain.lines) - dropped]
    container = place(chain, tmp_path, kept)
    report = verify(container, signing_key.key)
    assert report.verdict == "verified", report.findings
    assert report.custody is not None
    assert report.custody.events == 4 - dropped
    assert report.custody.head_sha256 == line_sha256(kept[-1])
    assert report.custody.head_sha256 != line_sha256(chain.lines[-1])
    result = cli("verify", container)
    assert result.exit_code == 0
    assert line_sha256(kept[-1]) in result.output
    assert f"({4 - dropped} events)" in result.output


# ---------------------------------------------------------------- signers and bindings


def test_unsigned_event_fails_only_when_signers_are_required(
    chain: Chain, tmp_path: Path, signing_key: SigningKey
) -> None:
    lines = list(chain.lines)
    unsigned = make_event(chain.first, lines[1], 2, "received", None)
    lines[2] = event_line(unsigned)
    lines[3] = event_line(
        make_event(chain.first, lines[2], 3, "stored", signing_key.key, note="evidence locker 4")
    )
    container = place(chain, tmp_path, lines)
    relaxed = verify(container)
    assert relaxed.verdict == "verified"
    assert [(f.code, f.severity) for f in relaxed.findings] == [
        ("custody-event-unsigned", "warning")
    ]
    strict = verify(container, signing_key.key)
    assert strict.verdict == "failed"
    assert first_finding(strict) == ("custody-event-unsigned", 2)
    assert strict.findings[0].severity == "error"


def test_event_signed_by_another_key_fails_under_trust(
    chain: Chain, tmp_path: Path, signing_key: SigningKey
) -> None:
    stranger = Ed25519PrivateKey.generate()
    lines = list(chain.lines)
    lines[3] = event_line(make_event(chain.first, lines[2], 3, "stored", stranger))
    container = place(chain, tmp_path, lines)
    assert verify(container).verdict == "verified"  # a valid signature, but by whom?
    report = verify(container, signing_key.key)
    assert report.verdict == "failed"
    assert first_finding(report) == ("custody-signer-untrusted", 3)
    assert report.findings[0].actual == keys.fingerprint(stranger.public_key())
    assert verify(container, signing_key.key, stranger).verdict == "verified"


def test_event_signed_by_a_key_other_than_its_actor_fails(
    chain: Chain, tmp_path: Path, signing_key: SigningKey
) -> None:
    stranger = Ed25519PrivateKey.generate()
    lines = list(chain.lines)
    event = make_event(chain.first, lines[2], 3, "stored", None)
    claimed = event.model_copy(
        update={"actor_key_fingerprint": keys.fingerprint(stranger.public_key())}
    )
    signed = claimed.model_copy(
        update={"signature": keys.sign(signing_key.key, signing_bytes(claimed))}
    )
    lines[3] = event_line(signed)
    report = verify(place(chain, tmp_path, lines))
    assert first_finding(report) == ("custody-signer-mismatch", 3)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"container_sha256": "0" * 64}, "custody-container-hash-mismatch"),
        ({"bundle_id": "00000000-0000-4000-8000-000000000000"}, "custody-bundle-id-mismatch"),
        ({"seq": 7}, "custody-sequence-broken"),
        ({"prev_event_sha256": "0" * 64}, "custody-chain-broken"),
        ({"prev_event_sha256": None}, "custody-chain-broken"),
    ],
    ids=["other-container", "other-bundle", "seq", "prev-hash", "prev-none"],
)
def test_signed_event_with_a_wrong_binding_fails_at_that_event(
    chain: Chain, tmp_path: Path, signing_key: SigningKey, fields: dict[str, Any], code: str
) -> None:
    """Properly signed by the trusted key, yet it does not belong where it stands."""
    lines = list(chain.lines)
    misplaced = make_event(chain.first, lines[1], 2, "received", None).model_copy(update=fields)
    lines[2] = event_line(sign_event(misplaced, signing_key.key))
    lines[3] = event_line(
        make_event(chain.first, lines[2], 3, "stored", signing_key.key, note="evidence locker 4")
    )
    report = verify(place(chain, tmp_path, lines), signing_key.key)
    assert report.verdict == "failed"
    assert first_finding(report) == (code, 2)


def test_time_going_backwards_is_flagged_not_fatal(
    chain: Chain, tmp_path: Path, signing_key: SigningKey
) -> None:
    """An officer's clock set to 1970 is worth a warning, not a failed bundle."""
    lines = list(chain.lines)
    backwards = make_event(chain.first, lines[1], 2, "received", None).model_copy(
        update={"time": instant_from_ns(0, "local")}
    )
    lines[2] = event_line(sign_event(backwards, signing_key.key))
    lines[3] = event_line(
        make_event(chain.first, lines[2], 3, "stored", signing_key.key, note="evidence locker 4")
    )
    report = verify(place(chain, tmp_path, lines), signing_key.key)
    assert report.verdict == "verified"
    flagged = [f for f in report.findings if f.code == "custody-time-order"]
    assert [(f.severity, f.subject) for f in flagged] == [("warning", "custody event 2 (received)")]


def test_first_event_must_be_acquired(
    chain: Chain, tmp_path: Path, signing_key: SigningKey
) -> None:
    first = chain.first.model_copy(update={"action": "received", "signature": None})
    lines = [event_line(sign_event(first, signing_key.key))]
    report = verify(place(chain, tmp_path, lines), signing_key.key)
    assert first_finding(report) == ("custody-first-event", 0)


def test_broken_chain_exits_1_on_the_command_line(
    chain: Chain, tmp_path: Path, signing_key: SigningKey, cli: Cli
) -> None:
    lines = list(chain.lines)
    lines[1], lines[2] = lines[2], lines[1]
    container = place(chain, tmp_path, lines)
    result = cli("verify", container, "--trust", signing_key.public_pem)
    assert "Traceback" not in result.output
    assert result.exit_code == 1
    assert "custody-sequence-broken" in result.output
    assert "custody event 1" in result.output
