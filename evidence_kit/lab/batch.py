"""Verifying many bundles: finding them under a folder, checking each in worker processes.

Each bundle gets the same full verification as ``verify`` (:func:`verify_bundle`), in its
own worker process when ``jobs`` > 1 (``spawn``: a fresh interpreter, nothing inherited).
The key material reaches the workers through the pool's pipe, never through argv or the
environment. Results come back as :class:`CheckedBundle` in the order they finish.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import pyrage
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding

from evidence_kit import clock
from evidence_kit.bundle import Bundle
from evidence_kit.custody import custody_log_path
from evidence_kit.errors import (
    EnvironmentFailure,
    NoUsableKey,
    UsageError,
    VerificationFailed,
)
from evidence_kit.i18n import _
from evidence_kit.keys import KeyMaterial
from evidence_kit.lab.records import BundleCheck, BundleVerdict, VerdictCounts, VerifyAllResult
from evidence_kit.lab.register import IndexedItem
from evidence_kit.models import ItemRecord, ManifestHead, VerificationReport
from evidence_kit.naming import display_name, path_bytes, path_name
from evidence_kit.progress import Progress, SilentProgress
from evidence_kit.provenance import TOOL
from evidence_kit.timestamps import DEFAULT_SKEW_SECONDS
from evidence_kit.verify import VerifyRequest, verify_bundle

CONTAINER_SUFFIX = ".zip"
CUSTODY_SUFFIX = ".custody.jsonl"


@dataclass(frozen=True)
class BatchRequest:
    """What every bundle of a batch is verified with."""

    containers: Sequence[Path]
    key: KeyMaterial | None = field(default=None, repr=False)
    trusted: Sequence[Ed25519PublicKey] = ()
    tsa_roots: Sequence[x509.Certificate] = ()
    skew_seconds: int = DEFAULT_SKEW_SECONDS
    jobs: int = 1
    index_items: bool = False


@dataclass(frozen=True)
class CheckedBundle:
    container: Path
    check: BundleCheck
    items: tuple[IndexedItem, ...] | None = None


@dataclass(frozen=True)
class FoundBundles:
    """What a folder holds: containers, custody logs without a container, other files,
    and folders that could not be read."""

    containers: list[Path]
    orphan_logs: list[Path]
    other_files: int
    unreadable: list[tuple[Path, str]]


def find_bundles(folder: Path) -> FoundBundles:
    """Every ``*.zip`` under ``folder`` (symlinked folders are not followed), sorted."""
    if not folder.is_dir():
        raise UsageError(_("{path} is not a folder").format(path=folder))
    containers: list[Path] = []
    logs: list[Path] = []
    other = 0
    unreadable: list[tuple[Path, str]] = []

    def note(error: OSError) -> None:
        unreadable.append((Path(error.filename or folder), error.strerror or str(error)))

    for top, folders, files in os.walk(folder, onerror=note):
        folders.sort()
        for name in sorted(files):
            path = Path(top) / name
            if name.lower().endswith(CONTAINER_SUFFIX) and path.is_file():
                containers.append(path)
            elif name.endswith(CUSTODY_SUFFIX):
                logs.append(path)
            else:
                other += 1
    known_logs = {custody_log_path(path) for path in containers}
    orphans = [log for log in logs if log not in known_logs]
    return FoundBundles(containers, orphans, other, unreadable)


def orphan_log_check(log: Path) -> BundleCheck:
    """A custody log whose container is not beside it: a bundle that lost its container."""
    return _without_report(
        display_name(os.fsencode(log)),
        "failed",
        _("a custody log without its container beside it"),
        reasons=["container-missing"],
    )


def unreadable_check(path: Path, reason: str) -> BundleCheck:
    return _without_report(display_name(os.fsencode(path)), "unreadable", reason)


def _without_report(
    shown: str,
    verdict: BundleVerdict,
    message: str,
    *,
    reasons: Sequence[str] = (),
    size: int = 0,
    seconds: float = 0.0,
) -> BundleCheck:
    """A bundle that could not be verified far enough to have a report."""
    return BundleCheck(
        path=shown,
        verdict=verdict,
        bundle_id=None,
        container_sha256=None,
        container_size=size,
        case_number=None,
        evidence_number=None,
        case_from=None,
        items=0,
        bytes=0,
        reasons=list(reasons),
        message=message,
        seconds=round(seconds, 3),
        report=None,
    )


def count_verdicts(checks: Sequence[BundleCheck]) -> VerdictCounts:
    counts = {verdict: 0 for verdict in VerdictCounts.model_fields}
    for check in checks:
        counts[check.verdict.replace("-", "_")] += 1
    return VerdictCounts(**counts)


# ---------------------------------------------------------------- one bundle


def check_bundle(
    container: Path,
    key: KeyMaterial | None,
    trusted: Sequence[Ed25519PublicKey] = (),
    tsa_roots: Sequence[x509.Certificate] = (),
    skew_seconds: int = DEFAULT_SKEW_SECONDS,
    *,
    index_items: bool = False,
) -> CheckedBundle:
    """Verify one bundle as ``verify`` does and sum it up; never raises for a bad bundle."""
    started = time.monotonic()
    shown = display_name(os.fsencode(container))
    try:
        size = container.stat().st_size
    except OSError as error:
        return CheckedBundle(container, unreadable_check(container, error.strerror or str(error)))
    gathered = _Gathered(index_items=index_items)
    request = VerifyRequest(
        container=container,
        key=key,
        trusted=trusted,
        tsa_roots=tsa_roots,
        skew_seconds=skew_seconds,
    )
    message: str | None = None
    no_key = False
    try:
        try:
            report = verify_bundle(request, then=gathered)
        except NoUsableKey as error:
            # The container, its slots and custody can still be checked without a key.
            no_key, message = True, error.message
            gathered = _Gathered(index_items=False)
            report = verify_bundle(
                VerifyRequest(
                    container=container,
                    trusted=trusted,
                    tsa_roots=tsa_roots,
                    skew_seconds=skew_seconds,
                ),
                then=gathered,
            )
    except VerificationFailed as error:  # not even readable as a bundle
        failed = _without_report(shown, "failed", error.message, reasons=["unreadable-bundle"],
                                 size=size, seconds=time.monotonic() - started)  # fmt: skip
        return CheckedBundle(container, failed)
    except (UsageError, EnvironmentFailure) as error:
        return CheckedBundle(container, unreadable_check(container, error.message))
    except OSError as error:
        return CheckedBundle(container, unreadable_check(container, error.strerror or str(error)))
    reasons = sorted({f.code for f in report.findings if f.severity == "error"})
    verdict: BundleVerdict
    if report.verdict == "failed":
        verdict = "not-a-bundle" if _not_a_bundle(report) else "failed"
        if no_key:
            message = _("verification FAILED, and no key given opens it: {reason}").format(
                reason=message
            )
    elif no_key:
        verdict = "no-key"
    else:
        verdict = "verified" if report.contents_checked else "intact"
    check = BundleCheck(
        path=shown,
        verdict=verdict,
        bundle_id=report.bundle_id,
        container_sha256=report.container_sha256,
        container_size=size,
        case_number=gathered.case_number,
        evidence_number=gathered.evidence_number,
        case_from=gathered.case_from,  # type: ignore[arg-type]
        items=report.items_checked,
        bytes=report.bytes_checked,
        reasons=reasons,
        message=message,
        seconds=round(time.monotonic() - started, 3),
        report=report,
    )
    items = gathered.items if verdict == "verified" and index_items else None
    return CheckedBundle(container, check, items)


def _not_a_bundle(report: VerificationReport) -> bool:
    """No custody log, and not even key slots: some other zip, or no zip at all."""
    codes = {finding.code for finding in report.findings}
    return (
        report.bundle_id is None
        and "custody-log-missing" in codes
        and bool(codes & {"not-a-zip", "key-slots-missing"})
    )


@dataclass
class _Gathered:
    """Filled in by ``verify_bundle`` (``then``) while the bundle is still open."""

    index_items: bool
    case_number: str | None = None
    evidence_number: str | None = None
    case_from: str | None = None
    items: tuple[IndexedItem, ...] = ()

    def __call__(self, bundle: Bundle, report: VerificationReport) -> None:
        if bundle.manifest is not None:
            case = bundle.manifest.case
            self.case_number, self.evidence_number = case.case_number, case.evidence_number
            self.case_from = "manifest"
        elif bundle.custody.events:
            first = bundle.custody.events[0]
            self.case_number, self.evidence_number = first.case_number, first.evidence_number
            self.case_from = "custody-log"
        if (
            self.index_items
            and report.verdict == "verified"
            and bundle.manifest is not None
            and bundle.items is not None
        ):
            self.items = tuple(indexed_item(bundle.manifest, item) for item in bundle.items)


def indexed_item(manifest: ManifestHead, item: ItemRecord) -> IndexedItem:
    """What the register keeps of ``item``, with its path on the seized system: the
    source's absolute path, then the item's path below the source's label."""
    inside = path_bytes(item.path)
    rest = inside.partition(b"/")[2]
    source = next((s for s in manifest.sources if s.index == item.source), None)
    if source is None:
        original = inside
    else:
        top = path_bytes(source.path)
        original = top if not rest else top.rstrip(b"/") + b"/" + rest
    name = path_name(original)
    return IndexedItem(
        item_id=item.id,
        path=item.path.display,
        original_path=name.display,
        original_path_b64=name.b64,
        kind=item.kind,
        status=item.status,
        size=item.size,
        mime_type=item.mime_type,
        digests=tuple(sorted(item.digests.items())),
    )


