"""A real RFC 3161 timestamp authority for tests: ``openssl ts -reply`` behind HTTP.

``make_pki`` makes an EC P-256 root, a TSA certificate it signs (critical EKU
timeStamping), an expired TSA certificate, an unrelated root and the ``openssl ts``
config, all with the openssl CLI. ``LocalTsa`` serves ``POST /tsa`` on 127.0.0.1 only;
its ``mode`` picks how it answers and can be changed at any time:

- ``ok``: the reply of ``openssl ts -reply`` to the query, one certificate (the TSA's).
- ``slow``: the same, after ``slow_seconds`` (cut short when the server stops).
- ``garbage``: status 200 with random bytes (the first one 0xFF, so never DER).
- ``http-500``: status 500.
- ``other-imprint``: a granted reply with the query's hash algorithm and nonce but the
  imprint of ``OTHER_DATA``.
- ``wrong-nonce``: a granted reply with the query's imprint but another nonce.
- ``expired-cert``: signed with the expired TSA certificate and its own key.
- ``with-chain``: signed with ``-chain root.pem``, so the SignedData certificate SET
  holds the TSA certificate then the root, in that (not DER-sorted) order.
- ``rejection``: a reply with status rejection (unacceptedPolicy) and no token.
- ``granted-then-rejection``: the first query after the mode is set is answered as in
  ``ok``, every later one as in ``rejection``.

Test files use the fixtures with
``from tests.tsa import LocalTsa, TsaPki, local_tsa, tsa_pki  # noqa: F401``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import pytest

HOST = "127.0.0.1"
PATH = "/tsa"
POLICY_OID = "1.2.3.4.1"
# A policy the TSA does not accept: a query asking for it gets a rejection.
UNSUPPORTED_POLICY_OID = "1.2.3.4.99"
_UNSUPPORTED_POLICY_DER = bytes.fromhex("06042a030463")  # OID 1.2.3.4.99
# The data whose digest "other-imprint" replies carry.
OTHER_DATA = b"not the data that was asked for"
REPLY_CONTENT_TYPE = "application/timestamp-reply"
QUERY_CONTENT_TYPE = "application/timestamp-query"
MODES = (
    "ok",
    "slow",
    "garbage",
    "http-500",
    "other-imprint",
    "wrong-nonce",
    "expired-cert",
    "with-chain",
    "rejection",
    "granted-then-rejection",
)
# DER of the digest AlgorithmIdentifier OIDs openssl accepts here, by hashlib name.
_DIGEST_OIDS = {
    bytes.fromhex("0609608648016503040201"): "sha256",
    bytes.fromhex("0609608648016503040202"): "sha384",
    bytes.fromhex("0609608648016503040203"): "sha512",
}
_OPENSSL_TIMEOUT = 30
# One openssl ts -reply at a time: each one rewrites the serial file.
_REPLY_LOCK = threading.Lock()


def require_openssl() -> str:
    """The path of the openssl CLI; skip the test visibly without it."""
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("openssl is not installed: the local TSA needs `openssl ts`")
    return path


def openssl(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``openssl ARGS``; raise with its stderr when it fails."""
    argv = [require_openssl(), *(str(a) for a in args)]
    done = subprocess.run(argv, check=False, capture_output=True, cwd=cwd, timeout=_OPENSSL_TIMEOUT)
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace")
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {message}")
    return done


@dataclass(frozen=True)
class TsaPki:
    folder: Path
    root_cert: Path  # the trust anchor (PEM)
    tsa_cert: Path  # the TSA signing certificate (PEM), signed by the root
    tsa_key: Path
    expired_tsa_cert: Path  # signed by the root, valid 2020-01-01 to 2020-01-02 only
    expired_tsa_key: Path
    other_root_cert: Path  # an unrelated root
    config: Path  # the openssl config: [tsa] for ts -reply, [expired_ca] for ca


