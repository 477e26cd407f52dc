"""Typed, versioned records: everything evidence-kit writes to disk or prints as JSON.

Every model forbids unknown fields and is frozen. Signed records are serialised as
RFC 8785 canonical JSON (see :mod:`evidence_kit.canonical`). Integers that may exceed
2**53 (nanosecond times, inode and device numbers) are strings, as RFC 8785 requires.
The JSON Schemas in ``evidence_kit/schemas`` are generated from these classes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

SCHEMA_VERSION = 1

ItemKind = Literal[
    "file",
    "directory",
    "symlink",
    "hardlink",
    "fifo",
    "socket",
    "char-device",
    "block-device",
    "disk-image",
    "unknown",
]
ItemStatus = Literal["ok", "changed-during-read", "unreadable", "skipped"]
ClockSource = Literal["local"]


class Record(BaseModel):
    """Base of every on-disk and JSON record: closed, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseInfo(Record):
    """What the officer states about the case; case, evidence number and examiner required."""

    case_number: str
    evidence_number: str
    examiner: str
    description: str = ""
    notes: str = ""
    location: str = ""


class PathName(Record):
    """A name as the file system holds it (exact bytes) and as a person can read it."""

    b64: str = Field(description="the exact bytes, base64")
    display: str = Field(description="UTF-8 with undecodable bytes and control characters escaped")


class Instant(Record):
    """A moment: nanoseconds since the epoch (as a string), RFC 3339 UTC, and the clock."""

    ns: str
    utc: str | None = Field(description="RFC 3339 UTC; null when outside years 1-9999")
    clock_source: ClockSource | None = None


class StatRecord(Record):
    """What lstat/fstat said about an item at one moment."""

    size: int
    mode: int
    uid: int
    gid: int
    inode: str
    device: str
    nlink: int
    atime_ns: str
    mtime_ns: str
    ctime_ns: str


class ReadError(Record):
    """A byte range that could not be read."""

    offset: int
    length: int | None = Field(description="null: to the end of the file")
    errno: int
    error: str


class ExtensionMismatch(Record):
    """The file name's extension promises a type the content does not have."""

    extension: str
    expected_mime_type: str
    actual_mime_type: str


class ItemLocation(Record):
    """Where an item's bytes live: an encrypted member, and inside a pack, an inner name."""

    member: str
    inner: str | None = None


class DeviceFacts(Record):
    """What the system said about an imaged device (None: not known)."""

    device: str | None = Field(default=None, description="MAJ:MIN")
    name: str | None = None
    model: str | None = None
    vendor: str | None = None
    serial: str | None = None
    removable: bool | None = None
    read_only: bool | None = Field(default=None, description="the kernel's read-only flag")
    mounted: list[str] = Field(default_factory=list, description="mount points while imaged")
    mounted_read_write: bool = False
    partition_table: str | None = Field(description="gpt, mbr or None")
    write_blocker: str = Field(description="as the officer declared it (--write-blocker)")


class ImageInfo(Record):
    """A whole disk, partition or raw image file acquired into one member."""

    source_kind: Literal["block-device", "file"]
    size: int
    sectors: int
    logical_sector_size: int
    physical_sector_size: int
    window_size: int = Field(description="bytes per piecewise digest (the last may be shorter)")
    window_sha256: list[str] = Field(description="SHA-256 of each window, in order")
    zero_filled_bytes: int = Field(
        description="unreadable bytes replaced by zeros: the digests are of the zero-filled "
        "stream, and read_errors lists every such range"
    )
    device: DeviceFacts


