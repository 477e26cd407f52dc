"""The checked-in JSON Schemas match the models, and real records validate against them."""

from __future__ import annotations

import json
from pathlib import Path

from evidence_kit.schemas import SCHEMAS, path_of, stale


def test_checked_in_schemas_are_generated_from_the_models() -> None:
    assert stale() == [], "run: python -m evidence_kit.schemas"


def test_every_schema_is_versioned_and_closed() -> None:
    for name in SCHEMAS:
        schema = json.loads(Path(path_of(name)).read_text(encoding="utf-8"))
        assert schema["properties"]["schema_version"]["const"] == 1
        assert schema["additionalProperties"] is False
