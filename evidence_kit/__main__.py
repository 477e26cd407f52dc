"""``python -m evidence_kit`` (and the ``evidence-kit`` console script)."""

from __future__ import annotations

import sys

from evidence_kit.i18n import _


def main() -> None:
    """Run the CLI; a Ctrl-C outside a running command (while the modules load, while
    Typer builds the command, as it exits) ends quietly, like any other. A running
    command says itself what an interruption left."""
    try:
        from evidence_kit.cli.app import main as run_cli  # noqa: PLC0415 (interruptible)
    except KeyboardInterrupt:
        sys.stderr.write(_("interrupted before anything was done") + "\n")
        raise SystemExit(130) from None
    try:
        run_cli()
    except KeyboardInterrupt:
        sys.stderr.write(_("interrupted") + "\n")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
