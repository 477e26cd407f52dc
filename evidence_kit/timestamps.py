"""RFC 3161 trusted timestamps over the custody log head.

A token is requested over the bytes of the newest custody event line (the log head),
which binds everything before it: every earlier event by the hash chain, the container
and the manifest by event 0. The token, the request (with its nonce) and the time of the
local clock just before asking are kept in a 'timestamped' custody event. Requests and
parsing use rfc3161-client over httpx; verification is offline, against TSA roots the
verifier trusts (the certificates a token carries are never trust).

rfc3161-client cannot parse a reply whose certificate SET is not DER-sorted (OpenSSL
TSAs asked to include their chain). Such a token is still stored as received, and
verified with ``openssl ts -verify`` where the openssl command is installed; the result
says which path verified.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import httpx
import platformdirs
import rfc3161_client
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from evidence_kit import clock
from evidence_kit.canonical import decimal_integer
from evidence_kit.custody import CustodyLog, line_sha256
from evidence_kit.errors import UsageError
from evidence_kit.i18n import _
from evidence_kit.models import CustodyEvent, Finding, TimestampCheck, TimestampToken

DEFAULT_TIMEOUT = 10.0
DEFAULT_SKEW_SECONDS = 300
CONFIG_FILE = "tsa.toml"
ROOTS_FOLDER = "tsa-roots"
_CONTENT_TYPE = "application/timestamp-query"
VerifiedWith = Literal["rfc3161-client", "openssl", "none"]


@dataclass(frozen=True)
class Tsa:
    """One timestamp authority to ask, in fallback order."""

    url: str
    timeout: float = DEFAULT_TIMEOUT


class TimestampUnavailable(Exception):
    """No TSA gave a usable token; ``str()`` says what each one did."""


def config_folder() -> Path:
    return Path(platformdirs.user_config_dir("evidence-kit"))


def configured_tsas(urls: Sequence[str] = (), timeout: float | None = None) -> list[Tsa]:
    """The TSAs given on the command line, else those of ``tsa.toml`` in the user's
    config folder (``[[tsa]] url = ... timeout = ...``), in order."""
    if urls:
        return [Tsa(url, timeout or DEFAULT_TIMEOUT) for url in urls]
    path = config_folder() / CONFIG_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(_("cannot read {path}: {error}").format(path=path, error=error)) from None
    default = float(data.get("timeout", DEFAULT_TIMEOUT))
    tsas = []
    for entry in data.get("tsa", []):
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise UsageError(_("{path}: every [[tsa]] needs a url").format(path=path))
        tsas.append(Tsa(entry["url"], timeout or float(entry.get("timeout", default))))
    return tsas


def trusted_roots(paths: Sequence[Path] = ()) -> list[x509.Certificate]:
    """TSA root certificates from ``--tsa-ca`` files (PEM, several per file allowed), or
    else every ``*.pem`` in the ``tsa-roots`` folder of the user's config folder."""
    files = list(paths)
    if not files:
        folder = config_folder() / ROOTS_FOLDER
        files = sorted(folder.glob("*.pem")) if folder.is_dir() else []
    roots: list[x509.Certificate] = []
    for path in files:
        try:
            roots += x509.load_pem_x509_certificates(path.read_bytes())
        except OSError as error:
            raise UsageError(
                _("cannot read {path}: {reason}").format(path=path, reason=error.strerror)
            ) from None
        except ValueError:
            raise UsageError(_("no PEM certificate in {path}").format(path=path)) from None
    return roots


def request_token(
    tsas: Sequence[Tsa],
    line: bytes,
    stamped_seq: int,
    roots: Sequence[x509.Certificate] = (),
) -> TimestampToken:
    """A token over ``line`` (a custody line without its newline) from the first TSA
    that answers with one (that verifies against ``roots``, when given);
    TimestampUnavailable when none does."""
    if not tsas:
        raise TimestampUnavailable(_("no TSA configured (give --tsa URL)"))
    problems = []
    for tsa in tsas:
        try:
            return _ask(tsa, line, stamped_seq, roots)
        except TimestampUnavailable as error:
            problems.append(f"{tsa.url}: {error}")
    raise TimestampUnavailable("; ".join(problems))


