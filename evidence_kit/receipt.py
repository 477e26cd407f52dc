"""The printable custody receipt: one self-contained HTML page for the paper form.

No external assets (the QR code is an inline PNG), every value autoescaped: case fields
and names in the log are typed by people and may hold anything.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

import jinja2
import segno

from evidence_kit.atomic import AtomicFile, output_error
from evidence_kit.i18n import _
from evidence_kit.models import CustodyReport
from evidence_kit.naming import printable_text
from evidence_kit.provenance import TOOL


def receipt_text(report: CustodyReport) -> str:
    """What the QR code holds: the values a clerk would otherwise copy by hand, one a
    line (control characters in typed values are escaped, so none adds a line)."""
    fields = [
        ("case", report.case_number),
        ("evidence", report.evidence_number),
        ("bundle", report.bundle_id),
        ("container-sha256", report.container_sha256),
        ("custody-head", f"{report.head_sha256}:{report.event_count}"),
    ]
    lines = ["evidence-kit custody receipt"]
    lines += [f"{name}: {printable_text(str(value))}" for name, value in fields]
    return "\n".join(lines)


def render_receipt(report: CustodyReport) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    qr = segno.make(receipt_text(report), error="m")
    return environment.get_template("receipt.html.j2").render(
        report=report,
        qr_png=qr.png_data_uri(scale=4, border=4),
        printed=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        tool=f"{TOOL.name} {TOOL.version}",
        _=_,
    )


def write_receipt(report: CustodyReport, out: Path) -> None:
    page = render_receipt(report).encode("utf-8")
    with AtomicFile(out) as receipt:
        try:
            receipt.file.write(page)
            receipt.commit(overwrite=True)
        except OSError as error:
            raise output_error(out, error) from None


def _template(name: str) -> str:
    return (resources.files("evidence_kit") / "templates" / name).read_text(encoding="utf-8")


__all__ = ["receipt_text", "render_receipt", "write_receipt"]
