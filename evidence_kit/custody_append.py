"""Writing the custody log after acquisition: appending signed events, and repair.

Every writer takes an exclusive ``flock`` on the log for the whole read-check-append, so
two processes appending at once each link to the other's event instead of forking the
chain, and nothing interleaves. An event is one ``write`` of one complete line on an
``O_APPEND`` descriptor, then ``fsync``; a write or fsync that fails part way (a full disk)
or is interrupted is cut back off, so the log is as it was. A torn last line (power loss)
is never appended to and never silently dropped: ``repair_log`` moves it aside only when
told to.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence_kit import clock
from evidence_kit.atomic import output_error
from evidence_kit.custody import (
    CustodyLog,
    check_chain,
    custody_log_path,
    event_line,
    line_sha256,
    parse_custody_log,
    sign_event,
)
from evidence_kit.errors import EnvironmentFailure, UsageError, VerificationFailed
from evidence_kit.i18n import _
from evidence_kit.models import AppendResult, CustodyEvent, RepairResult, TimestampToken
from evidence_kit.timestamps import TimestampUnavailable, Tsa, request_token

ACQUIRED = "acquired"
CUSTODY_ACTIONS = (
    "transferred",
    "received",
    "stored",
    "verified",
    "opened",
    "extracted",
    "exported",
    "returned",
    "disposed",
)
LOCK_WAIT_SECONDS = 30.0
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class NewEvent:
    """What a person records; time, hashes, links and the signature are added here."""

    action: str
    actor: str
    location: str = ""
    note: str = ""
    to: str | None = None


@dataclass(frozen=True)
class Recorder:
    """Who appends the custody event for this work, with which key (--sign, --actor)."""

    actor: str
    key: Ed25519PrivateKey = field(repr=False)
    location: str = ""
    note: str = ""

    def record(
        self, container: Path, action: str, outcome: str, container_sha256: str | None
    ) -> AppendResult:
        """Append ``action`` signed by this recorder, its note ending in ``outcome``."""
        note = f"{self.note} ({outcome})" if self.note else outcome
        event = NewEvent(action, self.actor, location=self.location, note=note)
        return append_event(container, event, self.key, container_sha256=container_sha256)


def measure_container(container: Path) -> str:
    """The container's SHA-256 now (UsageError if there is no such file)."""
    digest = hashlib.sha256()
    try:
        with container.open("rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        raise UsageError(_("no such bundle: {path}").format(path=container)) from None
    except IsADirectoryError:
        raise UsageError(_("{path} is a folder, not a bundle").format(path=container)) from None
    except OSError as error:
        raise EnvironmentFailure(
            _("cannot read {path}: {reason}").format(path=container, reason=error.strerror)
        ) from None
    return digest.hexdigest()


def check_new_event(event: NewEvent) -> None:
    if event.action not in CUSTODY_ACTIONS:
        raise UsageError(
            _("unknown custody action {action!r}; one of: {actions}").format(
                action=event.action, actions=", ".join(CUSTODY_ACTIONS)
            )
        )
    if not event.actor.strip():
        raise UsageError(_("--actor: say who records this event"))
    if event.action == "transferred" and not (event.to or "").strip():
        raise UsageError(_("a transfer needs --to: who receives the evidence"))


def append_event(
    container: Path,
    event: NewEvent,
    key: Ed25519PrivateKey | None,
    *,
    container_sha256: str | None = None,
) -> AppendResult:
    """Append ``event``, signed with ``key``, to the container's custody log.

    The container is hashed now unless the caller just did (``container_sha256``). The
    log must be intact: no event is ever added to a broken or torn chain.
    """
    check_new_event(event)
    return _append(container, lambda _log: (event, None), key, container_sha256)


def append_timestamp(
    container: Path,
    tsas: Sequence[Tsa],
    key: Ed25519PrivateKey | None,
    actor: str,
    *,
    record_pending: bool,
    roots: Sequence[x509.Certificate] = (),
) -> tuple[AppendResult, str | None]:
    """Ask the TSAs for a token over the log head and append a 'timestamped' event
    holding it. When none answers: with ``record_pending`` a 'timestamp-pending' event
    saying why, otherwise EnvironmentFailure and nothing appended. The log stays locked
    meanwhile, so the head cannot move. Returns the result and the problem, if any."""
    problem: list[str] = []

    def build(log: CustodyLog) -> tuple[NewEvent, TimestampToken | None]:
        head = log.lines[-1].rstrip(b"\n")
        try:
            token = request_token(tsas, head, len(log.lines) - 1, roots)
        except TimestampUnavailable as error:
            if not record_pending:
                raise EnvironmentFailure(
                    _("no trusted timestamp: {why}").format(why=error),
                    hint=_("Nothing was added to the custody log. Try again when the TSA "
                           "can be reached, or give another with --tsa."),
                ) from None  # fmt: skip
            problem.append(str(error))
            note = _("no trusted timestamp yet: {why}").format(why=error)
            return NewEvent("timestamp-pending", actor, note=note), None
        note = _("RFC 3161 token from {url}, time {time}").format(
            url=token.tsa_url, time=token.gen_time
        )
        return NewEvent("timestamped", actor, note=note), token

    result = _append(container, build, key, None)
    return result, problem[0] if problem else None


def _append(
    container: Path,
    build: Callable[[CustodyLog], tuple[NewEvent, TimestampToken | None]],
    key: Ed25519PrivateKey | None,
    container_sha256: str | None,
) -> AppendResult:
    measured = container_sha256 or measure_container(container)
    log_path = custody_log_path(container)
    with _locked(log_path, os.O_RDWR | os.O_APPEND) as fd:
        log = _intact_log(log_path, fd)
        event, token = build(log)
        first = log.events[0]
        unsigned = CustodyEvent(
            seq=len(log.events),
            action=event.action,
            time=clock.now(),
            actor=event.actor,
            location=event.location,
            note=event.note,
            to=event.to or None,
            bundle_id=first.bundle_id,
            container_sha256=measured,
            prev_event_sha256=line_sha256(log.lines[-1]),
            case_number=first.case_number,
            evidence_number=first.evidence_number,
            timestamp=token,
        )
        signed = sign_event(unsigned, key)
        line = event_line(signed)
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, line)
            os.fsync(fd)
        except OSError as error:
            _take_back(fd, size, log_path)
            raise output_error(log_path, error) from None
        except BaseException:  # Ctrl-C between the write and its fsync
            _take_back(fd, size, log_path)
            raise
    return AppendResult(
        container=str(container),
        custody_log=str(log_path),
        event=signed,
        head_sha256=line_sha256(line),
        event_count=len(log.events) + 1,
        container_matches_acquisition=measured == first.container_sha256,
    )