_CONFIG = """\
[req]
distinguished_name = req_dn
prompt = no

[req_dn]
CN = unused

[root_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[tsa_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ca]
default_ca = expired_ca

[expired_ca]
database = {folder}/ca/index.txt
serial = {folder}/ca/serial
new_certs_dir = {folder}/ca
default_md = sha256
policy = any_name
unique_subject = no
copy_extensions = none

[any_name]
commonName = supplied

[tsa]
default_tsa = tsa_config

[tsa_config]
serial = {folder}/tsaserial
crypto_device = builtin
default_policy = {policy}
digests = sha256, sha384, sha512
signer_digest = sha256
ess_cert_id_alg = sha256
ess_cert_id_chain = no
accuracy = secs:1
ordering = yes
tsa_name = yes
"""


def make_pki(folder: Path) -> TsaPki:
    """Make the keys, certificates and ``openssl ts`` config in ``folder``."""
    require_openssl()
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if any(ch in str(folder) for ch in "$#\n"):
        raise ValueError(f"{folder}: openssl config values cannot hold this path")
    config = folder / "openssl.cnf"
    config.write_text(_CONFIG.format(folder=folder, policy=POLICY_OID))
    (folder / "ca").mkdir(exist_ok=True)
    (folder / "ca" / "index.txt").write_text("")
    (folder / "ca" / "serial").write_text("2002\n")
    (folder / "tsaserial").write_text("01\n")

    def key(name: str) -> Path:
        path = folder / f"{name}.key"
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
        return path

    def root(name: str, subject: str, serial: str) -> tuple[Path, Path]:
        private, cert = key(name), folder / f"{name}.pem"
        openssl(
            "req", "-config", config, "-x509", "-new", "-key", private, "-subj", subject,
            "-set_serial", serial, "-days", "3650", "-extensions", "root_ext", "-out", cert,
        )  # fmt: skip
        return private, cert

    def request(name: str, subject: str) -> tuple[Path, Path]:
        private, csr = key(name), folder / f"{name}.csr"
        openssl("req", "-config", config, "-new", "-key", private, "-subj", subject, "-out", csr)
        return private, csr

    # Small serials keep the root's DER shorter than the TSA certificate's, so the
    # "with-chain" SET [TSA, root] is never DER-sorted by chance.
    root_key, root_cert = root("root", "/O=evidence-kit tests/CN=Test TSA Root", "1")
    _, other_root_cert = root("other-root", "/O=elsewhere/CN=Unrelated Root", "1")

    tsa_key, tsa_csr = request("tsa", "/O=evidence-kit tests/CN=Test TSA")
    tsa_cert = folder / "tsa.pem"
    openssl(
        "x509", "-req", "-in", tsa_csr, "-CA", root_cert, "-CAkey", root_key,
        "-set_serial", "4097", "-days", "3650",
        "-extfile", config, "-extensions", "tsa_ext", "-out", tsa_cert,
    )  # fmt: skip

    # `x509 -req` cannot date a certificate in the past; `openssl ca` can.
    expired_key, expired_csr = request("expired-tsa", "/O=evidence-kit tests/CN=Expired TSA")
    expired_cert = folder / "expired-tsa.pem"
    openssl(
        "ca", "-config", config, "-batch", "-notext", "-cert", root_cert, "-keyfile", root_key,
        "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
        "-extfile", config, "-extensions", "tsa_ext", "-in", expired_csr, "-out", expired_cert,
    )  # fmt: skip

    return TsaPki(
        folder=folder,
        root_cert=root_cert,
        tsa_cert=tsa_cert,
        tsa_key=tsa_key,
        expired_tsa_cert=expired_cert,
        expired_tsa_key=expired_key,
        other_root_cert=other_root_cert,
        config=config,
    )


