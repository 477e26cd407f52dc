"""The lab register: an SQLite file of bundles received, their items and digests.

One file, owner-only (0600; its folder 0700 when created here), in the user's data folder
unless a path is given. Every write is one ``BEGIN IMMEDIATE`` transaction, so a crash,
a lock or a damaged page leaves the register as it was before that bundle. Readers and
writers in other processes wait up to ``lock_timeout`` seconds for each other.

The register is refused, never repaired or reshaped, when it is not SQLite, when it is
another program's database, or when a newer evidence-kit wrote it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from evidence_kit import clock
from evidence_kit.errors import EnvironmentFailure, RegisterLocked, RegisterUnusable, UsageError
from evidence_kit.i18n import _
from evidence_kit.lab.migrations import MIGRATIONS, REGISTER_KIND, SCHEMA_VERSION
from evidence_kit.lab.records import KnownEntry, KnownList, Occurrence
from evidence_kit.naming import display_name
from evidence_kit.provenance import TOOL

DEFAULT_LOCK_TIMEOUT = 30.0
REGISTER_FILE = "register.sqlite"


def default_register_path() -> Path:
    """``register.sqlite`` in the user's data folder (``~/.local/share/evidence-kit``)."""
    return Path(platformdirs.user_data_dir("evidence-kit", appauthor=False)) / REGISTER_FILE


@dataclass(frozen=True)
class IndexedItem:
    """What the register keeps of one item: where it was, what it is, its digests."""

    item_id: int
    path: str
    original_path: str
    original_path_b64: str
    kind: str
    status: str
    size: int
    mime_type: str | None
    digests: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class BundleRow:
    id: int
    bundle_id: str
    container_sha256: str
    status: str
    container_changed: bool
    custody_events: int
    received_seq: int | None


@dataclass(frozen=True)
class BundleFacts:
    """A bundle's row as an ingest writes it."""

    bundle_id: str
    container_sha256: str
    container_size: int
    case_number: str | None
    evidence_number: str | None
    case_from: str | None
    status: str
    seal: str | None
    signer_fingerprint: str | None
    item_count: int
    total_bytes: int
    custody_head: str | None
    custody_events: int
    path: str


@dataclass(frozen=True)
class IngestRun:
    """One line of the register's ingest history."""

    bundle: int | None
    path: str
    container_sha256: str
    verdict: str
    outcome: str
    reasons: Sequence[str]
    actor: str | None
    received_seq: int | None
    host: str


@contextlib.contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    """SQLite's exceptions as evidence-kit errors that name the register."""
    try:
        yield
    except sqlite3.OperationalError as error:
        text = str(error)
        if "locked" in text or "busy" in text:
            raise RegisterLocked(
                _("the register {path} is locked by another process").format(path=path),
                hint=_(
                    "Another lab command is writing to it; try again, or wait longer "
                    "with --lock-timeout."
                ),
            ) from None
        if "readonly" in text or "unable to open" in text or "disk I/O" in text:
            raise EnvironmentFailure(
                _("cannot write the register {path}: {reason}").format(path=path, reason=text)
            ) from None
        if "full" in text:
            raise EnvironmentFailure(
                _("the disk holding the register {path} is full").format(path=path)
            ) from None
        raise RegisterUnusable(
            _("the register {path} cannot be used: {reason}").format(path=path, reason=text)
        ) from None
    except sqlite3.DatabaseError as error:  # not a database, malformed image, ...
        raise RegisterUnusable(
            _("the register {path} is damaged or not a register: {reason}").format(
                path=path, reason=error
            ),
            hint=_("Restore it from a backup; evidence-kit never repairs a register."),
        ) from None


