"""``acquire --image``: a block device or raw image file into one encrypted member.

Images are real sparse files with random bytes where a disk keeps its partition table and a
known marker in their last bytes; a read-only loop device stands in for a disk. Unreadable
sectors are made where image bytes are read (``evidence_kit.sources.disk.read_at``): reads
overlapping chosen sectors fail with EIO, every other read reaches the real file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import pyrage
import pytest

from evidence_kit import acquire as acquire_module
from evidence_kit.acquire import AcquireRequest, ImageRequest, acquire
from evidence_kit.custody import custody_log_path
from evidence_kit.errors import EnvironmentFailure, UsageError
from evidence_kit.models import AcquireResult, ItemRecord, Manifest
from evidence_kit.sources import disk
from evidence_kit.verify import VerifyRequest, verify_bundle
from tests.conftest import CASE, CASE_ARGS, REPO, AgeKey, read_manifest

Cli = Callable[..., Any]

KIB = 1 << 10
MIB = 1 << 20
SECTOR = 512
TAIL_MARKER = b"EVIDENCE-TAIL-01"  # 16 bytes at the very end of every image
SCHEMAS = REPO / "evidence_kit" / "schemas"


# --------------------------------------------------------------------------- helpers


def make_image(path: Path, size: int, table: str | None = "mbr", *, dense: bool = False) -> Path:
    """A raw image: random first MiB (with an MBR or GPT signature, or neither), holes after
    it (random bytes throughout when ``dense``), and TAIL_MARKER in its last 16 bytes."""
    head = bytearray(os.urandom(size - len(TAIL_MARKER) if dense else min(MIB, size - 16)))
    head[510:512] = b"\x55\xaa" if table in ("mbr", "gpt") else b"\0\0"  # GPT: protective MBR
    head[512:520] = b"EFI PART" if table == "gpt" else bytes(8)
    with path.open("wb") as out:
        out.truncate(size)
        out.write(head)
        out.seek(size - len(TAIL_MARKER))
        out.write(TAIL_MARKER)
    return path


def chunks(path: Path, size: int = MIB) -> Iterator[bytes]:
    with path.open("rb") as source:
        while block := source.read(size):
            yield block


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for block in chunks(path):
        digest.update(block)
    return digest.hexdigest()


def window_sha256(path: Path, window: int) -> list[str]:
    """SHA-256 of each ``window`` bytes of ``path`` in order, the last possibly shorter."""
    return [hashlib.sha256(block).hexdigest() for block in chunks(path, window)]


def zero_filled_sha256(path: Path, holes: list[tuple[int, int]]) -> str:
    """SHA-256 of ``path`` with the (offset, length) ranges replaced by zeros."""
    data = bytearray(path.read_bytes())  # small images only
    for offset, length in holes:
        data[offset : offset + length] = bytes(length)
    return hashlib.sha256(data).hexdigest()


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return loaded


def image_item(container: Path, age_key: AgeKey) -> tuple[Manifest, ItemRecord]:
    """The manifest (checked against its schema) and its single disk-image item."""
    manifest, raw = read_manifest(container, age_key)
    jsonschema.validate(json.loads(raw), schema("manifest"))
    assert len(manifest.items) == 1
    item = manifest.items[0]
    assert item.kind == "disk-image"
    return manifest, item


def library_acquire(
    age_key: AgeKey, source: Path, output: Path, sources: list[Path] | None = None, **image: Any
) -> AcquireResult:
    return acquire(
        AcquireRequest(
            sources=sources or [],
            output=output,
            case=CASE,
            recipients=[pyrage.x25519.Recipient.from_str(age_key.recipient)],
            image=ImageRequest(source, **image),
        )
    )


def cli_acquire(cli: Cli, age_key: AgeKey, image: Path, output: Path, *options: Any) -> Any:
    return cli(
        "acquire",
        "--image",
        image,
        "--out",
        output,
        "--recipient",
        age_key.recipient,
        *CASE_ARGS,
        *options,
        "-q",
    )


def extract_image(cli: Cli, container: Path, age_key: AgeKey, destination: Path) -> Any:
    return cli("extract", container, "--out", destination, "--identity", age_key.identity_file)


def nothing_written(output: Path) -> bool:
    """Neither the bundle, its custody log nor any temporary file is left beside it."""
    folder = output.parent
    return (
        not os.path.lexists(output)
        and not os.path.lexists(custody_log_path(output))
        and not [p for p in folder.iterdir() if p.name.endswith(".partial")]
    )


class FaultyReads:
    """Stands in for ``disk.read_at``: reads overlapping a bad sector fail with EIO (a
    transient sector fails only its first ``transient`` reads); every call is recorded."""

    def __init__(self, bad: set[int], transient: int | None = None) -> None:
        self.bad = bad
        self.transient = transient
        self.failures: dict[int, int] = {}
        self.calls: list[tuple[int, int]] = []  # (offset, length)

    def __call__(self, fd: int, length: int, offset: int) -> bytes:
        self.calls.append((offset, length))
        hit = [s for s in self.bad if s < offset + length and offset < s + SECTOR]
        if hit:
            sector = min(hit)
            failed = self.failures.get(sector, 0)
            if self.transient is None or failed < self.transient:
                self.failures[sector] = failed + 1
                raise OSError(errno.EIO, os.strerror(errno.EIO))
        return os.pread(fd, length, offset)

    def lengths_touching(self, sector: int) -> list[int]:
        """The lengths of the reads that covered ``sector``, in call order."""
        return [n for off, n in self.calls if off <= sector < off + n]


@contextmanager
def read_only_loop(image: Path) -> Iterator[Path]:
    """``image`` attached read-only to a free loop device (skips visibly without one)."""
    losetup = shutil.which("losetup")
    if losetup is None:
        pytest.skip("losetup is not installed: no loop device to image")
    attach = subprocess.run(
        [losetup, "-f", "--show", "-r", str(image)], capture_output=True, text=True, check=False
    )
    if attach.returncode != 0 or not attach.stdout.strip():
        pytest.skip(f"cannot attach a loop device (needs root): {attach.stderr.strip()}")
    device = Path(attach.stdout.strip())
    try:
        yield device
    finally:
        subprocess.run([losetup, "-d", str(device)], check=False)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def image_64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sparse 64 MiB raw image with an MBR signature; read-only for every test."""
    path = make_image(tmp_path_factory.mktemp("images") / "suspect-disk.img", 64 * MIB)
    path.chmod(0o444)
    return path


