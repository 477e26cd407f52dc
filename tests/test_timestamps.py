"""RFC 3161 timestamps against a real local TSA (openssl ts -reply on 127.0.0.1).

Online stamping at acquire; offline acquire then ``timestamp``; a TSA that is down, slow,
answering garbage, a token for another imprint, a wrong nonce, a refusal, an untrusted
root, an expired TSA certificate, a reply rfc3161-client cannot parse; tokens re-checked
by ``openssl ts -verify`` on the exported bytes; tampering with the log after stamping.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from evidence_kit.custody import custody_log_path, read_custody_log
from evidence_kit.schemas import path_of
from evidence_kit.timestamps import Tsa, configured_tsas
from tests.conftest import CASE_ARGS, AgeKey, MakeBundle, require_tool
from tests.tsa import LocalTsa, TsaPki


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "evidence_kit", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=120,
    )
    assert "Traceback" not in result.stderr
    return result


def verify_json(bundle: Path, *args: str | Path) -> tuple[int, dict[str, Any]]:
    result = run("verify", bundle, "--json", "-q", *args)
    report = json.loads(result.stdout)
    schema = json.loads(path_of("verification-report").read_text())
    jsonschema.validate(report, schema)
    return result.returncode, report


def codes(report: dict[str, Any], severity: str = "error") -> list[str]:
    return [f["code"] for f in report["findings"] if f["severity"] == severity]


def acquire(tmp_path: Path, age_key: AgeKey, *tsa_args: str) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "seized"
    source.mkdir(exist_ok=True)
    (source / "customers.csv").write_text("name,phone\nZhang Wei,17012345678\n")
    return run(
        "acquire", source, "--out", tmp_path / "b.zip", "--recipient", age_key.recipient,
        *CASE_ARGS, "-q", "--json", *tsa_args,
    )  # fmt: skip


def events(bundle: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in custody_log_path(bundle).read_bytes().splitlines()]


def test_acquire_with_a_tsa_stamps_event_0(
    tmp_path: Path, age_key: AgeKey, local_tsa: LocalTsa, tsa_pki: TsaPki
) -> None:
    result = acquire(tmp_path, age_key, "--tsa", local_tsa.url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["timestamp"] == "stamped"
    log = events(tmp_path / "b.zip")
    assert [e["action"] for e in log] == ["acquired", "timestamped"]
    token = log[1]["timestamp"]
    assert token["stamped_seq"] == 0 and token["tsa_url"] == local_tsa.url
    assert "timestamp" not in log[0]  # events without a token carry no such key
    status, report = verify_json(tmp_path / "b.zip", "--tsa-ca", tsa_pki.root_cert)
    assert status == 0, report["findings"]
    [check] = report["timestamps"]
    assert check["verified"] is True and check["verified_with"] == "rfc3161-client"
    assert check["gen_time"].endswith("Z")
    assert abs(check["clock_offset_ms"]) < 5_000  # the same machine's clock


def test_offline_acquire_then_timestamp_later(
    tmp_path: Path, age_key: AgeKey, local_tsa: LocalTsa, tsa_pki: TsaPki
) -> None:
    result = acquire(tmp_path, age_key, "--tsa", LocalTsa.down_url(), "--tsa-timeout", "2")
    assert result.returncode == 0, result.stderr  # the evidence is safe without a token
    summary = json.loads(result.stdout)
    assert summary["timestamp"] == "pending"
    assert "cannot reach" in summary["timestamp_problem"]
    human = run(
        "acquire", tmp_path / "seized", "--out", tmp_path / "second.zip",
        "--recipient", age_key.recipient, *CASE_ARGS, "-q", "--tsa", LocalTsa.down_url(),
    )  # fmt: skip
    assert human.returncode == 0
    assert "PENDING" in human.stderr and "evidence-kit timestamp" in human.stderr
    log = events(tmp_path / "b.zip")
    assert [e["action"] for e in log] == ["acquired", "timestamp-pending"]
    stamped = run("timestamp", tmp_path / "b.zip", "--tsa", local_tsa.url, "--json")
    assert stamped.returncode == 0, stamped.stderr
    appended = json.loads(stamped.stdout)
    jsonschema.validate(appended, json.loads(path_of("custody-append").read_text()))
    assert appended["event"]["timestamp"]["stamped_seq"] == 1  # the head: the pending event
    status, report = verify_json(tmp_path / "b.zip", "--tsa-ca", tsa_pki.root_cert)
    assert status == 0, report["findings"]
    assert [c["verified"] for c in report["timestamps"]] == [True]


def test_timestamp_is_repeatable_and_each_token_stamps_the_head_then(
    tmp_path: Path, age_key: AgeKey, local_tsa: LocalTsa, tsa_pki: TsaPki
) -> None:
    assert acquire(tmp_path, age_key, "--tsa", local_tsa.url).returncode == 0
    for _ in range(2):
        assert run("timestamp", tmp_path / "b.zip", "--tsa", local_tsa.url).returncode == 0
    stamped = [e["timestamp"]["stamped_seq"] for e in events(tmp_path / "b.zip")[1:]]
    assert stamped == [0, 1, 2]
    status, report = verify_json(tmp_path / "b.zip", "--tsa-ca", tsa_pki.root_cert)
    assert status == 0 and [c["event_seq"] for c in report["timestamps"]] == [1, 2, 3]


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        ("garbage", ""),
        ("http-500", "HTTP status 500"),
        ("other-imprint", "other data"),
        ("wrong-nonce", "nonce"),
        ("rejection", "refused"),
    ],
)
def test_a_bad_answer_is_no_token(
    tmp_path: Path, age_key: AgeKey, local_tsa: LocalTsa, mode: str, problem: str
) -> None:
    """The acquisition completes with 'timestamp pending'; the timestamp command says why
    and appends nothing."""
    local_tsa.mode = mode
    result = acquire(tmp_path, age_key, "--tsa", local_tsa.url)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["timestamp"] == "pending"
    assert problem in summary["timestamp_problem"]
    before = custody_log_path(tmp_path / "b.zip").read_bytes()
    later = run("timestamp", tmp_path / "b.zip", "--tsa", local_tsa.url)
    assert later.returncode == 5
    assert "no trusted timestamp" in later.stderr
    assert custody_log_path(tmp_path / "b.zip").read_bytes() == before


def test_a_slow_tsa_times_out_and_the_next_one_answers(
    tmp_path: Path, age_key: AgeKey, local_tsa: LocalTsa, tsa_pki: TsaPki
) -> None:
    local_tsa.slow_seconds = 30
    with LocalTsa(tsa_pki) as second:
        local_tsa.mode = "slow"
        result = acquire(
            tmp_path, age_key, "--tsa", local_tsa.url, "--tsa", second.url, "--tsa-timeout", "1"
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["timestamp"] == "stamped"
        assert events(tmp_path / "b.zip")[1]["timestamp"]["tsa_url"] == second.url


def test_tsas_come_from_the_config_file_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    folder = tmp_path / "evidence-kit"
    folder.mkdir()
    (folder / "tsa.toml").write_text(
        'timeout = 7\n[[tsa]]\nurl = "http://127.0.0.1:1/a"\n'
        '[[tsa]]\nurl = "http://127.0.0.1:1/b"\ntimeout = 3\n'
    )
    assert configured_tsas() == [Tsa("http://127.0.0.1:1/a", 7.0), Tsa("http://127.0.0.1:1/b", 3.0)]
    assert configured_tsas(["http://127.0.0.1:1/c"]) == [Tsa("http://127.0.0.1:1/c", 10.0)]
    (folder / "tsa.toml").write_text("[[tsa]]\nnope = 1\n")
    result = run("timestamp", tmp_path / "b.zip", env={"XDG_CONFIG_HOME": str(tmp_path),
                                                     "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert result.returncode == 2 and "url" in result.stderr


def test_untrusted_root_and_no_root(
    tmp_path: Path, age_key: AgeKey, local_tsa: LocalTsa, tsa_pki: TsaPki
) -> None:
    assert acquire(tmp_path, age_key, "--tsa", local_tsa.url).returncode == 0
    status, report = verify_json(tmp_path / "b.zip", "--tsa-ca", tsa_pki.other_root_cert)
    assert status == 1 and "timestamp-invalid" in codes(report)
    assert report["timestamps"][0]["verified"] is False
    status, report = verify_json(tmp_path / "b.zip")  # no root: reported, not trusted
    assert status == 0
    assert "timestamp-root-not-given" in codes(report, "warning")
    assert report["timestamps"][0]["verified"] is None


def test_expired_tsa_certificate_fails(
    tmp_path: Path, age_key: AgeKey, local_tsa: LocalTsa, tsa_pki: TsaPki
) -> None:
    local_tsa.mode = "expired-cert"
    assert acquire(tmp_path, age_key, "--tsa", local_tsa.url).returncode == 0
    status, report = verify_json(tmp_path / "b.zip", "--tsa-ca", tsa_pki.root_cert)
    assert status == 1 and "timestamp-invalid" in codes(report)


def test_a_reply_rfc3161_client_cannot_parse_is_verified_by_openssl(
    tmp_path: Path, age_key: AgeKey, local_tsa: LocalTsa, tsa_pki: TsaPki
) -> None:
    """OpenSSL with -chain does not DER-sort the certificate SET; the openssl path says so."""
    require_tool("openssl")
    local_tsa.mode = "with-chain"
    result = acquire(tmp_path, age_key, "--tsa", local_tsa.url)
    assert json.loads(result.stdout)["timestamp"] == "stamped", result.stderr
    status, report = verify_json(tmp_path / "b.zip", "--tsa-ca", tsa_pki.root_cert)
    assert status == 0, report["findings"]
    [check] = report["timestamps"]
    assert check["verified_with"] == "openssl" and check["verified"] is True
    assert check["gen_time"] is not None
    status, report = verify_json(tmp_path / "b.zip", "--tsa-ca", tsa_pki.other_root_cert)
    assert status == 1 and "timestamp-invalid" in codes(report)


def test_tokens_re_check_with_openssl_ts_verify_on_exported_bytes(
    tmp_path: Path, age_key: AgeKey, local_tsa: LocalTsa, tsa_pki: TsaPki
) -> None:
    """The steps docs/timestamps.md gives a third party, run for real."""
    openssl = require_tool("openssl")
    assert acquire(tmp_path, age_key, "--tsa", local_tsa.url).returncode == 0
    lines = custody_log_path(tmp_path / "b.zip").read_bytes().splitlines()
    token = json.loads(lines[1])["timestamp"]
    (tmp_path / "stamped.bin").write_bytes(lines[token["stamped_seq"]])
    (tmp_path / "token.tsr").write_bytes(base64.b64decode(token["response_der_b64"]))
    (tmp_path / "request.tsq").write_bytes(base64.b64decode(token["request_der_b64"]))

    def openssl_verify(*against: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [openssl, "ts", "-verify", "-in", tmp_path / "token.tsr", *map(str, against),
             "-CAfile", tsa_pki.root_cert],
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    for against in (["-data", tmp_path / "stamped.bin"], ["-queryfile", tmp_path / "request.tsq"]):
        checked = openssl_verify(*against)
        assert checked.returncode == 0 and "Verification: OK" in checked.stdout, checked.stderr
    (tmp_path / "stamped.bin").write_bytes(lines[token["stamped_seq"]].replace(b'"', b"'", 1))
    assert openssl_verify("-data", tmp_path / "stamped.bin").returncode != 0


def test_tampering_with_the_log_after_stamping_is_found(
    tmp_path: Path, age_key: AgeKey, local_tsa: LocalTsa, tsa_pki: TsaPki
) -> None:
    assert acquire(tmp_path, age_key, "--tsa", local_tsa.url).returncode == 0
    log = custody_log_path(tmp_path / "b.zip")
    original = log.read_bytes()
    lines = original.splitlines(keepends=True)
    # a token moved onto another stamped event: what it stamps no longer matches
    event = json.loads(lines[1])
    event["timestamp"]["nonce"] = str(int(event["timestamp"]["nonce"]) + 1)
    log.write_bytes(lines[0] + json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
                    + b"\n")  # fmt: skip
    status, report = verify_json(tmp_path / "b.zip", "--tsa-ca", tsa_pki.root_cert)
    assert status == 1
    assert "timestamp-nonce-mismatch" in codes(report) and "signature-invalid" not in codes(report)
    # an edited event 0 under the token: the chain and the token both say so
    edited = lines[0].replace(b'"actor":"', b'"actor":"X', 1)
    log.write_bytes(edited + lines[1])
    status, report = verify_json(tmp_path / "b.zip", "--tsa-ca", tsa_pki.root_cert)
    assert status == 1
    assert {"custody-chain-broken", "timestamp-stamped-event-changed"} <= set(codes(report))
    log.write_bytes(original)
    assert verify_json(tmp_path / "b.zip", "--tsa-ca", tsa_pki.root_cert)[0] == 0


def test_a_token_earlier_than_the_acquisition_is_flagged(
    make_bundle: MakeBundle, small_tree: Path, local_tsa: LocalTsa, tsa_pki: TsaPki
) -> None:
    """An acquiring computer whose clock ran an hour ahead: warned, not failed."""
    bundle = make_bundle(small_tree)
    log_path = bundle.custody_log
    first = json.loads(log_path.read_bytes().splitlines()[0])
    ahead = int(first["time"]["ns"]) + 3600 * 10**9
    first["time"]["ns"] = str(ahead)
    first["time"]["utc"] = None
    log_path.write_bytes(json.dumps(first, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    assert run("timestamp", bundle.container, "--tsa", local_tsa.url).returncode == 0
    status, report = verify_json(bundle.container, "--tsa-ca", tsa_pki.root_cert)
    assert "timestamp-before-acquisition" in codes(report, "warning")
    assert status == 0, report["findings"]
    assert read_custody_log(log_path).events[1].timestamp is not None


@pytest.mark.parametrize(
    "change",
    ["nonce-not-a-number", "time-not-a-time", "refusal-as-token", "not-base64", "stamps-itself"],
)
def test_hostile_tokens_in_the_log_are_findings_never_tracebacks(
    tmp_path: Path, age_key: AgeKey, local_tsa: LocalTsa, tsa_pki: TsaPki, change: str
) -> None:
    """Anyone can write a custody log: whatever a 'timestamped' event holds, verify names
    the event and exits 1."""
    assert acquire(tmp_path, age_key, "--tsa", local_tsa.url).returncode == 0
    log = custody_log_path(tmp_path / "b.zip")
    lines = log.read_bytes().splitlines(keepends=True)
    event = json.loads(lines[1])
    token = event["timestamp"]
    if change == "nonce-not-a-number":
        token["nonce"] = "12ab"
    elif change == "time-not-a-time":
        token["gen_time"] = "yesterday"
    elif change == "refusal-as-token":
        local_tsa.mode = "rejection"
        reply = httpx.post(local_tsa.url, content=base64.b64decode(token["request_der_b64"]),
                           headers={"Content-Type": "application/timestamp-query"})  # fmt: skip
        token["response_der_b64"] = base64.b64encode(reply.content).decode()
    elif change == "not-base64":
        token["response_der_b64"] = "%%%"
    else:
        token["stamped_seq"] = 1
    line = json.dumps(event, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    log.write_bytes(lines[0] + line)
    for roots in ([], ["--tsa-ca", str(tsa_pki.root_cert)]):
        status, report = verify_json(tmp_path / "b.zip", *roots)
        assert status == 1, (change, roots, report["findings"])
        bad = [f for f in report["findings"] if f["code"].startswith("timestamp-")]
        assert bad and bad[0]["subject"] == "custody event 1 (timestamped)"
        assert bad[0]["severity"] == "error"


@pytest.mark.parametrize("mode", ["ok", "with-chain", "expired-cert"])
def test_tsa_ca_at_acquire_and_timestamp_keeps_only_tokens_that_verify(
    tmp_path: Path, age_key: AgeKey, local_tsa: LocalTsa, tsa_pki: TsaPki, mode: str
) -> None:
    """With --tsa-ca the token is checked when it arrives: one that does not verify is
    no token (the acquisition says pending; timestamp exits 5 and appends nothing)."""
    local_tsa.mode = mode
    good = mode != "expired-cert"
    trusted = acquire(tmp_path, age_key, "--tsa", local_tsa.url, "--tsa-ca", tsa_pki.root_cert)
    assert json.loads(trusted.stdout)["timestamp"] == ("stamped" if good else "pending")
    before = custody_log_path(tmp_path / "b.zip").read_bytes()
    other = run("timestamp", tmp_path / "b.zip", "--tsa", local_tsa.url,
                "--tsa-ca", tsa_pki.other_root_cert)  # fmt: skip
    assert other.returncode == 5 and "does not verify against --tsa-ca" in other.stderr
    assert custody_log_path(tmp_path / "b.zip").read_bytes() == before
    again = run("timestamp", tmp_path / "b.zip", "--tsa", local_tsa.url,
                "--tsa-ca", tsa_pki.root_cert)  # fmt: skip
    assert again.returncode == (0 if good else 5)
