"""Where acquisition writes: never into the source, never over an existing bundle."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pyrage
import pytest

from evidence_kit import acquire as acquire_module
from evidence_kit.acquire import AcquireRequest, acquire
from evidence_kit.errors import OutputExists, UsageError
from tests.conftest import CASE, AgeKey


def _request(
    age_key: AgeKey, sources: list[Path], output: Path, **options: object
) -> AcquireRequest:
    recipient = pyrage.x25519.Recipient.from_str(age_key.recipient)
    return AcquireRequest(
        sources=sources, output=output, case=CASE, recipients=[recipient], **options
    )  # type: ignore[arg-type]


def test_an_output_inside_the_source_is_refused_and_nothing_is_written(
    small_tree: Path, age_key: AgeKey
) -> None:
    before = sorted(os.listdir(small_tree / "docs"))
    for output in (small_tree / "b.zip", small_tree / "docs" / "b.zip"):
        with pytest.raises(UsageError, match="inside the source"):
            acquire(_request(age_key, [small_tree], output))
    assert sorted(os.listdir(small_tree / "docs")) == before
    assert not list(small_tree.glob("*.zip")) and not list(small_tree.glob(".*partial"))


def test_an_output_inside_the_source_through_a_symlink_is_refused(
    small_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(small_tree)
    with pytest.raises(UsageError, match="inside the source"):
        acquire(_request(age_key, [small_tree], alias / "b.zip"))


def test_an_existing_bundle_is_not_replaced_without_overwrite(
    small_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    output = tmp_path / "b.zip"
    output.write_bytes(b"an earlier bundle")
    with pytest.raises(OutputExists):
        acquire(_request(age_key, [small_tree], output))
    assert output.read_bytes() == b"an earlier bundle"
    result = acquire(_request(age_key, [small_tree], output, overwrite=True))
    assert output.read_bytes()[:4] == b"PK\x03\x04"
    assert Path(result.custody_log).is_file()
    assert not list(tmp_path.glob(".*partial"))


def test_an_orphan_custody_log_blocks_a_new_bundle_of_that_name(
    small_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    (tmp_path / "b.custody.jsonl").write_text("{}\\n")
    with pytest.raises(OutputExists, match="custody"):
        acquire(_request(age_key, [small_tree], tmp_path / "b.zip"))
    assert not (tmp_path / "b.zip").exists()


def test_an_interrupted_acquisition_leaves_no_worker_thread_or_file_behind(
    tmp_path: Path, age_key: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Digest, HMAC, container-hash and libmagic threads all stop when a run is cut short."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "small.txt").write_text("a small file, identified by libmagic on a worker\n")
    (source / "large.bin").write_bytes(os.urandom(12 << 20))  # digests on a second thread
    calls = {"n": 0}
    real_read = acquire_module.read_chunk

    def interrupting_read(fd: int, size: int) -> bytes:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_read(fd, size)

    monkeypatch.setattr(acquire_module, "read_chunk", interrupting_read)
    before = set(threading.enumerate())
    with pytest.raises(KeyboardInterrupt):
        acquire(_request(age_key, [source], tmp_path / "b.zip"))
    assert set(threading.enumerate()) - before == set()
    assert sorted(os.listdir(tmp_path)) == ["src"]