class Register:
    """An open register. Use :func:`open_register`; close with ``close()`` or ``with``."""

    def __init__(self, path: Path, connection: sqlite3.Connection, warnings: list[str]) -> None:
        self.path = path
        self._db = connection
        self.warnings = warnings

    def __enter__(self) -> Register:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: all of it lands, or none of it."""
        with _sqlite_errors(self.path):
            self._db.execute("BEGIN IMMEDIATE")
        try:
            with _sqlite_errors(self.path):
                yield
                self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise

    def _query(self, sql: str, parameters: Sequence[object] = ()) -> list[sqlite3.Row]:
        with _sqlite_errors(self.path):
            return self._db.execute(sql, parameters).fetchall()

    def _run(self, sql: str, parameters: Sequence[object] = ()) -> int:
        """A write inside :meth:`transaction`; returns the new row's id."""
        with _sqlite_errors(self.path):
            return int(self._db.execute(sql, parameters).lastrowid or 0)

    # ------------------------------------------------------------------ bundles

    def bundles_with_id(self, bundle_id: str) -> list[BundleRow]:
        rows = self._query(
            "SELECT id, bundle_id, container_sha256, status, container_changed, "
            "custody_events, received_seq FROM bundles WHERE bundle_id = ? ORDER BY id",
            (bundle_id,),
        )
        return [
            BundleRow(
                id=row["id"],
                bundle_id=row["bundle_id"],
                container_sha256=row["container_sha256"],
                status=row["status"],
                container_changed=bool(row["container_changed"]),
                custody_events=row["custody_events"],
                received_seq=row["received_seq"],
            )
            for row in rows
        ]

    def add_bundle(self, facts: BundleFacts, *, container_changed: bool) -> int:
        now = _utc_now()
        return self._run(
            "INSERT INTO bundles (bundle_id, container_sha256, container_size, case_number, "
            "evidence_number, case_from, status, container_changed, seal, signer_fingerprint, "
            "item_count, total_bytes, custody_head, custody_events, last_path, "
            "first_ingested_at, last_ingested_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                facts.bundle_id, facts.container_sha256, facts.container_size,
                facts.case_number, facts.evidence_number, facts.case_from, facts.status,
                int(container_changed), facts.seal, facts.signer_fingerprint, facts.item_count,
                facts.total_bytes, facts.custody_head, facts.custody_events, facts.path, now,
                now,
            ),
        )  # fmt: skip

    def update_bundle(self, row: int, facts: BundleFacts) -> None:
        """A later ingest of the same container: its verdict and custody as seen now; the
        custody head only moves forward (a concurrent ingest may have seen a longer log)."""
        self._run(
            "UPDATE bundles SET status = ?, case_number = ?, evidence_number = ?, "
            "case_from = ?, seal = ?, signer_fingerprint = ?, item_count = ?, "
            "total_bytes = ?, last_path = ?, last_ingested_at = ?, "
            "custody_head = CASE WHEN ? >= custody_events THEN ? ELSE custody_head END, "
            "custody_events = MAX(custody_events, ?) WHERE id = ?",
            (
                facts.status, facts.case_number, facts.evidence_number, facts.case_from,
                facts.seal, facts.signer_fingerprint, facts.item_count, facts.total_bytes,
                facts.path, _utc_now(), facts.custody_events, facts.custody_head,
                facts.custody_events, row,
            ),
        )  # fmt: skip

    def set_custody(self, row: int, head: str, events: int, received_seq: int) -> None:
        self._run(
            "UPDATE bundles SET custody_head = ?, custody_events = ?, received_seq = ? "
            "WHERE id = ?",
            (head, events, received_seq, row),
        )

    def flag_container_changed(self, rows: Iterable[int]) -> None:
        for row in rows:
            self._run("UPDATE bundles SET container_changed = 1 WHERE id = ?", (row,))

    def replace_items(self, row: int, items: Iterable[IndexedItem]) -> int:
        """The bundle's items and digests, replacing any indexed before; returns how many."""
        self.remove_items(row)
        count = 0
        with _sqlite_errors(self.path):
            for item in items:
                self._db.execute(
                    "INSERT INTO items (bundle, item_id, path, original_path, "
                    "original_path_b64, kind, status, size, mime_type) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        row, item.item_id, item.path, item.original_path,
                        item.original_path_b64, item.kind, item.status, item.size,
                        item.mime_type,
                    ),
                )  # fmt: skip
                self._db.executemany(
                    "INSERT INTO item_digests (bundle, item_id, algorithm, digest) "
                    "VALUES (?, ?, ?, ?)",
                    [(row, item.item_id, algorithm, digest) for algorithm, digest in item.digests],
                )
                count += 1
        return count

    def remove_items(self, row: int) -> None:
        self._run("DELETE FROM item_digests WHERE bundle = ?", (row,))
        self._run("DELETE FROM items WHERE bundle = ?", (row,))

    def add_ingest_run(self, run: IngestRun) -> None:
        self._run(
            "INSERT INTO ingests (bundle, at, path, container_sha256, verdict, outcome, "
            "reasons, actor, received_seq, tool, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.bundle, _utc_now(), run.path, run.container_sha256, run.verdict,
                run.outcome, json.dumps(list(run.reasons)), run.actor, run.received_seq,
                f"{TOOL.name} {TOOL.version}", run.host,
            ),
        )  # fmt: skip

    # ------------------------------------------------------------------ queries

    def occurrences(self, algorithm: str, digest: str) -> list[Occurrence]:
        """Every item of a verified bundle with this digest."""
        rows = self._query(
            "SELECT b.bundle_id, b.container_sha256, b.last_path, b.case_number, "
            "b.evidence_number, b.container_changed, i.bundle, i.item_id, i.path, i.original_path, "
            "i.original_path_b64, i.kind, i.status, i.size, i.mime_type "
            "FROM item_digests x JOIN items i ON i.bundle = x.bundle AND i.item_id = x.item_id "
            "JOIN bundles b ON b.id = x.bundle "
            "WHERE x.algorithm = ? AND x.digest = ? AND b.status = 'verified' "
            "ORDER BY b.case_number, b.evidence_number, b.bundle_id, i.item_id",
            (algorithm, digest),
        )
        return [
            Occurrence(
                bundle_id=row["bundle_id"],
                container_sha256=row["container_sha256"],
                container_path=row["last_path"],
                case_number=row["case_number"] or "",
                evidence_number=row["evidence_number"] or "",
                item_id=row["item_id"],
                path=row["path"],
                original_path=row["original_path"],
                original_path_b64=row["original_path_b64"],
                kind=row["kind"],
                status=row["status"],
                size=row["size"],
                mime_type=row["mime_type"],
                container_changed=bool(row["container_changed"]),
                digests={
                    d["algorithm"]: d["digest"]
                    for d in self._query(
                        "SELECT algorithm, digest FROM item_digests WHERE bundle = ? "
                        "AND item_id = ? ORDER BY algorithm",
                        (row["bundle"], row["item_id"]),
                    )
                },
            )
            for row in rows
        ]

    def shared_contents(self, case: str | None, min_size: int) -> tuple[list[str], int]:
        """SHA-256 digests of contents found in more than one verified bundle, at least
        ``min_size`` bytes and never empty, left out when on a known-files list; and how
        many shared contents the known lists removed."""
        rows = self._query(
            "SELECT d.digest, COUNT(DISTINCT d.bundle) AS bundles, "
            "MAX(EXISTS (SELECT 1 FROM item_digests k JOIN known_digests n "
            "ON n.algorithm = k.algorithm AND n.digest = k.digest "
            "WHERE k.bundle = d.bundle AND k.item_id = d.item_id)) AS known, "
            "MAX(b.case_number = ?) AS in_case "
            "FROM item_digests d JOIN items i ON i.bundle = d.bundle AND i.item_id = d.item_id "
            "JOIN bundles b ON b.id = d.bundle "
            "WHERE d.algorithm = 'sha256' AND b.status = 'verified' AND i.size > 0 "
            "AND i.size >= ? GROUP BY d.digest HAVING COUNT(DISTINCT d.bundle) > 1",
            (case, min_size),
        )
        if case is not None:
            rows = [row for row in rows if row["in_case"]]
        known = sum(1 for row in rows if row["known"])
        return [row["digest"] for row in rows if not row["known"]], known

    def verified_bundles(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM bundles WHERE status = 'verified'")[0][0])

    def known_entries(self, algorithm: str, digest: str) -> list[KnownEntry]:
        return [
            KnownEntry(list_name=row["name"], algorithm=algorithm, digest=digest, name=row["entry"])
            for row in self._query(
                "SELECT l.name, k.name AS entry FROM known_digests k "
                "JOIN known_lists l ON l.id = k.list WHERE k.algorithm = ? AND k.digest = ? "
                "ORDER BY l.id",
                (algorithm, digest),
            )
        ]

    # ------------------------------------------------------------------ known files

    def known_list(self, list_sha256: str) -> KnownList | None:
        rows = self._query(
            "SELECT name, list_sha256, format, entries, added_at FROM known_lists "
            "WHERE list_sha256 = ?",
            (list_sha256,),
        )
        return _known_list(rows[0]) if rows else None

    def known_lists(self) -> list[KnownList]:
        rows = self._query(
            "SELECT name, list_sha256, format, entries, added_at FROM known_lists ORDER BY id"
        )
        return [_known_list(row) for row in rows]

    def add_known_list(
        self,
        name: str,
        list_sha256: str,
        list_format: str,
        entries: Iterable[tuple[str, str, bytes]],
    ) -> KnownList:
        """Inside :meth:`transaction`: a list and its (algorithm, digest, name) entries."""
        added_at = _utc_now()
        row = self._run(
            "INSERT INTO known_lists (name, list_sha256, format, entries, added_at) "
            "VALUES (?, ?, ?, 0, ?)",
            (name, list_sha256, list_format, added_at),
        )
        with _sqlite_errors(self.path):
            self._db.executemany(
                "INSERT OR IGNORE INTO known_digests (list, algorithm, digest, name) "
                "VALUES (?, ?, ?, ?)",
                ((row, algorithm, digest, display_name(entry)) for algorithm, digest, entry in
                 entries),
            )  # fmt: skip
        count = int(self._query("SELECT COUNT(*) FROM known_digests WHERE list = ?", (row,))[0][0])
        self._run("UPDATE known_lists SET entries = ? WHERE id = ?", (count, row))
        return KnownList(
            name=name,
            list_sha256=list_sha256,
            format=list_format,  # type: ignore[arg-type]
            entries=count,
            added_at=added_at,
        )


def _known_list(row: sqlite3.Row) -> KnownList:
    return KnownList(
        name=row["name"],
        list_sha256=row["list_sha256"],
        format=row["format"],
        entries=row["entries"],
        added_at=row["added_at"],
    )


def _utc_now() -> str:
    return clock.now().utc or ""


def open_register(
    path: Path | None, *, create: bool, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Register:
    """Open (and with ``create``, create or bring up to date) the register at ``path``,
    or at :func:`default_register_path` when ``path`` is None."""
    path = Path(os.path.abspath(path if path is not None else default_register_path()))
    warnings: list[str] = []
    if create:
        _create_file(path)
    elif not path.is_file():
        raise UsageError(
            _("no register at {path}").format(path=path),
            hint=_("Run lab ingest first, or give --register."),
        )
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise EnvironmentFailure(
            _("cannot read the register {path}: {reason}").format(path=path, reason=error.strerror)
        ) from None
    if stat.S_IMODE(mode) & 0o077:
        warnings.append(
            _("the register {path} is readable by others (mode {mode:04o}); it holds case "
              "names and evidence paths: chmod 600 it").format(path=path, mode=stat.S_IMODE(mode))
        )  # fmt: skip
    with _sqlite_errors(path):
        connection = sqlite3.connect(
            path, timeout=lock_timeout, isolation_level=None, check_same_thread=False
        )
    connection.row_factory = sqlite3.Row
    register = Register(path, connection, warnings)
    try:
        with _sqlite_errors(path):
            connection.execute("PRAGMA foreign_keys = ON")
        _bring_up_to_date(register, connection, create=create)
    except BaseException:
        connection.close()
        raise
    return register


def _create_file(path: Path) -> None:
    """The register's file, owner-only, created before SQLite ever opens it."""
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(mode=0o700, parents=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    except OSError as error:
        raise EnvironmentFailure(
            _("cannot create the register {path}: {reason}").format(
                path=path, reason=error.strerror
            )
        ) from None
    os.close(fd)


def _bring_up_to_date(register: Register, connection: sqlite3.Connection, *, create: bool) -> None:
    path = register.path
    with _sqlite_errors(path):
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise RegisterUnusable(
            _("the register {path} has schema version {found}; this evidence-kit knows up to "
              "{known}").format(path=path, found=version, known=SCHEMA_VERSION),
            hint=_("Use a newer evidence-kit with this register."),
        )  # fmt: skip
    if version == SCHEMA_VERSION:
        _check_kind(register)
        return
    if not create:
        if version == 0 and not _has_tables(connection, path):
            # What a first lab ingest leaves when it is stopped before its schema commits.
            raise UsageError(
                _("the register {path} is empty: nothing was ever ingested into it").format(
                    path=path
                ),
                hint=_("Run lab ingest first, or give --register."),
            )
        raise RegisterUnusable(
            _("the register {path} has schema version {found} and needs an upgrade").format(
                path=path, found=version
            ),
            hint=_("lab ingest and lab known add upgrade a register."),
        )
    with register.transaction():
        # Read again under the write lock: another process may have just done this.
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version == 0 and _has_tables(connection, path):
            raise RegisterUnusable(
                _("{path} is an SQLite database, but not an evidence-kit register; it "
                  "was left as it was").format(path=path)
            )  # fmt: skip
        apply_migrations(connection, version)
        if version == 0:
            connection.execute(
                "INSERT INTO register (id, kind, created_at, created_by) VALUES (1, ?, ?, ?)",
                (REGISTER_KIND, _utc_now(), f"{TOOL.name} {TOOL.version}"),
            )
    _check_kind(register)


def _has_tables(connection: sqlite3.Connection, path: Path) -> bool:
    with _sqlite_errors(path):
        row = connection.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ).fetchone()
    return bool(row[0])


def apply_migrations(connection: sqlite3.Connection, version: int) -> int:
    """Inside a transaction: every migration above ``version``; the new version."""
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        for statement in migration.statements:
            connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {int(migration.version)}")
        version = migration.version
    return version


def _check_kind(register: Register) -> None:
    try:
        rows = register._query("SELECT kind FROM register WHERE id = 1")
    except RegisterUnusable:
        rows = []
    if not rows or rows[0]["kind"] != REGISTER_KIND:
        raise RegisterUnusable(
            _("{path} is an SQLite database, but not an evidence-kit register").format(
                path=register.path
            )
        )


__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "BundleFacts",
    "BundleRow",
    "IndexedItem",
    "IngestRun",
    "Register",
    "apply_migrations",
    "default_register_path",
    "open_register",
]