@pytest.fixture
def image_10(tmp_path: Path) -> Path:
    """A 10 MiB raw image of random bytes: small enough to compare in memory."""
    return make_image(tmp_path / "usb-stick.dd", 10 * MIB, dense=True)


# --------------------------------------------------------------------------- image files


def test_an_image_file_is_acquired_whole_with_window_digests_and_left_untouched(
    image_64: Path, age_key: AgeKey, tmp_path: Path, cli: Cli
) -> None:
    before_sha256 = file_sha256(image_64)
    old = image_64.stat()
    os.utime(image_64, ns=(old.st_mtime_ns - 10**12, old.st_mtime_ns))  # atime before mtime
    before = image_64.stat()
    output = tmp_path / "b.zip"

    result = library_acquire(age_key, image_64, output, window_size=4 * MIB)

    after = image_64.stat()
    assert (after.st_mtime_ns, after.st_atime_ns, after.st_size) == (
        before.st_mtime_ns,
        before.st_atime_ns,
        before.st_size,
    )
    assert file_sha256(image_64) == before_sha256
    assert result.complete and result.problems == []
    assert result.summary.items == 1 and result.summary.bytes == 64 * MIB
    assert result.summary.status_counts == {"ok": 1}
    manifest, item = image_item(output, age_key)
    assert item.path.display == "suspect-disk.img"
    assert item.status == "ok" and item.read_errors == []
    assert item.size == item.stored_size == 64 * MIB
    assert item.digests == {"sha256": before_sha256}
    assert [s.kind for s in manifest.sources] == ["disk-image"]
    info = item.image
    assert info is not None and info == result.image
    assert info.source_kind == "file"
    assert (info.size, info.sectors) == (64 * MIB, 64 * MIB // SECTOR)
    assert (info.logical_sector_size, info.physical_sector_size) == (SECTOR, SECTOR)
    assert info.window_size == 4 * MIB
    assert len(info.window_sha256) == 16
    assert info.window_sha256 == window_sha256(image_64, 4 * MIB)
    assert info.zero_filled_bytes == 0
    assert info.device.partition_table == "mbr"
    assert info.device.device is None and info.device.write_blocker == ""

    assert cli("verify", output, "--identity", age_key.identity_file, "-q").exit_code == 0
    extracted = extract_image(cli, output, age_key, tmp_path / "restored")
    assert extracted.exit_code == 0, extracted.stderr
    restored = tmp_path / "restored" / "suspect-disk.img"
    assert restored.stat().st_size == 64 * MIB
    assert file_sha256(restored) == before_sha256
    with restored.open("rb") as copy:
        copy.seek(-len(TAIL_MARKER), os.SEEK_END)
        assert copy.read() == TAIL_MARKER
        copy.seek(510)
        assert copy.read(2) == b"\x55\xaa"


def test_the_cli_acquires_an_image_file_and_reports_it_as_json(
    image_64: Path, age_key: AgeKey, tmp_path: Path, cli: Cli
) -> None:
    output = tmp_path / "b.zip"
    result = cli_acquire(
        cli, age_key, image_64, output, "--window", "4", "--write-blocker", "none (image file)",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema("acquire-result"))
    assert document["complete"] is True
    assert document["summary"]["bytes"] == 64 * MIB
    image = document["image"]
    assert image["source_kind"] == "file"
    assert image["window_size"] == 4 * MIB
    assert image["window_sha256"] == window_sha256(image_64, 4 * MIB)
    assert image["device"]["write_blocker"] == "none (image file)"
    assert image["device"]["partition_table"] == "mbr"
    _manifest, item = image_item(output, age_key)
    assert item.digests["sha256"] == file_sha256(image_64)
    assert item.image is not None
    assert item.image.model_dump(mode="json") == image
    verified = cli("verify", output, "--identity", age_key.identity_file, "-q")
    assert verified.exit_code == 0, verified.stdout


def test_the_last_window_is_shorter_when_the_size_is_not_a_multiple_of_it(
    tmp_path: Path, age_key: AgeKey, cli: Cli
) -> None:
    size = 10 * MIB + 4096
    image = make_image(tmp_path / "odd.img", size)
    output = tmp_path / "b.zip"
    result = cli_acquire(cli, age_key, image, output, "--window", "4", "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)["image"]
    expected = window_sha256(image, 4 * MIB)
    assert len(expected) == 3
    assert expected[2] == hashlib.sha256(image.read_bytes()[8 * MIB :]).hexdigest()
    assert info["window_sha256"] == expected
    assert (info["size"], info["sectors"]) == (size, size // SECTOR)
    extracted = extract_image(cli, output, age_key, tmp_path / "restored")
    assert extracted.exit_code == 0, extracted.stderr
    assert (tmp_path / "restored" / "odd.img").read_bytes() == image.read_bytes()


@pytest.mark.parametrize(("table", "expected"), [("mbr", "mbr"), ("gpt", "gpt"), (None, None)])
def test_the_partition_table_kind_is_recognised(
    tmp_path: Path, age_key: AgeKey, table: str | None, expected: str | None
) -> None:
    image = make_image(tmp_path / "disk.raw", 3 * MIB + SECTOR, table)
    result = library_acquire(age_key, image, tmp_path / "b.zip", window_size=MIB)
    assert result.image is not None
    assert result.image.device.partition_table == expected
    assert result.image.sectors == 3 * 2048 + 1
    assert result.image.window_sha256 == window_sha256(image, MIB)
    _manifest, item = image_item(tmp_path / "b.zip", age_key)
    assert item.image is not None and item.image.device.partition_table == expected


# --------------------------------------------------------------------------- unreadable bytes


BAD_SINGLE = 5 * MIB + 3 * SECTOR
BAD_RUN = [9 * MIB + i * SECTOR for i in range(4)]


def test_unreadable_sectors_are_zero_filled_recorded_and_exit_3(
    image_10: Path, age_key: AgeKey, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = image_10.read_bytes()
    faults = FaultyReads({BAD_SINGLE, *BAD_RUN})
    monkeypatch.setattr(disk, "read_at", faults)
    output = tmp_path / "b.zip"
    result = cli_acquire(cli, age_key, image_10, output, "--retries", "2", "--window", "4",
                         "--json")  # fmt: skip
    assert result.exit_code == 3, result.stderr
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema("acquire-result"))
    assert document["complete"] is False
    assert document["image"]["zero_filled_bytes"] == 2560
    assert [p["status"] for p in document["problems"]] == ["unreadable"]
    holes = [(BAD_SINGLE, SECTOR), (9 * MIB, 4 * SECTOR)]
    _manifest, item = image_item(output, age_key)
    assert item.status == "unreadable" and item.errno == errno.EIO
    assert [(e.offset, e.length, e.errno) for e in item.read_errors] == [
        (o, n, errno.EIO) for o, n in holes
    ]
    assert item.size == item.stored_size == 10 * MIB
    assert item.digests["sha256"] == zero_filled_sha256(image_10, holes)
    assert item.image is not None and item.image.zero_filled_bytes == 2560
    zero_filled = bytearray(original)
    for offset, length in holes:
        zero_filled[offset : offset + length] = bytes(length)
    assert item.image.window_sha256 == [
        hashlib.sha256(zero_filled[i : i + 4 * MIB]).hexdigest()
        for i in range(0, 10 * MIB, 4 * MIB)
    ]
    assert image_10.read_bytes() == original
    monkeypatch.undo()

    extracted = extract_image(cli, output, age_key, tmp_path / "restored")
    assert extracted.exit_code == 0, extracted.stderr
    restored = (tmp_path / "restored" / "usb-stick.dd").read_bytes()
    assert len(restored) == len(original)
    for offset, length in holes:
        assert restored[offset : offset + length] == bytes(length)
        assert original[offset : offset + length] != bytes(length)  # random bytes there
    assert restored == bytes(zero_filled)
    verified = cli("verify", output, "--identity", age_key.identity_file, "--json")
    assert verified.exit_code == 0, verified.stdout
    codes = {f["code"] for f in json.loads(verified.stdout)["findings"]}
    assert "acquired-unreadable" in codes


@pytest.mark.parametrize("retries", [0, 2, 5])
def test_a_bad_sector_is_retried_at_each_granularity_then_retries_more_times(
    image_10: Path, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, retries: int
) -> None:
    faults = FaultyReads({BAD_SINGLE})
    monkeypatch.setattr(disk, "read_at", faults)
    result = library_acquire(age_key, image_10, tmp_path / "b.zip", retries=retries)
    # the 1 MiB read, once more whole, then 64 KiB, 4 KiB, and the sector 1 + retries times
    assert faults.lengths_touching(BAD_SINGLE) == [MIB, MIB, 64 * KIB, 4 * KIB] + [SECTOR] * (
        1 + retries
    )
    # the good sectors beside it are read once each, at sector size
    for neighbour in (BAD_SINGLE - SECTOR, BAD_SINGLE + SECTOR):
        assert faults.lengths_touching(neighbour)[-1] == SECTOR
        assert faults.lengths_touching(neighbour).count(SECTOR) == 1
    assert result.image is not None and result.image.zero_filled_bytes == SECTOR
    assert not result.complete


def test_adjacent_bad_sectors_across_a_read_boundary_are_one_range(
    image_10: Path, age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disk, "read_at", FaultyReads({2 * MIB - SECTOR, 2 * MIB}))
    library_acquire(age_key, image_10, tmp_path / "b.zip", retries=0)
    _manifest, item = image_item(tmp_path / "b.zip", age_key)
    assert [(e.offset, e.length, e.errno) for e in item.read_errors] == [
        (2 * MIB - SECTOR, 2 * SECTOR, errno.EIO)
    ]
    assert item.digests["sha256"] == zero_filled_sha256(image_10, [(2 * MIB - SECTOR, 1024)])


def test_a_transient_read_error_leaves_no_read_error_and_exit_0(
    image_10: Path, age_key: AgeKey, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = FaultyReads({BAD_SINGLE}, transient=1)
    monkeypatch.setattr(disk, "read_at", faults)
    output = tmp_path / "b.zip"
    result = cli_acquire(cli, age_key, image_10, output, "--json")
    assert result.exit_code == 0, result.stderr
    assert faults.failures == {BAD_SINGLE: 1}
    document = json.loads(result.stdout)
    assert document["complete"] is True and document["image"]["zero_filled_bytes"] == 0
    _manifest, item = image_item(output, age_key)
    assert item.status == "ok" and item.read_errors == []
    assert item.digests["sha256"] == file_sha256(image_10)


def test_the_library_refuses_a_negative_retry_count(
    image_10: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    with pytest.raises(UsageError):
        library_acquire(age_key, image_10, tmp_path / "b.zip", retries=-1)


# --------------------------------------------------------------------------- block devices


def test_a_read_only_loop_device_is_imaged_with_its_device_facts(
    image_64: Path, age_key: AgeKey, tmp_path: Path, cli: Cli
) -> None:
    output = tmp_path / "b.zip"
    with read_only_loop(image_64) as device:
        rdev = device.stat().st_rdev
        result = cli_acquire(
            cli, age_key, device, output, "--window", "16", "--write-blocker",
            "Tableau T8u (SN 000ECC)", "--json",
        )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema("acquire-result"))
    image = document["image"]
    assert image["source_kind"] == "block-device"
    assert image["size"] == 64 * MIB and image["sectors"] == 64 * MIB // SECTOR
    facts = image["device"]
    assert facts["device"] == f"{os.major(rdev)}:{os.minor(rdev)}"
    assert facts["name"] == device.name
    assert facts["read_only"] is True
    assert facts["write_blocker"] == "Tableau T8u (SN 000ECC)"
    assert facts["partition_table"] == "mbr"
    assert facts["mounted"] == [] and facts["mounted_read_write"] is False
    assert image["window_sha256"] == window_sha256(image_64, 16 * MIB)
    _manifest, item = image_item(output, age_key)
    assert item.path.display == device.name
    assert item.digests == {"sha256": file_sha256(image_64)}
    assert item.rdev == str(rdev)
    verified = cli("verify", output, "--identity", age_key.identity_file, "-q")
    assert verified.exit_code == 0, verified.stdout


def test_an_output_on_the_disk_being_imaged_is_refused_unless_forced(
    image_10: Path, age_key: AgeKey, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "out" / "b.zip"
    output.parent.mkdir()
    with read_only_loop(image_10) as device:
        rdev = device.stat().st_rdev
        same_disk = f"{os.major(rdev)}:{os.minor(rdev)}"
        asked: list[Path] = []

        def disk_of(path: Path) -> str:
            asked.append(Path(path))
            return same_disk

        monkeypatch.setattr(acquire_module, "disk_of", disk_of)
        refused = cli_acquire(cli, age_key, device, output)
        assert refused.exit_code == 2, refused.stdout
        assert "on the disk being imaged" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert asked == [output.parent]
        assert list(output.parent.iterdir()) == []
        forced = cli_acquire(cli, age_key, device, output, "--force")
    assert forced.exit_code == 0, forced.stderr
    _manifest, item = image_item(output, age_key)
    assert item.digests["sha256"] == file_sha256(image_10)


# --------------------------------------------------------------------------- refusals


def test_an_image_with_another_source_is_refused(
    image_10: Path, small_tree: Path, age_key: AgeKey, tmp_path: Path, cli: Cli
) -> None:
    output = tmp_path / "b.zip"
    result = cli("acquire", small_tree, "--image", image_10, "--out", output, "--recipient",
                 age_key.recipient, *CASE_ARGS, "-q")  # fmt: skip
    assert result.exit_code == 2
    assert "give no other SOURCE" in result.stderr
    with pytest.raises(UsageError, match="give no other SOURCE"):
        library_acquire(age_key, image_10, output, sources=[small_tree])
    assert nothing_written(output)


@pytest.mark.parametrize("window", ["0", "-4", "1.5", "four"])
def test_the_cli_refuses_a_window_that_is_not_a_whole_number_of_mib(
    image_10: Path, age_key: AgeKey, tmp_path: Path, cli: Cli, window: str
) -> None:
    output = tmp_path / "b.zip"
    result = cli_acquire(cli, age_key, image_10, output, "--window", window)
    assert result.exit_code == 2
    assert "--window" in result.stderr
    assert nothing_written(output)


@pytest.mark.parametrize("window_size", [0, MIB // 2, MIB + MIB // 2, 4 * MIB + SECTOR, -MIB])
def test_the_library_refuses_a_window_that_is_not_a_whole_number_of_mib(
    image_10: Path, age_key: AgeKey, tmp_path: Path, window_size: int
) -> None:
    output = tmp_path / "b.zip"
    with pytest.raises(UsageError, match="whole number of MiB"):
        library_acquire(age_key, image_10, output, window_size=window_size)
    assert nothing_written(output)


@pytest.mark.parametrize("kind", ["folder", "character-device", "missing"])
def test_a_source_that_is_neither_a_block_device_nor_an_image_file_is_refused(
    tmp_path: Path, age_key: AgeKey, cli: Cli, kind: str
) -> None:
    source = {
        "folder": tmp_path / "a-folder",
        "character-device": Path("/dev/zero"),
        "missing": tmp_path / "no-such.img",
    }[kind]
    if kind == "folder":
        source.mkdir()
    output = tmp_path / "b.zip"
    result = cli_acquire(cli, age_key, source, output)
    assert result.exit_code == 2, result.stdout
    assert "Traceback" not in result.stderr
    assert nothing_written(output)
    if kind != "folder":  # the folder is refused by the option itself
        with pytest.raises(UsageError):
            library_acquire(age_key, source, output)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path, age_key: AgeKey) -> None:
    fifo = tmp_path / "pipe.img"
    os.mkfifo(fifo)
    output = tmp_path / "b.zip"
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            library_acquire(age_key, fifo, output)
        except BaseException as error:  # handed to the test thread
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=3)
    blocked = thread.is_alive()
    if blocked:  # release the open() so the thread ends
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(writer)
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert not blocked, "acquire --image waited on the FIFO for a writer"
    assert len(outcome) == 1 and isinstance(outcome[0], UsageError)
    assert nothing_written(output)


def test_an_output_that_is_the_image_itself_is_refused_and_the_image_kept(
    image_10: Path, age_key: AgeKey, cli: Cli
) -> None:
    before = image_10.read_bytes()
    plain = cli_acquire(cli, age_key, image_10, image_10)
    assert plain.exit_code == 2
    forced = cli_acquire(cli, age_key, image_10, image_10, "--overwrite")
    assert forced.exit_code == 2
    assert "is the image being acquired" in forced.stderr
    with pytest.raises(UsageError, match="is the image being acquired"):
        acquire(
            AcquireRequest(
                sources=[],
                output=image_10,
                case=CASE,
                recipients=[pyrage.x25519.Recipient.from_str(age_key.recipient)],
                overwrite=True,
                image=ImageRequest(image_10),
            )
        )
    assert image_10.read_bytes() == before
    assert sorted(p.name for p in image_10.parent.iterdir()) == [image_10.name]


def test_a_custody_log_path_that_is_the_image_itself_is_refused_and_the_image_kept(
    tmp_path: Path, age_key: AgeKey, cli: Cli
) -> None:
    image = make_image(tmp_path / "b.custody.jsonl", 2 * MIB)
    before = file_sha256(image)
    result = cli_acquire(cli, age_key, image, tmp_path / "b.zip", "--overwrite")
    assert file_sha256(image) == before, "the image was replaced by the custody log"
    assert result.exit_code == 2


def test_a_link_to_the_source_is_followed_and_the_real_path_recorded(
    tmp_path: Path, age_key: AgeKey
) -> None:
    """Officers name disks by their stable links (/dev/disk/by-id/...)."""
    image = make_image(tmp_path / "usb-stick.dd", 3 * MIB)
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-Kingston_DataTraveler_0123").symlink_to(image)
    library_acquire(age_key, by_id / "usb-Kingston_DataTraveler_0123", tmp_path / "b.zip")
    manifest, item = image_item(tmp_path / "b.zip", age_key)
    assert manifest.sources[0].path.display == str(image)
    assert item.path.display == "usb-stick.dd"
    assert item.digests["sha256"] == file_sha256(image)


def test_verify_against_the_source_locates_changed_and_unreadable_windows(
    tmp_path: Path, age_key: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A damaged copy still proves every intact window; the damaged range is named."""
    image = make_image(tmp_path / "usb-stick.dd", 10 * MIB + 4096, dense=True)
    library_acquire(age_key, image, tmp_path / "b.zip", window_size=2 * MIB)

    def against(source: Path) -> Any:
        return verify_bundle(
            VerifyRequest(tmp_path / "b.zip", key=age_key.material, against=[source])
        )

    report = against(image)
    assert report.verdict == "verified", report.findings
    assert any(c.detail == "6 of 6 windows match" for c in report.checks)
    copy = tmp_path / "copy.dd"
    shutil.copyfile(image, copy)
    with copy.open("r+b") as handle:
        handle.seek(5 * MIB + 7)
        byte = handle.read(1)
        handle.seek(5 * MIB + 7)
        handle.write(bytes([byte[0] ^ 0x01]))
    report = against(copy)
    errors = [(f.code, f.message) for f in report.findings if f.severity == "error"]
    assert ("against-window-differs", f"bytes {4 * MIB}-{6 * MIB - 1} differ") in errors
    assert [code for code, _m in errors].count("against-window-differs") == 1
    assert any(code == "against-changed" and "sha256" in m for code, m in errors)
    assert any(c.detail == "5 of 6 windows match" for c in report.checks)
    real_read = disk.read_at

    def failing(fd: int, length: int, offset: int) -> bytes:
        if offset <= 9 * MIB < offset + length:
            raise OSError(errno.EIO, "Input/output error")
        return real_read(fd, length, offset)

    monkeypatch.setattr(disk, "read_at", failing)
    report = against(image)
    codes = [f.code for f in report.findings if f.severity == "error"]
    assert "against-unreadable" in codes and "against-window-differs" in codes
    unreadable = next(f for f in report.findings if f.code == "against-unreadable")
    assert unreadable.message.startswith(f"bytes {9 * MIB}-{9 * MIB + 511} cannot be read now")


def test_a_device_that_disappears_stops_the_acquisition_and_leaves_nothing(
    tmp_path: Path, age_key: AgeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unplugged mid-way: no sector will come back, so no endless zero-filling."""
    image = make_image(tmp_path / "usb-stick.dd", 8 * MIB, dense=True)
    real_read = disk.read_at

    def unplugged(fd: int, length: int, offset: int) -> bytes:
        if offset + length > 3 * MIB:
            raise OSError(errno.ENODEV, "No such device")
        return real_read(fd, length, offset)

    monkeypatch.setattr(disk, "read_at", unplugged)
    with pytest.raises(EnvironmentFailure, match="disappeared while it was read"):
        library_acquire(age_key, image, tmp_path / "b.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["usb-stick.dd"]
