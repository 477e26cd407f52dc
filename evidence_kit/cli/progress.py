"""The tqdm adapter for :class:`evidence_kit.progress.Progress`: bytes and items, on stderr."""

from __future__ import annotations

import sys
from typing import NoReturn

from tqdm import tqdm

from evidence_kit.i18n import _
from evidence_kit.progress import Progress, SilentProgress


class TqdmProgress:
    """A bar over bytes, items counted beside it."""

    def __init__(self, description: str) -> None:
        self._description = description
        self._bar: tqdm[NoReturn] | None = None
        self._items = 0
        self._total_items = 0
        self._errors = 0

    def start(self, total_items: int, total_bytes: int) -> None:
        self._total_items = total_items
        self._bar = tqdm(
            total=total_bytes,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=self._description,
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
        )

    def advance(self, items: int = 0, nbytes: int = 0, errors: int = 0) -> None:
        if self._bar is None:
            return
        self._errors += errors
        if items or errors:
            self._items += items
            parts = []
            if self._total_items > 1:
                parts.append(
                    _("{done}/{total} items").format(done=self._items, total=self._total_items)
                )
            if self._errors:
                parts.append(_("{n} unreadable ranges").format(n=self._errors))
            self._bar.set_postfix_str(", ".join(parts), refresh=bool(errors))
        if nbytes:
            self._bar.update(nbytes)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class TqdmCountProgress:
    """A bar over whole things (bundles), bytes counted beside it."""

    def __init__(self, description: str, unit: str) -> None:
        self._description = description
        self._unit = unit
        self._bar: tqdm[NoReturn] | None = None
        self._bytes = 0

    def start(self, total_items: int, total_bytes: int) -> None:
        self._bar = tqdm(
            total=total_items,
            unit=self._unit,
            desc=self._description,
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
        )

    def advance(self, items: int = 0, nbytes: int = 0, errors: int = 0) -> None:
        if self._bar is None:
            return
        self._bytes += nbytes
        self._bar.set_postfix_str(_("{mib:.1f} MiB").format(mib=self._bytes / (1 << 20)),
                                  refresh=False)  # fmt: skip
        self._bar.update(items)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def progress_for(description: str, *, quiet: bool, unit: str | None = None) -> Progress:
    """A bar when a person watches stderr; silence otherwise. With ``unit`` the bar
    counts items (bundles) rather than bytes."""
    if quiet or not sys.stderr.isatty():
        return SilentProgress()
    if unit is not None:
        return TqdmCountProgress(description, unit)
    return TqdmProgress(description)


__all__ = ["TqdmCountProgress", "TqdmProgress", "progress_for"]
