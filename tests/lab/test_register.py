"""The register: owner-only, versioned, migrated in one step, refused when it is not
ours or is damaged, locked cleanly, and never left with half a bundle."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence_kit.errors import RegisterLocked, RegisterUnusable
from evidence_kit.lab import IngestRequest, ingest_bundles, open_register
from evidence_kit.lab import register as register_module
from evidence_kit.lab.migrations import MIGRATIONS, SCHEMA_VERSION, Migration
from evidence_kit.lab.register import Register
from tests.conftest import REPO, AgeKey, Bundle, SigningKey
from tests.lab.conftest import custody_lines

TABLES = ("register", "bundles", "items", "item_digests", "ingests", "known_lists",
          "known_digests")  # fmt: skip


def schema(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [c[1] for c in db.execute(f"PRAGMA table_info({t})")] for t in tables}


def table_rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()  # noqa: S608


def test_a_new_register_is_owner_only_in_an_owner_only_folder_whatever_the_umask(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new" / "deeper" / "register.sqlite"
    previous = os.umask(0)
    try:
        open_register(path, create=True).close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert set(schema(path)) == set(TABLES)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_register_others_can_read_gets_a_warning(cli: Callable[..., Any], tmp_path: Path) -> None:
    path = tmp_path / "register.sqlite"
    open_register(path, create=True).close()
    path.chmod(0o644)
    result = cli("lab", "known", "list", "--register", path)
    assert result.exit_code == 0
    assert "readable by others (mode 0644)" in result.stderr


def test_the_default_register_lives_in_the_user_data_folder(
    cli: Callable[..., Any],
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    tmp_path: Path,
) -> None:
    seller = bundles_of("seller")["seller"]
    home = tmp_path / "data-home"
    result = cli("lab", "ingest", seller.container, "-i", age_key.identity_file,
                 env={"XDG_DATA_HOME": str(home), "EVIDENCE_KIT_REGISTER": ""})  # fmt: skip
    assert result.exit_code == 0, result.stderr
    default = home / "evidence-kit" / "register.sqlite"
    assert default.is_file() and str(default) in result.stderr
    assert stat.S_IMODE(default.stat().st_mode) == 0o600


def test_the_schema_in_docs_lab_md_is_the_schema_the_code_creates(tmp_path: Path) -> None:
    path = tmp_path / "register.sqlite"
    open_register(path, create=True).close()
    doc = (REPO / "docs" / "lab.md").read_text()
    documented: dict[str, list[str]] = {}
    for block in re.findall(r"^#### `(\w+)`\n(.*?)(?=^#|\Z)", doc, flags=re.M | re.S):
        name, body = block
        documented[name] = re.findall(r"^\| `(\w+)` \|", body, flags=re.M)
    assert documented == schema(path)
    assert f"schema version {SCHEMA_VERSION}" in doc


def test_a_register_left_empty_by_a_stopped_first_ingest_is_taken_up_by_the_next(
    cli: Callable[..., Any],
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    tmp_path: Path,
) -> None:
    # A first ingest stopped after it created the file, before its schema committed.
    path = tmp_path / "register.sqlite"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for args in (("lab", "links"), ("lab", "find", "0" * 64)):
        result = cli(*args, "--register", path)
        assert result.exit_code == 2, (args, result.stderr)
        assert "is empty: nothing was ever ingested" in result.stderr
        assert "Run lab ingest first" in result.stderr
    assert path.read_bytes() == b""
    seller = bundles_of("seller")["seller"]
    result = cli("lab", "ingest", seller.container, "-i", age_key.identity_file, "--register",
                 path)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert set(schema(path)) == set(TABLES)
    assert len(table_rows(path, "bundles")) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "content",
    [b"this is not a database, it is a text file\n" * 100, os.urandom(8192)],
    ids=["text", "random"],
)
def test_a_register_that_is_not_sqlite_is_refused_and_left_as_it_was(
    cli: Callable[..., Any],
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    signing_key: SigningKey,
    tmp_path: Path,
    content: bytes,
) -> None:
    seller = bundles_of("seller")["seller"]
    path = tmp_path / "register.sqlite"
    path.write_bytes(content)
    log = custody_lines(seller)
    result = cli("lab", "ingest", seller.container, "-i", age_key.identity_file, "--register",
                 path, "--sign", signing_key.private_pem, "--actor", "Lab 7")  # fmt: skip
    assert result.exit_code == 5
    assert "damaged or not a register" in result.stderr and "Traceback" not in result.stderr
    assert path.read_bytes() == content
    assert custody_lines(seller) == log  # no 'received' event for a bundle not registered


def test_a_damaged_register_is_refused_with_a_clear_error(
    cli: Callable[..., Any],
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    register: Path,
) -> None:
    bundles = bundles_of()
    containers = [b.container for b in bundles.values()]
    ingest_bundles(IngestRequest(containers[:2], age_key.material, register=register))
    data = bytearray(register.read_bytes())
    page = 4096
    for offset in range(page * 2, len(data), page):  # every page past the schema's
        data[offset : offset + 16] = b"\xa5" * 16
    register.write_bytes(bytes(data))
    damaged = bytes(data)
    for args in (("lab", "ingest", containers[2], "-i", age_key.identity_file),
                 ("lab", "links"), ("lab", "find", "0" * 64)):  # fmt: skip
        result = cli(*args, "--register", register)
        assert result.exit_code == 5, (args, result.stderr)
        assert "register" in result.stderr and "Traceback" not in result.stderr
    assert register.read_bytes() == damaged


def test_another_programs_sqlite_database_is_never_changed(
    cli: Callable[..., Any],
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    tmp_path: Path,
) -> None:
    shop = tmp_path / "shop.db"
    with sqlite3.connect(shop) as db:
        db.execute("CREATE TABLE customers (name TEXT, phone TEXT)")
        db.execute("INSERT INTO customers VALUES ('张伟', '17012345678')")
    before = hashlib.sha256(shop.read_bytes()).hexdigest()
    seller = bundles_of("seller")["seller"]
    result = cli("lab", "ingest", seller.container, "-i", age_key.identity_file, "--register",
                 shop)  # fmt: skip
    assert result.exit_code == 5 and "not an evidence-kit register" in result.stderr
    assert hashlib.sha256(shop.read_bytes()).hexdigest() == before


def test_a_register_from_a_newer_evidence_kit_is_refused(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "register.sqlite"
    open_register(path, create=True).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    result = cli("lab", "links", "--register", path)
    assert result.exit_code == 5
    assert f"schema version {SCHEMA_VERSION + 1}" in result.stderr
    assert "newer evidence-kit" in result.stderr


def test_a_migration_is_applied_once_in_one_transaction(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "register.sqlite"
    open_register(path, create=True).close()
    added = Migration(SCHEMA_VERSION + 1, "a later column",
                      ("ALTER TABLE bundles ADD COLUMN seized_at TEXT",))  # fmt: skip
    monkeypatch.setattr(register_module, "MIGRATIONS", (*MIGRATIONS, added))
    monkeypatch.setattr(register_module, "SCHEMA_VERSION", added.version)
    open_register(path, create=True).close()
    open_register(path, create=True).close()  # a second open applies nothing more
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == added.version
    assert "seized_at" in schema(path)["bundles"]


def test_a_failing_migration_leaves_the_register_at_its_old_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "register.sqlite"
    open_register(path, create=True).close()
    before = schema(path)
    steps = ("CREATE TABLE notes (text TEXT)", "ALTER TABLE nowhere ADD COLUMN x")
    broken = Migration(SCHEMA_VERSION + 1, "half of it works", steps)
    monkeypatch.setattr(register_module, "MIGRATIONS", (*MIGRATIONS, broken))
    monkeypatch.setattr(register_module, "SCHEMA_VERSION", broken.version)
    with pytest.raises(RegisterUnusable):
        open_register(path, create=True)
    assert schema(path) == before  # 'notes' was rolled back with the rest
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_register_locked_mid_run_stops_cleanly_with_earlier_bundles_kept(
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    signing_key: SigningKey,
    register: Path,
) -> None:
    """A real lock, taken by another connection after the first bundle is registered:
    the second bundle's transaction cannot start, so nothing of it is written, and its
    custody log gets no 'received' event."""
    bundles = bundles_of("seller", "buyer")
    holder: list[sqlite3.Connection] = []

    class LockAfterFirst:
        seen = 0

        def start(self, total_items: int, total_bytes: int) -> None:
            pass

        def advance(self, items: int = 0, nbytes: int = 0, errors: int = 0) -> None:
            self.seen += items
            if self.seen == 2:  # the second bundle is verified; take the register
                db = sqlite3.connect(register, isolation_level=None)
                db.execute("BEGIN EXCLUSIVE")
                holder.append(db)

        def finish(self) -> None:
            pass

    from evidence_kit.custody_append import Recorder

    buyer_log = custody_lines(bundles["buyer"])
    request = IngestRequest(
        [bundles["seller"].container, bundles["buyer"].container],
        age_key.material,
        register=register,
        record=Recorder(actor="Lab 7", key=signing_key.key),
        lock_timeout=0.2,
    )
    with pytest.raises(RegisterLocked) as raised:
        ingest_bundles(request, LockAfterFirst())
    assert raised.value.hint is not None and "1 bundles were registered" in raised.value.hint
    holder[0].execute("ROLLBACK")
    holder[0].close()
    with sqlite3.connect(register) as db:
        assert db.execute("SELECT case_number FROM bundles").fetchall() == [("GZ-2026-0117",)]
        assert db.execute("SELECT COUNT(*) FROM ingests").fetchone()[0] == 1
    assert custody_lines(bundles["buyer"]) == buyer_log
    assert [json.loads(line)["action"] for line in custody_lines(bundles["seller"])] == [
        "acquired",
        "received",
    ]


def test_a_write_failing_halfway_through_a_bundle_leaves_nothing_of_it(
    monkeypatch: pytest.MonkeyPatch,
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    register: Path,
) -> None:
    bundles = bundles_of("seller", "buyer")
    ingest_bundles(IngestRequest([bundles["seller"].container], age_key.material,
                                 register=register))  # fmt: skip
    before = {t: table_rows(register, t) for t in TABLES}
    real = Register.replace_items

    def fail_after_some(self: Register, row: int, items: Any) -> int:
        real(self, row, list(items)[:2])  # two items land in the open transaction...
        raise sqlite3.OperationalError("disk I/O error")  # ...then the disk fails

    monkeypatch.setattr(Register, "replace_items", fail_after_some)
    with pytest.raises(Exception, match="cannot write the register"):
        ingest_bundles(IngestRequest([bundles["buyer"].container], age_key.material,
                                     register=register))  # fmt: skip
    after = {t: table_rows(register, t) for t in TABLES}
    assert after == before


def test_two_ingests_running_at_once_register_every_bundle_once(
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    signing_key: SigningKey,
    register: Path,
) -> None:
    """Two real processes, started together on one new register: one takes the seller
    and the buyer, the other the buyer and the scam bundle."""
    bundles = bundles_of()
    sign = ("--sign", str(signing_key.private_pem), "--actor", "Lab 7")
    runs = [
        [bundles["seller"].container, bundles["buyer"].container],
        [bundles["buyer"].container, bundles["scam"].container],
    ]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "evidence_kit",
                "lab",
                "ingest",
                *map(str, containers),
                "-i",
                str(age_key.identity_file),
                "--register",
                str(register),
                *sign,
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for containers in runs
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], [o[1] for o in outputs]
    outcomes = [b["outcome"] for out, _err in outputs for b in json.loads(out)["bundles"]]
    assert sorted(outcomes) == ["added", "added", "added", "already-registered"]
    with sqlite3.connect(register) as db:
        assert sorted(db.execute("SELECT case_number FROM bundles").fetchall()) == [
            ("FS-2026-0090",), ("GZ-2026-0117",), ("SZ-2026-0342",),
        ]  # fmt: skip
        assert db.execute("SELECT COUNT(*) FROM ingests").fetchone()[0] == 4
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for bundle in bundles.values():  # one 'received' event each, the buyer's included
        actions = [json.loads(line)["action"] for line in custody_lines(bundle)]
        assert actions == ["acquired", "received"]
