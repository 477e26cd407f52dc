"""The register's SQLite schema, as a list of migrations.

A register's schema version is SQLite's ``PRAGMA user_version``. Opening a register
applies, in one transaction, every migration above its version; a register newer than
this evidence-kit knows is refused, never downgraded. A migration is only ever added at
the end of :data:`MIGRATIONS`, never edited once released: registers in the field were
built by it. ``docs/lab.md`` documents every table.

What the register holds: bundles (case, evidence number, bundle id, container SHA-256,
verdict, custody head), their items (paths, type, size, digests), every ingest run, and
known-file hash lists. What it never holds: evidence content, keys, passphrases.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    summary: str
    statements: tuple[str, ...]


REGISTER_KIND = "evidence-kit/lab-register"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "bundles, items and digests, ingest runs, known-file lists",
        (
            """
            CREATE TABLE register (
                id          INTEGER PRIMARY KEY CHECK (id = 1),
                kind        TEXT NOT NULL,
                created_at  TEXT NOT NULL,
                created_by  TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE bundles (
                id                 INTEGER PRIMARY KEY,
                bundle_id          TEXT NOT NULL,
                container_sha256   TEXT NOT NULL,
                container_size     INTEGER NOT NULL,
                case_number        TEXT,
                evidence_number    TEXT,
                case_from          TEXT CHECK (case_from IN ('manifest', 'custody-log')),
                status             TEXT NOT NULL
                                   CHECK (status IN ('verified', 'failed', 'no-key')),
                container_changed  INTEGER NOT NULL DEFAULT 0,
                seal               TEXT,
                signer_fingerprint TEXT,
                item_count         INTEGER NOT NULL DEFAULT 0,
                total_bytes        INTEGER NOT NULL DEFAULT 0,
                custody_head       TEXT,
                custody_events     INTEGER NOT NULL DEFAULT 0,
                received_seq       INTEGER,
                last_path          TEXT NOT NULL,
                first_ingested_at  TEXT NOT NULL,
                last_ingested_at   TEXT NOT NULL,
                UNIQUE (bundle_id, container_sha256)
            )
            """,
            "CREATE INDEX bundles_by_case ON bundles (case_number)",
            """
            CREATE TABLE items (
                bundle             INTEGER NOT NULL REFERENCES bundles (id) ON DELETE CASCADE,
                item_id            INTEGER NOT NULL,
                path               TEXT NOT NULL,
                original_path      TEXT NOT NULL,
                original_path_b64  TEXT NOT NULL,
                kind               TEXT NOT NULL,
                status             TEXT NOT NULL,
                size               INTEGER NOT NULL,
                mime_type          TEXT,
                PRIMARY KEY (bundle, item_id)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE item_digests (
                bundle     INTEGER NOT NULL,
                item_id    INTEGER NOT NULL,
                algorithm  TEXT NOT NULL,
                digest     TEXT NOT NULL,
                PRIMARY KEY (bundle, item_id, algorithm),
                FOREIGN KEY (bundle, item_id) REFERENCES items (bundle, item_id)
                    ON DELETE CASCADE
            ) WITHOUT ROWID
            """,
            "CREATE INDEX item_digests_by_digest ON item_digests (algorithm, digest)",
            """
            CREATE TABLE ingests (
                id                 INTEGER PRIMARY KEY,
                bundle             INTEGER REFERENCES bundles (id) ON DELETE SET NULL,
                at                 TEXT NOT NULL,
                path               TEXT NOT NULL,
                container_sha256   TEXT NOT NULL,
                verdict            TEXT NOT NULL,
                outcome            TEXT NOT NULL,
                reasons            TEXT NOT NULL,
                actor              TEXT,
                received_seq       INTEGER,
                tool               TEXT NOT NULL,
                host               TEXT NOT NULL
            )
            """,
            "CREATE INDEX ingests_by_bundle ON ingests (bundle)",
            """
            CREATE TABLE known_lists (
                id           INTEGER PRIMARY KEY,
                name         TEXT NOT NULL,
                list_sha256  TEXT NOT NULL UNIQUE,
                format       TEXT NOT NULL CHECK (format IN ('sha256sum', 'hashdeep')),
                entries      INTEGER NOT NULL,
                added_at     TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE known_digests (
                list       INTEGER NOT NULL REFERENCES known_lists (id) ON DELETE CASCADE,
                algorithm  TEXT NOT NULL,
                digest     TEXT NOT NULL,
                name       TEXT NOT NULL,
                PRIMARY KEY (list, algorithm, digest)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX known_digests_by_digest ON known_digests (algorithm, digest)",
        ),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version

__all__ = ["MIGRATIONS", "REGISTER_KIND", "SCHEMA_VERSION", "Migration"]
