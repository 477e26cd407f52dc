"""evidence-kit: acquire, hash, encrypt, seal, verify and extract digital evidence.

The public API is the set of functions and records re-exported here; ``evidence_kit.cli``
is a thin shell over it.
"""

from __future__ import annotations

__version__ = "0.1.0"
