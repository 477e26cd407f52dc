"""A sparse raw image over 4 GiB round trip: ZIP64 member, windows, extraction (slow)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyrage
import pytest

from evidence_kit.acquire import AcquireRequest, ImageRequest, acquire
from evidence_kit.extract import ExtractRequest, extract_bundle
from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.conftest import CASE, AgeKey

SIZE = (4 << 30) + (300 << 20) + 4096  # over 4 GiB, not a whole number of windows
MARKS = {0: b"FIRST-SECTOR", 2**32 - 6: b"ACROSS-4GiB", SIZE - 16: b"TAIL-MARKER-0042"}


def _digests(path: Path, window: int) -> tuple[str, list[str]]:
    whole, windows = hashlib.sha256(), []
    with path.open("rb") as handle:
        while chunk := handle.read(window):
            whole.update(chunk)
            windows.append(hashlib.sha256(chunk).hexdigest())
    return whole.hexdigest(), windows


@pytest.mark.slow
def test_a_sparse_image_over_4_gib_round_trips(tmp_path: Path, age_key: AgeKey) -> None:
    image = tmp_path / "usb.img"
    with image.open("wb") as handle:
        handle.truncate(SIZE)
        for offset, mark in MARKS.items():
            handle.seek(offset)
            handle.write(mark)
    result = acquire(
        AcquireRequest(
            sources=[],
            output=tmp_path / "b.zip",
            case=CASE,
            recipients=[pyrage.x25519.Recipient.from_str(age_key.recipient)],
            image=ImageRequest(image, window_size=256 << 20),
        )
    )
    assert result.complete and result.image is not None
    whole, windows = _digests(image, 256 << 20)
    assert result.image.window_sha256 == windows and len(windows) == 18
    report = verify_bundle(VerifyRequest(tmp_path / "b.zip", key=age_key.material))
    assert report.verdict == "verified", report.findings
    assert report.bytes_checked == SIZE
    extract_bundle(ExtractRequest(tmp_path / "b.zip", tmp_path / "out", key=age_key.material))
    copy = tmp_path / "out" / "usb.img"
    assert copy.stat().st_size == SIZE
    assert _digests(copy, 256 << 20)[0] == whole
    with copy.open("rb") as handle:
        for offset, mark in MARKS.items():
            handle.seek(offset)
            assert handle.read(len(mark)) == mark
