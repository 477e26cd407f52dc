"""How the core reports progress; the CLI draws it (tqdm), the library stays silent."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total_items: int, total_bytes: int) -> None: ...

    def advance(self, items: int = 0, nbytes: int = 0, errors: int = 0) -> None:
        """``errors``: new unreadable ranges met (disk images)."""
        ...

    def finish(self) -> None: ...


class SilentProgress:
    """The default: report nothing."""

    def start(self, total_items: int, total_bytes: int) -> None:
        pass

    def advance(self, items: int = 0, nbytes: int = 0, errors: int = 0) -> None:
        pass

    def finish(self) -> None:
        pass


__all__ = ["Progress", "SilentProgress"]
