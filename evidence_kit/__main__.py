"""``python -m evidence_kit``."""

from evidence_kit.cli.app import main

if __name__ == "__main__":
    main()
