"""``evidence-kit acquire SOURCE... --out B.zip``"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import tomllib
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from evidence_kit import keys
from evidence_kit.acquire import DEFAULT_WINDOW, AcquireRequest, ImageRequest, acquire
from evidence_kit.cli.console import emit_json, plain, reported_errors, say, show_facts, stderr
from evidence_kit.cli.interrupts import answers_once, interrupt_once, work_done
from evidence_kit.cli.keyoptions import (
    SignOption,
    SignPassphraseOption,
    TsaCaOption,
    TsaOption,
    TsaTimeoutOption,
    given_passphrase,
    interactive,
    signing_key,
)
from evidence_kit.cli.progress import progress_for
from evidence_kit.errors import ExitCode, UsageError
from evidence_kit.hashing import parse_algorithms
from evidence_kit.i18n import _
from evidence_kit.models import AcquireResult, CaseInfo
from evidence_kit.progress import Progress
from evidence_kit.timestamps import configured_tsas, trusted_roots

FORCE_AFTER_SECONDS = 1.0
REQUIRED_FIELDS = ("case_number", "evidence_number", "examiner")
OPTIONAL_FIELDS = ("description", "notes", "location")
FIELD_LABELS = {
    "case_number": "Case number",
    "evidence_number": "Evidence number",
    "examiner": "Examiner",
    "description": "Description",
    "notes": "Notes",
    "location": "Location",
}


# The argv of a console-script run (set by main); absent when the app is driven in-process.
invocation: ContextVar[list[str] | None] = ContextVar("invocation", default=None)


def command_line(ctx: typer.Context) -> list[str]:
    """The command as typed, or as parsed when the app runs inside another program."""
    typed = invocation.get()
    if typed is not None:
        return typed
    words = ctx.command_path.split()
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        for one in value if isinstance(value, list) else [value]:
            if one is None or one is False:
                continue
            if param.param_type_name != "argument":
                words.append(param.opts[0])
            if one is not True:
                words.append(str(one))
    return words


def read_case_file(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(
            _("cannot read case file {path}: {reason}").format(path=path, reason=error.strerror)
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(
            _("case file {path} is not valid TOML: {error}").format(path=path, error=error)
        ) from None
    table = data.get("case", data)
    if not isinstance(table, dict):
        raise UsageError(_("case file {path}: [case] must be a table").format(path=path))
    unknown = sorted(set(table) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise UsageError(
            _("case file {path}: unknown fields {fields}").format(
                path=path, fields=", ".join(unknown)
            )
        )
    fields = {}
    for name, value in table.items():
        if not isinstance(value, str):
            raise UsageError(
                _("case file {path}: {field} must be text").format(path=path, field=name)
            )
        fields[name] = value
    return fields


def gather_case(
    given: dict[str, str | None], case_file: Path | None, *, unattended: bool
) -> CaseInfo:
    """Options over the case file; prompts for what is missing when a person is there."""
    fields = read_case_file(case_file) if case_file else {}
    fields.update({name: value for name, value in given.items() if value is not None})
    missing = [name for name in REQUIRED_FIELDS if not fields.get(name, "").strip()]
    if missing and not unattended and interactive():
        for name in REQUIRED_FIELDS:
            while not fields.get(name, "").strip():
                fields[name] = typer.prompt(_(FIELD_LABELS[name]), err=True)
        for name in OPTIONAL_FIELDS:
            if name not in fields:
                fields[name] = typer.prompt(_(FIELD_LABELS[name]), default="", err=True)
        missing = []
    if missing:
        raise UsageError(
            _("missing case fields: {fields}").format(
                fields=", ".join("--" + name.replace("_", "-") for name in missing)
            ),
            hint=_("Give them as options or in --case-file case.toml."),
        )
    return CaseInfo(
        **{name: fields.get(name, "").strip() for name in REQUIRED_FIELDS + OPTIONAL_FIELDS}
    )


def choose_passphrase(
    passphrase_file: Path | None, recipients: list[object], *, unattended: bool
) -> str | None:
    passphrase = given_passphrase(passphrase_file)
    if passphrase is None and not recipients and not unattended and interactive():
        passphrase = typer.prompt(
            _("New bundle passphrase"), hide_input=True, confirmation_prompt=True, err=True
        )
    if passphrase is not None:
        keys.check_passphrase_strength(passphrase)
    return passphrase


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file is at ``path`` (device, inode), or None."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class StopOnRequest:
    """Ctrl-C and SIGTERM during an acquisition, stopped where it is safe to stop.

    While the pipeline runs, worker threads digest, encrypt and identify in parallel; a
    KeyboardInterrupt raised at an arbitrary instruction can land inside their queues'
    and locks' own code and leave one held, so that the clean-up waits for ever. So the
    signal only sets a flag, and the progress reports (between two chunks, on the main
    thread, where no lock is held) turn it into KeyboardInterrupt. Before the pipeline
    starts and after it finished no thread runs, and the signal interrupts at once. A
    signal that comes when the first has waited :data:`FORCE_AFTER_SECONDS` for a report
    (a read stuck on a failing disk) interrupts at once too; the quick repeats of someone
    pressing Ctrl-C several times only wait with the first.
    """

    def __init__(self, inner: Progress, *, once: bool = False) -> None:
        self._inner = inner
        self.requested = False
        self._requested_at = 0.0
        self._at_once = True
        self._once = once  # then the interruption also ends listening (see cli.interrupts)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self._at_once:
            self._interrupt()
        if not self.requested:
            self.requested = True
            self._requested_at = time.monotonic()
        elif time.monotonic() - self._requested_at >= FORCE_AFTER_SECONDS:
            self._interrupt()

    def start(self, total_items: int, total_bytes: int) -> None:
        self._inner.start(total_items, total_bytes)
        self._at_once = False

    def advance(self, items: int = 0, nbytes: int = 0, errors: int = 0) -> None:
        self._inner.advance(items, nbytes, errors)
        if self.requested:
            self._interrupt()

    def finish(self) -> None:
        self._at_once = True
        self._inner.finish()
        if self.requested:
            self._interrupt()

    def _interrupt(self) -> None:
        if self._once:
            interrupt_once()
        raise KeyboardInterrupt


@contextlib.contextmanager
def stopping_on_signals(progress: Progress) -> Iterator[StopOnRequest]:
    """SIGINT and SIGTERM handled by a :class:`StopOnRequest` (main thread only), the
    previous handlers back afterwards."""
    stop = StopOnRequest(progress, once=answers_once())
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.signal(sig, stop.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            if signal.getsignal(sig) == stop.handle:  # else: no longer listening
                signal.signal(sig, handler)


def acquire_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="the bundle to write (B.zip)")],
    sources: Annotated[
        list[Path] | None, typer.Argument(help="files and folders to acquire")
    ] = None,
    image: Annotated[
        Path | None,
        typer.Option(
            help="a whole disk, partition or raw image file (/dev/sdX, /dev/loopN, disk.img) "
            "instead of files and folders",
            dir_okay=False,
        ),
    ] = None,
    window: Annotated[
        int, typer.Option(help="MiB per piecewise digest of an --image", min=1)
    ] = DEFAULT_WINDOW >> 20,
    retries: Annotated[
        int, typer.Option(help="extra reads of an unreadable sector before zero-filling", min=0)
    ] = 3,
    write_blocker: Annotated[
        str, typer.Option(help="the write blocker used, as written on the form (--image)")
    ] = "",
    force: Annotated[
        bool, typer.Option(help="allow writing the bundle to the disk being imaged")
    ] = False,
    case_number: Annotated[str | None, typer.Option(help="case number")] = None,
    evidence_number: Annotated[str | None, typer.Option(help="evidence (exhibit) number")] = None,
    examiner: Annotated[str | None, typer.Option(help="who acquires")] = None,
    description: Annotated[str | None, typer.Option(help="what this evidence is")] = None,
    notes: Annotated[str | None, typer.Option(help="free notes")] = None,
    location: Annotated[str | None, typer.Option(help="where the acquisition happens")] = None,
    case_file: Annotated[
        Path | None, typer.Option(help="case.toml with the case fields", dir_okay=False)
    ] = None,
    hash: Annotated[
        list[str] | None,
        typer.Option(
            "--hash", help="extra digests besides SHA-256: sha1, md5, sha512 (comma-separated)"
        ),
    ] = None,
    recipient: Annotated[
        list[str] | None, typer.Option(help="age recipient (age1…) or a file of them; repeatable")
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option(
            help="file holding the bundle passphrase (or EVIDENCE_KIT_PASSPHRASE, or a prompt)",
            dir_okay=False,
        ),
    ] = None,
    sign: Annotated[Path | None, SignOption] = None,
    sign_passphrase_file: Annotated[Path | None, SignPassphraseOption] = None,
    tsa: Annotated[list[str] | None, TsaOption] = None,
    tsa_timeout: Annotated[float | None, TsaTimeoutOption] = None,
    tsa_ca: Annotated[list[Path] | None, TsaCaOption] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing bundle at --out")] = False,
    unattended: Annotated[
        bool, typer.Option(help="never prompt; fail if anything is missing")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Acquire files and folders into a sealed, encrypted bundle."""
    with reported_errors(json=json):
        algorithms = parse_algorithms(hash or [])
        case = gather_case(
            {
                "case_number": case_number,
                "evidence_number": evidence_number,
                "examiner": examiner,
                "description": description,
                "notes": notes,
                "location": location,
            },
            case_file,
            unattended=unattended,
        )
        recipients = [r for text in recipient or [] for r in keys.parse_recipient(text)]
        signing = signing_key(sign, sign_passphrase_file)
        passphrase = choose_passphrase(passphrase_file, list(recipients), unattended=unattended)
        request = AcquireRequest(
            sources=sources or [],
            image=ImageRequest(image, window << 20, retries, write_blocker, force)
            if image is not None
            else None,
            output=out,
            case=case,
            hash_algorithms=algorithms,
            recipients=recipients,
            passphrase=passphrase,
            signing_key=signing,
            overwrite=overwrite,
            command_line=command_line(ctx),
            tsas=configured_tsas(tsa or [], tsa_timeout),
            tsa_roots=trusted_roots(tsa_ca) if tsa_ca else (),
        )
        before = _identity(out)
        try:
            progress = progress_for(_("acquiring"), quiet=quiet or json)
            with stopping_on_signals(progress) as stop:
                result: AcquireResult | None = acquire(request, stop)
            work_done()
        except KeyboardInterrupt:
            if _identity(out) in (None, before):
                raise  # nothing reached --out: "interrupted: nothing was left"
            result = None  # interrupted once the bundle was in place (e.g. awaiting a TSA)
    if result is None:
        say(
            _("interrupted after the bundle was sealed: {path} and its custody log are "
              "complete. Check them with 'evidence-kit verify'.").format(path=out),
            style="bold red",
        )  # fmt: skip
        raise typer.Exit(130)
    if json:
        emit_json(result)
    else:
        show_summary(result)
    if not result.complete:
        raise typer.Exit(int(ExitCode.INCOMPLETE_ACQUISITION))


