"""``evidence-kit lab ingest|verify-all|find|links|known``"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from evidence_kit.cli.console import (
    emit_json,
    plain,
    reported_errors,
    say,
    stderr,
    terminate_as_interrupt,
)
from evidence_kit.cli.keyoptions import (
    ActorOption,
    IdentityOption,
    PassphraseFileOption,
    SignOption,
    SignPassphraseOption,
    TrustDirOption,
    TrustOption,
    TsaCaOption,
    key_material,
    recorder,
    trusted_keys,
)
from evidence_kit.cli.progress import progress_for
from evidence_kit.errors import ExitCode
from evidence_kit.i18n import _
from evidence_kit.lab.batch import verify_folder
from evidence_kit.lab.find import find_content
from evidence_kit.lab.ingest import IngestRequest, ingest_bundles
from evidence_kit.lab.known_files import add_known_list, known_lists
from evidence_kit.lab.links import find_links
from evidence_kit.lab.records import (
    BundleCheck,
    FindResult,
    IngestResult,
    KnownList,
    LinksResult,
    Occurrence,
    VerdictCounts,
    VerifyAllResult,
)
from evidence_kit.lab.register import DEFAULT_LOCK_TIMEOUT
from evidence_kit.timestamps import DEFAULT_SKEW_SECONDS, trusted_roots

REGISTER_ENV = "EVIDENCE_KIT_REGISTER"

lab_app = typer.Typer(
    help="The lab: verify many bundles, keep a register of what was received, find the "
    "evidence two cases share.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
known_app = typer.Typer(
    help="Known-file hash lists (operating-system files and the like) that lab links ignores.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
lab_app.add_typer(known_app, name="known")

RegisterOption = typer.Option(
    "--register",
    envvar=REGISTER_ENV,
    help="the register (SQLite); default: register.sqlite in the user's data folder",
    dir_okay=False,
)
LockTimeoutOption = typer.Option(
    "--lock-timeout", help="seconds to wait while another process writes to the register"
)
JobsOption = typer.Option(
    "--jobs", "-j", help="bundles verified at once: by this process and JOBS-1 worker processes"
)
JsonOption = typer.Option("--json", help="print one JSON document on stdout")
QuietOption = typer.Option("--quiet", "-q", help="no progress bar")
SkewOption = typer.Option(help="seconds a token may precede the acquisition's local time")

VERDICT_STYLE = {
    "verified": "green",
    "intact": "yellow",
    "failed": "bold red",
    "no-key": "yellow",
    "unreadable": "bold red",
    "not-a-bundle": "dim",
}
OUTCOME_STYLE = {
    "added": "green",
    "already-registered": "green",
    "now-verified": "green",
    "now-failing": "bold red",
    "container-changed": "bold red",
    "failed": "bold red",
    "no-key": "yellow",
    "not-recorded": "bold red",
}


@lab_app.command("ingest")
def ingest_command(
    bundles: Annotated[list[Path], typer.Argument(help="containers (B.zip) to take in")],
    identity: Annotated[list[Path] | None, IdentityOption] = None,
    passphrase_file: Annotated[Path | None, PassphraseFileOption] = None,
    register: Annotated[Path | None, RegisterOption] = None,
    trust: Annotated[list[Path] | None, TrustOption] = None,
    trust_dir: Annotated[Path | None, TrustDirOption] = None,
    tsa_ca: Annotated[list[Path] | None, TsaCaOption] = None,
    max_clock_skew: Annotated[int, SkewOption] = DEFAULT_SKEW_SECONDS,
    sign: Annotated[Path | None, SignOption] = None,
    sign_passphrase_file: Annotated[Path | None, SignPassphraseOption] = None,
    actor: Annotated[str | None, ActorOption] = None,
    location: Annotated[str, typer.Option(help="where the bundles are received")] = "",
    jobs: Annotated[int, JobsOption] = 1,
    lock_timeout: Annotated[float, LockTimeoutOption] = DEFAULT_LOCK_TIMEOUT,
    json: Annotated[bool, JsonOption] = False,
    quiet: Annotated[bool, QuietOption] = False,
) -> None:
    """Verify bundles fully, record their receipt, and register them and their items."""
    stopped = _("interrupted: bundles registered before stay registered; the rest were not")
    with reported_errors(json=json, interrupted=stopped), terminate_as_interrupt():
        result = ingest_bundles(
            IngestRequest(
                containers=bundles,
                key=key_material(identity, passphrase_file, prompt=True),
                register=register,
                trusted=trusted_keys(trust, trust_dir),
                tsa_roots=trusted_roots(tsa_ca or []),
                skew_seconds=max_clock_skew,
                record=recorder(sign, sign_passphrase_file, actor, location),
                jobs=jobs,
                lock_timeout=lock_timeout,
            ),
            progress_for(_("verifying"), quiet=quiet or json, unit=_("bundle")),
        )
    if json:
        emit_json(result)
    else:
        _show_ingest(result)
    raise typer.Exit(_ingest_exit(result))


def _show_ingest(result: IngestResult) -> None:
    _warn(result.warnings)
    table = Table(show_header=True, header_style="bold", box=None)
    for column in (_("outcome"), _("case"), _("evidence"), _("items indexed"), _("bundle")):
        table.add_column(column, overflow="fold")
    for bundle in result.bundles:
        check = bundle.check
        table.add_row(
            plain(bundle.outcome, style=OUTCOME_STYLE[bundle.outcome]),
            plain(check.case_number or "?"),
            plain(check.evidence_number or "?"),
            plain(str(bundle.items_indexed)),
            plain(check.path),
        )
    stderr.print(table)
    for bundle in result.bundles:
        check = bundle.check
        if bundle.outcome == "container-changed":
            say(
                _("CONTAINER CHANGED: {path}: bundle {id} was registered with container "
                  "SHA-256 {before}; this container is {now}. It was recorded as failed and "
                  "not indexed; every container of this bundle id is now flagged.").format(
                    path=check.path, id=check.bundle_id,
                    before=", ".join(bundle.previous_container_sha256),
                    now=check.container_sha256,
                ),
                style="bold red",
            )  # fmt: skip
        elif bundle.outcome == "now-failing":
            say(
                _("NOW FAILING: {path} verified when registered and fails now ({reasons}); "
                  "its items left the index.").format(path=check.path,
                                                     reasons=", ".join(check.reasons)),
                style="bold red",
            )  # fmt: skip
        elif check.verdict != "verified":
            say(_("{verdict}: {path}: {why}").format(
                verdict=check.verdict.upper(), path=check.path,
                why=check.message or ", ".join(check.reasons)), style="bold red"
                if check.verdict != "no-key" else "yellow")  # fmt: skip
        if bundle.custody_problem is not None:
            say(
                _("{path}: no 'received' custody event was recorded: {why}").format(
                    path=check.path, why=bundle.custody_problem
                ),
                style="bold red",
            )
        elif bundle.received_event is not None:
            event = bundle.received_event
            say(
                _("{path}: custody event {seq} 'received' recorded; new head {head}:{n}").format(
                    path=check.path, seq=event.event.seq, head=event.head_sha256,
                    n=event.event_count,
                )
            )  # fmt: skip
    say(_("register: {path}").format(path=result.register_file))
    say(_summary(result.counts, len(result.bundles)))


def _ingest_exit(result: IngestResult) -> int:
    failing = {"failed", "now-failing", "container-changed", "not-recorded"}
    if any(
        (b.outcome in failing and b.check.verdict != "unreadable") or b.custody_problem
        for b in result.bundles
    ):
        return int(ExitCode.VERIFICATION_FAILED)
    return _verdict_exit(result.counts)


def _verdict_exit(counts: VerdictCounts) -> int:
    if counts.failed:
        return int(ExitCode.VERIFICATION_FAILED)
    if counts.unreadable:
        return int(ExitCode.ENVIRONMENT)
    if counts.no_key:
        return int(ExitCode.NO_USABLE_KEY)
    return int(ExitCode.OK)


def _summary(counts: VerdictCounts, total: int) -> str:
    parts = [
        _("{n} verified").format(n=counts.verified),
        _("{n} failed").format(n=counts.failed),
        _("{n} without a usable key").format(n=counts.no_key),
    ]
    if counts.intact:
        parts.append(_("{n} intact, contents not checked (no key given)").format(n=counts.intact))
    if counts.unreadable:
        parts.append(_("{n} unreadable").format(n=counts.unreadable))
    if counts.not_a_bundle:
        parts.append(_("{n} zip files that are not bundles").format(n=counts.not_a_bundle))
    return _("{total} bundles: {parts}").format(total=total, parts=", ".join(parts))


@lab_app.command("verify-all")
def verify_all_command(
    folder: Annotated[
        Path, typer.Argument(help="folder to search for bundles (*.zip), sub-folders too")
    ],
    jobs: Annotated[int, JobsOption] = 1,
    identity: Annotated[list[Path] | None, IdentityOption] = None,
    passphrase_file: Annotated[Path | None, PassphraseFileOption] = None,
    trust: Annotated[list[Path] | None, TrustOption] = None,
    trust_dir: Annotated[Path | None, TrustDirOption] = None,
    tsa_ca: Annotated[list[Path] | None, TsaCaOption] = None,
    max_clock_skew: Annotated[int, SkewOption] = DEFAULT_SKEW_SECONDS,
    json: Annotated[bool, JsonOption] = False,
    quiet: Annotated[bool, QuietOption] = False,
) -> None:
    """Verify every bundle under a folder, in parallel; a table of verdicts at the end."""
    stopped = _("interrupted: verification stopped")
    with reported_errors(json=json, interrupted=stopped), terminate_as_interrupt():
        result = verify_folder(
            folder,
            key_material(identity, passphrase_file),
            trusted_keys(trust, trust_dir),
            trusted_roots(tsa_ca or []),
            max_clock_skew,
            jobs=jobs,
            progress=progress_for(_("verifying"), quiet=quiet or json, unit=_("bundle")),
        )
    if json:
        emit_json(result)
    else:
        _show_verify_all(result)
    raise typer.Exit(_verdict_exit(result.counts))


def _show_verify_all(result: VerifyAllResult) -> None:
    table = Table(show_header=True, header_style="bold", box=None)
    for column in (_("verdict"), _("case"), _("evidence"), _("items"), _("bundle"), _("why")):
        table.add_column(column, overflow="fold")
    say(_("in {folder}:").format(folder=result.folder))
    inside = result.folder.rstrip("/") + "/"
    for check in sorted(result.bundles, key=_attention_first):
        table.add_row(
            plain(check.verdict, style=VERDICT_STYLE[check.verdict]),
            plain(check.case_number or ""),
            plain(check.evidence_number or ""),
            plain(str(check.items)),
            plain(check.path.removeprefix(inside)),
            plain(check.message or ", ".join(check.reasons)),
        )
    stderr.print(table)
    total = len(result.bundles) - result.counts.not_a_bundle
    say(_summary(result.counts, total))
    say(
        _("{n} containers, {mib:.1f} MiB in {s:.1f} s (--jobs {jobs}): {rate:.2f} bundles/s, "
          "{speed:.1f} MiB/s").format(
            n=len(result.bundles), mib=result.container_bytes / (1 << 20), s=result.seconds,
            jobs=result.jobs, rate=result.bundles_per_second, speed=result.mib_per_second,
        )
    )  # fmt: skip
    if result.other_files:
        say(_("{n} other files under the folder are not bundles and were left alone").format(
            n=result.other_files))  # fmt: skip


def _register_unchanged() -> str:
    """What a Ctrl-C leaves after a lab command that reads, or writes in one transaction."""
    return _("interrupted: the register was not changed")


def _attention_first(check: BundleCheck) -> tuple[int, str]:
    order = ["failed", "unreadable", "no-key", "intact", "not-a-bundle", "verified"]
    return order.index(check.verdict), check.path


@lab_app.command("find")
def find_command(
    query: Annotated[
        str, typer.Argument(metavar="DIGEST|FILE", help="a digest (HEX or sha256:HEX) or a file")
    ],
    register: Annotated[Path | None, RegisterOption] = None,
    lock_timeout: Annotated[float, LockTimeoutOption] = DEFAULT_LOCK_TIMEOUT,
    json: Annotated[bool, JsonOption] = False,
) -> None:
    """Which registered bundles, cases and original paths hold this content."""
    with reported_errors(json=json, interrupted=_register_unchanged()):
        result = find_content(register, query, lock_timeout=lock_timeout)
    if json:
        emit_json(result)
    else:
        _show_find(result)


def _show_find(result: FindResult) -> None:
    _warn(result.warnings)
    if result.file is not None:
        say(_("{file}: sha256 {digest}").format(file=result.file, digest=result.digest))
    if result.occurrences:
        _show_occurrences(result.occurrences)
        say(
            _("{algorithm} {digest}: {n} items in {bundles} bundles of {cases} cases").format(
                algorithm=result.algorithm, digest=result.digest, n=len(result.occurrences),
                bundles=result.bundles, cases=len(result.cases),
            ),
            style="bold",
        )  # fmt: skip
    else:
        say(_("{algorithm} {digest}: in no verified bundle of the register").format(
            algorithm=result.algorithm, digest=result.digest))  # fmt: skip
    for entry in result.known:
        say(_("on the known-files list {list} as {name}").format(list=entry.list_name,
                                                                name=entry.name))  # fmt: skip


def _show_occurrences(occurrences: list[Occurrence], indent: str = "") -> None:
    """One line per place, never cut (paths and ids get copied by hand)."""
    for occurrence in occurrences:
        say(
            _("{indent}{case}  {evidence}  {path}").format(
                indent=indent, case=occurrence.case_number, evidence=occurrence.evidence_number,
                path=occurrence.original_path,
            )
        )  # fmt: skip
        say(
            _("{indent}    bundle {id}, item {item} ({kind}, {size} bytes, {mime})").format(
                indent=indent, id=occurrence.bundle_id, item=occurrence.item_id,
                kind=occurrence.kind, size=occurrence.size, mime=occurrence.mime_type or "?",
            ),
            style="dim",
        )  # fmt: skip
        if occurrence.container_changed:
            say(
                _("{indent}    CONTAINER CHANGED: another container with this bundle id was "
                  "ingested; one of them is not the one acquired").format(indent=indent),
                style="bold red",
            )  # fmt: skip


@lab_app.command("links")
def links_command(
    case: Annotated[
        str | None, typer.Option(help="only contents this case shares with other bundles")
    ] = None,
    min_size: Annotated[
        int, typer.Option(help="ignore files smaller than this many bytes (empty files always)")
    ] = 1,
    register: Annotated[Path | None, RegisterOption] = None,
    lock_timeout: Annotated[float, LockTimeoutOption] = DEFAULT_LOCK_TIMEOUT,
    json: Annotated[bool, JsonOption] = False,
) -> None:
    """Items found in more than one bundle or case, grouped by content."""
    with reported_errors(json=json, interrupted=_register_unchanged()):
        result = find_links(register, case=case, min_size=min_size, lock_timeout=lock_timeout)
    if json:
        emit_json(result)
    else:
        _show_links(result)


def _show_links(result: LinksResult) -> None:
    _warn(result.warnings)
    for group in result.groups:
        say(
            _("sha256 {digest}  {size} bytes  {mime}  {cases} cases, {bundles} bundles").format(
                digest=group.sha256, size=group.size, mime=group.mime_type or "?",
                cases=len(group.cases), bundles=group.bundles,
            ),
            style="bold red" if len(group.cases) > 1 else "bold",
        )  # fmt: skip
        _show_occurrences(group.occurrences, indent="  ")
    say(
        _("{n} contents shared between bundles ({cross} across cases) in {bundles} verified "
          "bundles; {known} more left out as known files").format(
            n=len(result.groups), cross=result.cross_case_groups,
            bundles=result.registered_bundles, known=result.ignored_known,
        )
    )  # fmt: skip


@known_app.command("add")
def known_add_command(
    hash_list: Annotated[
        Path, typer.Argument(metavar="HASHLIST", help="sha256sum-style or hashdeep file")
    ],
    name: Annotated[
        str | None, typer.Option(help="what to call the list (default: file name)")
    ] = None,
    register: Annotated[Path | None, RegisterOption] = None,
    lock_timeout: Annotated[float, LockTimeoutOption] = DEFAULT_LOCK_TIMEOUT,
    json: Annotated[bool, JsonOption] = False,
) -> None:
    """Add a hash list of known files (operating-system files and the like)."""
    with reported_errors(json=json, interrupted=_register_unchanged()):
        result = add_known_list(register, hash_list, name=name, lock_timeout=lock_timeout)
    if json:
        emit_json(result)
        return
    _warn(result.warnings)
    added = result.hash_list
    if result.already_present:
        say(_("{name}: this list was added before ({n} digests); nothing changed").format(
            name=added.name, n=added.entries))  # fmt: skip
    else:
        say(_("{name}: {n} digests added ({format} format)").format(
            name=added.name, n=added.entries, format=added.format))  # fmt: skip


@known_app.command("list")
def known_list_command(
    register: Annotated[Path | None, RegisterOption] = None,
    lock_timeout: Annotated[float, LockTimeoutOption] = DEFAULT_LOCK_TIMEOUT,
    json: Annotated[bool, JsonOption] = False,
) -> None:
    """The known-file lists the register holds."""
    with reported_errors(json=json, interrupted=_register_unchanged()):
        result = known_lists(register, lock_timeout=lock_timeout)
    if json:
        emit_json(result)
        return
    _warn(result.warnings)
    _show_known(result.lists)


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        say(_("warning: {w}").format(w=warning), style="bold yellow")


def _show_known(lists: list[KnownList]) -> None:
    if not lists:
        say(_("no known-file list in the register (add one with lab known add)"))
        return
    table = Table(show_header=True, header_style="bold", box=None)
    for column in (_("list"), _("format"), _("digests"), _("added"), _("sha256")):
        table.add_column(column, overflow="fold")
    for entry in lists:
        table.add_row(plain(entry.name), plain(entry.format), plain(str(entry.entries)),
                      plain(entry.added_at), plain(entry.list_sha256))  # fmt: skip
    stderr.print(table)


__all__ = ["lab_app"]
