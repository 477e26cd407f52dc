"""``verify``'s custody checks, the recorded verification, and the printable receipt.

- ``--expect-head HASH[:COUNT]`` (as ``custody show`` prints it) passes while the anchored
  event is in place, also after later events; fails with custody-anchor-missing when events
  up to it were removed (without the anchor that removal passes: the documented limit), with
  custody-anchor-count-mismatch for a wrong count; a malformed anchor is a usage error;
- ``--trust``/``--trust-dir``: an event signed by another key is custody-signer-untrusted,
  naming that event; an empty folder or a ``.pem`` that is not a public key is exit 2;
- ``--sign --actor`` appends a signed 'verified' event stating the outcome (``extract``:
  'extracted'); a failed verification is recorded only while the chain itself holds, and a
  broken, torn or missing log is never appended to (custody-event-not-recorded);
- another bundle's log or no log beside the container fails, with the contents still checked;
- ``custody receipt`` writes one self-contained HTML page, escaped, whose QR code (read back
  by ``zbarimg``) holds exactly ``receipt_text``; a broken log gets no receipt.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evidence_kit import keys
from evidence_kit.canonical import canonical_bytes
from evidence_kit.custody import check_chain, custody_log_path, line_sha256, read_custody_log
from evidence_kit.custody_append import NewEvent, append_event
from evidence_kit.custody_report import custody_report
from evidence_kit.models import CaseInfo
from evidence_kit.receipt import receipt_text
from evidence_kit.schemas import path_of
from tests.conftest import CASE, AgeKey, Bundle, MakeBundle, SigningKey, require_tool

Cli = Callable[..., Any]
HEAD_CHECK = "custody log still holds the expected head"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _no_passphrases_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVIDENCE_KIT_PASSPHRASE", raising=False)
    monkeypatch.delenv(keys.SIGN_PASSPHRASE_ENV, raising=False)


@pytest.fixture(scope="module")
def stranger() -> Ed25519PrivateKey:
    """A valid Ed25519 key nobody was told to trust."""
    return Ed25519PrivateKey.generate()


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path_of(name).read_text(encoding="utf-8"))
    return loaded


def handed_over(
    make_bundle: MakeBundle, small_tree: Path, key: Ed25519PrivateKey, name: str = "bundle"
) -> Bundle:
    """A signed bundle whose log holds acquired, transferred and received, all signed."""
    bundle = make_bundle(small_tree, name=name, signing_key=key)
    append_event(bundle.container, NewEvent("transferred", "Officer Chen Jing",
                                            to="Lab reception"), key)  # fmt: skip
    append_event(bundle.container, NewEvent("received", "Lab reception",
                                            location="Guangzhou forensic lab"), key)  # fmt: skip
    return bundle


@pytest.fixture
def bundle(make_bundle: MakeBundle, small_tree: Path, signing_key: SigningKey) -> Bundle:
    return handed_over(make_bundle, small_tree, signing_key.key)


def run(cli: Cli, *args: str | Path) -> Any:
    result = cli(*args)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def verify(cli: Cli, container: Path, *options: str | Path) -> tuple[int, dict[str, Any]]:
    """``verify --json``: the exit code and the one document, checked against its schema."""
    result = run(cli, "verify", container, *options, "--json", "-q")
    document = json.loads(result.stdout)
    name = "error" if "exit_code" in document else "verification-report"
    jsonschema.validate(document, schema(name))
    return result.exit_code, document


def errors(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["code"], f["subject"]) for f in report["findings"] if f["severity"] == "error"]


def error_codes(report: dict[str, Any]) -> set[str]:
    return {code for code, _subject in errors(report)}


def check_status(report: dict[str, Any], name: str) -> str:
    (status,) = [c["status"] for c in report["checks"] if c["name"] == name]
    return str(status)


def head(cli: Cli, container: Path) -> tuple[str, int]:
    """(head hash, event count) as ``custody show --json`` gives them."""
    result = run(cli, "custody", "show", container, "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema("custody-report"))
    return document["head_sha256"], document["event_count"]


def log_lines(container: Path) -> list[bytes]:
    return custody_log_path(container).read_bytes().splitlines(keepends=True)


def snapshot(container: Path) -> tuple[bytes, bytes | None]:
    log = custody_log_path(container)
    return container.read_bytes(), log.read_bytes() if log.exists() else None


def pem_body(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and "-----" not in line]


def recording(signing_key: SigningKey) -> tuple[str | Path, ...]:
    return ("--sign", signing_key.private_pem, "--actor", "Examiner Wu Fang")


def flip_byte(container: Path) -> str:
    """Alter one byte in the middle of the container; its new SHA-256."""
    data = bytearray(container.read_bytes())
    data[len(data) // 2] ^= 0x01
    container.write_bytes(bytes(data))
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------ --expect-head


def test_expect_head_from_custody_show_passes_and_changes_nothing(bundle: Bundle, cli: Cli) -> None:
    digest, count = head(cli, bundle.container)
    assert count == 3
    before = snapshot(bundle.container)
    code, report = verify(cli, bundle.container, "--expect-head", f"{digest}:{count}")
    assert code == 0, report
    assert report["verdict"] == "verified"
    assert check_status(report, HEAD_CHECK) == "pass"
    assert report["custody"]["head_sha256"] == digest
    assert snapshot(bundle.container) == before


@pytest.mark.parametrize("form", ["hash-only", "upper-case", "surrounding-space"])
def test_expect_head_in_other_accepted_forms_passes(bundle: Bundle, cli: Cli, form: str) -> None:
    digest, count = head(cli, bundle.container)
    anchor = {
        "hash-only": digest,
        "upper-case": f"{digest.upper()}:{count}",
        "surrounding-space": f" {digest}:{count} ",
    }[form]
    code, report = verify(cli, bundle.container, "--expect-head", anchor)
    assert code == 0, report
    assert check_status(report, HEAD_CHECK) == "pass"


def test_expect_head_still_passes_after_later_events(
    bundle: Bundle, cli: Cli, signing_key: SigningKey
) -> None:
    digest, count = head(cli, bundle.container)
    append_event(bundle.container, NewEvent("stored", "Lab reception", note="locker 4"),
                 signing_key.key)  # fmt: skip
    append_event(bundle.container, NewEvent("opened", "Examiner Wu Fang"), signing_key.key)
    assert head(cli, bundle.container)[1] == count + 2
    code, report = verify(cli, bundle.container, "--expect-head", f"{digest}:{count}")
    assert code == 0, report
    assert check_status(report, HEAD_CHECK) == "pass"


@pytest.mark.parametrize("dropped", [1, 2])
def test_removing_events_up_to_the_anchor_is_caught_only_with_the_anchor(
    bundle: Bundle, cli: Cli, dropped: int
) -> None:
    """Truncating the log leaves a chain that holds: without an anchor verification passes
    (the limit the documentation states); with the head written down earlier it fails."""
    digest, count = head(cli, bundle.container)
    lines = log_lines(bundle.container)
    custody_log_path(bundle.container).write_bytes(b"".join(lines[:-dropped]))
    shortened_head = line_sha256(lines[-dropped - 1])

    code, report = verify(cli, bundle.container)
    assert code == 0, report
    assert report["custody"]["events"] == count - dropped

    code, report = verify(cli, bundle.container, "--expect-head", f"{digest}:{count}")
    assert code == 1, report
    assert errors(report) == [("custody-anchor-missing", f"custody log head {digest[:16]}…")]
    (finding,) = [f for f in report["findings"] if f["code"] == "custody-anchor-missing"]
    assert (finding["expected"], finding["actual"]) == (digest, shortened_head)
    assert check_status(report, HEAD_CHECK) == "fail"


@pytest.mark.parametrize("offset", [1, -1])
def test_a_wrong_count_is_a_count_mismatch(bundle: Bundle, cli: Cli, offset: int) -> None:
    digest, count = head(cli, bundle.container)
    code, report = verify(cli, bundle.container, "--expect-head", f"{digest}:{count + offset}")
    assert code == 1, report
    assert [c for c, _s in errors(report)] == ["custody-anchor-count-mismatch"]
    (finding,) = [f for f in report["findings"] if f["severity"] == "error"]
    assert (finding["expected"], finding["actual"]) == (str(count + offset), str(count))


def test_an_anchor_from_another_bundle_is_missing(
    bundle: Bundle, make_bundle: MakeBundle, small_tree: Path, signing_key: SigningKey, cli: Cli
) -> None:
    other = handed_over(make_bundle, small_tree, signing_key.key, name="other")
    digest, count = head(cli, other.container)
    assert head(cli, bundle.container)[1] == count
    code, report = verify(cli, bundle.container, "--expect-head", f"{digest}:{count}")
    assert code == 1, report
    assert [c for c, _s in errors(report)] == ["custody-anchor-missing"]


@pytest.mark.parametrize(
    "anchor",
    ["xyz", "a" * 63, "{head}:0", "{head}:-1", "{head}:", "{head}:1:2", "{head}x", "{head} 3", ""],
)
def test_a_malformed_anchor_is_a_usage_error(bundle: Bundle, cli: Cli, anchor: str) -> None:
    digest, _count = head(cli, bundle.container)
    before = snapshot(bundle.container)
    code, document = verify(cli, bundle.container, "--expect-head", anchor.format(head=digest))
    assert code == 2, document
    assert document["exit_code"] == 2
    assert "--expect-head" in document["message"]
    assert snapshot(bundle.container) == before


# ------------------------------------------------------------------- --trust, --trust-dir


def trust_options(how: str, public_pems: list[Path], folder: Path) -> list[str | Path]:
    if how == "file":
        return [option for pem in public_pems for option in ("--trust", pem)]
    folder.mkdir()
    for pem in public_pems:
        shutil.copyfile(pem, folder / pem.name)
    return ["--trust-dir", folder]


@pytest.mark.parametrize("how", ["file", "dir"])
def test_events_signed_by_the_trusted_key_pass(
    bundle: Bundle, signing_key: SigningKey, age_key: AgeKey, cli: Cli, tmp_path: Path, how: str
) -> None:
    trust = trust_options(how, [signing_key.public_pem], tmp_path / "trusted")
    code, report = verify(cli, bundle.container, *trust)
    assert code == 0, report
    assert errors(report) == []
    code, report = verify(cli, bundle.container, "--identity", age_key.identity_file, *trust)
    assert code == 0, report
    assert (report["seal"], report["signer_trusted"]) == ("signed", True)


@pytest.mark.parametrize("how", ["file", "dir"])
def test_an_event_signed_by_another_key_is_untrusted_and_named(
    bundle: Bundle,
    signing_key: SigningKey,
    stranger: Ed25519PrivateKey,
    cli: Cli,
    tmp_path: Path,
    how: str,
) -> None:
    append_event(bundle.container, NewEvent("stored", "Lab reception"), stranger)
    append_event(bundle.container, NewEvent("opened", "Examiner Wu Fang"), signing_key.key)
    code, report = verify(cli, bundle.container)
    assert code == 0, report  # the signature itself holds; only its signer is unknown

    trust = trust_options(how, [signing_key.public_pem], tmp_path / "trusted")
    code, report = verify(cli, bundle.container, *trust)
    assert code == 1, report
    assert errors(report) == [("custody-signer-untrusted", "custody event 3 (stored)")]
    (finding,) = [f for f in report["findings"] if f["severity"] == "error"]
    assert finding["actual"] == keys.fingerprint(stranger.public_key())


def test_an_empty_trust_folder_is_a_usage_error(bundle: Bundle, cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "trusted"
    empty.mkdir()
    (empty / "officer.pub").write_text("keys end in .pem\n")
    code, document = verify(cli, bundle.container, "--trust-dir", empty)
    assert code == 2, document
    assert "no public key" in document["message"]


@pytest.mark.parametrize("kind", ["text", "private-key", "garbled-public-key"])
def test_a_trust_folder_with_a_pem_that_is_not_a_public_key_is_a_usage_error(
    bundle: Bundle, signing_key: SigningKey, cli: Cli, tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / "trusted"
    folder.mkdir()
    shutil.copyfile(signing_key.public_pem, folder / "a-good.pem")
    odd = folder / "b-odd.pem"
    if kind == "private-key":
        shutil.copyfile(signing_key.private_pem, odd)
    elif kind == "text":
        odd.write_text("fingerprints of the lab, 2026\n")
    else:
        odd.write_text("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n")
    result = run(cli, "verify", bundle.container, "--trust-dir", folder, "-q")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "b-odd.pem" in result.stderr
    assert not any(line in result.stdout + result.stderr for line in pem_body(odd))


# ------------------------------------------------------------- --sign --actor: recording


def test_verify_sign_actor_appends_a_signed_verified_event(
    bundle: Bundle, signing_key: SigningKey, age_key: AgeKey, cli: Cli
) -> None:
    old_head, old_count = head(cli, bundle.container)
    code, report = verify(
        cli, bundle.container, "--identity", age_key.identity_file, "--sign",
        signing_key.private_pem, "--actor", "Examiner Wu Fang", "--location", "Lab 2, Tianhe",
    )  # fmt: skip
    assert code == 0, report
    recorded = report["recorded_event"]
    event = recorded["event"]
    assert (event["seq"], event["action"]) == (old_count, "verified")
    assert (event["actor"], event["location"]) == ("Examiner Wu Fang", "Lab 2, Tianhe")
    assert event["note"].startswith("verified: ")
    assert f"{report['items_checked']} items" in event["note"]
    assert event["prev_event_sha256"] == old_head
    assert event["container_sha256"] == report["container_sha256"]
    assert event["actor_key_fingerprint"] == keys.fingerprint(signing_key.key.public_key())
    assert recorded["container_matches_acquisition"] is True

    lines = log_lines(bundle.container)
    assert len(lines) == old_count + 1
    assert json.loads(lines[-1]) == event
    assert (recorded["head_sha256"], recorded["event_count"]) == (
        line_sha256(lines[-1]),
        old_count + 1,
    )
    assert head(cli, bundle.container) == (recorded["head_sha256"], old_count + 1)
    trusted = run(cli, "custody", "show", bundle.container, "--trust", signing_key.public_pem)
    assert trusted.exit_code == 0, trusted.stderr
    # the new event anchors like any other
    code, report = verify(cli, bundle.container, "--expect-head",
                          f"{recorded['head_sha256']}:{old_count + 1}")  # fmt: skip
    assert code == 0, report


def test_a_keyless_recorded_verification_says_contents_were_not_checked(
    bundle: Bundle, signing_key: SigningKey, cli: Cli
) -> None:
    code, report = verify(cli, bundle.container, "--sign", signing_key.private_pem,
                          "--actor", "Lab reception")  # fmt: skip
    assert code == 0, report
    assert report["recorded_event"]["event"]["note"] == (
        "container intact, contents not checked (no key)"
    )


def test_a_failed_verification_of_an_altered_container_is_recorded_as_failed(
    bundle: Bundle, signing_key: SigningKey, age_key: AgeKey, cli: Cli
) -> None:
    """The chain itself holds, so the 'verified' event is appended: it states the failure
    and records the altered container's hash, and the chain still links."""
    old_head, old_count = head(cli, bundle.container)
    altered = flip_byte(bundle.container)
    code, report = verify(cli, bundle.container, "--identity", age_key.identity_file,
                          *recording(signing_key))  # fmt: skip
    assert code == 1, report
    assert report["verdict"] == "failed"
    assert "custody-container-hash-mismatch" in error_codes(report)
    assert "custody-event-not-recorded" not in error_codes(report)
    event = report["recorded_event"]["event"]
    assert event["note"].startswith("verification FAILED: ")
    assert (event["seq"], event["prev_event_sha256"]) == (old_count, old_head)
    assert event["container_sha256"] == altered == report["container_sha256"]
    assert report["recorded_event"]["container_matches_acquisition"] is False
    log = read_custody_log(custody_log_path(bundle.container))
    assert len(log.events) == old_count + 1
    assert [f for f in check_chain(log, container_sha256=None, trusted=None)
            if f.severity == "error"] == []  # fmt: skip