# ---------------------------------------------------------------- many bundles


@dataclass(frozen=True)
class _WorkerKeys:
    """The batch's key material in a form that crosses the pool's pipe."""

    identities: tuple[str, ...] = field(repr=False)
    passphrase: str | None = field(repr=False)
    trusted: tuple[bytes, ...]
    tsa_roots: tuple[bytes, ...]
    skew_seconds: int
    given: bool


_worker: dict[str, object] = {}


def _start_worker(keys: _WorkerKeys, parent: int) -> None:
    # Ctrl-C is the parent's to handle: workers start with it ignored (see
    # _workers_starting) and the parent ends them when it stops. Should the parent die
    # without doing so (SIGKILL), a worker notices and leaves rather than wait for ever.
    threading.Thread(target=_leave_with, args=(parent,), daemon=True).start()
    _worker["key"] = (
        KeyMaterial(
            identities=tuple(pyrage.x25519.Identity.from_str(i) for i in keys.identities),
            passphrase=keys.passphrase,
        )
        if keys.given
        else None
    )
    _worker["trusted"] = tuple(Ed25519PublicKey.from_public_bytes(k) for k in keys.trusted)
    _worker["tsa_roots"] = tuple(x509.load_der_x509_certificate(c) for c in keys.tsa_roots)
    _worker["skew_seconds"] = keys.skew_seconds


