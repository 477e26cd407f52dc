"""``evidence-kit extract B.zip --out DIR``"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    key_material,
    recorder,
    trusted_keys,
)
from evidence_kit.cli.progress import progress_for
from evidence_kit.errors import ExitCode
from evidence_kit.extract import ExtractRequest, extract_bundle
from evidence_kit.i18n import _


def extract_command(
    bundle: Annotated[Path, typer.Argument(help="the container (B.zip)")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="destination folder (created if absent)")
    ],
    identity: Annotated[list[Path] | None, IdentityOption] = None,
    passphrase_file: Annotated[Path | None, PassphraseFileOption] = None,
    trust: Annotated[list[Path] | None, TrustOption] = None,
    trust_dir: Annotated[Path | None, TrustDirOption] = None,
    sign: Annotated[Path | None, SignOption] = None,
    sign_passphrase_file: Annotated[Path | None, SignPassphraseOption] = None,
    actor: Annotated[str | None, ActorOption] = None,
    location: Annotated[str, typer.Option(help="where the extraction happens")] = "",
    json: Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Write the evidence out, verified item by item, confined to DIR."""
    with reported_errors(json=json):
        request = ExtractRequest(
            container=bundle,
            destination=out,
            key=key_material(identity, passphrase_file, prompt=True),
            trusted=trusted_keys(trust, trust_dir),
            record=recorder(sign, sign_passphrase_file, actor, location),
        )
        try:
            with terminate_as_interrupt():
                result = extract_bundle(request, progress_for(_("extracting"), quiet=quiet or json))
        except KeyboardInterrupt:
            result = None
    if result is None:
        say(
            _("interrupted: the files already written to {out} are complete and verified; "
              "the one being written was removed").format(out=out),
            style="bold red",
        )  # fmt: skip
        raise typer.Exit(130)
    if json:
        emit_json(result)
    else:
        for finding in result.findings:
            stderr.print(
                plain(f"  {finding.code}: {finding.subject}: {finding.message}"), style="red"
            )
        say(
            _("{n} files ({bytes} bytes) written to {out}").format(
                n=result.written, bytes=result.bytes_written, out=out
            ),
            style="green" if result.complete else "yellow",
        )
        if result.recorded_event is not None:
            say(
                _("custody event {seq} 'extracted' recorded; new head {head}:{n}").format(
                    seq=result.recorded_event.event.seq,
                    head=result.recorded_event.head_sha256,
                    n=result.recorded_event.event_count,
                )
            )
    if not result.complete:
        tampered = any(
            f.code.startswith(("item-", "member-", "pack-")) or f.code == "extract-unsafe-name"
            for f in result.findings
        )  # a name that could escape is hostile content (1), a collision the machine's (5)
        raise typer.Exit(int(ExitCode.VERIFICATION_FAILED if tampered else ExitCode.ENVIRONMENT))


__all__ = ["extract_command"]
