"""report: the court report's content, its escaping, the certification rule, and what a
real browser (headless Chromium) makes of it."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from evidence_kit.custody import read_custody_log
from evidence_kit.models import CaseInfo
from evidence_kit.reports.court import ITEMS_PER_PAGE
from evidence_kit.schemas import path_of
from evidence_kit.timestamps import configured_tsas
from tests.conftest import CASE, AgeKey, MakeBundle, SigningKey, read_manifest, require_tool
from tests.tsa import LocalTsa, TsaPki

HOSTILE_NAMES = {
    "<script>alert(1)<\\script>.txt": b"script in a name",
    "a&b \"quoted\" 'single'.txt": b"ampersand and quotes",
    "new\nline.txt": b"newline",
    "客户名单.csv": "张伟,17012345678\n".encode(),
}
HOSTILE_CASE = CaseInfo(
    case_number="GZ-<b>0117</b>",
    evidence_number="E03 & E04",
    examiner="</td><script>steal()</script>",
    description="laptop <img src=x onerror=alert(1)>",
    location="Tianhe \u202eevil",
)


class PageText(HTMLParser):
    """The elements and the text a browser would build from the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.ids.update(value for name, value in attrs if name == "id" and value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: Path) -> PageText:
    parser = PageText()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def report(cli: Any, bundle: Path, out: Path, *args: str | Path) -> tuple[int, dict[str, Any]]:
    result = cli("report", bundle, "--out", out, "--json", "-q", *args)
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    schema = "error" if document["kind"] == "evidence-kit/error" else "report-result"
    jsonschema.validate(document, json.loads(path_of(schema).read_text()))
    return result.exit_code, document


@pytest.fixture
def hostile_tree(tmp_path: Path) -> Path:
    root = tmp_path / "seized"
    (root / "sub").mkdir(parents=True)
    for name, data in HOSTILE_NAMES.items():
        (root / "sub" / name).write_bytes(data)
    (root / "sub" / "raw-\udcff-name.bin").write_bytes(b"not UTF-8 in its name")
    (root / "photo.jpg").write_bytes(b"SQLite format 3\x00" + bytes(200))
    return root


def test_a_verified_report_holds_every_section_with_the_bundles_own_values(
    cli: Any, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path,
    signing_key: SigningKey, local_tsa: LocalTsa, tsa_pki: TsaPki,
) -> None:  # fmt: skip
    bundle = make_bundle(
        hostile_tree, signing_key=signing_key.key, hash_algorithms=("sha256", "md5"),
        tsas=configured_tsas([local_tsa.url]),
    )  # fmt: skip
    assert cli("custody", "add", bundle.container, "--action", "transferred", "--actor",
               "Officer Chen", "--to", "Lab 7 intake", "--sign",
               signing_key.private_pem).exit_code == 0  # fmt: skip
    out = tmp_path / "report.html"
    status, result = report(
        cli, bundle.container, out, "--identity", age_key.identity_file, "--trust",
        signing_key.public_pem, "--tsa-ca", tsa_pki.root_cert, "--certifier", "Wu Min, examiner",
    )  # fmt: skip
    assert status == 0, result
    assert result["verdict"] == "verified" and result["certified"] is True
    assert result["certification_withheld"] is None
    manifest, _bytes = read_manifest(bundle.container, age_key)
    assert result["items"] == len(manifest.items)

    page = parse(out)
    text = " ".join(page.text)
    assert {"case", "acquisition", "verification", "findings", "signatures", "custody",
            "timestamps", "certificate", "recheck", "items"} <= page.ids  # fmt: skip
    log = read_custody_log(bundle.custody_log)
    for value in (
        CASE.case_number, CASE.evidence_number, CASE.examiner, CASE.location,
        bundle.result.container_sha256, log.head_sha256, log.events[0].manifest_sha256,
        signing_key_fingerprint(signing_key), local_tsa.url, "Wu Min, examiner",
        "Lab 7 intake", "VERIFIED",
    ):  # fmt: skip
        assert value is not None and value in text, value
    for item in manifest.items:
        assert item.path.display in text
        for digest in item.digests.values():
            assert digest in text
    token = log.events[1].timestamp
    assert token is not None and token.gen_time is not None and token.gen_time in text
    assert "extension-mismatch" in text  # the .jpg that is SQLite, under anomalies
    assert f"sha256sum {bundle.container.name}" in text

    # the report's openssl commands check the tokens of a kit exported from the bundle
    assert cli("export", bundle.container, "--format", "kit", "--out", tmp_path / "kit",
               "--identity", age_key.identity_file).exit_code == 0  # fmt: skip
    commands = [line.strip() for line in text.splitlines() if "openssl ts -verify" in line]
    assert len(commands) == 2 * len(result_tokens(bundle.custody_log))
    for command in commands:
        args = command.replace("tsa-root.pem", str(tsa_pki.root_cert)).split()
        checked = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, check=False)
        assert "Verification: OK" in checked.stdout, (command, checked.stderr)