def _leave_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)  # the parent is gone: nobody wants the results


def _check_in_worker(container: str, index_items: bool) -> CheckedBundle:
    return check_bundle(
        Path(container),
        _worker["key"],  # type: ignore[arg-type]
        _worker["trusted"],  # type: ignore[arg-type]
        _worker["tsa_roots"],  # type: ignore[arg-type]
        _worker["skew_seconds"],  # type: ignore[arg-type]
        index_items=index_items,
    )


def check_bundles(
    request: BatchRequest, progress: Progress | None = None
) -> Generator[CheckedBundle, None, None]:
    """Verify every container of ``request``; yields each as it finishes.

    ``jobs`` bundles are verified at once: one in this process, the others in ``jobs - 1``
    worker processes. This process works too, rather than wait: a worker spends about
    0.6 s of CPU importing before its first bundle, which small bundles never win back.
    ``progress`` counts bundles (items) and container bytes. Stopping the iteration early
    (an error, Ctrl-C) ends the workers and drops the bundles not yet verified.
    """
    progress = progress or SilentProgress()
    sizes = {path: _size(path) for path in request.containers}
    progress.start(len(sizes), sum(sizes.values()))
    queue = deque(request.containers)
    workers = min(request.jobs, len(queue)) - 1
    try:
        if workers < 1:
            while queue:
                yield _here(request, queue.popleft(), sizes, progress)
            return
        yield from _with_workers(request, queue, workers, sizes, progress)
    finally:
        progress.finish()


def _here(
    request: BatchRequest, path: Path, sizes: dict[Path, int], progress: Progress
) -> CheckedBundle:
    """One bundle verified in this process."""
    checked = check_bundle(path, request.key, request.trusted, request.tsa_roots,
                           request.skew_seconds, index_items=request.index_items)  # fmt: skip
    progress.advance(items=1, nbytes=sizes[path])
    return checked


