"""The Jinja2 environment for report pages: autoescaped, strict about missing values."""

from __future__ import annotations

from functools import cache
from importlib import resources

import jinja2

from evidence_kit.naming import printable_text


def _load(name: str) -> str:
    return (resources.files("evidence_kit") / "templates" / name).read_text(encoding="utf-8")


def grouped(number: int | None) -> str:
    """12345678 -> '12,345,678' (digits stay copyable)."""
    return "" if number is None else f"{number:,}"


def shown(value: object) -> object:
    """Every ``{{ value }}`` is made printable before it is escaped: a bidi override or a
    control character typed into a case field must not reorder or hide what a court
    reads. (Multi-line text is written one line at a time by the template.)"""
    return printable_text(value) if isinstance(value, str) else value


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        autoescape=True,
        finalize=shown,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["grouped"] = grouped
    return env


def report_template() -> jinja2.Template:
    return environment().get_template("court-report.html.j2")


__all__ = ["environment", "grouped", "report_template", "shown"]
