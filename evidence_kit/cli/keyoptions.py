"""Reading keys and passphrases the way the command surface promises: never from argv."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyrage
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence_kit import keys
from evidence_kit.errors import UsageError
from evidence_kit.i18n import _

PASSPHRASE_ENV = "EVIDENCE_KIT_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)

IdentityOption = typer.Option(
    "--identity", "-i", help="age identity file (as age-keygen writes); repeatable.", dir_okay=False
)
PassphraseFileOption = typer.Option(
    "--passphrase-file",
    help=f"file holding the passphrase (or set {PASSPHRASE_ENV}).",
    dir_okay=False,
)
TrustOption = typer.Option(
    "--trust", help="Ed25519 public key (PEM) of a signer to require; repeatable.", dir_okay=False
)


def read_passphrase_file(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(
            _("cannot read passphrase file {path}: {reason}").format(
                path=path, reason=error.strerror
            )
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(_("passphrase file {path} is not UTF-8 text").format(path=path)) from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise UsageError(_("passphrase file {path} is empty").format(path=path))
    return text


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def given_passphrase(passphrase_file: Path | None) -> str | None:
    if passphrase_file is not None:
        return read_passphrase_file(passphrase_file)
    from_environment = os.environ.get(PASSPHRASE_ENV)
    return from_environment if from_environment else None


def key_material(
    identity: list[Path] | None, passphrase_file: Path | None, *, prompt: bool = False
) -> keys.KeyMaterial:
    """What the person gave to open a bundle; prompts only when asked and interactive."""
    identities: tuple[pyrage.x25519.Identity, ...] = ()
    for path in identity or []:
        identities += keys.load_identities(path)
    passphrase = given_passphrase(passphrase_file)
    if passphrase is None and not identities and prompt and interactive():
        passphrase = typer.prompt(_("Bundle passphrase"), hide_input=True, err=True) or None
    return keys.KeyMaterial(identities=identities, passphrase=passphrase)


def trusted_keys(paths: list[Path] | None) -> tuple[Ed25519PublicKey, ...]:
    return tuple(keys.load_public_key(path) for path in paths or [])


__all__ = [
    "PASSPHRASE_ENV",
    "IdentityOption",
    "PassphraseFileOption",
    "TrustOption",
    "given_passphrase",
    "interactive",
    "key_material",
    "read_passphrase_file",
    "trusted_keys",
]
