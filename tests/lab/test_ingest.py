"""``lab ingest``: every bundle verified in full, registered once, linked by content.

The scenario the lab exists for: a seller's bundle and a buyer's bundle hold the same
stolen database under different names, a third case holds nothing of it, and all three
hold operating-system files and empty files that must link nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyrage

from evidence_kit.lab import IngestRequest, find_content, find_links, ingest_bundles
from tests.conftest import AgeKey, Bundle, SigningKey
from tests.lab.conftest import LEAKED_DB, OS_FILE, Seizure, custody_lines, flip_byte

LEAKED_SHA256 = hashlib.sha256(LEAKED_DB).hexdigest()


def ingest(cli: Callable[..., Any], register: Path, *args: str | Path) -> Any:
    return cli("lab", "ingest", *args, "--register", register)


def rows(register: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(register) as db:
        return db.execute(sql).fetchall()


def table_rows(register: Path, table: str) -> list[tuple[Any, ...]]:
    return rows(register, f"SELECT * FROM {table} ORDER BY 1, 2")  # noqa: S608


def test_three_bundles_links_report_exactly_the_leaked_database_in_two_cases(
    cli: Callable[..., Any],
    bundles_of: Callable[..., dict[str, Bundle]],
    seizures: dict[str, Seizure],
    age_key: AgeKey,
    register: Path,
    tmp_path: Path,
) -> None:
    bundles = bundles_of()
    result = ingest(
        cli, register, *(b.container for b in bundles.values()), "-i", age_key.identity_file
    )
    assert result.exit_code == 0, result.stderr
    known = tmp_path / "os-files.sha256"
    known.write_text(f"{hashlib.sha256(OS_FILE).hexdigest()}  hosts\n")
    assert cli("lab", "known", "add", known, "--register", register).exit_code == 0

    links = cli("lab", "links", "--register", register, "--json")
    assert links.exit_code == 0, links.stderr
    report = json.loads(links.stdout)
    assert report["registered_bundles"] == 3
    assert report["ignored_known"] == 1  # the hosts file, in all three bundles
    assert len(report["groups"]) == 1
    (group,) = report["groups"]
    assert group["sha256"] == LEAKED_SHA256
    assert group["size"] == len(LEAKED_DB)
    assert group["cases"] == ["GZ-2026-0117", "SZ-2026-0342"]
    assert group["bundles"] == 2
    places = {
        (o["case_number"], o["evidence_number"], o["original_path"]) for o in group["occurrences"]
    }
    assert places == {
        ("GZ-2026-0117", "E-01", str(seizures["seller"].tree / "data" / "shop.db")),
        ("SZ-2026-0342", "E-01", str(seizures["buyer"].tree / "Download" / "客户资料.db")),
    }
    assert report["cross_case_groups"] == 1

    # Restricted to the scam case, nothing is shared; to the buyer's, the same one group.
    scam = json.loads(cli("lab", "links", "--register", register, "--json", "--case",
                          "FS-2026-0090").stdout)  # fmt: skip
    assert scam["groups"] == []
    buyer = json.loads(cli("lab", "links", "--register", register, "--json", "--case",
                           "SZ-2026-0342").stdout)  # fmt: skip
    assert [g["sha256"] for g in buyer["groups"]] == [LEAKED_SHA256]

    human = cli("lab", "links", "--register", register)
    assert LEAKED_SHA256 in human.stderr and "客户资料.db" in human.stderr
    assert "2 cases, 2 bundles" in human.stderr


def test_without_the_known_list_the_os_file_links_all_three_and_empty_files_never_do(
    bundles_of: Callable[..., dict[str, Bundle]], age_key: AgeKey, register: Path
) -> None:
    bundles = bundles_of()
    ingest_bundles(IngestRequest([b.container for b in bundles.values()], age_key.material,
                                 register=register))  # fmt: skip
    links = find_links(register)
    by_digest = {g.sha256: g for g in links.groups}
    assert set(by_digest) == {LEAKED_SHA256, hashlib.sha256(OS_FILE).hexdigest()}
    assert by_digest[hashlib.sha256(OS_FILE).hexdigest()].bundles == 3
    assert hashlib.sha256(b"").hexdigest() not in by_digest
    # The group spanning three cases comes first.
    assert links.groups[0].sha256 == hashlib.sha256(OS_FILE).hexdigest()
    # --min-size above the OS file's size leaves only the database.
    assert [g.sha256 for g in find_links(register, min_size=len(OS_FILE) + 1).groups] == [
        LEAKED_SHA256
    ]


def test_find_by_file_and_by_digest_names_bundles_cases_and_original_paths(
    cli: Callable[..., Any],
    bundles_of: Callable[..., dict[str, Bundle]],
    seizures: dict[str, Seizure],
    age_key: AgeKey,
    register: Path,
    tmp_path: Path,
) -> None:
    bundles = bundles_of("seller", "buyer", hash_algorithms=("sha256", "md5"))
    ingest_bundles(IngestRequest([b.container for b in bundles.values()], age_key.material,
                                 register=register))  # fmt: skip
    sample = tmp_path / "found-on-a-usb-stick.db"
    sample.write_bytes(LEAKED_DB)
    by_file = cli("lab", "find", sample, "--register", register, "--json")
    assert by_file.exit_code == 0, by_file.stderr
    found = json.loads(by_file.stdout)
    assert found["digest"] == LEAKED_SHA256 and found["file"] == str(sample)
    assert found["cases"] == ["GZ-2026-0117", "SZ-2026-0342"] and found["bundles"] == 2
    assert {o["bundle_id"] for o in found["occurrences"]} == {
        b.result.bundle_id for b in bundles.values()
    }
    assert all(o["digests"]["md5"] == hashlib.md5(LEAKED_DB).hexdigest()  # noqa: S324
               for o in found["occurrences"])  # fmt: skip

    md5 = hashlib.md5(LEAKED_DB).hexdigest()  # noqa: S324
    for query in (md5, f"md5:{md5}", LEAKED_SHA256.upper(), f"sha256:{LEAKED_SHA256}"):
        again = find_content(register, query)
        assert len(again.occurrences) == 2, query

    notes = find_content(register, hashlib.sha256(b"to do: sell GD\n").hexdigest())
    assert [o.original_path for o in notes.occurrences] == [
        str(seizures["seller"].tree / "notes.txt")
    ]
    nothing = cli("lab", "find", "0" * 64, "--register", register)
    assert nothing.exit_code == 0 and "in no verified bundle" in nothing.stderr
    for bad in ("not-a-digest", "abc", "md5:" + LEAKED_SHA256):
        refused = cli("lab", "find", bad, "--register", register)
        assert refused.exit_code == 2 and "neither a file nor a digest" in refused.stderr
    missing = cli("lab", "find", LEAKED_SHA256, "--register", tmp_path / "none.sqlite")
    assert missing.exit_code == 2 and "no register" in missing.stderr


def test_reingesting_the_same_bundle_changes_nothing_and_records_receipt_once(
    cli: Callable[..., Any],
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    signing_key: SigningKey,
    register: Path,
) -> None:
    seller = bundles_of("seller")["seller"]
    args = ("-i", age_key.identity_file, "--sign", signing_key.private_pem, "--actor",
            "Lab 7 intake", "--json")  # fmt: skip
    first = ingest(cli, register, seller.container, *args)
    assert first.exit_code == 0, first.stderr
    outcome = json.loads(first.stdout)["bundles"][0]
    assert outcome["outcome"] == "added"
    assert outcome["received_event"]["event"]["action"] == "received"
    assert outcome["received_event"]["event"]["actor"] == "Lab 7 intake"
    log = custody_lines(seller)
    assert [json.loads(line)["action"] for line in log] == ["acquired", "received"]
    tables = ("bundles", "items", "item_digests")
    before = {t: table_rows(register, t) for t in tables}

    second = ingest(cli, register, seller.container, *args)
    assert second.exit_code == 0, second.stderr
    again = json.loads(second.stdout)["bundles"][0]
    assert again["outcome"] == "already-registered" and again["received_event"] is None
    assert custody_lines(seller) == log  # no second 'received'
    after = {t: table_rows(register, t) for t in tables}
    for table in ("items", "item_digests"):
        assert after[table] == before[table]
    changed = [(a, b) for a, b in zip(after["bundles"][0], before["bundles"][0], strict=True)
               if a != b]  # fmt: skip
    assert len(changed) == 1  # last_ingested_at only
    assert [r[0] for r in rows(register, "SELECT outcome FROM ingests ORDER BY id")] == [
        "added",
        "already-registered",
    ]


def test_a_changed_container_is_flagged_loudly_and_never_indexed(
    cli: Callable[..., Any],
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    register: Path,
) -> None:
    seller = bundles_of("seller")["seller"]
    assert ingest(cli, register, seller.container, "-i", age_key.identity_file).exit_code == 0
    original = hashlib.sha256(seller.container.read_bytes()).hexdigest()
    flip_byte(seller.container)
    changed = ingest(cli, register, seller.container, "-i", age_key.identity_file)
    assert changed.exit_code == 1
    assert "CONTAINER CHANGED" in changed.stderr and original in changed.stderr
    statuses = rows(register, "SELECT status, container_changed, container_sha256 FROM bundles "
                              "ORDER BY id")  # fmt: skip
    assert [(s, c) for s, c, _sha in statuses] == [("verified", 1), ("failed", 1)]
    assert statuses[0][2] == original
    # The first container's items stay, marked as disputed; the new one has none.
    found = find_content(register, LEAKED_SHA256)
    assert len(found.occurrences) == 1 and found.occurrences[0].container_changed
    assert found.occurrences[0].container_sha256 == original
    assert rows(register, "SELECT COUNT(*) FROM items WHERE bundle = 2") == [(0,)]
    shown = cli("lab", "find", LEAKED_SHA256, "--register", register)
    assert "CONTAINER CHANGED" in shown.stderr


def test_a_bundle_that_fails_verification_is_recorded_as_failed_and_never_indexed(
    cli: Callable[..., Any],
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    register: Path,
) -> None:
    bundles = bundles_of("seller", "buyer")
    flip_byte(bundles["buyer"].container)
    result = ingest(cli, register, bundles["seller"].container, bundles["buyer"].container,
                    "-i", age_key.identity_file, "--json")  # fmt: skip
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    outcomes = {Path(b["check"]["path"]).name: b["outcome"] for b in report["bundles"]}
    assert outcomes == {"seller.zip": "added", "buyer.zip": "failed"}
    failed = next(b for b in report["bundles"] if b["outcome"] == "failed")
    assert (
        failed["items_indexed"] == 0
        and "custody-container-hash-mismatch" in failed["check"]["reasons"]
    )
    assert rows(register, "SELECT case_number, status FROM bundles ORDER BY id") == [
        ("GZ-2026-0117", "verified"),
        ("SZ-2026-0342", "failed"),
    ]
    # The buyer's copy of the database is not in the index: nothing links.
    assert [o.case_number for o in find_content(register, LEAKED_SHA256).occurrences] == [
        "GZ-2026-0117"
    ]
    assert find_links(register).groups == []


def test_a_bundle_failing_now_after_verifying_before_leaves_the_index(
    cli: Callable[..., Any],
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    register: Path,
) -> None:
    bundles = bundles_of("seller", "buyer")
    containers = [b.container for b in bundles.values()]
    assert ingest(cli, register, *containers, "-i", age_key.identity_file).exit_code == 0
    assert len(find_links(register).groups) == 2
    log = bundles["buyer"].custody_log
    log.write_text(log.read_text().replace("SZ-2026-0342", "SZ-2026-0343"))  # an edited log
    again = ingest(cli, register, bundles["buyer"].container, "-i", age_key.identity_file)
    assert again.exit_code == 1 and "NOW FAILING" in again.stderr
    assert rows(register, "SELECT status FROM bundles ORDER BY id") == [("verified",), ("failed",)]
    assert find_links(register).groups == []


def test_a_bundle_no_key_opens_is_recorded_skipped_and_said_so(
    cli: Callable[..., Any],
    bundles_of: Callable[..., dict[str, Bundle]],
    age_key: AgeKey,
    other_age_key: AgeKey,
    register: Path,
) -> None:
    bundles = bundles_of("seller")
    sealed_elsewhere = bundles_of(
        "buyer", recipients=[pyrage.x25519.Recipient.from_str(other_age_key.recipient)]
    )["buyer"]
    result = ingest(cli, register, bundles["seller"].container, sealed_elsewhere.container,
                    "-i", age_key.identity_file)  # fmt: skip
    assert result.exit_code == 4
    assert "NO-KEY" in result.stderr and "buyer.zip" in result.stderr
    assert rows(register, "SELECT case_number, status, item_count FROM bundles ORDER BY id") == [
        ("GZ-2026-0117", "verified", 4),
        ("SZ-2026-0342", "no-key", 0),
    ]
    assert rows(register, "SELECT case_from FROM bundles WHERE status = 'no-key'") == [
        ("custody-log",)
    ]
    # With the right key later, the same container becomes verified and indexed.
    later = ingest(cli, register, sealed_elsewhere.container, "-i", other_age_key.identity_file,
                   "--json")  # fmt: skip
    assert later.exit_code == 0, later.stderr
    assert json.loads(later.stdout)["bundles"][0]["outcome"] == "now-verified"
    assert LEAKED_SHA256 in {group.sha256 for group in find_links(register).groups}


def test_ingest_without_any_key_is_refused_before_the_register_is_touched(
    cli: Callable[..., Any], bundles_of: Callable[..., dict[str, Bundle]], register: Path
) -> None:
    seller = bundles_of("seller")["seller"]
    result = ingest(cli, register, seller.container)
    assert result.exit_code == 4 and "needs the lab's key" in result.stderr
    assert not register.exists()


def test_files_that_are_not_bundles_are_not_recorded(
    cli: Callable[..., Any], age_key: AgeKey, register: Path, tmp_path: Path
) -> None:
    text = tmp_path / "notes.zip"
    text.write_text("not a zip at all\n")
    missing = tmp_path / "gone.zip"
    result = ingest(cli, register, text, missing, "-i", age_key.identity_file, "--json")
    report = json.loads(result.stdout)
    assert [(b["check"]["verdict"], b["outcome"]) for b in report["bundles"]] == [
        ("not-a-bundle", "not-recorded"),
        ("unreadable", "not-recorded"),
    ]
    assert result.exit_code == 1
    assert rows(register, "SELECT COUNT(*) FROM bundles") == [(0,)]
    only_missing = ingest(cli, register, missing, "-i", age_key.identity_file)
    assert only_missing.exit_code == 5 and "gone.zip" in only_missing.stderr


def test_parallel_ingest_registers_what_a_serial_one_does(
    bundles_of: Callable[..., dict[str, Bundle]], age_key: AgeKey, tmp_path: Path
) -> None:
    containers = [b.container for b in bundles_of().values()]
    serial, parallel = tmp_path / "serial.sqlite", tmp_path / "parallel.sqlite"
    ingest_bundles(IngestRequest(containers, age_key.material, register=serial))
    result = ingest_bundles(IngestRequest(containers, age_key.material, register=parallel, jobs=2))
    assert [b.outcome for b in result.bundles] == ["added"] * 3
    query = ("SELECT b.bundle_id, i.item_id, i.original_path, d.algorithm, d.digest FROM items i "
             "JOIN bundles b ON b.id = i.bundle JOIN item_digests d ON d.bundle = i.bundle "
             "AND d.item_id = i.item_id ORDER BY 1, 2, 4")  # fmt: skip
    assert rows(serial, query) == rows(parallel, query)
    assert len(rows(serial, query)) > 10


def test_the_register_holds_no_evidence_content_and_no_secret(
    make_bundle: Callable[..., Bundle],
    passphrase_file: Path,
    age_key: AgeKey,
    register: Path,
    tmp_path: Path,
) -> None:
    marker = b"MARKER-7c1e-PLAINTEXT-EVIDENCE-CONTENT"
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "secret.txt").write_bytes(marker * 50)
    passphrase = passphrase_file.read_text().strip()
    bundle = make_bundle(tree, passphrase=passphrase)
    ingest_bundles(IngestRequest([bundle.container], age_key.material, register=register))
    data = register.read_bytes()
    assert marker not in data and passphrase.encode() not in data
    assert str(age_key.identity).encode() not in data
    assert hashlib.sha256(marker * 50).hexdigest().encode() in data  # digests, not content


def test_hostile_names_reach_the_terminal_escaped_and_json_keeps_their_exact_bytes(
    cli: Callable[..., Any], make_bundle: Callable[..., Bundle], age_key: AgeKey, tmp_path: Path
) -> None:
    names = [
        b"red\x1b[31mALERT\x1b[0m.db",
        b"two\nlines.db",
        b"latin1-\xe9.db",
        b"\xe2\x80\xaedb.exe",
    ]
    bundles = []
    for index in range(2):
        tree = tmp_path / f"tree{index}"
        tree.mkdir()
        for name in names:
            with open(os.path.join(os.fsencode(tree), name), "wb") as handle:
                handle.write(LEAKED_DB + name)  # the same content in both bundles, per name
        bundles.append(make_bundle(tree, name=f"hostile{index}"))
    register = tmp_path / "register.sqlite"
    args = ("--register", register)
    assert cli("lab", "ingest", *(b.container for b in bundles), "-i", age_key.identity_file,
               *args).exit_code == 0  # fmt: skip
    shown = cli("lab", "links", *args)
    assert shown.exit_code == 0
    assert "\x1b" not in shown.stderr and "\u202e" not in shown.stderr
    assert "red\\x1b[31mALERT" in shown.stderr and "two\\nlines.db" in shown.stderr
    assert "latin1-\\xe9.db" in shown.stderr and "\\u202edb.exe" in shown.stderr
    report = json.loads(cli("lab", "links", *args, "--json").stdout)
    originals = {
        base64.b64decode(o["original_path_b64"]).rpartition(b"/")[2]
        for group in report["groups"]
        for o in group["occurrences"]
    }
    assert originals == set(names)
