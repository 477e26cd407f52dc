"""Times: nanosecond integers kept exact, shown as RFC 3339 UTC; the clock is named."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from evidence_kit.models import ClockSource, Instant

_NS = 1_000_000_000


def rfc3339_from_ns(ns: int) -> str | None:
    """RFC 3339 UTC with nanoseconds, or None outside the years 1-9999."""
    seconds, fraction = divmod(ns, _NS)
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    stamp = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    return f"{stamp}.{fraction:09d}Z" if fraction else f"{stamp}Z"


def instant_from_ns(ns: int, clock_source: ClockSource | None = None) -> Instant:
    return Instant(ns=str(ns), utc=rfc3339_from_ns(ns), clock_source=clock_source)


def now() -> Instant:
    """The local clock, named as such (trusted time comes from RFC 3161 tokens)."""
    return instant_from_ns(time.time_ns(), "local")


__all__ = ["instant_from_ns", "now", "rfc3339_from_ns"]
