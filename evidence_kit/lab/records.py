"""What the lab commands print with ``--json``: typed, closed, versioned records.

The register itself is SQLite (see :mod:`evidence_kit.lab.migrations` for its schema);
these records are what a query or a batch run returns.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from evidence_kit.models import AppendResult, Instant, Record, ToolInfo, VerificationReport

BundleVerdict = Literal["verified", "intact", "failed", "no-key", "unreadable", "not-a-bundle"]
"""``verified``: every check held, contents included. ``intact``: no key was given and
the container, its seal slots and custody hold. ``failed``: a check failed. ``no-key``: a
key was given and opens none of the bundle's slots. ``unreadable``: the file could not
be read (I/O, permissions). ``not-a-bundle``: a zip with neither key slots nor custody log."""

IngestOutcome = Literal[
    "added",
    "already-registered",
    "now-verified",
    "now-failing",
    "container-changed",
    "failed",
    "no-key",
    "not-recorded",
]


class BundleCheck(Record):
    """One bundle of a batch, as verified."""

    path: str = Field(description="the container's path as found (display form)")
    verdict: BundleVerdict
    bundle_id: str | None
    container_sha256: str | None
    container_size: int
    case_number: str | None
    evidence_number: str | None
    case_from: Literal["manifest", "custody-log"] | None = Field(
        description="manifest: from the verified, signed manifest; custody-log: from event 0, "
        "which the seal does not cover"
    )
    items: int = Field(description="items checked (0 unless verified)")
    bytes: int = Field(description="item bytes checked (0 unless verified)")
    reasons: list[str] = Field(description="reason codes of the errors found")
    message: str | None = Field(description="why the bundle was not verified, for a person")
    seconds: float
    report: VerificationReport | None = Field(
        description="the full verification report (absent when the file could not be read)"
    )


class VerdictCounts(Record):
    verified: int = 0
    intact: int = 0
    failed: int = 0
    no_key: int = 0
    unreadable: int = 0
    not_a_bundle: int = 0


class VerifyAllResult(Record):
    """``lab verify-all --json``."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/lab-verify-all"] = "evidence-kit/lab-verify-all"
    folder: str
    jobs: int
    bundles: list[BundleCheck]
    counts: VerdictCounts
    other_files: int = Field(description="files under the folder that are not containers")
    container_bytes: int
    seconds: float
    bundles_per_second: float
    mib_per_second: float
    started_at: Instant
    tool: ToolInfo


class IngestedBundle(Record):
    check: BundleCheck
    outcome: IngestOutcome
    items_indexed: int
    registered_as: int | None = Field(description="the bundle's row id in the register")
    previous_container_sha256: list[str] = Field(
        default_factory=list,
        description="container-changed: the container SHA-256 registered before for this bundle id",
    )
    received_event: AppendResult | None = Field(
        default=None, description="the 'received' custody event recorded (--sign, --actor)"
    )
    custody_problem: str | None = Field(
        default=None, description="why no 'received' event could be recorded"
    )


class IngestResult(Record):
    """``lab ingest --json``."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/lab-ingest"] = "evidence-kit/lab-ingest"
    register_file: str
    bundles: list[IngestedBundle]
    counts: VerdictCounts
    started_at: Instant
    tool: ToolInfo
    warnings: list[str] = Field(default_factory=list)


class Occurrence(Record):
    """One item of a verified, registered bundle."""

    bundle_id: str
    container_sha256: str
    container_path: str = Field(description="where the container was last ingested from")
    case_number: str
    evidence_number: str
    item_id: int
    path: str = Field(description="path inside the bundle (display form)")
    original_path: str = Field(description="path on the seized system (display form)")
    original_path_b64: str = Field(description="path on the seized system, exact bytes")
    kind: str
    status: str
    size: int
    mime_type: str | None
    digests: dict[str, str]
    container_changed: bool = Field(
        description="another container with this bundle id was seen: one of them is not "
        "the one acquired"
    )


class KnownEntry(Record):
    list_name: str
    algorithm: str
    digest: str
    name: str = Field(description="the name the hash list gives (display form)")


class FindResult(Record):
    """``lab find --json``."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/lab-find"] = "evidence-kit/lab-find"
    register_file: str
    algorithm: str
    digest: str
    file: str | None = Field(description="the file hashed to get the digest, if one was given")
    occurrences: list[Occurrence]
    bundles: int
    cases: list[str]
    known: list[KnownEntry]
    warnings: list[str] = Field(default_factory=list)


class LinkGroup(Record):
    """One content (by SHA-256) found in more than one bundle."""

    sha256: str
    size: int
    mime_type: str | None
    cases: list[str]
    bundles: int
    occurrences: list[Occurrence]


class LinksResult(Record):
    """``lab links --json``."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/lab-links"] = "evidence-kit/lab-links"
    register_file: str
    case: str | None
    min_size: int
    groups: list[LinkGroup]
    cross_case_groups: int
    ignored_known: int = Field(description="shared contents left out: on a known-files list")
    registered_bundles: int = Field(description="verified bundles the register holds")
    warnings: list[str] = Field(default_factory=list)


class KnownList(Record):
    """One hash list added with ``lab known add``."""

    name: str
    list_sha256: str = Field(description="SHA-256 of the list file as added")
    format: Literal["sha256sum", "hashdeep"]
    entries: int = Field(description="digests taken from the list")
    added_at: str = Field(description="RFC 3339 UTC")


class KnownListResult(Record):
    """``lab known add --json``."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/lab-known-add"] = "evidence-kit/lab-known-add"
    register_file: str
    hash_list: KnownList
    already_present: bool = Field(description="the same list file had been added before")
    warnings: list[str] = Field(default_factory=list)


class KnownListsResult(Record):
    """``lab known list --json``."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/lab-known-lists"] = "evidence-kit/lab-known-lists"
    register_file: str
    lists: list[KnownList]
    warnings: list[str] = Field(default_factory=list)


__all__ = [
    "BundleCheck",
    "BundleVerdict",
    "FindResult",
    "IngestOutcome",
    "IngestResult",
    "IngestedBundle",
    "KnownEntry",
    "KnownList",
    "KnownListResult",
    "KnownListsResult",
    "LinkGroup",
    "LinksResult",
    "Occurrence",
    "VerdictCounts",
    "VerifyAllResult",
]
