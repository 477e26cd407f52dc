"""``evidence-kit export B.zip --format sha256sum --out LIST``"""

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
    key_material,
    recorder,
    trusted_keys,
)
from evidence_kit.export import HASH_LIST_FORMATS, ExportRequest, export_bundle
from evidence_kit.i18n import _


def export_command(
    bundle: Annotated[Path, typer.Argument(help="the container (B.zip)", dir_okay=False)],
    format: Annotated[str, typer.Option("--format", help=" | ".join(HASH_LIST_FORMATS))],
    out: Annotated[Path, typer.Option("--out", "-o", help="the file to write", dir_okay=False)],
    identity: Annotated[list[Path] | None, IdentityOption] = None,
    passphrase_file: Annotated[Path | None, PassphraseFileOption] = None,
    trust: Annotated[list[Path] | None, TrustOption] = None,
    trust_dir: Annotated[Path | None, TrustDirOption] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out")] = False,
    sign: Annotated[Path | None, SignOption] = None,
    sign_passphrase_file: Annotated[Path | None, SignPassphraseOption] = None,
    actor: Annotated[str | None, ActorOption] = None,
    location: Annotated[str, typer.Option(help="where the export happens")] = "",
    json: Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")] = False,
) -> None:
    """Write what other tools read: a hash list that 'sha256sum -c' checks in the folder
    extract writes."""
    with reported_errors(json=json):
        result = export_bundle(
            ExportRequest(
                container=bundle,
                output=out,
                format=format,
                key=key_material(identity, passphrase_file, prompt=True),
                trusted=trusted_keys(trust, trust_dir),
                overwrite=overwrite,
                record=recorder(sign, sign_passphrase_file, actor, location),
            )
        )
    if json:
        emit_json(result)
        return
    tool = result.format
    say(
        _("{n} lines written to {out}; check an extracted copy with: cd DIR && {tool} -c {out}")
        .format(n=result.entries, out=out, tool=tool),
        style="green",
    )  # fmt: skip


__all__ = ["export_command"]
