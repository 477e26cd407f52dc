"""Bundle keys, age key slots, Ed25519 signing keys and passphrase policy.

The zip password of a bundle is the lowercase hex of a random 256-bit key, new for every
bundle. It is never written in the clear: each key slot is that password encrypted in
age format to an X25519 recipient or to a passphrase (scrypt). ``age -d`` on a slot gives
the password 7-Zip needs, so stock tools can open a bundle without evidence-kit.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pyrage
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from evidence_kit.atomic import output_error
from evidence_kit.errors import NoUsableKey, OutputExists, UsageError
from evidence_kit.i18n import _
from evidence_kit.models import Signature

SIGN_PASSPHRASE_ENV = "EVIDENCE_KIT_SIGN_PASSPHRASE"  # noqa: S105 (a variable name)
MIN_PASSPHRASE_LENGTH = 12
MIN_DISTINCT_CHARACTERS = 6
_COMMON_PASSPHRASES = frozenset(
    {
        "password1234",
        "123456789012",
        "qwertyuiopas",
        "passwordpassword",
        "letmeinletmein",
        "iloveyou1234",
        "administrator",
        "evidencekit123",
        "correcthorsebatterystaple",
    }
)


@dataclass(frozen=True)
class BundleKey:
    """The random per-bundle key; ``password`` is what WinZip AES is given."""

    secret: bytes

    @classmethod
    def generate(cls) -> BundleKey:
        return cls(secrets.token_bytes(32))

    @property
    def password(self) -> bytes:
        return self.secret.hex().encode("ascii")

    def __repr__(self) -> str:  # never show the key, even in a debugger dump
        return "BundleKey(<secret>)"


@dataclass(frozen=True)
class KeySlot:
    member: str
    kind: Literal["x25519", "scrypt"]
    recipient: str | None
    data: bytes


@dataclass(frozen=True)
class KeyMaterial:
    """What a person brought to open a bundle: age identities and/or a passphrase."""

    identities: tuple[pyrage.x25519.Identity, ...] = ()
    passphrase: str | None = None

    @property
    def empty(self) -> bool:
        return not self.identities and self.passphrase is None

    def __repr__(self) -> str:
        given = self.passphrase is not None
        return f"KeyMaterial(identities={len(self.identities)}, passphrase given={given})"


def check_passphrase_strength(passphrase: str) -> None:
    """Refuse passphrases an attacker with the container could guess; say why."""
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise UsageError(
            _("passphrase refused: shorter than {n} characters").format(n=MIN_PASSPHRASE_LENGTH),
            hint=_("Use a phrase of several unrelated words, or --recipient with a lab's age key."),
        )
    if len(set(passphrase)) < MIN_DISTINCT_CHARACTERS:
        raise UsageError(
            _("passphrase refused: fewer than {n} different characters").format(
                n=MIN_DISTINCT_CHARACTERS
            )
        )
    folded = "".join(ch for ch in passphrase.lower() if ch.isalnum())
    if folded in _COMMON_PASSPHRASES or _is_sequence(folded):
        raise UsageError(_("passphrase refused: a well-known or sequential password"))


_RUNS = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm")


def _is_sequence(text: str) -> bool:
    """A run along the digits, the alphabet or a keyboard row, either way, wrapping."""
    for run in _RUNS:
        cycle = run * (len(text) // len(run) + 2)
        if text in cycle or text[::-1] in cycle:
            return True
    return len(set(text)) == 1


def make_key_slots(
    key: BundleKey, recipients: Sequence[pyrage.x25519.Recipient], passphrase: str | None
) -> list[KeySlot]:
    """Wrap ``key`` once per recipient and once for the passphrase."""
    slots: list[KeySlot] = []
    for recipient in recipients:
        data = pyrage.encrypt(key.password, [recipient])
        slots.append(
            KeySlot(f"keyslots/{len(slots):02d}-x25519.age", "x25519", str(recipient), data)
        )
    if passphrase is not None:
        data = pyrage.passphrase.encrypt(key.password, passphrase)
        slots.append(KeySlot(f"keyslots/{len(slots):02d}-scrypt.age", "scrypt", None, data))
    if not slots:
        raise UsageError(
            _("refusing to write an unencrypted bundle: give --recipient or a passphrase"),
            hint=_("Use --passphrase-file FILE, EVIDENCE_KIT_PASSPHRASE, or --recipient AGE_KEY."),
        )
    return slots


def open_key_slots(slots: Iterable[tuple[str, bytes]], material: KeyMaterial) -> BundleKey:
    """The bundle key from the first slot ``material`` opens; NoUsableKey when none does."""
    if material.empty:
        raise NoUsableKey(
            _("no key given: this needs --identity or --passphrase-file"),
            hint=_(
                "EVIDENCE_KIT_PASSPHRASE also works; the bundle's key slots list who can open it."
            ),
        )
    for member, data in slots:
        password: bytes | None = None
        try:
            if member.endswith("-scrypt.age") and material.passphrase is not None:
                password = pyrage.passphrase.decrypt(data, material.passphrase)
            elif member.endswith("-x25519.age") and material.identities:
                password = pyrage.decrypt(data, list(material.identities))
        except (pyrage.DecryptError, ValueError):
            continue
        if password is not None and _is_password(password):
            return BundleKey(bytes.fromhex(password.decode("ascii")))
    raise NoUsableKey(
        _("no key slot opens with the passphrase or identity given"),
        hint=_("Check that this is the right passphrase or identity file for this bundle."),
    )


def _is_password(candidate: bytes) -> bool:
    return len(candidate) == 64 and all(c in b"0123456789abcdef" for c in candidate)


def parse_recipient(text: str) -> list[pyrage.x25519.Recipient]:
    """An ``age1…`` recipient, or a file with one per line (``#`` comments allowed)."""
    candidates = [text]
    path = Path(text)
    if not text.startswith("age1") and path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        candidates = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    recipients = []
    for candidate in candidates:
        try:
            recipients.append(pyrage.x25519.Recipient.from_str(candidate))
        except (pyrage.RecipientError, ValueError):
            raise UsageError(
                _("not an age recipient (age1…) or a file of them: {text}").format(text=candidate)
            ) from None
    if not recipients:
        raise UsageError(_("no age recipient in {text}").format(text=text))
    return recipients


def load_identities(path: Path) -> tuple[pyrage.x25519.Identity, ...]:
    """Age identities from a file as ``age-keygen`` writes it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(
            _("cannot read identity file {path}: {error}").format(
                path=path, error=getattr(error, "strerror", None) or error
            )
        ) from None
    identities = []
    for raw_line in lines:
        line = raw_line.strip()
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                identities.append(pyrage.x25519.Identity.from_str(line))
            except (pyrage.IdentityError, ValueError):
                raise UsageError(_("malformed age identity in {path}").format(path=path)) from None
    if not identities:
        raise UsageError(_("no age identity (AGE-SECRET-KEY-…) in {path}").format(path=path))
    return tuple(identities)


# ------------------------------------------------------------------------- Ed25519


def load_signing_key(path: Path, password: bytes | None = None) -> Ed25519PrivateKey:
    """An Ed25519 private key in PKCS#8 PEM (``openssl genpkey -algorithm ed25519``)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(
            _("cannot read signing key {path}: {error}").format(path=path, error=error.strerror)
        ) from None
    encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data
    try:
        key = serialization.load_pem_private_key(data, password=password if encrypted else None)
    except TypeError:
        raise NoUsableKey(
            _("signing key {path} is passphrase-protected").format(path=path),
            hint=_("Give its passphrase with --sign-passphrase-file or {env}.").format(
                env=SIGN_PASSPHRASE_ENV
            ),
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        if encrypted:
            raise NoUsableKey(
                _("wrong passphrase for signing key {path}").format(path=path)
            ) from None
        raise UsageError(_("not a PEM private key: {path}").format(path=path)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(_("signing key {path} is not Ed25519").format(path=path))
    return key


@dataclass(frozen=True)
class NewKeys:
    """The files ``new_keys`` wrote, and what to copy onto paper."""

    signing_key: Path
    public_key: Path
    age_identity: Path
    age_recipient_file: Path
    fingerprint: str
    recipient: str


def key_set_name(name: str) -> str:
    """A NAME usable as a file-name prefix, or UsageError."""
    if not name or name.startswith((".", "-")) or not all(c.isalnum() or c in "._-" for c in name):
        raise UsageError(
            _("key name {name!r}: use letters, digits, '.', '_' and '-' only").format(name=name)
        )
    return name


def new_keys(name: str, folder: Path, passphrase: str | None = None) -> NewKeys:
    """An Ed25519 signing key pair and an age identity, as files in ``folder``:

    ``NAME.sign.pem`` (PKCS#8 PEM, mode 0600, encrypted when ``passphrase`` is given, as
    ``openssl genpkey -algorithm ed25519`` writes it), ``NAME.sign.pub.pem``, ``NAME.age``
    (as ``age-keygen`` writes it, mode 0600) and ``NAME.age.pub`` (its recipient). Never
    replaces a file; writes nothing if any of the four exists.
    """
    name = key_set_name(name)
    paths = [
        folder / f"{name}{suffix}" for suffix in (".sign.pem", ".sign.pub.pem", ".age", ".age.pub")
    ]
    taken = [str(path) for path in paths if path.exists() or path.is_symlink()]
    if taken:
        raise OutputExists(
            _("{path} already exists; refusing to replace a key").format(path=taken[0]),
            hint=_("Choose another NAME or --out folder."),
        )
    signing = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
        if passphrase
        else serialization.NoEncryption()
    )
    private_pem = signing.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    contents = [
        (private_pem, 0o600),
        (public_key_pem(signing.public_key()).encode("ascii"), 0o644),
        (f"# created: {created}\n# public key: {recipient}\n{identity}\n".encode(), 0o600),
        (f"{recipient}\n".encode(), 0o644),
    ]
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        written: list[Path] = []
        try:
            for path, (data, mode) in zip(paths, contents, strict=True):
                _write_new(path, data, mode)
                written.append(path)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
    except FileExistsError as error:
        raise OutputExists(
            _("{path} already exists; refusing to replace a key").format(path=error.filename)
        ) from None
    except OSError as error:
        raise output_error(folder, error) from None
    return NewKeys(
        signing_key=paths[0],
        public_key=paths[1],
        age_identity=paths[2],
        age_recipient_file=paths[3],
        fingerprint=fingerprint(signing.public_key()),
        recipient=recipient,
    )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (never replacing, never following a link) with ``mode``, fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key in PEM (``openssl pkey -pubout``)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as error:
        raise UsageError(
            _("cannot read public key {path}: {error}").format(path=path, error=error.strerror)
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise UsageError(_("not a PEM public key: {path}").format(path=path)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(_("public key {path} is not Ed25519").format(path=path))
    return key


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, as
    ``openssl pkey -pubin -in PUB.pem -outform DER | sha256sum`` prints it."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def sign(key: Ed25519PrivateKey, data: bytes) -> Signature:
    public = key.public_key()
    return Signature(
        public_key_pem=public_key_pem(public),
        fingerprint=fingerprint(public),
        value_b64=base64.b64encode(key.sign(data)).decode("ascii"),
    )


def check_signature(signature: Signature, data: bytes) -> str | None:
    """None when ``signature`` holds over ``data``, its key matches its fingerprint, and
    its own text is exactly as :func:`sign` writes it; otherwise a reason code. That text
    is not signed, and its parsers forgive: a PEM with bytes after its END line, or base64
    with other values in the unused bits of its last character, load the same key and
    signature, so an edited record would still verify."""
    try:
        public = serialization.load_pem_public_key(signature.public_key_pem.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
        return "signature-key-malformed"
    if not isinstance(public, Ed25519PublicKey):
        return "signature-key-not-ed25519"
    if fingerprint(public) != signature.fingerprint:
        return "signature-fingerprint-mismatch"
    try:
        value = base64.b64decode(signature.value_b64, validate=True)
        public.verify(value, data)
    except (InvalidSignature, ValueError):
        return "signature-invalid"
    if public_key_pem(public) != signature.public_key_pem:
        return "signature-key-malformed"
    if base64.b64encode(value).decode("ascii") != signature.value_b64:
        return "signature-invalid"
    return None


__all__ = [
    "SIGN_PASSPHRASE_ENV",
    "BundleKey",
    "KeyMaterial",
    "KeySlot",
    "NewKeys",
    "check_passphrase_strength",
    "check_signature",
    "fingerprint",
    "key_set_name",
    "load_identities",
    "load_public_key",
    "load_signing_key",
    "make_key_slots",
    "new_keys",
    "open_key_slots",
    "parse_recipient",
    "public_key_pem",
    "sign",
]
