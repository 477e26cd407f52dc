"""Verifying many bundles: finding them under a folder, checking each in worker processes.

Each bundle gets the same full verification as ``verify`` (:func:`verify_bundle`), in its
own worker process when ``jobs`` > 1 (``spawn``: a fresh interpreter, nothing inherited).
The key material reaches the workers through the pool's pipe, never through argv or the
environment. Results come back as :class:`CheckedBundle` in the order they finish.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
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
    return BundleCheck(
        path=display_name(os.fsencode(log)),
        verdict="failed",
        bundle_id=None,
        container_sha256=None,
        container_size=0,
        case_number=None,
        evidence_number=None,
        case_from=None,
        items=0,
        bytes=0,
        reasons=["container-missing"],
        message=_("a custody log without its container beside it"),
        seconds=0.0,
        report=None,
    )


def unreadable_check(path: Path, reason: str) -> BundleCheck:
    return BundleCheck(
        path=display_name(os.fsencode(path)),
        verdict="unreadable",
        bundle_id=None,
        container_sha256=None,
        container_size=0,
        case_number=None,
        evidence_number=None,
        case_from=None,
        items=0,
        bytes=0,
        reasons=[],
        message=reason,
        seconds=0.0,
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
    except VerificationFailed as error:
        return CheckedBundle(container, _failed_check(shown, size, error.message, started))
    except (UsageError, EnvironmentFailure) as error:
        return CheckedBundle(container, unreadable_check(container, error.message))
    except OSError as error:
        return CheckedBundle(container, unreadable_check(container, error.strerror or str(error)))
    reasons = sorted({f.code for f in report.findings if f.severity == "error"})
    verdict: BundleVerdict
    if report.verdict == "failed":
        verdict = "not-a-bundle" if _not_a_bundle(report) else "failed"
        if no_key:
            message = _("{problems}; and no key opened it: {reason}").format(
                problems=_("verification FAILED"), reason=message
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


def _failed_check(shown: str, size: int, message: str, started: float) -> BundleCheck:
    return BundleCheck(
        path=shown,
        verdict="failed",
        bundle_id=None,
        container_sha256=None,
        container_size=size,
        case_number=None,
        evidence_number=None,
        case_from=None,
        items=0,
        bytes=0,
        reasons=["unreadable-bundle"],
        message=message,
        seconds=round(time.monotonic() - started, 3),
        report=None,
    )


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


def _start_worker(keys: _WorkerKeys) -> None:
    # Ctrl-C reaches the whole process group: the parent stops the batch and says so; a
    # worker only reads, so it leaves at once, without a traceback.
    signal.signal(signal.SIGINT, _leave)
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


def _leave(_signal: int, _frame: object) -> None:
    os._exit(128 + signal.SIGINT)


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

    ``progress`` counts bundles (items) and container bytes. Stopping the iteration early
    (an error, Ctrl-C) cancels the bundles not yet started.
    """
    progress = progress or SilentProgress()
    sizes = {path: _size(path) for path in request.containers}
    progress.start(len(sizes), sum(sizes.values()))
    try:
        if request.jobs <= 1 or len(request.containers) <= 1:
            for path in request.containers:
                checked = check_bundle(
                    path,
                    request.key,
                    request.trusted,
                    request.tsa_roots,
                    request.skew_seconds,
                    index_items=request.index_items,
                )
                progress.advance(items=1, nbytes=sizes[path])
                yield checked
            return
        yield from _in_workers(request, sizes, progress)
    finally:
        progress.finish()


def _in_workers(
    request: BatchRequest, sizes: dict[Path, int], progress: Progress
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
    jobs = min(request.jobs, len(request.containers))
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(keys,),
    )
    pending: dict[Future[CheckedBundle], Path] = {}
    try:
        queue = iter(request.containers)
        # A few bundles queued per worker: enough to keep each busy, few to cancel.
        for path in queue:
            pending[pool.submit(_check_in_worker, str(path), request.index_items)] = path
            if len(pending) >= 2 * jobs:
                break
        while pending:
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
                for following in queue:
                    pending[pool.submit(_check_in_worker, str(following), request.index_items)] = (
                        following
                    )
                    break
                yield checked
    finally:
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
