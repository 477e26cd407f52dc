"""The fast WinZip AES path writes what pyzipper and 7-Zip read, reads what they write, and
refuses what was altered, exactly as the format requires."""

from __future__ import annotations

import hashlib
import io
import os
import random

import pyrage
import pytest
import pyzipper
from Cryptodome.Cipher import AES
from Cryptodome.Util import Counter

from evidence_kit import winzip_aes
from evidence_kit.container import ContainerWriter, read_layout
from evidence_kit.hashing import MultiDigest, ThreadedDigest
from evidence_kit.keys import BundleKey, make_key_slots


def reference_ctr(key: bytes, data: bytes, first_counter: int = 1) -> bytes:
    """WinZip's CTR as pyzipper does it: pycryptodome, little-endian 128-bit counter."""
    counter = Counter.new(nbits=128, little_endian=True, initial_value=first_counter)
    return AES.new(key, AES.MODE_CTR, counter=counter).encrypt(data)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 4096, 1 << 20, (1 << 20) + 5, (2 << 20) + 33])
def test_keystream_equals_pycryptodome_for_any_split(size: int) -> None:
    key, data = os.urandom(32), os.urandom(size)
    stream, out, position = winzip_aes.Keystream(key), b"", 0
    chunks = random.Random(size)
    while position < size:
        step = chunks.choice([16, 1 << 20, chunks.randint(1, 300_000)])
        out += stream.apply(data[position : position + step])
        position += step
    assert out == reference_ctr(key, data)


@pytest.mark.parametrize("first", [(1 << 16) - 3, (1 << 32) - 3, (1 << 64) - 5])
def test_keystream_carries_across_counter_byte_boundaries(first: int) -> None:
    key, data = os.urandom(32), os.urandom(3 << 20)
    stream = winzip_aes.Keystream(key)
    stream._next_counter = first
    assert stream.apply(data) == reference_ctr(key, data, first)


def _container(key: BundleKey, payload: bytes) -> bytes:
    buffer = io.BytesIO()
    writer = ContainerWriter(buffer, key)
    recipient = pyrage.x25519.Identity.generate().to_public()
    for slot in make_key_slots(key, [recipient], None):
        writer.add_key_slot(slot)
    sink = writer.begin_item(0, len(payload))
    sink.write(payload)
    sink.finish(hashlib.sha256(payload).hexdigest())
    small = writer.begin_item(1, 5)
    small.write(b"small")
    small.finish(hashlib.sha256(b"small").hexdigest())
    writer.add_encrypted("manifest.json", b'{"m":1}')
    digest = writer.close()
    assert digest == hashlib.sha256(buffer.getvalue()).hexdigest(), "hashed as written"
    return buffer.getvalue()


def test_pyzipper_reads_every_member_the_fast_writer_wrote() -> None:
    key, payload = BundleKey.generate(), os.urandom(3_000_000)
    data = _container(key, payload)
    with pyzipper.AESZipFile(io.BytesIO(data)) as archive:
        archive.setpassword(key.password)
        item = archive.read("item/000001")  # pyzipper checks the HMAC at the end
        assert item[: len(payload)] == payload
        assert item[len(payload) :] == bytes(len(item) - len(payload))
        assert archive.read("manifest.json") == b'{"m":1}'
        assert len(archive.read("pack/000001")) > 0
        assert all(info.wz_aes_version == 2 for info in archive.infolist() if info.flag_bits & 1)


def test_the_fast_reader_reads_what_stock_pyzipper_wrote() -> None:
    payload, password = os.urandom(2_500_000), b"ab" * 32
    buffer = io.BytesIO()
    with pyzipper.AESZipFile(buffer, "w", encryption=pyzipper.WZ_AES) as archive:
        archive.setpassword(password)
        archive.writestr("item/000001", payload)
    entry = read_layout(io.BytesIO(buffer.getvalue())).entry("item/000001")
    assert entry is not None
    chunks = winzip_aes.decrypt(
        io.BytesIO(buffer.getvalue()), entry.data_offset, entry.compressed_size, password
    )
    assert b"".join(chunks) == payload


def _member(data: bytes, name: str) -> tuple[int, int]:
    entry = read_layout(io.BytesIO(data)).entry(name)
    assert entry is not None
    return entry.data_offset, entry.compressed_size


def test_a_wrong_password_and_any_altered_byte_are_refused() -> None:
    key, payload = BundleKey.generate(), os.urandom(1_500_000)
    data = _container(key, payload)
    offset, size = _member(data, "item/000001")
    with pytest.raises(winzip_aes.WrongPassword):
        list(winzip_aes.decrypt(io.BytesIO(data), offset, size, b"0" * 64))
    for position in (offset + 20, offset + size // 2, offset + size - 1):  # data and MAC
        altered = bytearray(data)
        altered[position] ^= 0x01
        with pytest.raises(winzip_aes.BadMac):
            list(winzip_aes.decrypt(io.BytesIO(bytes(altered)), offset, size, key.password))


def test_a_member_that_grew_past_its_size_hint_is_hashed_by_reading_back() -> None:
    buffer = io.BytesIO()
    writer = ContainerWriter(buffer, BundleKey.generate())
    sink = writer.begin_item(0, 2_000_000)
    sink.write(os.urandom(2_500_000))  # the source grew while it was read
    sink.finish("0" * 64)
    assert writer.close() is None  # headers were rewritten: the running hash is not trusted


def test_threaded_digests_equal_inline_digests() -> None:
    chunks = [os.urandom(random.randint(1, 1 << 20)) for _ in range(20)]
    inline, threaded = MultiDigest(["sha256", "md5"]), ThreadedDigest(["sha256", "md5"])
    for chunk in chunks:
        inline.update(chunk)
        threaded.update(chunk)
    assert threaded.hexdigests() == inline.hexdigests()