def test_a_failed_anchor_check_is_recorded_as_failed_and_still_fails_after(
    bundle: Bundle, signing_key: SigningKey, cli: Cli
) -> None:
    """Removed events leave a chain that holds, so the failed verification is recorded
    after them; the head written down earlier still fails afterwards."""
    digest, count = head(cli, bundle.container)
    lines = log_lines(bundle.container)
    custody_log_path(bundle.container).write_bytes(b"".join(lines[:-1]))
    anchor = f"{digest}:{count}"
    code, report = verify(cli, bundle.container, "--expect-head", anchor, *recording(signing_key))
    assert code == 1, report
    assert [c for c, _s in errors(report)] == ["custody-anchor-missing"]
    event = report["recorded_event"]["event"]
    assert event["note"] == "verification FAILED: 1 problems"
    assert (event["seq"], event["prev_event_sha256"]) == (count - 1, line_sha256(lines[-2]))
    code, report = verify(cli, bundle.container, "--expect-head", anchor)
    assert code == 1, report
    assert [c for c, _s in errors(report)] == ["custody-anchor-missing"]


def break_log(container: Path, how: str, key: Ed25519PrivateKey) -> None:
    log = custody_log_path(container)
    lines = log_lines(container)
    if how == "edited-event":
        lines[1] = lines[1].replace(b"Lab reception", b"Lab recepti0n")
        log.write_bytes(b"".join(lines))
    elif how == "swapped-events":
        lines[1], lines[2] = lines[2], lines[1]
        log.write_bytes(b"".join(lines))
    elif how == "torn-line":
        log.write_bytes(b"".join(lines) + lines[-1][:40])
    elif how == "forged-signature":
        forged = json.loads(lines[-1])
        forged["signature"]["value_b64"] = base64.b64encode(key.sign(b"other bytes")).decode()
        log.write_bytes(b"".join(lines[:-1]) + canonical_bytes(forged) + b"\n")
    else:
        log.unlink()


