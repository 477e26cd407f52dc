"""The local TSA of tests/tsa.py, checked with real clients: rfc3161-client and openssl."""

from __future__ import annotations

import hashlib
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimeStampRequest,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from tests.tsa import (
    MODES,
    OTHER_DATA,
    POLICY_OID,
    QUERY_CONTENT_TYPE,
    REPLY_CONTENT_TYPE,
    LocalTsa,
    TsaPki,
    local_tsa,  # noqa: F401
    query_imprint,
    query_nonce,
    reply_certificates,
    require_openssl,
    tsa_pki,  # noqa: F401
    with_sorted_certificates,
)

DATA = b"hello"
SHA512_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.3")


def build_request(data: bytes = DATA, algorithm: HashAlgorithm | None = None) -> TimeStampRequest:
    builder = TimestampRequestBuilder().data(data).nonce(nonce=True)
    if algorithm is not None:
        builder = builder.hash_algorithm(algorithm)
    return builder.build()


def post(url: str, request: TimeStampRequest, timeout: float = 10.0) -> httpx.Response:
    return httpx.post(
        url,
        content=request.as_bytes(),
        headers={"Content-Type": QUERY_CONTENT_TYPE},
        timeout=timeout,
    )


def certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def verify_with_client(
    response: TimeStampResponse,
    root: Path,
    data: bytes = DATA,
    request: TimeStampRequest | None = None,
) -> bool:
    """rfc3161-client's verification; checks the nonce and policy when given the request."""
    builder = VerifierBuilder.from_request(request) if request else VerifierBuilder()
    verifier = builder.add_root_certificate(certificate(root)).build()
    return verifier.verify_message(response, data)


