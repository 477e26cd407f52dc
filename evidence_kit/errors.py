"""The error tree and the exit-code table shared by every command.

::

    EvidenceKitError                 (base; never raised itself)
    ├── UsageError              2    bad option, missing required case field, weak passphrase
    ├── VerificationFailed      1    a bundle that cannot even be read as a bundle
    ├── NoUsableKey             4    wrong passphrase or identity, no key where one is needed
    └── EnvironmentFailure      5    disk full, unwritable output, missing system library
        ├── OutputExists        2    refusing to replace an existing bundle (a usage matter)
        ├── RegisterUnusable    5    a lab register that is damaged, foreign or too new
        └── RegisterLocked      5    a lab register another process holds for too long

Every error carries one sentence a field officer understands (``str(error)``) and an
optional hint (``diagnostics()``). Only ``evidence_kit.cli`` turns them into exit codes.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes of every command (DESIGN.md section 4)."""

    OK = 0
    VERIFICATION_FAILED = 1
    USAGE = 2
    INCOMPLETE_ACQUISITION = 3
    NO_USABLE_KEY = 4
    ENVIRONMENT = 5


class EvidenceKitError(Exception):
    """Base of every error evidence-kit raises on purpose."""

    exit_code: ExitCode = ExitCode.ENVIRONMENT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """The message plus what to do about it, for a person."""
        if self.hint:
            return f"{self.message}\n{self.hint}"
        return self.message


class UsageError(EvidenceKitError):
    """The command was asked for something it cannot do as given."""

    exit_code = ExitCode.USAGE


class VerificationFailed(EvidenceKitError):
    """The bundle could not be read as a bundle at all."""

    exit_code = ExitCode.VERIFICATION_FAILED


class NoUsableKey(EvidenceKitError):
    """No key slot opened with the passphrase or identity given, or none was given."""

    exit_code = ExitCode.NO_USABLE_KEY


class EnvironmentFailure(EvidenceKitError):
    """The machine, not the evidence, is the problem: I/O, space, permissions, libraries."""

    exit_code = ExitCode.ENVIRONMENT


class OutputExists(EnvironmentFailure):
    """The output path is taken and replacing it was not asked for."""

    exit_code = ExitCode.USAGE


class RegisterUnusable(EnvironmentFailure):
    """The lab register cannot be used: not SQLite, damaged, another program's database,
    or written by a newer evidence-kit."""


class RegisterLocked(EnvironmentFailure):
    """Another process kept the lab register locked for longer than we were told to wait."""


__all__ = [
    "EnvironmentFailure",
    "EvidenceKitError",
    "ExitCode",
    "NoUsableKey",
    "OutputExists",
    "RegisterLocked",
    "RegisterUnusable",
    "UsageError",
    "VerificationFailed",
]
