"""``evidence-kit inspect B.zip``"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evidence_kit.cli.console import emit_json, plain, reported_errors, say, show_facts, stderr
from evidence_kit.cli.keyoptions import (
    IdentityOption,
    PassphraseFileOption,
    TrustOption,
    key_material,
    trusted_keys,
)
from evidence_kit.i18n import _
from evidence_kit.inspection import InspectRequest, inspect_bundle
from evidence_kit.models import InspectResult

TYPE_WIDTH = 26


def inspect_command(
    bundle: Annotated[Path, typer.Argument(help="the container (B.zip)")],
    identity: Annotated[list[Path] | None, IdentityOption] = None,
    passphrase_file: Annotated[Path | None, PassphraseFileOption] = None,
    trust: Annotated[list[Path] | None, TrustOption] = None,
    json: Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")] = False,
) -> None:
    """Show case fields, provenance, counts, custody; with a key, the item table."""
    with reported_errors(json=json):
        result = inspect_bundle(
            InspectRequest(
                container=bundle,
                key=key_material(identity, passphrase_file),
                trusted=trusted_keys(trust),
            )
        )
    if json:
        emit_json(result)
    else:
        show(result)


def show(result: InspectResult) -> None:
    facts: list[tuple[str, str]] = [
        (_("container"), result.container),
        (_("container SHA-256"), result.container_sha256),
        (_("size"), f"{result.container_size:,}"),
        (_("bundle id"), result.bundle_id or "?"),
        (_("key slots"), ", ".join(result.key_slots)),
    ]
    first = result.custody_first_event
    if first is not None:
        facts += [
            (_("case / evidence"), f"{first.case_number} / {first.evidence_number}"),
            (_("acquired"), f"{first.time.utc} ({first.time.clock_source} clock) by {first.actor}"),
        ]
    if result.custody is not None:
        actions = ", ".join(result.custody.actions)
        facts += [
            (
                _("custody"),
                _("{n} events ({signed} signed): {actions}").format(
                    n=result.custody.events, signed=result.custody.signed_events, actions=actions
                ),
            ),
            (_("custody head"), result.custody.head_sha256 or ""),
        ]
    else:
        facts.append((_("custody"), _("no custody log found or it is unreadable")))
    if result.case is not None:
        facts += [(label.replace("_", " "), value) for label, value in result.case]
    if result.provenance is not None:
        provenance = result.provenance
        facts += [
            (_("tool"), f"{provenance.tool.name} {provenance.tool.version}"),
            (_("host / user"), f"{provenance.host} / {provenance.user}"),
            (_("started"), str(provenance.started.utc)),
            (_("finished"), str(provenance.finished.utc)),
        ]
    if result.summary is not None:
        summary = result.summary
        facts.append(
            (
                _("items"),
                _("{items} ({files} files, {dirs} folders), {bytes} bytes").format(
                    items=summary.items,
                    files=summary.files,
                    dirs=summary.directories,
                    bytes=summary.bytes,
                ),
            )
        )
        signer = f" ({result.signer_fingerprint})" if result.signer_fingerprint else ""
        facts.append((_("seal"), result.seal + signer))
    show_facts(facts)
    if not result.decrypted:
        say(_("Give --identity or --passphrase-file to see the case details and items."))
        return
    if any(item.extension_mismatch for item in result.items):
        say(_("! the file's name says another type than its content"))
    header = f"{_('id'):>6}  {_('kind'):<12} {_('status'):<19} {_('size'):>15}  "
    header += f"{_('SHA-256 (first 16)'):<18}  {_('type'):<{TYPE_WIDTH}}   {_('path')}"
    stderr.print(plain(header, style="bold"))
    for item in result.items:
        mime = item.mime_type or ""
        if len(mime) > TYPE_WIDTH:  # the path column stays where the header says
            mime = mime[: TYPE_WIDTH - 1] + "…"
        flag = "!" if item.extension_mismatch else " "
        line = f"{item.id:>6}  {item.kind:<12} {item.status:<19} {item.size:>15,}  "
        line += f"{(item.sha256 or '')[:16]:<18}  {mime:<{TYPE_WIDTH}} {flag} {item.path}"
        stderr.print(plain(line))


__all__ = ["inspect_command"]
