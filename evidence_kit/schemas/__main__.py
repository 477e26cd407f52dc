"""``python -m evidence_kit.schemas [--check]``: regenerate, or check, the JSON Schemas."""

from __future__ import annotations

import sys

from evidence_kit.schemas import stale, write_all


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        names = stale()
        for name in names:
            sys.stderr.write(f"schema out of date: {name} (run python -m evidence_kit.schemas)\n")
        return 1 if names else 0
    for path in write_all():
        sys.stderr.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
