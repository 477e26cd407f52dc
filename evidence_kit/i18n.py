"""The one translation function every human-readable message goes through.

Messages are written in English and wrapped in ``_()``; a catalogue for the domain
``evidence-kit`` under ``evidence_kit/locale`` (none shipped yet) translates them.
"""

from __future__ import annotations

import gettext
from pathlib import Path

_LOCALE_DIR = Path(__file__).with_name("locale")
_translation = gettext.translation("evidence-kit", localedir=_LOCALE_DIR, fallback=True)


def _(message: str) -> str:
    """Translate ``message`` into the user's language (English when no catalogue applies)."""
    return _translation.gettext(message)


__all__ = ["_"]
