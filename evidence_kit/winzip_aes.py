"""WinZip AES (AE-2, AES-256, stored) through OpenSSL: pyzipper's bytes, several times faster.

WinZip AES is AES in CTR mode with a little-endian 128-bit counter starting at 1, keys
from PBKDF2-HMAC-SHA1 (1,000 rounds, 16-byte salt, 66 bytes: AES key, HMAC key, 2-byte
password verifier) and HMAC-SHA1 over the ciphertext, truncated to 10 bytes. OpenSSL's CTR
mode counts big-endian, so the keystream here is AES-ECB over counter blocks built with
bytes operations, XORed with pycryptodome's C ``strxor``; the HMAC is hashlib's (OpenSSL).
pyzipper's own reader and 7-Zip read what this writes, and this reads what they write
(``tests/test_winzip_aes.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator
from functools import cache
from typing import BinaryIO

from Cryptodome.Util.strxor import strxor
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from evidence_kit.hashing import Hasher, MultiDigest, ThreadedDigest, digest_for

SALT_LENGTH = 16
VERIFIER_LENGTH = 2
MAC_LENGTH = 10
HEADER_LENGTH = SALT_LENGTH + VERIFIER_LENGTH
OVERHEAD = HEADER_LENGTH + MAC_LENGTH
KEY_LENGTH = 32
BLOCK = 16
_WINDOW = 1 << 16  # counter blocks whose high bytes are equal


@cache
def _template() -> memoryview:
    """Block j holds j in its two low bytes: a window's counters are this template XOR
    the window's high bytes, repeated (1 MiB, made on first use)."""
    return memoryview(b"".join(j.to_bytes(2, "little") + bytes(14) for j in range(_WINDOW)))


class WrongPassword(Exception):
    """The 2-byte password verifier does not match (about 1 in 65,536 wrong keys pass it)."""


class BadMac(Exception):
    """The ciphertext is not what was written: its HMAC does not match."""


def derive_keys(password: bytes, salt: bytes) -> tuple[bytes, bytes, bytes]:
    """(AES key, HMAC key, password verifier) for one member."""
    material = hashlib.pbkdf2_hmac("sha1", password, salt, 1000, 2 * KEY_LENGTH + VERIFIER_LENGTH)
    return material[:KEY_LENGTH], material[KEY_LENGTH : 2 * KEY_LENGTH], material[2 * KEY_LENGTH :]


