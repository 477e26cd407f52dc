"""Members written with ZIP64 headers below 4 GiB (forced above 1 GiB) pass the strict
layout check: their version fields and extras agree between local and central headers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evidence_kit.container import ZIP64_THRESHOLD
from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.conftest import AgeKey, MakeBundle


@pytest.mark.slow
def test_a_member_between_1_and_4_gib_verifies(
    make_bundle: MakeBundle, tmp_path: Path, age_key: AgeKey
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    image = source / "card.img"
    with image.open("wb") as handle:
        handle.truncate(ZIP64_THRESHOLD + (100 << 20))
        handle.seek(ZIP64_THRESHOLD + (100 << 20) - 11)
        handle.write(b"tail-marker")
    bundle = make_bundle(source)
    report = verify_bundle(VerifyRequest(bundle.container, key=age_key.material))
    assert report.verdict == "verified", report.findings
    assert report.bytes_checked == os.path.getsize(image)
