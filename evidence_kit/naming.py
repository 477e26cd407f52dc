"""Names from evidence are hostile input: keep their exact bytes, show an escaped form."""

from __future__ import annotations

import base64
import os

from evidence_kit.models import PathName

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def display_name(raw: bytes) -> str:
    """A printable, unambiguous form of ``raw``: UTF-8 where valid, escapes elsewhere.

    Backslashes are doubled, control characters become ``\\n``-style or ``\\xNN`` escapes,
    undecodable bytes become ``\\xNN``. Two different names never share a display form.
    """
    text = raw.decode("utf-8", errors="surrogateescape")
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, via surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif code in (0x2028, 0x2029, 0x200E, 0x200F) or 0x202A <= code <= 0x202E:
            out.append(f"\\u{code:04x}")  # line separators and bidi overrides
        else:
            out.append(char)
    return "".join(out)


def path_name(raw: bytes) -> PathName:
    return PathName(b64=base64.b64encode(raw).decode("ascii"), display=display_name(raw))


def path_bytes(name: PathName) -> bytes:
    return base64.b64decode(name.b64, validate=True)


def fs_bytes(path: str | os.PathLike[str] | bytes) -> bytes:
    return os.fsencode(path)


__all__ = ["display_name", "fs_bytes", "path_bytes", "path_name"]