def ts_reply(pki: TsaPki, query: bytes, *, expired: bool = False, chain: bool = False) -> bytes:
    """The DER TimeStampResp of ``openssl ts -reply`` to the DER TimeStampReq ``query``.

    ``expired`` signs with the expired certificate; ``chain`` adds the root to the
    certificates of the token (``-chain``).
    """
    cert, private = (
        (pki.expired_tsa_cert, pki.expired_tsa_key) if expired else (pki.tsa_cert, pki.tsa_key)
    )
    with tempfile.TemporaryDirectory(prefix="tsa-") as tmp:
        query_file, reply_file = Path(tmp, "query.tsq"), Path(tmp, "reply.tsr")
        query_file.write_bytes(query)
        args: list[str | Path] = [
            "ts", "-reply", "-config", pki.config, "-queryfile", query_file,
            "-inkey", private, "-signer", cert, "-out", reply_file,
        ]  # fmt: skip
        if chain:
            args += ["-chain", pki.root_cert]
        with _REPLY_LOCK:
            openssl(*args)
        return reply_file.read_bytes()


# --- Just enough DER to read and rewrite a TimeStampReq ----------------------------------


def _read(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the content, end) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or pos + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _children(content: bytes) -> list[tuple[int, bytes]]:
    """The (tag, whole element) pairs inside a constructed element's content."""
    items, pos = [], 0
    while pos < len(content):
        tag, _, end = _read(content, pos)
        items.append((tag, content[pos:end]))
        pos = end
    return items


def _content(element: bytes) -> bytes:
    _, start, end = _read(element, 0)
    return element[start:end]


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _der_integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _query_fields(query: bytes) -> list[tuple[int, bytes]]:
    tag, start, end = _read(query, 0)
    fields = _children(query[start:end])
    if tag != 0x30 or end != len(query) or len(fields) < 2 or fields[1][0] != 0x30:
        raise ValueError("not a DER TimeStampReq")
    return fields


def _rebuild(fields: list[tuple[int, bytes]]) -> bytes:
    return _tlv(0x30, b"".join(element for _, element in fields))


def query_nonce(query: bytes) -> int | None:
    """The nonce of a DER TimeStampReq, or None without one."""
    for tag, element in _query_fields(query)[2:]:
        if tag == 0x02:
            return int.from_bytes(_content(element), "big", signed=True)
    return None


def query_imprint(query: bytes) -> tuple[str | None, bytes]:
    """(hashlib name or None if not sha256/384/512, digest) of a DER TimeStampReq."""
    algorithm, digest = _children(_content(_query_fields(query)[1][1]))
    oid = _children(_content(algorithm[1]))[0][1]
    return _DIGEST_OIDS.get(oid), _content(digest[1])


def with_nonce(query: bytes, nonce: int) -> bytes:
    """``query`` with its nonce replaced (or added)."""
    fields = _query_fields(query)
    new = (0x02, _der_integer(nonce))
    for index, (tag, _) in enumerate(fields[2:], start=2):
        if tag == 0x02:
            fields[index] = new
            break
    else:
        at = 3 if len(fields) > 2 and fields[2][0] == 0x06 else 2
        fields.insert(at, new)
    return _rebuild(fields)


def with_digest(query: bytes, digest: bytes) -> bytes:
    """``query`` with the same hash algorithm but ``digest`` as its hashed message."""
    fields = _query_fields(query)
    algorithm, _ = _children(_content(fields[1][1]))
    fields[1] = (0x30, _tlv(0x30, algorithm[1] + _tlv(0x04, digest)))
    return _rebuild(fields)


def with_unsupported_policy(query: bytes) -> bytes:
    """``query`` asking for ``UNSUPPORTED_POLICY_OID``, which the TSA rejects."""
    fields = _query_fields(query)
    new = (0x06, _UNSUPPORTED_POLICY_DER)
    if len(fields) > 2 and fields[2][0] == 0x06:
        fields[2] = new
    else:
        fields.insert(2, new)
    return _rebuild(fields)


def reply_certificates(reply: bytes) -> list[bytes]:
    """The DER certificates of a TimeStampResp's SignedData, in their encoded order."""
    response = _children(_content(reply))
    if len(response) < 2:
        return []
    content_info = _children(_content(response[1][1]))
    signed_data = _children(_content(_content(content_info[1][1])))
    for tag, element in signed_data:
        if tag == 0xA0:
            return [cert for _, cert in _children(_content(element))]
    return []


