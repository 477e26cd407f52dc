"""Names from evidence are hostile input: keep their exact bytes, show an escaped form."""

from __future__ import annotations

import base64

from evidence_kit.models import PathName

_INVISIBLE = {0x2028, 0x2029, 0x200E, 0x200F, 0x2066, 0x2067, 0x2068, 0x2069, 0xFEFF}
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def display_name(raw: bytes) -> str:
    """A printable, unambiguous form of ``raw``: UTF-8 where valid, escapes elsewhere.

    Backslashes are doubled; ``\\n``, ``\\r``, ``\\t``; other C0 controls ``\\xNN`` (NN below
    80); undecodable bytes ``\\xNN`` (NN 80 and above); C1 controls, line separators and
    bidirectional controls ``\\uNNNN``. Two different names never share a display form.
    """
    text = raw.decode("utf-8", errors="surrogateescape")
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, via surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")  # below 0x80: cannot be confused with a raw byte
        elif 0x80 <= code < 0xA0 or code in _INVISIBLE or 0x202A <= code <= 0x202E:
            out.append(f"\\u{code:04x}")  # C1 controls, line separators, bidi controls
        else:
            out.append(char)
    return "".join(out)


def printable_text(text: str) -> str:
    """Free text from a record (a name, a place, a note) made safe for a terminal: every
    control, line-separator and bidirectional-control character becomes ``\\xNN`` or
    ``\\uNNNN``; everything else, backslashes included, is left as typed."""
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif (
            0x80 <= code < 0xA0
            or code in _INVISIBLE
            or 0x202A <= code <= 0x202E
            or 0xD800 <= code <= 0xDFFF
        ):
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def path_name(raw: bytes) -> PathName:
    return PathName(b64=base64.b64encode(raw).decode("ascii"), display=display_name(raw))


def path_bytes(name: PathName) -> bytes:
    return base64.b64decode(name.b64, validate=True)


__all__ = ["display_name", "path_bytes", "path_name", "printable_text"]