def show_summary(result: AcquireResult) -> None:
    summary = result.summary
    for problem in result.problems[:50]:
        stderr.print(
            plain(f"  {problem.status}: {problem.path}: {problem.reason or ''}"), style="yellow"
        )
    if len(result.problems) > 50:
        say(_("  … and {n} more (see the manifest)").format(n=len(result.problems) - 50))
    show_facts(
        [
            (_("bundle"), result.container),
            (_("custody log"), result.custody_log),
            (_("bundle id"), result.bundle_id),
            (_("container SHA-256"), result.container_sha256),
            (
                _("items"),
                _(
                    "{items} ({files} files, {dirs} folders, {links} symlinks, {other} other)"
                ).format(
                    items=summary.items,
                    files=summary.files,
                    dirs=summary.directories,
                    links=summary.symlinks,
                    other=summary.other,
                ),
            ),
            (_("bytes"), f"{summary.bytes:,}"),
            (_("warnings"), str(len(result.problems))),
            (
                _("signed"),
                _("yes, by {fp}").format(fp=result.signer_fingerprint)
                if result.signed
                else _("NO (unsigned)"),
            ),
            (
                _("trusted timestamp"),
                {
                    "stamped": _("yes (RFC 3161 token in the custody log)"),
                    "pending": _("PENDING: {why}").format(why=result.timestamp_problem),
                    "not-requested": _("none (no --tsa)"),
                }[result.timestamp],
            ),
        ]
    )
    if result.image is not None:
        facts = result.image.device
        show_facts(
            [
                (_("image"), _("{size} bytes, {sectors} sectors of {logical} (physical {physical})")
                 .format(size=f"{result.image.size:,}", sectors=result.image.sectors,
                         logical=result.image.logical_sector_size,
                         physical=result.image.physical_sector_size)),
                (_("device"), " / ".join(v for v in (facts.vendor, facts.model, facts.serial) if v)
                 or "-"),
                (_("partition table"), facts.partition_table or "-"),
                (_("write blocker"), facts.write_blocker or _("none declared")),
                (_("piecewise digests"), _("{n} windows of {mib} MiB").format(
                    n=len(result.image.window_sha256), mib=result.image.window_size >> 20)),
                (_("zero-filled"), _("{n} bytes").format(n=result.image.zero_filled_bytes)),
            ]
        )  # fmt: skip
        if facts.mounted_read_write:
            say(
                _("WARNING: the device was mounted read-write ({points}) while imaged: the "
                  "image may be inconsistent and the source may have changed.").format(
                    points=", ".join(facts.mounted)),
                style="bold red",
            )  # fmt: skip
    if result.timestamp == "pending":
        say(
            _("No TSA could be reached. When online, run: evidence-kit timestamp {bundle}").format(
                bundle=result.container
            ),
            style="bold yellow",
        )
    if result.complete:
        say(
            _("Sealed. Write the bundle id and container SHA-256 on the custody form."),
            style="green",
        )
    else:
        say(
            _("Sealed, but {n} items were not acquired cleanly (exit 3).").format(
                n=len(result.problems)
            ),
            style="bold yellow",
        )


__all__ = ["acquire_command"]
