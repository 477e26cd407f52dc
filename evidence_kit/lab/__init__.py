"""The lab: many bundles at once, a register of what was received, links between cases.

- :mod:`~evidence_kit.lab.batch`: find bundles under a folder, verify them in parallel
  (``lab verify-all``);
- :mod:`~evidence_kit.lab.ingest`: verify, record receipt, register (``lab ingest``);
- :mod:`~evidence_kit.lab.register` and :mod:`~evidence_kit.lab.migrations`: the SQLite
  register and its versioned schema;
- :mod:`~evidence_kit.lab.find`, :mod:`~evidence_kit.lab.links`: queries
  (``lab find``, ``lab links``);
- :mod:`~evidence_kit.lab.known_files`: known-file hash lists (``lab known add``);
- :mod:`~evidence_kit.lab.records`: what they return (``--json``).
"""

from evidence_kit.lab.batch import verify_folder
from evidence_kit.lab.find import find_content
from evidence_kit.lab.ingest import IngestRequest, ingest_bundles
from evidence_kit.lab.known_files import add_known_list
from evidence_kit.lab.links import find_links
from evidence_kit.lab.register import default_register_path, open_register

__all__ = [
    "IngestRequest",
    "add_known_list",
    "default_register_path",
    "find_content",
    "find_links",
    "ingest_bundles",
    "open_register",
    "verify_folder",
]
