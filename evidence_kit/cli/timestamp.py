"""``evidence-kit timestamp B.zip --tsa URL``"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from evidence_kit.cli.console import emit_json, reported_errors, say, show_facts
from evidence_kit.cli.keyoptions import (
    SignPassphraseOption,
    TsaCaOption,
    TsaOption,
    TsaTimeoutOption,
    signing_key,
)
from evidence_kit.custody_append import append_timestamp
from evidence_kit.errors import UsageError
from evidence_kit.i18n import _
from evidence_kit.timestamps import configured_tsas, trusted_roots


def timestamp_command(
    bundle: Annotated[Path, typer.Argument(help="the container (B.zip)", dir_okay=False)],
    tsa: Annotated[list[str] | None, TsaOption] = None,
    tsa_timeout: Annotated[float | None, TsaTimeoutOption] = None,
    tsa_ca: Annotated[list[Path] | None, TsaCaOption] = None,
    sign: Annotated[
        Path | None, typer.Option(help="Ed25519 key to sign the custody event", dir_okay=False)
    ] = None,
    sign_passphrase_file: Annotated[Path | None, SignPassphraseOption] = None,
    actor: Annotated[
        str | None, typer.Option(help="who asks for the timestamp (default: the user name)")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")] = False,
) -> None:
    """Add an RFC 3161 trusted timestamp over the custody log head (repeatable)."""
    with reported_errors(json=json):
        tsas = configured_tsas(tsa or [], tsa_timeout)
        if not tsas:
            raise UsageError(
                _("no TSA given"),
                hint=_("Give --tsa URL, or list TSAs in tsa.toml in the config folder."),
            )
        key = signing_key(sign, sign_passphrase_file)
        result, _problem = append_timestamp(
            bundle,
            tsas,
            key,
            actor or getpass.getuser(),
            record_pending=False,
            roots=trusted_roots(tsa_ca) if tsa_ca else (),
        )
    if json:
        emit_json(result)
        return
    token = result.event.timestamp
    assert token is not None
    show_facts(
        [
            (_("timestamp authority"), token.tsa_url),
            (_("token time (UTC)"), token.gen_time or "?"),
            (_("stamps custody event"), str(token.stamped_seq)),
            (_("log head"), f"{result.head_sha256}:{result.event_count}"),
        ]
    )
    say(_("Timestamped: the log up to event {n} existed no later than the token's time.").format(
        n=token.stamped_seq), style="green")  # fmt: skip


__all__ = ["timestamp_command"]
