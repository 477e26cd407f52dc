"""Reports for people: the court report (HTML, or PDF with the ``pdf`` extra)."""

from evidence_kit.reports.court import ReportRequest, write_report

__all__ = ["ReportRequest", "write_report"]