class ItemRecord(Record):
    """One acquired file-system object."""

    id: int
    source: int = Field(description="index into the manifest's sources")
    path: PathName = Field(description="path below the source's parent, as acquired")
    kind: ItemKind
    status: ItemStatus
    reason: str | None = None
    errno: int | None = None
    size: int
    stored_size: int | None = Field(default=None, description="bytes stored (regular files)")
    mode: int
    mode_text: str
    uid: int
    gid: int
    inode: str
    device: str
    nlink: int
    rdev: str | None = None
    atime: Instant
    mtime: Instant
    ctime: Instant
    xattrs: dict[str, str] = Field(default_factory=dict, description="name -> value (base64)")
    symlink_target: PathName | None = None
    hardlink_of: int | None = None
    mime_type: str | None = None
    description: str | None = None
    extension_mismatch: ExtensionMismatch | None = None
    digests: dict[str, str] = Field(default_factory=dict, description="algorithm -> hex digest")
    location: ItemLocation | None = None
    read_at: Instant | None = None
    noatime: bool | None = Field(default=None, description="opened with O_NOATIME")
    stat_before: StatRecord | None = None
    stat_after: StatRecord | None = None
    read_errors: list[ReadError] = Field(default_factory=list)
    image: ImageInfo | None = Field(default=None, description="disk images only; absent otherwise")

    @model_serializer(mode="wrap")
    def _omit_absent_image(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Items that are not disk images carry no ``image`` key at all."""
        data: dict[str, Any] = handler(self)
        if data.get("image", ...) is None:
            del data["image"]
        return data


class SourceRecord(Record):
    """One SOURCE argument of the acquisition."""

    index: int
    label: str = Field(description="top-level folder name of this source's items")
    path: PathName = Field(description="absolute path as acquired")
    kind: ItemKind
    noatime: bool = Field(description="O_NOATIME was honoured for every open of this source")


class MemberRecord(Record):
    """One encrypted member: its content (an item's bytes or a pack) then zero padding."""

    name: str
    role: Literal["item", "pack"]
    size: int = Field(description="plain size of the member: content plus padding")
    sha256: str = Field(description="SHA-256 of the content (without the padding)")
    padding: int = Field(default=0, description="zero bytes after the content")


class KeySlotRecord(Record):
    """One age-encrypted copy of the bundle key, stored unencrypted in the container."""

    member: str
    kind: Literal["x25519", "scrypt"]
    recipient: str | None = None
    sha256: str


class ToolInfo(Record):
    name: str
    version: str


class Provenance(Record):
    """Who ran what, where, with which software, when (DESIGN.md section 3)."""

    tool: ToolInfo
    libraries: dict[str, str]
    host: str
    os: str
    user: str
    uid: int
    command_line: list[str] = Field(description="argv with secrets removed")
    started: Instant
    finished: Instant
    config: dict[str, str]


class Summary(Record):
    items: int
    files: int
    directories: int
    symlinks: int
    other: int
    bytes: int
    status_counts: dict[str, int]


class ManifestHead(Record):
    """Everything in a manifest but its items (see ``evidence_kit.manifest``)."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/manifest"] = "evidence-kit/manifest"
    bundle_id: str
    case: CaseInfo
    provenance: Provenance
    hash_algorithms: list[str]
    encryption: Literal["winzip-aes-256"] = "winzip-aes-256"
    sources: list[SourceRecord]
    key_slots: list[KeySlotRecord]
    members: list[MemberRecord]
    summary: Summary


class Manifest(ManifestHead):
    """The encrypted description of a bundle's contents, signed by the seal."""

    items: list[ItemRecord]


class Signature(Record):
    """An Ed25519 signature and the key that made it."""

    algorithm: Literal["ed25519"] = "ed25519"
    public_key_pem: str
    fingerprint: str = Field(description="SHA-256 of the DER SubjectPublicKeyInfo, hex")
    value_b64: str


class Seal(Record):
    """The last member of a container: binds the manifest and, when signed, signs it."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/seal"] = "evidence-kit/seal"
    bundle_id: str
    manifest_member: str
    manifest_sha256: str
    signature: Signature | None = Field(description="over the manifest's exact bytes")


class TimestampToken(Record):
    """An RFC 3161 token over one custody log line: the log head when it was stamped."""

    tsa_url: str
    stamped_seq: int = Field(description="the custody event whose line was stamped")
    stamped_line_sha256: str = Field(description="SHA-256 of that line (the head then)")
    hash_algorithm: str = Field(description="message imprint algorithm, e.g. sha512")
    requested_at: Instant = Field(description="local clock just before the request")
    nonce: str = Field(description="the request's nonce, decimal")
    gen_time: str | None = Field(description="the token's time (RFC 3339 UTC)")
    request_der_b64: str = Field(description="the TimeStampReq sent (DER, base64)")
    response_der_b64: str = Field(description="the TimeStampResp received (DER, base64)")


class CustodyEvent(Record):
    """One line of the custody log; the signature covers every other field (RFC 8785)."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/custody-event"] = "evidence-kit/custody-event"
    seq: int
    action: str
    time: Instant
    actor: str
    actor_key_fingerprint: str | None = None
    location: str = ""
    note: str = ""
    to: str | None = None
    bundle_id: str
    container_sha256: str = Field(description="container SHA-256 measured at this moment")
    prev_event_sha256: str | None = Field(description="SHA-256 of the previous line's bytes")
    manifest_sha256: str | None = None
    case_number: str | None = None
    evidence_number: str | None = None
    item_count: int | None = None
    total_bytes: int | None = None
    timestamp: TimestampToken | None = Field(
        default=None, description="'timestamped' events only; absent otherwise"
    )
    signature: Signature | None = None

    @model_serializer(mode="wrap")
    def _omit_absent_timestamp(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Events without a token carry no ``timestamp`` key at all, so the field adds
        nothing to the bytes (and signatures) of the events that have none."""
        data: dict[str, Any] = handler(self)
        if data.get("timestamp", ...) is None:
            del data["timestamp"]
        return data


# ---------------------------------------------------------------- command results (--json)


class ItemProblem(Record):
    """An item that did not go as planned during acquisition."""

    item: int
    path: str
    status: ItemStatus
    reason: str | None


class AcquireResult(Record):
    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/acquire-result"] = "evidence-kit/acquire-result"
    bundle_id: str
    container: str
    custody_log: str
    container_sha256: str
    manifest_sha256: str
    signed: bool
    signer_fingerprint: str | None
    summary: Summary
    problems: list[ItemProblem]
    complete: bool = Field(description="false: some items unreadable, changed or skipped (exit 3)")
    timestamp: Literal["stamped", "pending", "not-requested"] = "not-requested"
    timestamp_problem: str | None = None
    image: ImageInfo | None = Field(default=None, description="acquire --image only")


class Finding(Record):
    """One thing verification found wrong (or worth a warning)."""

    code: str
    severity: Literal["error", "warning"]
    subject: str = Field(description="the item (original path), member or event concerned")
    message: str
    expected: str | None = None
    actual: str | None = None


class Check(Record):
    """One check verification ran and what came of it."""

    name: str
    status: Literal["pass", "fail", "skipped"]
    detail: str = ""


class CustodySummary(Record):
    events: int
    head_sha256: str | None
    actions: list[str]
    signed_events: int


class CustodyEventView(Record):
    """One custody event as a timeline shows it."""

    seq: int
    action: str
    time_utc: str | None
    clock_source: str | None
    actor: str
    to: str | None
    location: str
    note: str
    actor_key_fingerprint: str | None
    signed: bool
    signature_valid: bool | None = Field(description="None when unsigned")
    signer_trusted: bool | None = Field(description="None when no signers were required")
    container_sha256: str
    container_matches: bool | None = Field(
        description="recorded container SHA-256 equals the container now (None: not measured)"
    )
    line_sha256: str


class Handover(Record):
    """A 'transferred' event and the 'received' event that closed it, if any."""

    transferred_seq: int
    transferred_by: str
    to: str | None
    received_seq: int | None
    received_by: str | None
    status: Literal["acknowledged", "not-acknowledged", "received-by-another"]


class CustodyReport(Record):
    """``custody show --json``: the timeline, the hand-overs and the log head."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/custody-report"] = "evidence-kit/custody-report"
    container: str
    custody_log: str
    container_sha256: str | None = Field(description="measured now; None if unreadable")
    bundle_id: str | None
    case_number: str | None
    evidence_number: str | None
    verdict: Literal["intact", "broken"]
    head_sha256: str | None
    event_count: int
    events: list[CustodyEventView]
    handovers: list[Handover]
    findings: list[Finding]


class AppendResult(Record):
    """``custody add --json`` (and the event verify or extract appended)."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/custody-append"] = "evidence-kit/custody-append"
    container: str
    custody_log: str
    event: CustodyEvent
    head_sha256: str
    event_count: int
    container_matches_acquisition: bool = Field(
        description="the container measured now equals the one event 0 recorded"
    )


class KeysResult(Record):
    """``keys new --json``: the files written and the fingerprint for paper forms."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/keys"] = "evidence-kit/keys"
    name: str
    signing_key: str
    public_key: str
    public_key_fingerprint: str
    passphrase_protected: bool
    age_identity: str
    age_recipient_file: str
    age_recipient: str


