"""``python -m evidence_kit`` (and the ``evidence-kit`` console script)."""

from __future__ import annotations

import sys

from evidence_kit.cli.interrupts import (
    held_while_starting,
    hold_until_a_command_runs,
    stop_listening,
)
from evidence_kit.i18n import _


def main() -> None:
    """Run the CLI. The first Ctrl-C stops it with exit code 130 and a line saying what
    was left; the ones after it are ignored (see :mod:`evidence_kit.cli.interrupts`)."""
    hold_until_a_command_runs()
    from evidence_kit.cli.app import main as run_cli  # noqa: PLC0415 (after the hold)

    if held_while_starting():
        stop_listening()
        sys.stderr.write(_("interrupted before anything was done") + "\n")
        raise SystemExit(130)
    try:
        run_cli()
    except KeyboardInterrupt:
        stop_listening()
        sys.stderr.write(_("interrupted") + "\n")
        raise SystemExit(130) from None
    finally:
        stop_listening()  # the run has ended: a Ctrl-C now could only print a traceback


if __name__ == "__main__":
    main()