def repair_log(container: Path, *, drop_torn_line: bool) -> RepairResult:
    """Remove a torn last line, keeping its bytes beside the log; refuse anything else.

    Without ``drop_torn_line`` it only says what it would do. A log with any other
    problem (an edited, missing or malformed event) is refused: which version of an
    event is true is not something software can decide.
    """
    log_path = custody_log_path(container)
    with _locked(log_path, os.O_RDWR) as fd:
        data = _read_all(log_path, fd)
        log = parse_custody_log(log_path, data)
        other = [f for f in log.findings if f.code != "custody-log-torn"]
        other += [
            f
            for f in check_chain(log, container_sha256=None, trusted=None)
            if f.severity == "error"
        ]
        if other:
            raise VerificationFailed(
                _("custody repair refuses to guess: {code} at {subject}: {message}").format(
                    code=other[0].code, subject=other[0].subject, message=other[0].message
                ),
                hint=_("Only a torn last line can be repaired. Keep the log as it is and "
                       "report the finding."),
            )  # fmt: skip
        if not log.torn_bytes:
            return RepairResult(
                custody_log=str(log_path),
                repaired=False,
                torn_bytes=0,
                torn_copy=None,
                event_count=len(log.events),
                head_sha256=log.head_sha256,
            )
        if not log.events:
            raise VerificationFailed(
                _("custody repair refuses to guess: the log holds no whole event, not even "
                  "the acquisition"),
                hint=_("Keep the log as it is; the container can still be verified with its key."),
            )  # fmt: skip
        if not drop_torn_line:
            raise VerificationFailed(
                _("the custody log ends in a torn line of {n} bytes after event {seq}").format(
                    n=log.torn_bytes, seq=len(log.events) - 1
                ),
                hint=_("Run 'evidence-kit custody repair' with --drop-torn-line to move those "
                       "bytes to a side file and end the log at the last whole event."),
            )  # fmt: skip
        keep = len(data) - log.torn_bytes
        side, side_fd = _new_side_file(log_path)
        try:
            try:
                _write_all(side_fd, data[keep:])
                os.fsync(side_fd)
            finally:
                os.close(side_fd)
            os.ftruncate(fd, keep)
            os.fsync(fd)
        except OSError as error:
            raise output_error(side, error) from None
    return RepairResult(
        custody_log=str(log_path),
        repaired=True,
        torn_bytes=log.torn_bytes,
        torn_copy=str(side),
        event_count=len(log.events),
        head_sha256=log.head_sha256,
    )