def _ask(
    tsa: Tsa, line: bytes, stamped_seq: int, roots: Sequence[x509.Certificate]
) -> TimestampToken:
    request = rfc3161_client.TimestampRequestBuilder().data(line).nonce(nonce=True).build()
    requested_at = clock.now()
    try:
        with httpx.Client(
            transport=httpx.HTTPTransport(retries=2), timeout=tsa.timeout, follow_redirects=True
        ) as client:
            reply = client.post(
                tsa.url, content=request.as_bytes(), headers={"Content-Type": _CONTENT_TYPE}
            )
    except httpx.TimeoutException:
        raise TimestampUnavailable(_("no answer within {n} s").format(n=tsa.timeout)) from None
    except httpx.HTTPError as error:
        raise TimestampUnavailable(_("cannot reach it: {error}").format(error=error)) from None
    if reply.status_code != 200:
        raise TimestampUnavailable(_("HTTP status {code}").format(code=reply.status_code))
    response = reply.content
    nonce = request.nonce
    token = TimestampToken(
        tsa_url=tsa.url,
        stamped_seq=stamped_seq,
        stamped_line_sha256=hashlib.sha256(line).hexdigest(),
        hash_algorithm="sha512",
        requested_at=requested_at,
        nonce=str(nonce),
        gen_time=None,
        request_der_b64=base64.b64encode(request.as_bytes()).decode("ascii"),
        response_der_b64=base64.b64encode(response).decode("ascii"),
    )
    problem = _reply_problem(token, line)
    if problem is None and roots:
        untrusted = _trust_problem(token, line, roots)
        if untrusted is not None:
            problem = _("the token does not verify against --tsa-ca: {why}").format(why=untrusted)
    if problem is not None:
        raise TimestampUnavailable(problem)
    return token.model_copy(update={"gen_time": _gen_time(response)})


def _reply_problem(token: TimestampToken, line: bytes) -> str | None:
    """Why a reply is not a token for this request (None: it is, as far as can be seen
    without trust: granted, the right imprint, the right nonce)."""
    response = base64.b64decode(token.response_der_b64)
    try:
        parsed = rfc3161_client.decode_timestamp_response(response)
    except ValueError:
        if openssl_path() is None:
            return _("the reply cannot be parsed, and openssl is not installed to try")
        return _openssl_verify(token, line, roots=None)
    if rfc3161_client.PKIStatus(parsed.status) not in (
        rfc3161_client.PKIStatus.GRANTED,
        rfc3161_client.PKIStatus.GRANTED_WITH_MODS,
    ):
        return _("the TSA refused: status {status} {text}").format(
            status=parsed.status, text=" ".join(parsed.status_string)
        )
    try:
        mismatch = _binding_problem(parsed, token, line)
    except ValueError as error:  # granted, yet no token inside
        return _("the reply holds no usable token: {error}").format(error=error)
    return mismatch[1] if mismatch else None


def _binding_problem(
    parsed: rfc3161_client.TimeStampResponse, token: TimestampToken, line: bytes
) -> tuple[str, str] | None:
    """(code, message) when the token is not over ``line`` or not the answer to the
    request with the token's nonce."""
    if parsed.tst_info.message_imprint.message != _imprint(parsed, line):
        return "timestamp-imprint-mismatch", _("the token is for other data (imprint differs)")
    if str(parsed.tst_info.nonce) != token.nonce:
        return "timestamp-nonce-mismatch", _("the token answers another request (nonce differs)")
    return None


def _gen_time(response: bytes) -> str | None:
    try:
        moment = rfc3161_client.decode_timestamp_response(response).tst_info.gen_time
    except ValueError:
        return _openssl_gen_time(response)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _rfc3339(moment)