class Keystream:
    """AES-256-CTR as WinZip counts: block ``i`` of a member is encrypted with counter
    ``i + 1`` as a little-endian 128-bit integer."""

    def __init__(self, key: bytes) -> None:
        # ECB over explicit counter blocks *is* CTR mode, with WinZip's counter layout.
        self._ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305
        self._next_counter = 1
        self._spare = b""
        self._counters = bytearray()
        self._keystream = bytearray()

    def _blocks(self, count: int) -> bytes:
        """The next ``count`` keystream blocks."""
        size = count * BLOCK
        if len(self._counters) < size:
            self._counters = bytearray(size)
            self._keystream = bytearray(size + BLOCK - 1)  # update_into wants the slack
        counters = memoryview(self._counters)[:size]
        counter, done = self._next_counter, 0
        while done < count:
            low = counter & (_WINDOW - 1)
            run = min(count - done, _WINDOW - low)
            high = ((counter >> 16) << 16).to_bytes(BLOCK, "little") * run
            window = _template()[low * BLOCK : (low + run) * BLOCK]
            strxor(window, high, output=counters[done * BLOCK : (done + run) * BLOCK])  # type: ignore[arg-type]  # any buffer
            counter += run
            done += run
        self._next_counter = counter
        written = self._ecb.update_into(counters, self._keystream)
        return bytes(memoryview(self._keystream)[:written])

    def apply(self, data: bytes) -> bytes:
        """``data`` XOR the next ``len(data)`` keystream bytes (encrypts and decrypts)."""
        size = len(data)
        if not size:
            return b""
        if not self._spare and size % BLOCK == 0:  # the usual case: whole blocks
            return strxor(data, self._blocks(size // BLOCK))
        stream = self._spare
        if len(stream) < size:
            stream += self._blocks(-(-(size - len(stream)) // BLOCK))
        self._spare = stream[size:]
        return strxor(data, stream[:size])


class WinZipAESEncrypter:
    """An encrypter pyzipper's writer accepts (``ZipFile.get_encrypter``): AE-2, AES-256."""

    hmac_size = MAC_LENGTH

    def __init__(self, password: bytes) -> None:
        self.salt = os.urandom(SALT_LENGTH)
        key, mac_key, self._verifier = derive_keys(password, self.salt)
        self._stream = Keystream(key)
        self._mac_key = mac_key
        self._mac: MultiDigest | ThreadedDigest = MultiDigest(hashers=self._new_mac())

    def _new_mac(self) -> dict[str, Hasher]:
        return {"mac": hmac.new(self._mac_key, digestmod="sha1")}

    def update_zipinfo(self, zipinfo: object) -> None:
        # a large member's HMAC is computed on the other core (pyzipper passes the size hint)
        self._mac = digest_for(getattr(zipinfo, "file_size", 0), hashers=self._new_mac())
        zipinfo.wz_aes_vendor_id = b"AE"  # type: ignore[attr-defined]
        zipinfo.wz_aes_strength = 3  # type: ignore[attr-defined]
        zipinfo.wz_aes_version = 2  # type: ignore[attr-defined]

    def finalize_zipinfo(self, zipinfo: object) -> None:
        pass  # AE-2 throughout: nothing learnt at the end changes the headers

    def encryption_header(self) -> bytes:
        return self.salt + self._verifier

    def encrypt(self, data: bytes) -> bytes:
        out = self._stream.apply(data)
        self._mac.update(out)
        return out

    def flush(self) -> bytes:
        return self._mac.digests()["mac"][:MAC_LENGTH]

    def abandon(self) -> None:
        self._mac.close()


def decrypt(
    fp: BinaryIO, data_offset: int, encrypted_size: int, password: bytes, chunk_size: int = 1 << 20
) -> Iterator[bytes]:
    """The plaintext of a member whose encrypted data (salt, verifier, ciphertext, MAC) is
    at ``data_offset``. Raises WrongPassword before any plaintext, BadMac after the last
    chunk: a caller must consume the whole stream before trusting any of it."""
    if encrypted_size < OVERHEAD:
        raise BadMac("member shorter than the WinZip AES overhead")
    fp.seek(data_offset)
    header = fp.read(HEADER_LENGTH)
    if len(header) != HEADER_LENGTH:
        raise BadMac("member cut short")
    key, mac_key, verifier = derive_keys(password, header[:SALT_LENGTH])
    if not hmac.compare_digest(verifier, header[SALT_LENGTH:]):
        raise WrongPassword("password verifier does not match")
    stream = Keystream(key)
    remaining = encrypted_size - OVERHEAD
    mac = digest_for(remaining, hashers={"mac": hmac.new(mac_key, digestmod="sha1")})
    position = data_offset + HEADER_LENGTH
    try:
        while remaining:
            fp.seek(position)
            chunk = fp.read(min(chunk_size, remaining))
            if not chunk:
                raise BadMac("member cut short")
            position += len(chunk)
            remaining -= len(chunk)
            mac.update(chunk)
            yield stream.apply(chunk)
    finally:
        mac.close()  # also when the reader stops early
    fp.seek(position)
    expected = fp.read(MAC_LENGTH)
    if not hmac.compare_digest(mac.digests()["mac"][:MAC_LENGTH], expected):
        raise BadMac("HMAC does not match")


__all__ = [
    "OVERHEAD",
    "BadMac",
    "Keystream",
    "WinZipAESEncrypter",
    "WrongPassword",
    "decrypt",
    "derive_keys",
]