class RepairResult(Record):
    """``custody repair --json``."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/custody-repair"] = "evidence-kit/custody-repair"
    custody_log: str
    repaired: bool
    torn_bytes: int
    torn_copy: str | None = Field(description="where the removed torn bytes were kept")
    event_count: int
    head_sha256: str | None


class TimestampCheck(Record):
    """One RFC 3161 token of the custody log, as verification found it."""

    event_seq: int
    tsa_url: str
    stamped_seq: int
    gen_time: str | None
    verified: bool | None = Field(description="None: not checked (no trusted TSA root given)")
    verified_with: Literal["rfc3161-client", "openssl", "none"]
    clock_offset_ms: int | None = Field(
        description="token time minus the local clock just before the request"
    )


class VerificationReport(Record):
    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/verification-report"] = "evidence-kit/verification-report"
    container: str
    container_sha256: str | None
    bundle_id: str | None
    verdict: Literal["verified", "failed"]
    contents_checked: bool
    seal: Literal["signed", "unsigned", "unsealed", "not-checked"]
    signer_fingerprint: str | None
    signer_trusted: bool | None
    items_checked: int
    bytes_checked: int
    checks: list[Check]
    findings: list[Finding]
    custody: CustodySummary | None
    verified_at: Instant
    tool: ToolInfo
    recorded_event: AppendResult | None = Field(
        default=None, description="the 'verified' custody event appended (--sign, --actor)"
    )
    timestamps: list[TimestampCheck] = Field(default_factory=list)


class InspectedItem(Record):
    id: int
    path: str
    kind: ItemKind
    status: ItemStatus
    size: int
    sha256: str | None
    mime_type: str | None
    extension_mismatch: bool


class InspectResult(Record):
    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/inspect-result"] = "evidence-kit/inspect-result"
    container: str
    container_sha256: str
    container_size: int
    key_slots: list[str]
    member_count: int
    custody: CustodySummary | None
    custody_first_event: CustodyEvent | None
    decrypted: bool
    bundle_id: str | None
    case: CaseInfo | None
    provenance: Provenance | None
    summary: Summary | None
    seal: Literal["signed", "unsigned", "unsealed", "not-checked"]
    signer_fingerprint: str | None
    items: list[InspectedItem]


class ExtractedItem(Record):
    id: int
    path: str
    outcome: Literal["written", "directory", "symlink", "hardlink", "not-materialised", "failed"]
    reason: str | None = None


class ExtractResult(Record):
    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/extract-result"] = "evidence-kit/extract-result"
    container: str
    destination: str
    bundle_id: str
    written: int
    bytes_written: int
    findings: list[Finding]
    items: list[ExtractedItem]
    complete: bool
    recorded_event: AppendResult | None = Field(
        default=None, description="the 'extracted' custody event appended (--sign, --actor)"
    )


class ExportResult(Record):
    """``export --json``."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/export-result"] = "evidence-kit/export-result"
    container: str
    bundle_id: str
    format: str
    output: str
    entries: int
    recorded_event: AppendResult | None = Field(
        default=None, description="the 'exported' custody event appended (--sign, --actor)"
    )


