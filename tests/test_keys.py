"""Keys: passphrase policy, key slots, Ed25519 fingerprints that stock tools reproduce."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pyrage
import pytest

from evidence_kit import keys
from evidence_kit.errors import NoUsableKey, UsageError
from tests.conftest import AgeKey, SigningKey


@pytest.mark.parametrize(
    ("passphrase", "reason"),
    [
        ("short", "shorter than 12"),
        ("aaaaaaaaaaaaaaaa", "different characters"),
        ("abababababababab", "different characters"),
        ("123456789012345", "well-known or sequential"),
        ("abcdefghijklmnop", "well-known or sequential"),
        ("Password1234", "well-known or sequential"),
    ],
)
def test_weak_passphrases_are_refused_with_a_reason(passphrase: str, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        keys.check_passphrase_strength(passphrase)


def test_a_phrase_of_words_is_accepted() -> None:
    keys.check_passphrase_strength("violet harbour lantern 2291")


def test_bundle_keys_are_random_and_never_shown() -> None:
    first, second = keys.BundleKey.generate(), keys.BundleKey.generate()
    assert first.secret != second.secret and len(first.secret) == 32
    assert first.password == first.secret.hex().encode()
    assert first.secret.hex() not in repr(first)


def test_no_recipient_and_no_passphrase_means_no_bundle() -> None:
    with pytest.raises(UsageError, match="unencrypted"):
        keys.make_key_slots(keys.BundleKey.generate(), [], None)


def test_a_recipient_slot_opens_with_its_identity_only(
    age_key: AgeKey, other_age_key: AgeKey
) -> None:
    key = keys.BundleKey.generate()
    recipient = pyrage.x25519.Recipient.from_str(age_key.recipient)
    slots = [(s.member, s.data) for s in keys.make_key_slots(key, [recipient], None)]
    assert keys.open_key_slots(slots, age_key.material) == key
    with pytest.raises(NoUsableKey):
        keys.open_key_slots(slots, other_age_key.material)
    with pytest.raises(NoUsableKey, match="no key given"):
        keys.open_key_slots(slots, keys.KeyMaterial())


def test_recipients_are_read_from_strings_and_files(age_key: AgeKey, tmp_path: Path) -> None:
    listing = tmp_path / "recipients.txt"
    listing.write_text(f"# lab\n{age_key.recipient}\n\n")
    assert [str(r) for r in keys.parse_recipient(str(listing))] == [age_key.recipient]
    assert [str(r) for r in keys.parse_recipient(age_key.recipient)] == [age_key.recipient]
    with pytest.raises(UsageError, match="not an age recipient"):
        keys.parse_recipient("age1notarecipient")


def test_fingerprint_is_what_openssl_and_sha256sum_print(signing_key: SigningKey) -> None:
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", str(signing_key.public_pem), "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    assert keys.fingerprint(signing_key.key.public_key()) == hashlib.sha256(der).hexdigest()


def test_signatures_hold_only_over_the_signed_bytes(signing_key: SigningKey) -> None:
    signature = keys.sign(signing_key.key, b"manifest bytes")
    assert keys.check_signature(signature, b"manifest bytes") is None
    assert keys.check_signature(signature, b"manifest bytez") == "signature-invalid"
    forged = signature.model_copy(update={"fingerprint": "0" * 64})
    assert keys.check_signature(forged, b"manifest bytes") == "signature-fingerprint-mismatch"


def test_a_non_ed25519_signing_key_is_refused(tmp_path: Path) -> None:
    pem = tmp_path / "rsa.pem"
    subprocess.run(
        [
            "openssl",
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            str(pem),
        ],
        check=True,
        capture_output=True,
    )
    with pytest.raises(UsageError, match="not Ed25519"):
        keys.load_signing_key(pem)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(UsageError, match="not a PEM private key"):
        keys.load_signing_key(garbage)
