"""``evidence-kit verify B.zip``"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from evidence_kit.cli.console import emit_json, plain, reported_errors, say, stderr
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
from evidence_kit.custody_report import parse_anchor
from evidence_kit.errors import ExitCode
from evidence_kit.i18n import _
from evidence_kit.models import VerificationReport
from evidence_kit.timestamps import DEFAULT_SKEW_SECONDS, trusted_roots
from evidence_kit.verify import VerifyRequest, verify_bundle

MAX_FINDINGS_SHOWN = 200


def verify_command(
    bundle: Annotated[
        Path, typer.Argument(help="the container (B.zip); its custody log is found beside it")
    ],
    identity: Annotated[list[Path] | None, IdentityOption] = None,
    passphrase_file: Annotated[Path | None, PassphraseFileOption] = None,
    trust: Annotated[list[Path] | None, TrustOption] = None,
    trust_dir: Annotated[Path | None, TrustDirOption] = None,
    expect_head: Annotated[
        str | None,
        typer.Option(
            help="custody log head written down earlier (HASH or HASH:COUNT, as custody show "
            "prints it): fails if events up to it were removed or rewritten"
        ),
    ] = None,
    against: Annotated[
        list[Path] | None, typer.Option(help="re-read the original source and compare; repeatable")
    ] = None,
    tsa_ca: Annotated[list[Path] | None, TsaCaOption] = None,
    max_clock_skew: Annotated[
        int, typer.Option(help="seconds a token may precede the acquisition's local time")
    ] = DEFAULT_SKEW_SECONDS,
    sign: Annotated[Path | None, SignOption] = None,
    sign_passphrase_file: Annotated[Path | None, SignPassphraseOption] = None,
    actor: Annotated[str | None, ActorOption] = None,
    location: Annotated[str, typer.Option(help="where the verification happens")] = "",
    json: Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Check a bundle: without a key its seal and custody; with a key every byte."""
    with reported_errors(json=json):
        request = VerifyRequest(
            container=bundle,
            key=key_material(identity, passphrase_file),
            trusted=trusted_keys(trust, trust_dir),
            against=against or [],
            anchor=parse_anchor(expect_head) if expect_head is not None else None,
            record=recorder(sign, sign_passphrase_file, actor, location),
            tsa_roots=trusted_roots(tsa_ca or []),
            skew_seconds=max_clock_skew,
        )
        report = verify_bundle(request, progress_for(_("verifying"), quiet=quiet or json))
    if json:
        emit_json(report)
    else:
        show_report(report)
    if report.verdict != "verified":
        raise typer.Exit(int(ExitCode.VERIFICATION_FAILED))


def show_report(report: VerificationReport) -> None:
    checks = Table(title=None, show_header=True, header_style="bold", box=None)
    checks.add_column(_("check"))
    checks.add_column(_("result"))
    checks.add_column(_("detail"), overflow="fold")
    colours = {"pass": "green", "fail": "bold red", "skipped": "yellow"}
    for check in report.checks:
        checks.add_row(
            plain(check.name), plain(check.status, style=colours[check.status]), plain(check.detail)
        )
    stderr.print(checks)
    if report.findings:
        findings = Table(show_header=True, header_style="bold", box=None)
        findings.add_column(_("severity"))
        findings.add_column(_("reason"), no_wrap=True)
        findings.add_column(_("item"), overflow="fold")
        findings.add_column(_("what"), overflow="fold")
        for finding in report.findings[:MAX_FINDINGS_SHOWN]:
            detail = finding.message
            if finding.expected is not None or finding.actual is not None:
                detail += _(" (expected {expected}, found {actual})").format(
                    expected=finding.expected, actual=finding.actual
                )
            findings.add_row(
                plain(finding.severity), plain(finding.code), plain(finding.subject), plain(detail)
            )
        stderr.print(findings)
        if len(report.findings) > MAX_FINDINGS_SHOWN:
            say(
                _("… {n} more findings: use --json for all").format(
                    n=len(report.findings) - MAX_FINDINGS_SHOWN
                )
            )
    if report.custody is not None:
        say(
            _("custody log head: {head}:{n} ({n} events)").format(
                head=report.custody.head_sha256, n=report.custody.events
            )
        )
    if report.recorded_event is not None:
        say(
            _("custody event {seq} 'verified' recorded; new head {head}:{n}").format(
                seq=report.recorded_event.event.seq,
                head=report.recorded_event.head_sha256,
                n=report.recorded_event.event_count,
            )
        )
    seal = {
        "signed": _("signed by {fp}").format(fp=report.signer_fingerprint),
        "unsigned": _("sealed but UNSIGNED"),
        "unsealed": _("UNSEALED"),
        "not-checked": _("seal not checked (no key)"),
    }[report.seal]
    if report.verdict == "verified" and report.contents_checked:
        say(
            _("VERIFIED: {items} items, {bytes} bytes, every digest matches; {seal}.").format(
                items=report.items_checked, bytes=report.bytes_checked, seal=seal
            ),
            style="bold green",
        )
    elif report.verdict == "verified":
        say(
            _(
                "CONTAINER INTACT: its SHA-256 matches the custody log. Contents were NOT checked "
                "(give --identity or --passphrase-file)."
            ),
            style="bold yellow",
        )
    else:
        errors = sum(1 for f in report.findings if f.severity == "error")
        say(_("FAILED: {n} problems found; {seal}.").format(n=errors, seal=seal), style="bold red")


__all__ = ["verify_command"]