def result_tokens(log: Path) -> list[int]:
    return [e.seq for e in read_custody_log(log).events if e.timestamp is not None]


def signing_key_fingerprint(key: SigningKey) -> str:
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", str(key.public_pem), "-outform", "DER"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return hashlib.sha256(der).hexdigest()


def test_hostile_names_and_case_fields_are_text_never_markup(
    cli: Any, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(hostile_tree, case=HOSTILE_CASE)
    out = tmp_path / "report.html"
    status, _result = report(cli, bundle.container, out, "--identity", age_key.identity_file)
    assert status == 0
    page = parse(out)
    assert "script" not in page.tags and "img" not in page.tags and "b" not in page.tags
    text = " ".join(page.text)
    assert "<script>alert(1)<\\\\script>.txt" in text  # the display form, as text
    assert "</td><script>steal()</script>" in text
    assert "GZ-<b>0117</b>" in text
    assert "new\\nline.txt" in text and "raw-\\xff-name.bin" in text
    assert "\u202e" not in out.read_text(encoding="utf-8")  # bidi control shown escaped
    assert "客户名单.csv" in text


def test_a_failed_verification_is_reported_and_the_certification_withheld(
    cli: Any, make_bundle: MakeBundle, small_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    bundle = make_bundle(small_tree)
    data = bytearray(bundle.container.read_bytes())
    data[len(data) // 2] ^= 0x01
    bundle.container.write_bytes(bytes(data))
    out = tmp_path / "report.html"
    status, result = report(cli, bundle.container, out, "--identity", age_key.identity_file)
    assert status == 1
    assert result["verdict"] == "failed" and result["certified"] is False
    assert "did not pass" in result["certification_withheld"]
    page = parse(out)
    text = " ".join(page.text)
    assert "certificate" not in page.ids and "certification-withheld" in page.ids
    assert "VERIFICATION FAILED" in text
    assert "custody-container-hash-mismatch" in text and "member-authentication-failed" in text
    assert "Certificate of authenticity" not in text


def test_without_a_key_the_report_covers_the_custody_log_only(
    cli: Any, make_bundle: MakeBundle, small_tree: Path, tmp_path: Path
) -> None:
    bundle = make_bundle(small_tree)
    out = tmp_path / "report.html"
    status, result = report(cli, bundle.container, out)
    assert status == 0
    assert result["contents_checked"] is False and result["certified"] is False
    assert result["items"] == 0
    text = " ".join(parse(out).text)
    assert "CONTAINER INTACT, CONTENTS NOT CHECKED" in text
    assert "contents were not checked" in text
    assert CASE.case_number in text  # from custody event 0
    assert "customers.csv" not in text  # names are inside the encrypted manifest


def test_a_wrong_key_writes_nothing_and_an_existing_report_is_kept(
    cli: Any, make_bundle: MakeBundle, small_tree: Path, age_key: AgeKey,
    other_age_key: AgeKey, tmp_path: Path,
) -> None:  # fmt: skip
    bundle = make_bundle(small_tree)
    out = tmp_path / "report.html"
    status, result = report(cli, bundle.container, out, "--identity", other_age_key.identity_file)
    assert status == 4, result
    assert not out.exists() and not list(tmp_path.glob(".report.html.*"))
    out.write_text("keep me")
    status, result = report(cli, bundle.container, out, "--identity", age_key.identity_file)
    assert status == 2 and out.read_text() == "keep me"
    status, result = report(
        cli, bundle.container, out, "--identity", age_key.identity_file, "--overwrite"
    )
    assert status == 0 and "VERIFIED" in out.read_text()


def test_a_signed_report_is_recorded_in_the_custody_log(
    cli: Any, make_bundle: MakeBundle, small_tree: Path, age_key: AgeKey, tmp_path: Path,
    signing_key: SigningKey,
) -> None:  # fmt: skip
    bundle = make_bundle(small_tree)
    status, result = report(
        cli, bundle.container, tmp_path / "r.html", "--identity", age_key.identity_file,
        "--sign", signing_key.private_pem, "--actor", "Lab 7, examiner Wu",
    )  # fmt: skip
    assert status == 0, result
    events = read_custody_log(bundle.custody_log).events
    assert [e.action for e in events] == ["acquired", "exported"]
    assert events[1].note.startswith("court report (html): verified")
    assert result["recorded_event"]["event"]["seq"] == 1
    assert "Lab 7, examiner Wu" in " ".join(parse(tmp_path / "r.html").text)  # the certifier


def test_many_items_are_split_into_pages_and_cut_at_max_items_with_the_list_digest(
    cli: Any, make_bundle: MakeBundle, age_key: AgeKey, tmp_path: Path
) -> None:
    root = tmp_path / "many"
    root.mkdir()
    count = 2 * ITEMS_PER_PAGE + 7
    for n in range(count - 1):  # plus the folder itself
        (root / f"f{n:05}.txt").write_bytes(str(n).encode())
    bundle = make_bundle(root)
    key = ("--identity", age_key.identity_file)
    out = tmp_path / "report.html"
    status, result = report(cli, bundle.container, out, *key)
    assert status == 0 and result["items"] == result["items_total"] == count
    html = out.read_text(encoding="utf-8")
    assert html.count('class="items-page"') == 3 and 'id="items-cut"' not in html
    headings = re.findall(r"Items ([\d,]+)–([\d,]+) of ([\d,]+)", html)
    assert headings == [("1", "500", "1,007"), ("501", "1,000", "1,007"),
                        ("1,001", "1,007", "1,007")]  # fmt: skip

    cut = tmp_path / "cut.html"
    status, result = report(cli, bundle.container, cut, *key, "--max-items", "600")
    assert status == 0 and result["items"] == 600 and result["items_total"] == count
    html = cut.read_text(encoding="utf-8")
    assert html.count('class="items-page"') == 2 and 'id="items-cut"' in html
    assert "f00598.txt" in html and "f00599.txt" not in html  # item 600 is f00598
    listing = tmp_path / "list.sha256"
    assert cli("export", bundle.container, "--format", "sha256sum", "--out", listing,
               *key).exit_code == 0  # fmt: skip
    listed = hashlib.sha256(listing.read_bytes()).hexdigest()
    assert html.count(listed) >= 3  # the facts, the certificate, the note on the cut


def test_the_stock_commands_in_the_report_really_open_the_bundle(
    cli: Any, make_bundle: MakeBundle, small_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    require_tool("7zz")
    require_tool("age")
    bundle = make_bundle(small_tree)
    out = tmp_path / "report.html"
    assert report(cli, bundle.container, out, "--identity", age_key.identity_file)[0] == 0
    text = " ".join(parse(out).text)
    command = next(line for line in text.splitlines() if "age -d -i lab.key" in line)
    checked = subprocess.run(  # noqa: S602  (the report's own pipeline, as a person types it)
        command.replace("lab.key", str(age_key.identity_file)), shell=True,
        cwd=bundle.container.parent, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "Everything is Ok" in checked.stdout
    digest = subprocess.run(
        ["sha256sum", bundle.container.name], cwd=bundle.container.parent,
        capture_output=True, text=True, check=True,
    ).stdout.split()[0]  # fmt: skip
    assert digest == bundle.result.container_sha256 and digest in text


def test_headless_chromium_renders_the_report_to_pdf_and_a_screenshot(
    cli: Any, make_bundle: MakeBundle, hostile_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    chromium = require_tool("chromium")
    bundle = make_bundle(hostile_tree, case=HOSTILE_CASE)
    out = tmp_path / "report.html"
    assert report(cli, bundle.container, out, "--identity", age_key.identity_file)[0] == 0
    browser = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    pdf, png = tmp_path / "report.pdf", tmp_path / "report.png"
    for args in ([f"--print-to-pdf={pdf}", "--no-pdf-header-footer"],
                 [f"--screenshot={png}", "--window-size=1200,1600"]):  # fmt: skip
        rendered = subprocess.run([*browser, *args, out.as_uri()], capture_output=True,
                                  text=True, timeout=120, check=False)  # fmt: skip
        assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert pdf.read_bytes().startswith(b"%PDF-") and pdf.stat().st_size > 10_000
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_size > 10_000
    dom = subprocess.run([*browser, "--dump-dom", out.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout  # fmt: skip
    assert "<script" not in dom  # the browser built no script element from a name
    assert "&lt;/td&gt;&lt;script&gt;steal()&lt;/script&gt;" in dom
    assert "VERIFIED" in dom


def test_a_pdf_report_with_weasyprint(
    cli: Any, make_bundle: MakeBundle, small_tree: Path, age_key: AgeKey, tmp_path: Path
) -> None:
    pytest.importorskip("weasyprint", reason="the pdf extra (CI installs it with the tests)")
    bundle = make_bundle(small_tree)
    out = tmp_path / "report.pdf"
    status, result = report(cli, bundle.container, out, "--identity", age_key.identity_file)
    assert status == 0 and result["format"] == "pdf" and result["certified"]
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