def with_sorted_certificates(reply: bytes) -> bytes:
    """``reply`` with its certificate SET in DER order (the signature does not cover it)."""
    certs = reply_certificates(reply)
    encoded = b"".join(certs)
    if reply.count(encoded) != 1:
        raise ValueError("cannot find the certificate SET in the reply")
    return reply.replace(encoded, b"".join(sorted(certs)))


# --- The HTTP server ------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # join handler threads on close
    block_on_close = True

    def __init__(self, tsa: LocalTsa) -> None:
        super().__init__((HOST, 0), _Handler)
        self.tsa = tsa


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a client that sends nothing cannot hold up the server's close

    def do_POST(self) -> None:
        if self.path != PATH:
            self._send(404, "text/plain", b"not found\n")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = self.server.tsa.answer(body, self.headers.get("Content-Type"))
        if answer is not None:
            self._send(*answer)

    def do_GET(self) -> None:
        self._send(405, "text/plain", b"POST a DER TimeStampReq\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def log_message(self, format: str, *args: object) -> None:
        pass


class LocalTsa:
    """A running local TSA while used as a context manager; see the module docstring."""

    def __init__(self, pki: TsaPki) -> None:
        self.pki = pki
        self.slow_seconds = 5.0
        self.requests: list[bytes] = []  # every POST body to /tsa, in order
        self.content_types: list[str | None] = []  # their Content-Type headers
        self._mode = "ok"
        self._answered_in_mode = 0
        self._state = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        with self._state:
            self._mode = mode
            self._answered_in_mode = 0

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the TSA is not running: use it in a with statement")
        port = self._server.server_address[1]
        return f"http://{HOST}:{port}{PATH}"

    @staticmethod
    def down_url() -> str:
        """A URL on 127.0.0.1 where nothing listens (a port just bound and closed)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        return f"http://{HOST}:{port}{PATH}"

    def __enter__(self) -> LocalTsa:
        require_openssl()
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()  # ends a "slow" wait at once
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join()
        self._server, self._thread = None, None

    def answer(self, query: bytes, content_type: str | None) -> tuple[int, str, bytes] | None:
        """(HTTP status, Content-Type, body) for one POSTed query; None: send nothing."""
        with self._state:
            self.requests.append(query)
            self.content_types.append(content_type)
            mode = self._mode
            earlier = self._answered_in_mode
            self._answered_in_mode += 1
        if mode == "slow" and self._stopping.wait(self.slow_seconds):
            return None
        if mode == "garbage":
            return 200, REPLY_CONTENT_TYPE, b"\xff" + os.urandom(511)  # never DER
        if mode == "http-500":
            return 500, "text/plain", b"internal error\n"
        try:
            return 200, REPLY_CONTENT_TYPE, self._reply(mode, earlier, query)
        except (ValueError, RuntimeError) as error:
            return 400, "text/plain", f"{error}\n".encode()

    def _reply(self, mode: str, earlier: int, query: bytes) -> bytes:
        if mode == "other-imprint":
            name, digest = query_imprint(query)
            other = (
                hashlib.new(name, OTHER_DATA).digest() if name else bytes(b ^ 0xFF for b in digest)
            )
            query = with_digest(query, other)
        elif mode == "wrong-nonce":
            new = secrets.randbits(63) | 1 << 62
            if new == query_nonce(query):
                new ^= 1
            query = with_nonce(query, new)
        elif mode == "rejection" or (mode == "granted-then-rejection" and earlier > 0):
            query = with_unsupported_policy(query)
        return ts_reply(self.pki, query, expired=mode == "expired-cert", chain=mode == "with-chain")


@pytest.fixture(scope="session")
def tsa_pki(tmp_path_factory: pytest.TempPathFactory) -> TsaPki:
    """One PKI for the whole session (made with the openssl CLI)."""
    require_openssl()
    return make_pki(tmp_path_factory.mktemp("tsa-pki"))


@pytest.fixture
def local_tsa(tsa_pki: TsaPki) -> Iterator[LocalTsa]:
    """A running local TSA in mode "ok"."""
    with LocalTsa(tsa_pki) as tsa:
        yield tsa
