"""Who ran what, where, with which software: recorded in every artefact."""

from __future__ import annotations

import getpass
import importlib.metadata
import os
import platform
import socket
import ssl
from collections.abc import Sequence

from evidence_kit import __version__
from evidence_kit.filetype import libmagic_version
from evidence_kit.models import Instant, Provenance, ToolInfo

TOOL = ToolInfo(name="evidence-kit", version=__version__)
_LIBRARIES = ("pyzipper", "pyrage", "cryptography", "pydantic", "rfc8785", "python-magic", "typer")
_SECRET_OPTIONS = ("--passphrase", "--password", "--secret", "--key-password")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "openssl": ssl.OPENSSL_VERSION}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["libmagic"] = libmagic_version()
    return versions


def redact_command_line(argv: Sequence[str]) -> list[str]:
    """argv with the value of anything that looks like a secret option removed."""
    result: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            result.append("<redacted>")
            hide_next = False
            continue
        option, has_value, _value = arg.partition("=")
        secret = option.startswith(_SECRET_OPTIONS) and not option.endswith("-file")
        if secret and has_value:
            result.append(f"{option}=<redacted>")
        else:
            result.append(arg)
            hide_next = secret
    return result


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def provenance(
    argv: Sequence[str], started: Instant, finished: Instant, config: dict[str, str]
) -> Provenance:
    return Provenance(
        tool=TOOL,
        libraries=library_versions(),
        host=socket.gethostname(),
        os=platform.platform(),
        user=current_user(),
        uid=os.getuid(),
        command_line=redact_command_line(argv),
        started=started,
        finished=finished,
        config=config,
    )


__all__ = ["TOOL", "library_versions", "provenance", "redact_command_line"]
