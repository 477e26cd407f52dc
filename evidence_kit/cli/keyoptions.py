"""Reading keys and passphrases the way the command surface promises: never from argv."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

import pyrage
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from evidence_kit import keys
from evidence_kit.custody_append import Recorder
from evidence_kit.errors import UsageError
from evidence_kit.i18n import _

PASSPHRASE_ENV = "EVIDENCE_KIT_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
SECRET_VARIABLES = (PASSPHRASE_ENV, keys.SIGN_PASSPHRASE_ENV)
# The secret variables a running command took out of os.environ (None: no command runs).
_taken: ContextVar[dict[str, str] | None] = ContextVar("taken_secrets", default=None)

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
TrustDirOption = typer.Option(
    "--trust-dir",
    help="folder of Ed25519 public keys (*.pem) of signers to require.",
    file_okay=False,
)
SignOption = typer.Option(
    "--sign",
    help="Ed25519 private key (PKCS#8 PEM, as openssl genpkey or keys new writes) to sign with.",
    dir_okay=False,
)
SignPassphraseOption = typer.Option(
    "--sign-passphrase-file",
    help=f"file holding the signing key's passphrase (or set {keys.SIGN_PASSPHRASE_ENV}).",
    dir_okay=False,
)
TsaOption = typer.Option(
    "--tsa",
    help="RFC 3161 timestamp authority URL; repeatable, tried in order "
    "(default: tsa.toml in the user's config folder)",
)
TsaTimeoutOption = typer.Option("--tsa-timeout", help="seconds to wait for each TSA")
TsaCaOption = typer.Option(
    "--tsa-ca",
    help="PEM root certificate(s) of trusted TSAs; repeatable "
    "(default: tsa-roots/*.pem in the user's config folder)",
    dir_okay=False,
)
ActorOption = typer.Option("--actor", help="who records the custody event (name, rank, unit)")


def read_passphrase_file(path: Path, *, as_openssl: bool = False) -> str:
    """The passphrase in ``path`` without its line ending. ``as_openssl``: drop only a
    final LF, as ``openssl -pass file:`` does, so one file means the same passphrase to
    both tools (a signing key's passphrase); otherwise a final CR LF goes as well."""
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
    text = text.removesuffix("\n")
    if not as_openssl:
        text = text.removesuffix("\r")
    if not text:
        raise UsageError(_("passphrase file {path} is empty").format(path=path))
    return text


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


@contextlib.contextmanager
def secrets_out_of_environment() -> Iterator[None]:
    """For the duration of a command, keep the secret variables out of ``os.environ``, so
    that no program the command starts (``uname`` for the provenance, ``openssl`` for
    timestamps) inherits a passphrase; they are put back afterwards."""
    if _taken.get() is not None:  # already inside a command
        yield
        return
    taken = {name: os.environ.pop(name) for name in SECRET_VARIABLES if name in os.environ}
    token = _taken.set(taken)
    try:
        yield
    finally:
        _taken.reset(token)
        for name, value in taken.items():
            os.environ.setdefault(name, value)


def environment_secret(name: str) -> str | None:
    """A secret variable's value (taken out of the environment while a command runs)."""
    taken = _taken.get()
    value = taken.get(name) if taken is not None else os.environ.get(name)
    return value or None


def given_passphrase(passphrase_file: Path | None) -> str | None:
    if passphrase_file is not None:
        return read_passphrase_file(passphrase_file)
    return environment_secret(PASSPHRASE_ENV)


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


def trusted_keys(
    paths: list[Path] | None, folder: Path | None = None
) -> tuple[Ed25519PublicKey, ...]:
    """Keys from --trust files and every ``*.pem`` in --trust-dir (none there: an error)."""
    files = list(paths or [])
    if folder is not None:
        try:
            found = sorted(p for p in folder.iterdir() if p.suffix == ".pem" and p.is_file())
        except OSError as error:
            raise UsageError(
                _("cannot read trust folder {path}: {reason}").format(
                    path=folder, reason=error.strerror
                )
            ) from None
        if not found:
            raise UsageError(_("no public key (*.pem) in trust folder {path}").format(path=folder))
        files += found
    return tuple(keys.load_public_key(path) for path in files)


def signing_key(path: Path | None, passphrase_file: Path | None) -> Ed25519PrivateKey | None:
    """The --sign key; its passphrase from a file, the environment, or a prompt."""
    if path is None:
        return None
    if passphrase_file is not None:
        secret: str | None = read_passphrase_file(passphrase_file, as_openssl=True)
    else:
        secret = environment_secret(keys.SIGN_PASSPHRASE_ENV)
    if secret is None and interactive() and _encrypted_pem(path):
        secret = typer.prompt(_("Passphrase of {path}").format(path=path), hide_input=True,
                              err=True) or None  # fmt: skip
    return keys.load_signing_key(path, secret.encode("utf-8") if secret else None)


def _encrypted_pem(path: Path) -> bool:
    try:
        return b"ENCRYPTED PRIVATE KEY" in path.read_bytes()[:4096]
    except OSError:
        return False  # load_signing_key says why


def recorder(
    sign: Path | None,
    sign_passphrase_file: Path | None,
    actor: str | None,
    location: str = "",
    note: str = "",
) -> Recorder | None:
    """A custody recorder when --sign and --actor are both given (one alone: an error)."""
    if sign is None and actor is None:
        return None
    if sign is None or not (actor or "").strip():
        raise UsageError(_("--sign and --actor go together: who records the event, with which key"))
    key = signing_key(sign, sign_passphrase_file)
    assert key is not None
    return Recorder(actor=actor or "", key=key, location=location, note=note)


__all__ = [
    "PASSPHRASE_ENV",
    "SECRET_VARIABLES",
    "ActorOption",
    "IdentityOption",
    "PassphraseFileOption",
    "SignOption",
    "SignPassphraseOption",
    "TrustDirOption",
    "TrustOption",
    "TsaCaOption",
    "TsaOption",
    "TsaTimeoutOption",
    "environment_secret",
    "given_passphrase",
    "interactive",
    "key_material",
    "read_passphrase_file",
    "recorder",
    "secrets_out_of_environment",
    "signing_key",
    "trusted_keys",
]