def _with_workers(
    request: BatchRequest,
    queue: deque[Path],
    workers: int,
    sizes: dict[Path, int],
    progress: Progress,
) -> Iterator[CheckedBundle]:
    key = request.key
    keys = _WorkerKeys(
        identities=tuple(str(i) for i in key.identities) if key is not None else (),
        passphrase=key.passphrase if key is not None else None,
        trusted=tuple(k.public_bytes_raw() for k in request.trusted),
        tsa_roots=tuple(c.public_bytes(Encoding.DER) for c in request.tsa_roots),
        skew_seconds=request.skew_seconds,
        given=key is not None and not key.empty,
    )
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(keys, os.getpid()),
    )
    pending: dict[Future[CheckedBundle], Path] = {}

    def hand_out() -> None:
        # Two bundles queued per worker: enough to keep each busy, few to cancel.
        while queue and len(pending) < 2 * workers:
            path = queue.pop()  # from the back: this process takes from the front
            pending[pool.submit(_check_in_worker, str(path), request.index_items)] = path

    ours = set(multiprocessing.active_children())  # processes started before the pool
    finished = False
    try:
        with _workers_starting():  # the first submissions start the workers
            hand_out()
        while pending or queue:
            done = {future for future in pending if future.done()}
            if not done and queue:
                yield _here(request, queue.popleft(), sizes, progress)
                continue
            if not done:
                done, _running = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                path = pending.pop(future)
                try:
                    checked = future.result()
                except BrokenProcessPool:
                    raise EnvironmentFailure(
                        _("a verifying process ended abruptly (out of memory, or killed) "
                          "while checking {path}").format(path=display_name(os.fsencode(path)))
                    ) from None  # fmt: skip
                progress.advance(items=1, nbytes=sizes[path])
                hand_out()
                yield checked
        finished = True
    finally:
        if not finished:  # an error, Ctrl-C, or the caller stopped: workers only read
            for worker in set(multiprocessing.active_children()) - ours:
                worker.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def verify_folder(
    folder: Path,
    key: KeyMaterial | None,
    trusted: Sequence[Ed25519PublicKey] = (),
    tsa_roots: Sequence[x509.Certificate] = (),
    skew_seconds: int = DEFAULT_SKEW_SECONDS,
    *,
    jobs: int = 1,
    progress: Progress | None = None,
) -> VerifyAllResult:
    """Verify every bundle under ``folder`` (``lab verify-all``), ``jobs`` at a time."""
    if jobs < 1:
        raise UsageError(_("--jobs is 1 or more"))
    started, clock_start = clock.now(), time.monotonic()
    found = find_bundles(folder)
    if not (found.containers or found.orphan_logs or found.unreadable):
        raise UsageError(
            _("no bundle (*.zip) under {path}").format(path=display_name(os.fsencode(folder)))
        )
    checks = [unreadable_check(path, reason) for path, reason in found.unreadable]
    checks += [orphan_log_check(log) for log in found.orphan_logs]
    request = BatchRequest(
        containers=found.containers,
        key=key,
        trusted=trusted,
        tsa_roots=tsa_roots,
        skew_seconds=skew_seconds,
        jobs=jobs,
    )
    by_path = {checked.container: checked.check for checked in check_bundles(request, progress)}
    checks = [by_path[path] for path in found.containers] + checks
    seconds = max(time.monotonic() - clock_start, 1e-9)
    size = sum(check.container_size for check in checks)
    return VerifyAllResult(
        folder=display_name(os.fsencode(folder)),
        jobs=jobs,
        bundles=checks,
        counts=count_verdicts(checks),
        other_files=found.other_files,
        container_bytes=size,
        seconds=round(seconds, 3),
        bundles_per_second=round(len(found.containers) / seconds, 3),
        mib_per_second=round(size / seconds / (1 << 20), 3),
        started_at=started,
        tool=TOOL,
    )


@contextlib.contextmanager
def _workers_starting() -> Iterator[None]:
    """What the pool's workers inherit as they start (across exec):

    - SIGINT ignored, which Python leaves ignored: a Ctrl-C at the terminal, which
      reaches the whole process group, never interrupts a worker (while it imports, a
      traceback). The parent alone handles Ctrl-C, and ends the workers. A Ctrl-C in
      this window of a few milliseconds is lost; the next one works.
    - /dev/null as stderr: a worker has nothing to tell the terminal (results and
      errors come back through the pool), and a worker whose parent was killed while it
      started prints no traceback there.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stderr.flush()
    terminal = os.dup(2)
    quiet = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.dup2(quiet, 2)
        yield
    finally:
        os.dup2(terminal, 2)
        os.close(terminal)
        os.close(quiet)
        signal.signal(signal.SIGINT, previous)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


__all__ = [
    "BatchRequest",
    "CheckedBundle",
    "FoundBundles",
    "check_bundle",
    "check_bundles",
    "count_verdicts",
    "find_bundles",
    "indexed_item",
    "orphan_log_check",
    "unreadable_check",
    "verify_folder",
]
