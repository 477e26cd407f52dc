"""``evidence-kit export B.zip --format sha256sum --out LIST``"""

from __future__ import annotations

import shlex
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
from evidence_kit.exporters import EXPORT_FORMATS, ExportRequest, export_bundle
from evidence_kit.i18n import _
from evidence_kit.timestamps import trusted_roots


def export_command(
    bundle: Annotated[Path, typer.Argument(help="the container (B.zip)", dir_okay=False)],
    format: Annotated[str, typer.Option("--format", help=" | ".join(EXPORT_FORMATS))],
    out: Annotated[Path, typer.Option("--out", "-o", help="the file or folder to write")],
    identity: Annotated[list[Path] | None, IdentityOption] = None,
    passphrase_file: Annotated[Path | None, PassphraseFileOption] = None,
    trust: Annotated[list[Path] | None, TrustOption] = None,
    trust_dir: Annotated[Path | None, TrustDirOption] = None,
    tsa_ca: Annotated[list[Path] | None, TsaCaOption] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out file")] = False,
    sign: Annotated[Path | None, SignOption] = None,
    sign_passphrase_file: Annotated[Path | None, SignPassphraseOption] = None,
    actor: Annotated[str | None, ActorOption] = None,
    location: Annotated[str, typer.Option(help="where the export happens")] = "",
    json: Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")] = False,
) -> None:
    """Write what other tools read: hash lists, hashdeep, DFXML, CASE, a BagIt bag, or a
    kit that re-checks the bundle with stock tools."""
    with reported_errors(json=json):
        result = export_bundle(
            ExportRequest(
                container=bundle,
                output=out,
                format=format,
                key=key_material(identity, passphrase_file, prompt=True),
                trusted=trusted_keys(trust, trust_dir),
                tsa_roots=tuple(trusted_roots(tsa_ca or ())),
                overwrite=overwrite,
                record=recorder(sign, sign_passphrase_file, actor, location),
            )
        )
    if json:
        emit_json(result)
        return
    say(
        _("{format}: {n} entries written to {out}").format(
            format=result.format, n=result.entries, out=out
        ),
        style="green",
    )
    hint = EXPORT_FORMATS[result.format].check_hint
    if hint:
        command = hint.format(out=shlex.quote(str(out.resolve())))
        say(_("check it with: {command}").format(command=command))


__all__ = ["export_command"]
