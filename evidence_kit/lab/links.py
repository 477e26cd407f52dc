"""``lab links``: contents found in more than one verified bundle, the cases they tie.

A content is its SHA-256. Empty files never link anything, nor do files smaller than
``min_size`` or files on a known-files list (matched by any digest the list and the
item share). Groups that span several cases come first.
"""

from __future__ import annotations

from pathlib import Path

from evidence_kit.errors import UsageError
from evidence_kit.i18n import _
from evidence_kit.lab.records import LinkGroup, LinksResult
from evidence_kit.lab.register import DEFAULT_LOCK_TIMEOUT, open_register


def find_links(
    register_path: Path | None,
    *,
    case: str | None = None,
    min_size: int = 1,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> LinksResult:
    """Shared contents, each with every place it was found; with ``case``, only contents
    that this case shares with another bundle (of any case)."""
    if min_size < 0:
        raise UsageError(_("--min-size is a number of bytes, 0 or more"))
    with open_register(register_path, create=False, lock_timeout=lock_timeout) as register:
        digests, ignored = register.shared_contents(case, max(min_size, 1))
        groups = []
        for digest in digests:
            occurrences = register.occurrences("sha256", digest)
            groups.append(
                LinkGroup(
                    sha256=digest,
                    size=occurrences[0].size,
                    mime_type=occurrences[0].mime_type,
                    cases=sorted({o.case_number for o in occurrences}),
                    bundles=len({(o.bundle_id, o.container_sha256) for o in occurrences}),
                    occurrences=occurrences,
                )
            )
        groups.sort(key=lambda g: (-len(g.cases), -g.bundles, -g.size, g.sha256))
        return LinksResult(
            register_file=str(register.path),
            case=case,
            min_size=min_size,
            groups=groups,
            cross_case_groups=sum(1 for g in groups if len(g.cases) > 1),
            ignored_known=ignored,
            registered_bundles=register.verified_bundles(),
            warnings=register.warnings,
        )


__all__ = ["find_links"]
