"""A bundle made from a small tree verifies, and its bytes come back out unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path

from evidence_kit.extract import ExtractRequest, extract_bundle
from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.conftest import AgeKey, MakeBundle


def test_small_tree_round_trips(
    make_bundle: MakeBundle, small_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(small_tree)
    report = verify_bundle(VerifyRequest(bundle.container, key=age_key.material))
    assert report.verdict == "verified", report.findings
    assert report.contents_checked
    out = tmp_path / "extracted"
    result = extract_bundle(ExtractRequest(bundle.container, out, key=age_key.material))
    assert result.complete, result.findings
    for path in small_tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            copy = out / "seized" / path.relative_to(small_tree)
            assert (
                hashlib.sha256(copy.read_bytes()).digest()
                == hashlib.sha256(path.read_bytes()).digest()
            )