def verify_with_openssl(
    tmp_path: Path,
    reply: bytes,
    ca: Path,
    *,
    data: bytes | None = DATA,
    request: TimeStampRequest | None = None,
    untrusted: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``openssl ts -verify`` against ``-data`` or, given a request, ``-queryfile``."""
    reply_file = tmp_path / "reply.tsr"
    reply_file.write_bytes(reply)
    args = ["ts", "-verify", "-in", str(reply_file), "-CAfile", str(ca)]
    if request is not None:
        query_file = tmp_path / "query.tsq"
        query_file.write_bytes(request.as_bytes())
        args += ["-queryfile", str(query_file)]
    elif data is not None:
        data_file = tmp_path / "data.bin"
        data_file.write_bytes(data)
        args += ["-data", str(data_file)]
    if untrusted is not None:
        args += ["-untrusted", str(untrusted)]
    return subprocess.run(
        [require_openssl(), *args], check=False, capture_output=True, text=True, timeout=30
    )


def assert_openssl_ok(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    assert "Verification: OK" in done.stdout


def assert_openssl_fails(done: subprocess.CompletedProcess[str], reason: str) -> None:
    assert done.returncode != 0
    assert "Verification: FAILED" in done.stdout
    assert reason in done.stderr, done.stderr


def reply_text(tmp_path: Path, reply: bytes) -> str:
    """``openssl ts -reply -in REPLY -text``."""
    path = tmp_path / "shown.tsr"
    path.write_bytes(reply)
    done = subprocess.run(
        [require_openssl(), "ts", "-reply", "-in", str(path), "-text"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout


def der(path: Path) -> bytes:
    return certificate(path).public_bytes(Encoding.DER)


# --- mode "ok" -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "digest_name"),
    [(None, "sha512"), (HashAlgorithm.SHA256, "sha256")],
    ids=["sha512-default", "sha256"],
)
def test_ok_reply_verifies_with_both_clients(
    local_tsa: LocalTsa,  # noqa: F811
    tmp_path: Path,
    algorithm: HashAlgorithm | None,
    digest_name: str,
) -> None:
    pki = local_tsa.pki
    request = build_request(algorithm=algorithm)
    before = datetime.now(UTC)
    reply = post(local_tsa.url, request)

    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == REPLY_CONTENT_TYPE
    assert local_tsa.requests == [request.as_bytes()]
    assert local_tsa.content_types == [QUERY_CONTENT_TYPE]
    response = decode_timestamp_response(reply.content)
    assert response.status == PKIStatus.GRANTED
    info = response.tst_info
    assert info.nonce == request.nonce
    assert info.policy == x509.ObjectIdentifier(POLICY_OID)
    assert info.message_imprint.hash_algorithm == request.message_imprint.hash_algorithm
    assert info.message_imprint.message == hashlib.new(digest_name, DATA).digest()
    slack = timedelta(seconds=2)
    assert before - slack <= info.gen_time <= datetime.now(UTC) + slack
    assert info.accuracy.seconds == 1
    assert info.ordering is True
    assert response.signed_data.certificates == {der(pki.tsa_cert)}
    assert reply_certificates(reply.content) == [der(pki.tsa_cert)]

    assert verify_with_client(response, pki.root_cert, request=request) is True
    assert_openssl_ok(
        verify_with_openssl(tmp_path, reply.content, pki.root_cert, untrusted=pki.tsa_cert)
    )
    assert_openssl_ok(verify_with_openssl(tmp_path, reply.content, pki.root_cert, request=request))


def test_query_parsing_helpers_read_what_rfc3161_client_wrote() -> None:
    request = build_request()
    assert query_nonce(request.as_bytes()) == request.nonce
    assert query_imprint(request.as_bytes()) == ("sha512", hashlib.sha512(DATA).digest())
    no_nonce = TimestampRequestBuilder().data(DATA).nonce(nonce=False).build()
    assert query_nonce(no_nonce.as_bytes()) is None


def test_server_listens_on_loopback_only_and_stops(tsa_pki: TsaPki) -> None:  # noqa: F811
    tsa = LocalTsa(tsa_pki)
    with pytest.raises(RuntimeError, match="not running"):
        _ = tsa.url
    with tsa:
        url = tsa.url
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/tsa")
        assert post(url, build_request()).status_code == 200
    with pytest.raises(httpx.ConnectError):
        post(url, build_request(), timeout=2)


def test_unknown_mode_is_refused(local_tsa: LocalTsa) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="unknown mode"):
        local_tsa.mode = "nonsense"
    assert local_tsa.mode == "ok"
    assert "ok" in MODES


# --- what each verifier rejects ----------------------------------------------------------


@pytest.fixture
def granted(local_tsa: LocalTsa) -> tuple[TimeStampRequest, bytes]:  # noqa: F811
    request = build_request()
    reply = post(local_tsa.url, request)
    assert reply.status_code == 200
    return request, reply.content


def test_changed_data_fails_both(
    local_tsa: LocalTsa,  # noqa: F811
    granted: tuple[TimeStampRequest, bytes],
    tmp_path: Path,
) -> None:
    _, reply = granted
    changed = b"hellp"
    response = decode_timestamp_response(reply)
    with pytest.raises(VerificationError, match="Mismatch between messages"):
        verify_with_client(response, local_tsa.pki.root_cert, data=changed)
    assert_openssl_fails(
        verify_with_openssl(tmp_path, reply, local_tsa.pki.root_cert, data=changed),
        "message imprint mismatch",
    )


def test_other_root_fails_both(
    local_tsa: LocalTsa,  # noqa: F811
    granted: tuple[TimeStampRequest, bytes],
    tmp_path: Path,
) -> None:
    request, reply = granted
    response = decode_timestamp_response(reply)
    with pytest.raises(VerificationError, match="unable to get local issuer certificate"):
        verify_with_client(response, local_tsa.pki.other_root_cert, request=request)
    assert_openssl_fails(
        verify_with_openssl(tmp_path, reply, local_tsa.pki.other_root_cert),
        "unable to get local issuer certificate",
    )


def test_wrong_nonce_fails_both_and_only_the_nonce_differs(
    local_tsa: LocalTsa,  # noqa: F811
    tmp_path: Path,
) -> None:
    pki = local_tsa.pki
    local_tsa.mode = "wrong-nonce"
    request = build_request()
    reply = post(local_tsa.url, request)
    assert reply.status_code == 200
    response = decode_timestamp_response(reply.content)
    assert response.status == PKIStatus.GRANTED
    assert response.tst_info.nonce != request.nonce
    assert response.tst_info.message_imprint.hash_algorithm == SHA512_OID
    assert response.tst_info.message_imprint.message == hashlib.sha512(DATA).digest()

    with pytest.raises(VerificationError, match="Nonce mismatch"):
        verify_with_client(response, pki.root_cert, request=request)
    assert_openssl_fails(
        verify_with_openssl(tmp_path, reply.content, pki.root_cert, request=request),
        "nonce mismatch",
    )
    # Without the request, neither verifier looks at the nonce: the token itself is sound.
    assert verify_with_client(response, pki.root_cert) is True
    assert_openssl_ok(verify_with_openssl(tmp_path, reply.content, pki.root_cert))


# --- the other modes -----------------------------------------------------------------


def test_other_imprint_covers_other_data(
    local_tsa: LocalTsa,  # noqa: F811
    tmp_path: Path,
) -> None:
    pki = local_tsa.pki
    local_tsa.mode = "other-imprint"
    request = build_request()
    reply = post(local_tsa.url, request)
    assert reply.status_code == 200
    response = decode_timestamp_response(reply.content)
    assert response.tst_info.nonce == request.nonce
    assert response.tst_info.message_imprint.hash_algorithm == SHA512_OID
    assert response.tst_info.message_imprint.message == hashlib.sha512(OTHER_DATA).digest()

    with pytest.raises(VerificationError, match="Mismatch between messages"):
        verify_with_client(response, pki.root_cert, request=request)
    assert_openssl_fails(
        verify_with_openssl(tmp_path, reply.content, pki.root_cert, request=request),
        "message imprint mismatch",
    )
    assert verify_with_client(response, pki.root_cert, data=OTHER_DATA) is True
    assert_openssl_ok(verify_with_openssl(tmp_path, reply.content, pki.root_cert, data=OTHER_DATA))


def test_slow_times_out_the_client(local_tsa: LocalTsa) -> None:  # noqa: F811
    local_tsa.mode = "slow"
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        post(local_tsa.url, build_request(), timeout=0.5)
    assert time.monotonic() - started < local_tsa.slow_seconds
    assert len(local_tsa.requests) == 1


def test_slow_answers_after_the_delay(local_tsa: LocalTsa) -> None:  # noqa: F811
    local_tsa.mode = "slow"
    local_tsa.slow_seconds = 0.3
    started = time.monotonic()
    reply = post(local_tsa.url, build_request())
    assert time.monotonic() - started >= 0.3
    assert decode_timestamp_response(reply.content).status == PKIStatus.GRANTED


def test_down_url_refuses_connections() -> None:
    url = LocalTsa.down_url()
    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(httpx.ConnectError):
        post(url, build_request(), timeout=2)


def test_garbage_is_not_a_reply(local_tsa: LocalTsa, tmp_path: Path) -> None:  # noqa: F811
    local_tsa.mode = "garbage"
    reply = post(local_tsa.url, build_request())
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == REPLY_CONTENT_TYPE
    with pytest.raises(ValueError, match=r"ASN\.1 parse error"):
        decode_timestamp_response(reply.content)
    with pytest.raises(subprocess.CalledProcessError):
        reply_text(tmp_path, reply.content)


def test_http_500(local_tsa: LocalTsa) -> None:  # noqa: F811
    local_tsa.mode = "http-500"
    reply = post(local_tsa.url, build_request())
    assert reply.status_code == 500
    with pytest.raises(httpx.HTTPStatusError):
        reply.raise_for_status()


def test_expired_certificate_fails_both(
    local_tsa: LocalTsa,  # noqa: F811
    tmp_path: Path,
) -> None:
    pki = local_tsa.pki
    expired = certificate(pki.expired_tsa_cert)
    assert expired.not_valid_after_utc < datetime.now(UTC)
    local_tsa.mode = "expired-cert"
    request = build_request()
    reply = post(local_tsa.url, request)
    assert reply.status_code == 200
    response = decode_timestamp_response(reply.content)  # decodes fine
    assert response.status == PKIStatus.GRANTED
    assert response.signed_data.certificates == {der(pki.expired_tsa_cert)}
    # rfc3161-client checks the chain at gen_time, which is after notAfter.
    with pytest.raises(VerificationError, match="certificate has expired"):
        verify_with_client(response, pki.root_cert, request=request)
    assert_openssl_fails(
        verify_with_openssl(tmp_path, reply.content, pki.root_cert, request=request),
        "certificate has expired",
    )


def test_with_chain_has_two_certificates(local_tsa: LocalTsa, tmp_path: Path) -> None:  # noqa: F811
    pki = local_tsa.pki
    local_tsa.mode = "with-chain"
    request = build_request()
    reply = post(local_tsa.url, request)
    assert reply.status_code == 200
    # The signer first, then the root: not the DER order of a SET OF.
    certs = reply_certificates(reply.content)
    assert certs == [der(pki.tsa_cert), der(pki.root_cert)]
    assert certs != sorted(certs)

    # rfc3161-client refuses to decode it at all ...
    with pytest.raises(ValueError, match="InvalidSetOrdering"):
        decode_timestamp_response(reply.content)
    # ... while openssl verifies it, with or without the request.
    assert_openssl_ok(verify_with_openssl(tmp_path, reply.content, pki.root_cert))
    assert_openssl_ok(verify_with_openssl(tmp_path, reply.content, pki.root_cert, request=request))

    # The limit is the order, not the count: sorted, the same reply decodes and verifies.
    response = decode_timestamp_response(with_sorted_certificates(reply.content))
    assert response.signed_data.certificates == {der(pki.tsa_cert), der(pki.root_cert)}
    assert verify_with_client(response, pki.root_cert, request=request) is True


def test_rejection(local_tsa: LocalTsa, tmp_path: Path) -> None:  # noqa: F811
    local_tsa.mode = "rejection"
    reply = post(local_tsa.url, build_request())
    assert reply.status_code == 200
    text = reply_text(tmp_path, reply.content)
    assert "Status: Rejected." in text
    assert "Requested policy is not supported." in text
    assert "TST info:\nNot included." in text
    # rfc3161-client decodes it and shows the status, but has no token to show.
    response = decode_timestamp_response(reply.content)
    assert response.status == PKIStatus.REJECTION
    assert response.status_string == ["Requested policy is not supported."]
    assert response.time_stamp_token() == b""
    with pytest.raises(ValueError, match="Missing SignedData"):
        _ = response.tst_info
    with pytest.raises(ValueError, match="Missing SignedData"):
        _ = response.signed_data
    # verify_message reads tst_info first (ValueError); verify checks the status first.
    with pytest.raises(ValueError, match="Missing SignedData"):
        verify_with_client(response, local_tsa.pki.root_cert)
    verifier = VerifierBuilder().add_root_certificate(certificate(local_tsa.pki.root_cert)).build()
    with pytest.raises(VerificationError, match="PKIStatus is not GRANTED"):
        verifier.verify(response, hashlib.sha512(DATA).digest())


def test_granted_then_rejection(local_tsa: LocalTsa, tmp_path: Path) -> None:  # noqa: F811
    local_tsa.mode = "granted-then-rejection"
    statuses = []
    for _ in range(3):
        text = reply_text(tmp_path, post(local_tsa.url, build_request()).content)
        statuses.append(text.splitlines()[1])
    assert statuses == ["Status: Granted.", "Status: Rejected.", "Status: Rejected."]
    local_tsa.mode = "granted-then-rejection"  # setting the mode starts over
    first = post(local_tsa.url, build_request()).content
    assert decode_timestamp_response(first).status == PKIStatus.GRANTED
