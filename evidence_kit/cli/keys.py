"""``evidence-kit keys new NAME --out DIR``"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evidence_kit import keys
from evidence_kit.cli.console import emit_json, reported_errors, say, show_facts
from evidence_kit.cli.keyoptions import (
    SignPassphraseOption,
    interactive,
    read_passphrase_file,
)
from evidence_kit.errors import UsageError
from evidence_kit.i18n import _
from evidence_kit.models import KeysResult

keys_app = typer.Typer(
    help="Make the keys an officer or a lab needs.", no_args_is_help=True, rich_markup_mode=None
)


@keys_app.command("new")
def new_command(
    name: Annotated[str, typer.Argument(help="file-name prefix, e.g. the officer's badge number")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="folder for the key files", file_okay=False)
    ],
    sign_passphrase_file: Annotated[Path | None, SignPassphraseOption] = None,
    protect: Annotated[
        bool, typer.Option(help="protect the signing key with a passphrase typed at a prompt")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")] = False,
) -> None:
    """An Ed25519 signing key pair and an age identity with its recipient."""
    with reported_errors(json=json):
        passphrase = _new_passphrase(sign_passphrase_file, protect=protect)
        made = keys.new_keys(name, out, passphrase)
        result = KeysResult(
            name=name,
            signing_key=str(made.signing_key),
            public_key=str(made.public_key),
            public_key_fingerprint=made.fingerprint,
            passphrase_protected=passphrase is not None,
            age_identity=str(made.age_identity),
            age_recipient_file=str(made.age_recipient_file),
            age_recipient=made.recipient,
        )
    if json:
        emit_json(result)
        return
    show_facts(
        [
            (_("signing key (keep secret)"), result.signing_key),
            (_("public key (give to the lab)"), result.public_key),
            (_("public key fingerprint"), result.public_key_fingerprint),
            (_("age identity (keep secret)"), result.age_identity),
            (_("age recipient"), result.age_recipient),
        ]
    )
    say(_("Write the fingerprint on the custody form; it identifies your signatures."))


def _new_passphrase(passphrase_file: Path | None, *, protect: bool) -> str | None:
    if passphrase_file is not None:
        passphrase = read_passphrase_file(passphrase_file, as_openssl=True)
    elif protect:
        if not interactive():
            raise UsageError(_("--protect prompts for the passphrase: use --sign-passphrase-file"))
        passphrase = typer.prompt(
            _("Passphrase for the signing key"),
            hide_input=True,
            confirmation_prompt=True,
            err=True,
        )
    else:
        return None
    keys.check_passphrase_strength(passphrase)
    return passphrase


__all__ = ["keys_app"]