def _new_side_file(log_path: Path) -> tuple[Path, int]:
    """``B.custody.jsonl.torn-<UTC time>[-N]``, created new (never replacing a kept copy)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for number in range(1000):
        suffix = f"torn-{stamp}" + (f"-{number}" if number else "")
        side = log_path.with_name(f"{log_path.name}.{suffix}")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            return side, os.open(side, flags, 0o600)
        except FileExistsError:
            continue
        except OSError as error:
            raise output_error(side, error) from None
    raise EnvironmentFailure(_("too many torn-line copies beside {path}").format(path=log_path))


@contextlib.contextmanager
def _locked(log_path: Path, flags: int) -> Iterator[int]:
    """The log opened with ``flags`` and exclusively locked (waits up to 30 s)."""
    try:
        fd = os.open(log_path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise VerificationFailed(
            _("no custody log beside the container ({path}): custody cannot be recorded").format(
                path=log_path
            ),
            hint=_("The log is written by acquire next to B.zip as B.custody.jsonl; a new one "
                   "cannot be started for an existing bundle."),
        ) from None  # fmt: skip
    except OSError as error:
        raise output_error(log_path, error) from None
    try:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EnvironmentFailure(
                        _("the custody log {path} is locked by another process").format(
                            path=log_path
                        ),
                        hint=_("Wait for the other evidence-kit command to finish."),
                    ) from None
                time.sleep(0.02)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _read_all(log_path: Path, fd: int) -> bytes:
    chunks = []
    offset = 0
    try:
        while chunk := os.pread(fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
    except OSError as error:
        raise EnvironmentFailure(
            _("cannot read {path}: {reason}").format(path=log_path, reason=error.strerror)
        ) from None
    return b"".join(chunks)


def _intact_log(log_path: Path, fd: int) -> CustodyLog:
    log = parse_custody_log(log_path, _read_all(log_path, fd))
    problems = list(log.findings)
    problems += [
        f for f in check_chain(log, container_sha256=None, trusted=None) if f.severity == "error"
    ]
    if problems:
        first = problems[0]
        hint = (
            _("Run 'evidence-kit custody repair' to see what can be done.")
            if first.code == "custody-log-torn"
            else _("Run 'evidence-kit verify' for every finding; nothing was appended.")
        )
        raise VerificationFailed(
            _("the custody log is not intact ({code} at {subject}): refusing to append").format(
                code=first.code, subject=first.subject
            ),
            hint=hint,
        )
    if not log.events or log.events[0].action != ACQUIRED:
        raise VerificationFailed(_("the custody log has no 'acquired' event"))
    return log


def _take_back(fd: int, size: int, log_path: Path) -> None:
    """Cut the log back to ``size`` after an append that failed part way (a disk that
    filled after half the line, an fsync error), so no torn line is left behind."""
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError as error:
        raise EnvironmentFailure(
            _("the custody log {path} may end in a torn line: {reason}").format(
                path=log_path, reason=error.strerror
            ),
            hint=_("Run 'evidence-kit custody repair' once the disk is fixed."),
        ) from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise OSError(errno.EIO, "short write")
        view = view[written:]


__all__ = [
    "CUSTODY_ACTIONS",
    "NewEvent",
    "Recorder",
    "append_event",
    "append_timestamp",
    "check_new_event",
    "measure_container",
    "repair_log",
]
