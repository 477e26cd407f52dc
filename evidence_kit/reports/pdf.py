"""PDF from the report's HTML, with WeasyPrint when it is installed (the ``pdf`` extra)."""

from __future__ import annotations

import importlib.util
from typing import BinaryIO

from evidence_kit.errors import EnvironmentFailure
from evidence_kit.i18n import _


def require_pdf_renderer() -> None:
    """Fail before any work when PDF output is asked for and cannot be made."""
    if importlib.util.find_spec("weasyprint") is None:
        raise EnvironmentFailure(
            _("a PDF report needs WeasyPrint, which is not installed"),
            hint=_("Install it with: pip install 'evidence-kit[pdf]' (or write .html and "
                   "print it to PDF from a browser)."),
        )  # fmt: skip
    try:
        import weasyprint  # noqa: F401, PLC0415  (needs Pango: fails without system libraries)
    except OSError as error:
        raise EnvironmentFailure(
            _("WeasyPrint cannot load its system libraries: {reason}").format(reason=error),
            hint=_("Install Pango (Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0)."),
        ) from None


def write_pdf(html: str, out: BinaryIO) -> None:
    import weasyprint  # noqa: PLC0415  (optional)

    weasyprint.HTML(string=html).write_pdf(target=out)


__all__ = ["require_pdf_renderer", "write_pdf"]