class ReportResult(Record):
    """``report --json``."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/report-result"] = "evidence-kit/report-result"
    container: str
    bundle_id: str | None
    output: str
    format: Literal["html", "pdf"]
    verdict: Literal["verified", "failed"]
    contents_checked: bool
    certified: bool = Field(description="the certification section was filled in")
    certification_withheld: str | None = Field(description="why not, when it was not")
    items: int = Field(description="items listed in the report's item table (--max-items)")
    items_total: int = Field(description="items in the bundle (0 when the key was not given)")
    findings: int
    recorded_event: AppendResult | None = Field(
        default=None, description="the 'exported' custody event appended (--sign, --actor)"
    )


class ErrorReport(Record):
    """What a ``--json`` run prints instead of its result when it cannot finish."""

    schema_version: Literal[1] = 1
    kind: Literal["evidence-kit/error"] = "evidence-kit/error"
    error: str = Field(description="the error class, e.g. UsageError")
    exit_code: int
    message: str
    hint: str | None = None


__all__ = [
    "SCHEMA_VERSION",
    "AcquireResult",
    "AppendResult",
    "CaseInfo",
    "Check",
    "CustodyEvent",
    "CustodyEventView",
    "CustodyReport",
    "CustodySummary",
    "DeviceFacts",
    "ErrorReport",
    "ExportResult",
    "ExtensionMismatch",
    "ExtractResult",
    "ExtractedItem",
    "Finding",
    "Handover",
    "ImageInfo",
    "InspectResult",
    "InspectedItem",
    "Instant",
    "ItemKind",
    "ItemLocation",
    "ItemProblem",
    "ItemRecord",
    "ItemStatus",
    "KeySlotRecord",
    "KeysResult",
    "Manifest",
    "ManifestHead",
    "MemberRecord",
    "PathName",
    "Provenance",
    "ReadError",
    "Record",
    "RepairResult",
    "Seal",
    "Signature",
    "SourceRecord",
    "StatRecord",
    "Summary",
    "TimestampCheck",
    "TimestampToken",
    "ToolInfo",
    "VerificationReport",
]
