"""What a bundle says about itself: custody, key slots, and with a key, case and items."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from evidence_kit.bundle import open_container, trusted_fingerprints, unlock
from evidence_kit.errors import VerificationFailed
from evidence_kit.i18n import _
from evidence_kit.keys import KeyMaterial
from evidence_kit.models import InspectedItem, InspectResult


@dataclass(frozen=True)
class InspectRequest:
    container: Path
    key: KeyMaterial | None = field(default=None, repr=False)
    trusted: Sequence[Ed25519PublicKey] = ()


def inspect_bundle(request: InspectRequest) -> InspectResult:
    trusted = trusted_fingerprints(list(request.trusted))
    bundle = open_container(request.container, trusted=trusted)
    try:
        if not bundle.layout.readable:
            first = bundle.layout.problems[0]
            raise VerificationFailed(
                _("{path} cannot be read as a bundle: {message}").format(
                    path=request.container, message=first.message
                )
            )
        if request.key is not None and not request.key.empty:
            unlock(bundle, request.key, trusted=trusted)
            if bundle.manifest is None:
                reason = next(f for f in bundle.findings if f.severity == "error")
                raise VerificationFailed(
                    _("the bundle cannot be opened: {code} ({subject}): {message}").format(
                        code=reason.code, subject=reason.subject, message=reason.message
                    ),
                    hint=_("Run 'evidence-kit verify' for every finding."),
                )
        manifest = bundle.manifest
        first_event = bundle.custody.events[0] if bundle.custody.events else None
        return InspectResult(
            container=str(request.container),
            container_sha256=bundle.container_sha256,
            container_size=bundle.layout.size,
            key_slots=[
                entry.name.removeprefix("keyslots/") for entry in bundle.layout.key_slot_entries
            ],
            member_count=len(bundle.layout.entries),
            custody=bundle.custody.summary() if bundle.custody.events else None,
            custody_first_event=first_event,
            decrypted=manifest is not None,
            bundle_id=manifest.bundle_id
            if manifest
            else first_event.bundle_id
            if first_event
            else None,
            case=manifest.case if manifest else None,
            provenance=manifest.provenance if manifest else None,
            summary=manifest.summary if manifest else None,
            seal=bundle.seal_state,  # type: ignore[arg-type]
            signer_fingerprint=bundle.signer_fingerprint,
            items=[
                InspectedItem(
                    id=item.id,
                    path=item.path.display,
                    kind=item.kind,
                    status=item.status,
                    size=item.size,
                    sha256=item.digests.get("sha256"),
                    mime_type=item.mime_type,
                    extension_mismatch=item.extension_mismatch is not None,
                )
                for item in (bundle.items if bundle.items is not None else [])
            ],
        )
    finally:
        bundle.close()


__all__ = ["InspectRequest", "inspect_bundle"]
