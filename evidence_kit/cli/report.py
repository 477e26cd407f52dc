"""``evidence-kit report B.zip --out report.html``"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evidence_kit.cli.console import emit_json, reported_errors, say
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
from evidence_kit.reports import ReportRequest, write_report
from evidence_kit.reports.court import DEFAULT_MAX_ITEMS
from evidence_kit.timestamps import DEFAULT_SKEW_SECONDS, trusted_roots


def report_command(
    bundle: Annotated[
        Path, typer.Argument(help="the container (B.zip); its custody log is found beside it")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="report.html, or report.pdf (needs the pdf extra)"),
    ],
    identity: Annotated[list[Path] | None, IdentityOption] = None,
    passphrase_file: Annotated[Path | None, PassphraseFileOption] = None,
    trust: Annotated[list[Path] | None, TrustOption] = None,
    trust_dir: Annotated[Path | None, TrustDirOption] = None,
    expect_head: Annotated[
        str | None,
        typer.Option(help="custody log head written down earlier (HASH or HASH:COUNT)"),
    ] = None,
    tsa_ca: Annotated[list[Path] | None, TsaCaOption] = None,
    max_clock_skew: Annotated[
        int, typer.Option(help="seconds a token may precede the acquisition's local time")
    ] = DEFAULT_SKEW_SECONDS,
    certifier: Annotated[
        str | None,
        typer.Option(help="who certifies (name, title); default --actor, else a blank line"),
    ] = None,
    max_items: Annotated[
        int,
        typer.Option(
            help="rows in the item table; the report always holds the SHA-256 of the complete list"
        ),
    ] = DEFAULT_MAX_ITEMS,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out")] = False,
    sign: Annotated[Path | None, SignOption] = None,
    sign_passphrase_file: Annotated[Path | None, SignPassphraseOption] = None,
    actor: Annotated[str | None, ActorOption] = None,
    location: Annotated[str, typer.Option(help="where the report is made")] = "",
    json: Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Verify a bundle and write a printable report for a court, with a certification
    when verification passed."""
    with reported_errors(json=json):
        result = write_report(
            ReportRequest(
                container=bundle,
                output=out,
                key=key_material(identity, passphrase_file),
                trusted=trusted_keys(trust, trust_dir),
                tsa_roots=tuple(trusted_roots(tsa_ca or [])),
                anchor=parse_anchor(expect_head) if expect_head is not None else None,
                skew_seconds=max_clock_skew,
                certifier=certifier or actor,
                max_items=max_items,
                overwrite=overwrite,
                record=recorder(sign, sign_passphrase_file, actor, location),
            ),
            progress_for(_("verifying"), quiet=quiet or json),
        )
    if json:
        emit_json(result)
    else:
        say(_("report written to {out} ({n} of {total} items listed)").format(
            out=out, n=result.items, total=result.items_total))  # fmt: skip
        if result.certification_withheld is None:
            say(_("VERIFIED; the report holds a certification."), style="bold green")
        elif result.verdict == "verified":
            say(_("No certification: {why}.").format(why=result.certification_withheld),
                style="bold yellow")  # fmt: skip
        else:
            say(_("VERIFICATION FAILED; no certification: {why}.").format(
                why=result.certification_withheld), style="bold red")  # fmt: skip
        if result.recorded_event is not None:
            say(_("custody event {seq} 'exported' recorded").format(
                seq=result.recorded_event.event.seq))  # fmt: skip
    if result.verdict != "verified":
        raise typer.Exit(int(ExitCode.VERIFICATION_FAILED))


__all__ = ["report_command"]