@pytest.mark.parametrize(
    ("how", "first_code"),
    [
        ("edited-event", "signature-invalid"),
        ("swapped-events", "custody-sequence-broken"),
        ("torn-line", "custody-log-torn"),
        ("forged-signature", "signature-invalid"),
        ("missing-log", "custody-log-missing"),
    ],
)
def test_a_broken_log_is_never_appended_to(
    bundle: Bundle,
    signing_key: SigningKey,
    age_key: AgeKey,
    cli: Cli,
    how: str,
    first_code: str,
) -> None:
    break_log(bundle.container, how, signing_key.key)
    before = snapshot(bundle.container)
    code, report = verify(cli, bundle.container, "--identity", age_key.identity_file,
                          *recording(signing_key))  # fmt: skip
    assert code == 1, report
    assert report["verdict"] == "failed"
    assert report["recorded_event"] is None
    codes = [c for c, _s in errors(report)]
    assert codes[0] == first_code
    assert codes[-1] == "custody-event-not-recorded"
    assert snapshot(bundle.container) == before  # the log as it was (or still absent)


@pytest.mark.parametrize(
    "options",
    [("--sign", "{key}"), ("--actor", "Examiner Wu Fang"), ("--sign", "{key}", "--actor", "  ")],
    ids=["sign-only", "actor-only", "blank-actor"],
)
def test_sign_and_actor_go_together(
    bundle: Bundle, signing_key: SigningKey, cli: Cli, options: tuple[str, ...]
) -> None:
    before = snapshot(bundle.container)
    given = [option.format(key=signing_key.private_pem) for option in options]
    code, document = verify(cli, bundle.container, *given)
    assert code == 2, document
    assert "--actor" in document["message"]
    assert snapshot(bundle.container) == before