def _openssl_gen_time(response: bytes) -> str | None:
    """The time ``openssl ts -reply -text`` shows ("Time stamp: Nov 28 20:52:35 2026 GMT",
    perhaps with a fraction), for tokens rfc3161-client cannot parse."""
    openssl = openssl_path()
    if openssl is None:
        return None
    with tempfile.TemporaryDirectory(prefix="ek-ts-") as folder:
        token = Path(folder) / "token.tsr"
        token.write_bytes(response)
        shown = subprocess.run(
            [openssl, "ts", "-reply", "-in", str(token), "-text"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    for text_line in shown.stdout.splitlines():
        if text_line.startswith("Time stamp: "):
            stamp = text_line.removeprefix("Time stamp: ").removesuffix(" GMT").strip()
            stamp = " ".join(stamp.split())  # "Nov  8" has two spaces
            whole, _dot, fraction = stamp.partition(".")
            if fraction:
                digits, _space, year = fraction.partition(" ")
                whole = f"{whole} {year}"
                micro = int((digits + "000000")[:6])
            else:
                micro = 0
            try:
                moment = datetime.strptime(whole, "%b %d %H:%M:%S %Y").replace(
                    tzinfo=UTC, microsecond=micro
                )
            except ValueError:
                return None
            return _rfc3339(moment)
    return None


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def openssl_path() -> str | None:
    return shutil.which("openssl")


def verify_tokens(
    log: CustodyLog,
    roots: Sequence[x509.Certificate],
    *,
    skew_seconds: int = DEFAULT_SKEW_SECONDS,
) -> tuple[list[TimestampCheck], list[Finding]]:
    """Check every token of the log offline: what it stamps, imprint and nonce, and, with
    trusted roots, its signature and certificate chain at the token's time."""
    checks: list[TimestampCheck] = []
    findings: list[Finding] = []
    acquired = log.events[0] if log.events else None
    for event in log.events:
        token = event.timestamp
        if token is None:
            continue
        subject = _("custody event {n} ({action})").format(n=event.seq, action=event.action)
        problem, verified_with = _check_token(log, event, token, roots)
        verified: bool | None = problem is None
        if problem is not None:
            findings.append(
                Finding(code=problem[0], severity="error", subject=subject, message=problem[1])
            )
        elif not roots:
            verified = None
            findings.append(
                Finding(
                    code="timestamp-root-not-given",
                    severity="warning",
                    subject=subject,
                    message=_("the token was not verified: give its TSA's root certificate "
                              "with --tsa-ca"),
                )
            )  # fmt: skip
        offset = _offset_ms(token)
        gen_ns = _gen_time_ns(token.gen_time) if token.gen_time is not None else None
        if verified and acquired is not None and gen_ns is not None:
            early = _ns(acquired.time.ns) - gen_ns
            if early > skew_seconds * 1_000_000_000:
                findings.append(
                    Finding(
                        code="timestamp-before-acquisition",
                        severity="warning",
                        subject=subject,
                        message=_("the token's time is {s} s before the acquisition's local "
                                  "time: the acquiring computer's clock was ahead").format(
                            s=early // 1_000_000_000),
                    )
                )  # fmt: skip
        checks.append(
            TimestampCheck(
                event_seq=event.seq,
                tsa_url=token.tsa_url,
                stamped_seq=token.stamped_seq,
                gen_time=token.gen_time,
                verified=verified,
                verified_with=verified_with,
                clock_offset_ms=offset,
            )
        )
    return checks, findings


def _check_token(
    log: CustodyLog, event: CustodyEvent, token: TimestampToken, roots: Sequence[x509.Certificate]
) -> tuple[tuple[str, str] | None, VerifiedWith]:
    """(code, message) of the first problem, or None; and which verifier decided."""
    if event.action != "timestamped":
        return ("timestamp-misplaced", _("only 'timestamped' events carry a token")), "none"
    if not 0 <= token.stamped_seq < min(event.seq, len(log.lines)):
        return ("timestamp-stamped-event-missing", _("stamps an event not before it")), "none"
    line = log.lines[token.stamped_seq].rstrip(b"\n")
    if line_sha256(line) != token.stamped_line_sha256:
        return ("timestamp-stamped-event-changed",
                _("the stamped event is not the one the token was made for")), "none"  # fmt: skip
    try:
        response = base64.b64decode(token.response_der_b64, validate=True)
        base64.b64decode(token.request_der_b64, validate=True)
    except ValueError:
        return ("timestamp-malformed", _("token or request is not base64")), "none"
    bad_time = token.gen_time is not None and _gen_time_ns(token.gen_time) is None
    if decimal_integer(token.nonce) is None or bad_time:
        return ("timestamp-malformed", _("the recorded nonce or time is malformed")), "none"
    try:
        parsed = rfc3161_client.decode_timestamp_response(response)
    except ValueError:
        if openssl_path() is None:
            return ("timestamp-unverifiable",
                    _("rfc3161-client cannot parse this token and openssl is not installed")
                    ), "none"  # fmt: skip
        problem = _openssl_verify(token, line, roots=roots or None)
        if problem is not None:
            return ("timestamp-invalid", problem), "openssl"
        return None, "openssl" if roots else "none"
    try:
        mismatch = _binding_problem(parsed, token, line)
    except ValueError as error:  # e.g. a refusal: no token inside
        return ("timestamp-malformed", str(error)), "rfc3161-client"
    if mismatch is not None:
        return mismatch, "rfc3161-client"
    if not roots:
        return None, "none"
    problem = _signature_problem(parsed, token, line, roots)
    if problem is not None:
        return ("timestamp-invalid", problem), "rfc3161-client"
    return None, "rfc3161-client"


def _signature_problem(
    parsed: rfc3161_client.TimeStampResponse,
    token: TimestampToken,
    line: bytes,
    roots: Sequence[x509.Certificate],
) -> str | None:
    """The TSA's signature and chain to ``roots`` at the token's time (the certificates
    the token carries serve only as intermediates)."""
    try:
        builder = rfc3161_client.VerifierBuilder(roots=list(roots), nonce=int(token.nonce))
        for der in parsed.signed_data.certificates:
            certificate = x509.load_der_x509_certificate(der)
            if certificate not in roots:
                builder = builder.add_intermediate_certificate(certificate)
        builder.build().verify_message(parsed, line)
    except (rfc3161_client.VerificationError, ValueError) as error:
        return str(error)
    return None


def _trust_problem(
    token: TimestampToken, line: bytes, roots: Sequence[x509.Certificate]
) -> str | None:
    """Whether a token just received verifies against the roots the requester trusts."""
    response = base64.b64decode(token.response_der_b64)
    try:
        parsed = rfc3161_client.decode_timestamp_response(response)
    except ValueError:
        if openssl_path() is None:
            return _("rfc3161-client cannot parse it and openssl is not installed")
        return _openssl_verify(token, line, roots=roots)
    return _signature_problem(parsed, token, line, roots)


def _imprint(parsed: rfc3161_client.TimeStampResponse, line: bytes) -> bytes:
    algorithm = {
        "2.16.840.1.101.3.4.2.1": hashlib.sha256,
        "2.16.840.1.101.3.4.2.2": hashlib.sha384,
        "2.16.840.1.101.3.4.2.3": hashlib.sha512,
    }.get(parsed.tst_info.message_imprint.hash_algorithm.dotted_string)
    return algorithm(line).digest() if algorithm else b""


def _openssl_verify(
    token: TimestampToken, line: bytes, roots: Sequence[x509.Certificate] | None
) -> str | None:
    """``openssl ts -verify`` against the data and against the request (nonce); without
    ``roots`` only the imprint and nonce are compared (``-no_check_time`` is not used)."""
    openssl = openssl_path()
    assert openssl is not None
    with tempfile.TemporaryDirectory(prefix="ek-ts-") as folder:
        work = Path(folder)
        (work / "stamped.bin").write_bytes(line)
        (work / "token.tsr").write_bytes(base64.b64decode(token.response_der_b64))
        (work / "request.tsq").write_bytes(base64.b64decode(token.request_der_b64))
        if roots is None:
            shown = subprocess.run(
                [openssl, "ts", "-reply", "-in", str(work / "token.tsr"), "-text"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if shown.returncode != 0 or "Granted" not in shown.stdout:
                return _("the reply is not a granted token")
            return None
        (work / "roots.pem").write_bytes(b"".join(r.public_bytes(Encoding.PEM) for r in roots))
        for against in (["-data", str(work / "stamped.bin")],
                        ["-queryfile", str(work / "request.tsq")]):  # fmt: skip
            result = subprocess.run(
                [openssl, "ts", "-verify", "-in", str(work / "token.tsr"), *against,
                 "-CAfile", str(work / "roots.pem")],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if result.returncode != 0 or "Verification: OK" not in result.stdout:
                lines = (result.stderr or result.stdout).strip().splitlines()
                return _("openssl ts -verify: {reason}").format(
                    reason=lines[-1] if lines else "failed"
                )
    return None


def _ns(text: str) -> int:
    return decimal_integer(text) or 0


def _gen_time_ns(gen_time: str) -> int | None:
    try:
        moment = datetime.strptime(gen_time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return (calendar.timegm(moment.utctimetuple()) * 1_000_000 + moment.microsecond) * 1000


def _offset_ms(token: TimestampToken) -> int | None:
    gen_ns = _gen_time_ns(token.gen_time) if token.gen_time is not None else None
    requested_ns = decimal_integer(token.requested_at.ns)
    if gen_ns is None or requested_ns is None:
        return None
    return (gen_ns - requested_ns) // 1_000_000


__all__ = [
    "DEFAULT_SKEW_SECONDS",
    "TimestampUnavailable",
    "Tsa",
    "config_folder",
    "configured_tsas",
    "openssl_path",
    "request_token",
    "trusted_roots",
    "verify_tokens",
]
