"""The checked-in JSON Schemas match the models, and real records validate against them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from evidence_kit.bundle import open_container, unlock
from evidence_kit.schemas import SCHEMAS, path_of, stale
from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.conftest import AgeKey, MakeBundle


def test_checked_in_schemas_are_generated_from_the_models() -> None:
    assert stale() == [], "run: python -m evidence_kit.schemas"


def test_every_schema_is_versioned_and_closed() -> None:
    for name in SCHEMAS:
        schema = json.loads(Path(path_of(name)).read_text(encoding="utf-8"))
        assert schema["properties"]["schema_version"]["const"] == 1
        assert schema["additionalProperties"] is False


def test_records_written_by_a_real_acquisition_validate(
    make_bundle: MakeBundle, small_tree: Path, age_key: AgeKey
) -> None:
    """The manifest, seal, custody event and --json documents match their schemas."""
    bundle = make_bundle(small_tree)
    opened = open_container(bundle.container, trusted=None)
    try:
        unlock(opened, age_key.material, trusted=None)
        assert opened.manifest_bytes is not None and opened.seal is not None
        documents = {
            "manifest": json.loads(opened.manifest_bytes),
            "seal": opened.seal.model_dump(mode="json"),
            "custody-event": json.loads(bundle.custody_log.read_bytes().splitlines()[0]),
            "acquire-result": bundle.result.model_dump(mode="json"),
        }
    finally:
        opened.close()
    report = verify_bundle(VerifyRequest(bundle.container, key=age_key.material))
    documents["verification-report"] = report.model_dump(mode="json")
    for name, document in documents.items():
        schema = json.loads(path_of(name).read_text(encoding="utf-8"))
        jsonschema.validate(document, schema)


def test_a_manifest_with_an_unknown_field_is_refused_by_its_schema() -> None:
    schema = json.loads(path_of("seal").read_text(encoding="utf-8"))
    seal = {
        "schema_version": 1,
        "kind": "evidence-kit/seal",
        "bundle_id": "x",
        "manifest_member": "manifest.json",
        "manifest_sha256": "0" * 64,
        "signature": None,
    }
    jsonschema.validate(seal, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**seal, "extra": 1}, schema)