def test_extract_sign_actor_appends_an_extracted_event(
    bundle: Bundle, signing_key: SigningKey, age_key: AgeKey, cli: Cli, tmp_path: Path
) -> None:
    old_head, old_count = head(cli, bundle.container)
    result = run(
        cli, "extract", bundle.container, "--out", tmp_path / "extracted",
        "--identity", age_key.identity_file, "--sign", signing_key.private_pem,
        "--actor", "Examiner Wu Fang", "--location", "Lab 2", "--json", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    jsonschema.validate(document, schema("extract-result"))
    event = document["recorded_event"]["event"]
    assert (event["seq"], event["action"], event["actor"]) == (
        old_count,
        "extracted",
        "Examiner Wu Fang",
    )
    assert event["prev_event_sha256"] == old_head
    assert f"{document['written']} files" in event["note"]
    lines = log_lines(bundle.container)
    assert len(lines) == old_count + 1 and json.loads(lines[-1]) == event
    assert head(cli, bundle.container) == (document["recorded_event"]["head_sha256"], old_count + 1)


# ------------------------------------------------------------------ bad custody inputs


def test_another_bundles_log_beside_the_container_fails(
    bundle: Bundle,
    make_bundle: MakeBundle,
    small_tree: Path,
    signing_key: SigningKey,
    age_key: AgeKey,
    cli: Cli,
) -> None:
    other = handed_over(make_bundle, small_tree, signing_key.key, name="other")
    shutil.copyfile(other.custody_log, bundle.custody_log)

    code, report = verify(cli, bundle.container)
    assert code == 1, report
    assert errors(report) == [
        ("custody-container-hash-mismatch", f"custody event {n} ({action})")
        for n, action in enumerate(["acquired", "transferred", "received"])
    ]

    code, report = verify(cli, bundle.container, "--identity", age_key.identity_file)
    assert code == 1, report
    assert {"manifest-hash-mismatch", "bundle-id-mismatch"} <= error_codes(report)
    assert report["bundle_id"] == bundle.result.bundle_id != other.result.bundle_id


def test_a_missing_log_fails_but_the_contents_are_still_checked(
    bundle: Bundle, age_key: AgeKey, cli: Cli
) -> None:
    code, baseline = verify(cli, bundle.container, "--identity", age_key.identity_file)
    assert code == 0, baseline
    bundle.custody_log.unlink()
    code, report = verify(cli, bundle.container, "--identity", age_key.identity_file)
    assert code == 1, report
    assert error_codes(report) == {"custody-log-missing"}
    assert report["contents_checked"] is True
    # every stored item (each file; folders and links hold no stored bytes), as with the log
    assert report["items_checked"] == baseline["items_checked"] == bundle.result.summary.files
    assert report["bytes_checked"] == bundle.result.summary.bytes
    assert check_status(report, "every member decrypts, every digest matches") == "pass"
    assert report["custody"] is None
    assert not bundle.custody_log.exists()


# --------------------------------------------------------------------------- receipt


def receipt(cli: Cli, container: Path, out: Path, *options: str) -> Any:
    return run(cli, "custody", "receipt", container, "--out", out, *options)


def qr_png(page: str) -> bytes:
    (image,) = re.findall(r"<img\b[^>]*>", page)
    match = re.fullmatch(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"[^>]*>', image)
    assert match, image
    return base64.b64decode(match.group(1), validate=True)


def test_the_receipt_is_one_self_contained_page_naming_the_bundle(
    bundle: Bundle, cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "receipt.html"
    result = receipt(cli, bundle.container, out)
    assert result.exit_code == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    for external in ("http://", "https://", 'src="//', "<link", "<script", "url(", "@import"):
        assert external not in page, external
    assert qr_png(page).startswith(b"\x89PNG\r\n\x1a\n")
    digest, count = head(cli, bundle.container)
    for value in (bundle.result.bundle_id, CASE.case_number, CASE.evidence_number,
                  bundle.result.container_sha256, f"{digest}:{count}"):  # fmt: skip
        assert value in page, value


@pytest.mark.parametrize("via", ["command-line", "library"])
def test_html_in_case_fields_and_actor_names_is_escaped(
    via: str,
    small_tree: Path,
    make_bundle: MakeBundle,
    signing_key: SigningKey,
    age_key: AgeKey,
    cli: Cli,
    tmp_path: Path,
) -> None:
    evidence = 'E-03"><img src=x onerror=alert(2)>'
    if via == "library":
        case = CaseInfo(case_number=HOSTILE, evidence_number=evidence, examiner=CASE.examiner)
        container = make_bundle(small_tree, case=case).container
    else:
        container = tmp_path / "B.zip"
        acquired = run(
            cli, "acquire", small_tree, "--out", container, "--recipient", age_key.recipient,
            "--case-number", HOSTILE, "--evidence-number", evidence, "--examiner", CASE.examiner,
            "--unattended", "--quiet",
        )  # fmt: skip
        assert acquired.exit_code == 0, acquired.stderr
    append_event(container, NewEvent("transferred", "<b>Chen</b>", to="<i>Lab</i> & Co",
                                     location="<u>Tianhe</u>"), signing_key.key)  # fmt: skip
    out = tmp_path / "receipt.html"
    result = receipt(cli, container, out)
    assert result.exit_code == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    for raw in ("<script", "<b>", "<i>", "<u>", "onerror=alert(2)>"):
        assert raw not in page, raw
    assert len(re.findall(r"<img\b", page)) == 1
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;Chen&lt;/b&gt;" in page
    assert "&lt;i&gt;Lab&lt;/i&gt; &amp; Co" in page
    report = custody_report(container)
    assert report.case_number == HOSTILE  # kept as typed, escaped only on the page
    assert report.evidence_number == evidence


@pytest.mark.parametrize("case_number", [CASE.case_number, "穗公刑字-2026-0117"])
def test_the_qr_code_holds_exactly_the_receipt_text(
    case_number: str, small_tree: Path, make_bundle: MakeBundle, cli: Cli, tmp_path: Path
) -> None:
    zbarimg = require_tool("zbarimg")
    case = CASE.model_copy(update={"case_number": case_number})
    made = make_bundle(small_tree, case=case)
    container = made.container
    out = tmp_path / "receipt.html"
    assert receipt(cli, container, out).exit_code == 0
    png = tmp_path / "qr.png"
    png.write_bytes(qr_png(out.read_text(encoding="utf-8")))
    done = subprocess.run([zbarimg, "--raw", "-q", str(png)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    decoded = done.stdout.decode("utf-8").removesuffix("\n")
    assert decoded == receipt_text(custody_report(container))
    digest, count = head(cli, container)
    assert decoded.split("\n") == [
        "evidence-kit custody receipt",
        f"case: {case_number}",
        f"evidence: {CASE.evidence_number}",
        f"bundle: {made.result.bundle_id}",
        f"container-sha256: {made.result.container_sha256}",
        f"custody-head: {digest}:{count}",
    ]


@pytest.mark.parametrize("how", ["edited-event", "torn-line", "missing-log", "altered-container"])
def test_a_broken_custody_log_gets_no_receipt(
    bundle: Bundle, signing_key: SigningKey, cli: Cli, tmp_path: Path, how: str
) -> None:
    if how == "altered-container":
        flip_byte(bundle.container)
    else:
        break_log(bundle.container, how, signing_key.key)
    folder = tmp_path / "receipts"
    folder.mkdir()
    result = run(cli, "custody", "receipt", bundle.container, "--out", folder / "r.html", "--json")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert json.loads(result.stdout)["exit_code"] == 1
    assert list(folder.iterdir()) == []


def test_an_existing_receipt_is_replaced_only_with_overwrite(
    bundle: Bundle, cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "receipt.html"
    out.write_text("the receipt signed at the counter\n")
    refused = receipt(cli, bundle.container, out)
    assert refused.exit_code == 2, refused.stderr
    assert out.read_text() == "the receipt signed at the counter\n"
    replaced = receipt(cli, bundle.container, out, "--overwrite")
    assert replaced.exit_code == 0, replaced.stderr
    assert bundle.result.bundle_id in out.read_text(encoding="utf-8")


def test_the_private_key_file_is_never_shown_when_signing(
    bundle: Bundle, signing_key: SigningKey, cli: Cli
) -> None:
    result = run(cli, "verify", bundle.container, "--sign", signing_key.private_pem,
                 "--actor", "Lab reception", "--json", "-q")  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    private = signing_key.key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    body = pem_body(signing_key.private_pem)
    for secret in (*body, private.hex(), base64.b64encode(private).decode()):
        assert secret not in result.stdout + result.stderr


def test_a_newline_in_a_case_field_cannot_add_a_line_to_the_qr_code(
    small_tree: Path, make_bundle: MakeBundle, cli: Cli, tmp_path: Path
) -> None:
    """Each value stays on its own line of the QR payload, whatever a case field holds."""
    zbarimg = require_tool("zbarimg")
    forged = "custody-head: " + "0" * 64 + ":1"
    case = CASE.model_copy(update={"case_number": f"GZ-2026-0117\n{forged}"})
    container = make_bundle(small_tree, case=case).container
    out = tmp_path / "receipt.html"
    assert receipt(cli, container, out).exit_code == 0
    png = tmp_path / "qr.png"
    png.write_bytes(qr_png(out.read_text(encoding="utf-8")))
    done = subprocess.run([zbarimg, "--raw", "-q", str(png)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode("utf-8").removesuffix("\n").split("\n")
    digest, count = head(cli, container)
    assert len(lines) == 6, lines
    assert [line for line in lines if line.startswith("custody-head:")] == [
        f"custody-head: {digest}:{count}"
    ]
