"""Fixtures for the lab: seized trees of three suspects, bundles of them, a register path."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from evidence_kit.models import CaseInfo
from tests.conftest import Bundle, MakeBundle

# The stolen customer database: the content that ties the seller to a buyer.
LEAKED_DB = b"SQLite format 3\x00" + bytes(range(256)) * 64 + "张伟,17012345678\n".encode() * 40
# A file every Windows machine has: on the known-files list, it must never link anything.
OS_FILE = b"# Copyright (c) 1993-2009 Microsoft Corp.\r\n# hosts file\r\n127.0.0.1 localhost\r\n"


@dataclass(frozen=True)
class Seizure:
    case: CaseInfo
    tree: Path


def case_info(case_number: str, evidence_number: str = "E-01") -> CaseInfo:
    return CaseInfo(case_number=case_number, evidence_number=evidence_number, examiner="Lab 7")


@pytest.fixture
def seizures(tmp_path: Path) -> dict[str, Seizure]:
    """Three seizures: the seller (case A), a buyer (case B) holding a renamed copy of the
    seller's database, and an unrelated scam operator (case C). All three hold the same
    operating-system file and an empty file; nothing else is shared."""
    made: dict[str, Seizure] = {}
    layouts = {
        "seller": ("GZ-2026-0117", {"data/shop.db": LEAKED_DB, "notes.txt": b"to do: sell GD\n"}),
        "buyer": (
            "SZ-2026-0342",
            {"Download/客户资料.db": LEAKED_DB, "chat.txt": b"paid 2 USDT\n"},
        ),
        "scam": ("FS-2026-0090", {"scripts/refund.txt": b"Your parcel is lost...\n"}),
    }
    for name, (case_number, files) in layouts.items():
        root = tmp_path / "seized" / name
        for relative, content in {
            **files,
            "Windows/System32/drivers/etc/hosts": OS_FILE,
            "empty.log": b"",
        }.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        made[name] = Seizure(case_info(case_number), root)
    return made


@pytest.fixture
def bundles_of(
    seizures: dict[str, Seizure], make_bundle: MakeBundle
) -> Callable[..., dict[str, Bundle]]:
    """The seizures acquired (all, or the names given) into bundles, one per seizure."""

    def make(*names: str, prefix: str = "", **options: object) -> dict[str, Bundle]:
        return {
            name: make_bundle(
                seizures[name].tree, name=prefix + name, case=seizures[name].case, **options
            )
            for name in names or seizures
        }

    return make


@pytest.fixture
def register(tmp_path: Path) -> Path:
    """Where the test's register goes (created by the first ingest)."""
    return tmp_path / "lab" / "register.sqlite"


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    where = len(data) // 2 if offset is None else offset
    data[where] ^= 0xFF
    path.write_bytes(bytes(data))


def custody_lines(bundle: Bundle) -> list[str]:
    return bundle.custody_log.read_text().splitlines()


def fsencoded(path: Path) -> bytes:
    return os.fsencode(path)
