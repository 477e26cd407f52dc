"""``evidence-kit custody add|show|receipt|repair``"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from evidence_kit.cli.console import emit_json, plain, reported_errors, say, show_facts, stderr
from evidence_kit.cli.keyoptions import (
    SignPassphraseOption,
    TrustDirOption,
    TrustOption,
    signing_key,
    trusted_keys,
)
from evidence_kit.custody_append import CUSTODY_ACTIONS, NewEvent, append_event, repair_log
from evidence_kit.custody_report import custody_report, parse_anchor
from evidence_kit.errors import ExitCode, UsageError, VerificationFailed
from evidence_kit.i18n import _
from evidence_kit.models import CustodyReport

custody_app = typer.Typer(
    help="Record and show who held the evidence: the signed, hash-chained custody log.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonOption = typer.Option("--json", help="print one JSON document on stdout")


@custody_app.command("add")
def add_command(
    bundle: Annotated[Path, typer.Argument(help="the container (B.zip)", dir_okay=False)],
    action: Annotated[str, typer.Option(help="one of: " + ", ".join(CUSTODY_ACTIONS))],
    actor: Annotated[str, typer.Option(help="who records the event (name, rank, unit)")],
    sign: Annotated[
        Path, typer.Option(help="the actor's Ed25519 private key (PEM)", dir_okay=False)
    ],
    sign_passphrase_file: Annotated[Path | None, SignPassphraseOption] = None,
    to: Annotated[str | None, typer.Option(help="who receives the evidence (transferred)")] = None,
    location: Annotated[str, typer.Option(help="where this happens")] = "",
    note: Annotated[str, typer.Option(help="purpose or remarks")] = "",
    json: Annotated[bool, JsonOption] = False,
) -> None:
    """Append a signed event; the container is hashed now and the hash recorded."""
    with reported_errors(json=json):
        key = signing_key(sign, sign_passphrase_file)
        assert key is not None
        result = append_event(
            bundle, NewEvent(action, actor, location=location, note=note, to=to), key
        )
    if json:
        emit_json(result)
    else:
        show_facts(
            [
                (_("event"), f"{result.event.seq} {result.event.action}"),
                (_("time (local clock)"), result.event.time.utc or ""),
                (_("container SHA-256"), result.event.container_sha256),
                (_("signer fingerprint"), result.event.actor_key_fingerprint or ""),
                (_("log head"), f"{result.head_sha256}:{result.event_count}"),
            ]
        )
    if not result.container_matches_acquisition:
        say(
            _("WARNING: the container is NOT the one acquired: its SHA-256 differs from "
              "event 0. The event records what was received; report it."),
            style="bold red",
        )  # fmt: skip
        raise typer.Exit(int(ExitCode.VERIFICATION_FAILED))
    if not json:
        say(_("Recorded. Write the log head on the custody form."), style="green")


@custody_app.command("show")
def show_command(
    bundle: Annotated[Path, typer.Argument(help="the container (B.zip)", dir_okay=False)],
    trust: Annotated[list[Path] | None, TrustOption] = None,
    trust_dir: Annotated[Path | None, TrustDirOption] = None,
    expect_head: Annotated[
        str | None, typer.Option(help="a head written down earlier: HASH or HASH:COUNT")
    ] = None,
    json: Annotated[bool, JsonOption] = False,
) -> None:
    """The custody timeline: who, what, when, where, and whether the container matches."""
    with reported_errors(json=json):
        report = custody_report(
            bundle,
            trusted=trusted_keys(trust, trust_dir),
            anchor=parse_anchor(expect_head) if expect_head is not None else None,
        )
    if json:
        emit_json(report)
    else:
        show_timeline(report)
    if report.verdict != "intact":
        raise typer.Exit(int(ExitCode.VERIFICATION_FAILED))


@custody_app.command("receipt")
def receipt_command(
    bundle: Annotated[Path, typer.Argument(help="the container (B.zip)", dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="the receipt to write (HTML)")],
    overwrite: Annotated[bool, typer.Option(help="replace an existing receipt")] = False,
    json: Annotated[bool, JsonOption] = False,
) -> None:
    """A printable receipt for the paper form: ids, hashes, log head and a QR code."""
    with reported_errors(json=json):
        report = custody_report(bundle)
        if report.verdict != "intact":
            first = next(f for f in report.findings if f.severity == "error")
            raise VerificationFailed(
                _("the custody log does not verify ({code} at {subject}): no receipt").format(
                    code=first.code, subject=first.subject
                ),
                hint=_("Run 'evidence-kit custody show' for every finding."),
            )
        if out.exists() and not overwrite:
            raise UsageError(
                _("{path} already exists; refusing to replace it").format(path=out),
                hint=_("Choose another --out, or pass --overwrite."),
            )
        from evidence_kit.receipt import write_receipt  # noqa: PLC0415 (jinja2: only here)

        write_receipt(report, out)
    if json:
        emit_json(report)
    else:
        say(_("Receipt written to {path}: print it and attach it to the form.").format(path=out))


@custody_app.command("repair")
def repair_command(
    bundle: Annotated[Path, typer.Argument(help="the container (B.zip)", dir_okay=False)],
    drop_torn_line: Annotated[
        bool,
        typer.Option(help="move an incomplete last line to a side file and end the log before it"),
    ] = False,
    json: Annotated[bool, JsonOption] = False,
) -> None:
    """Deal with a torn last line (power loss); refuses anything it would have to guess."""
    with reported_errors(json=json):
        result = repair_log(bundle, drop_torn_line=drop_torn_line)
    if json:
        emit_json(result)
    elif result.repaired:
        say(
            _("Removed a torn line of {n} bytes, kept in {copy}. The log ends at event {last}; "
              "record what happened with 'custody add'.").format(
                n=result.torn_bytes, copy=result.torn_copy, last=result.event_count - 1),
            style="yellow",
        )  # fmt: skip
    else:
        say(_("Nothing to repair: the custody log is whole."), style="green")


def show_timeline(report: CustodyReport) -> None:
    show_facts(
        [
            (_("bundle"), report.bundle_id or "?"),
            (_("case / evidence"), f"{report.case_number} / {report.evidence_number}"),
            (_("container SHA-256 now"), report.container_sha256 or "?"),
        ]
    )
    table = Table(show_header=True, header_style="bold", box=None)
    for column in (_("#"), _("action"), _("when (UTC)")):
        table.add_column(column, no_wrap=True)
    for column in (_("who"), _("where"), _("note"), _("signature"), _("container")):
        table.add_column(column, overflow="fold")
    for event in report.events:
        who = event.actor + (f" → {event.to}" if event.to else "")
        signature = (
            _("none") if not event.signed else _("valid") if event.signature_valid else _("INVALID")
        )
        if event.signer_trusted is False:
            signature += _(" (untrusted)")
        matches = {True: _("matches"), False: _("DIFFERS"), None: "?"}[event.container_matches]
        table.add_row(
            *(plain(value) for value in (str(event.seq), event.action, event.time_utc or "?",
                                        who, event.location, event.note, signature, matches))
        )  # fmt: skip
    stderr.print(table)
    for finding in report.findings:
        stderr.print(
            plain(f"{finding.severity}: {finding.code}: {finding.subject}: {finding.message}"),
            style="bold red" if finding.severity == "error" else "yellow",
        )
    say(
        _("log head: {head}:{n}  (copy onto the custody form)").format(
            head=report.head_sha256, n=report.event_count
        ),
        style="bold",
    )
    if report.verdict == "intact":
        say(_("CUSTODY LOG INTACT: every link and signature holds."), style="bold green")
    else:
        say(_("CUSTODY LOG BROKEN: see the errors above."), style="bold red")


__all__ = ["custody_app"]
