"""``export --format kit``: a folder that lets a third party re-check a bundle with stock
tools only (sha256sum, openssl, and age and 7-Zip to open the container).

What the kit guarantees:

* every signature ``NAME.sig`` lies beside the exact bytes it signs, ``NAME.bin``, and
  the signer's public key, ``NAME.pub.pem``: ``manifest.*`` for the seal,
  ``signed-event-NNNN.*`` for each signed custody event (NNNN its number);
* every timestamp token ``timestamp-NNNN.tsr`` (NNNN the number of the ``timestamped``
  event holding it) lies beside the exact line it stamps, ``timestamp-NNNN.bin``, and
  the request that asked for it (with its nonce), ``timestamp-NNNN.tsq``;
* ``container.sha256`` is the container's ``sha256sum`` line, ``custody.jsonl`` the
  custody log as it was when the kit was written, ``tsa-roots.pem`` the TSA roots given
  to ``export`` (absent when none were);
* ``VERIFY.sh`` and ``README.txt`` are the same files in every kit: the script holds no
  value from the bundle and runs nothing it reads; it checks every file above against
  the log, the log against the container, and with an age identity the container's
  contents.

The kit holds no secret (no key, no password), but ``manifest.bin`` is the manifest in
the clear: it names every seized file. So, like everything evidence-kit writes, the kit
is owner-only (files 0600, ``VERIFY.sh`` 0700, the folder 0700).
"""

from __future__ import annotations

import base64
import os
from importlib import resources
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from evidence_kit.custody import signing_bytes
from evidence_kit.exporters.hash_lists import hash_list_line
from evidence_kit.exporters.source import ExportSource
from evidence_kit.models import Signature

VERIFY_SCRIPT = "VERIFY.sh"
README = "README.txt"


def kit_file(name: str) -> bytes:
    """One of the files every kit holds unchanged (the script and the instructions)."""
    return (resources.files("evidence_kit") / "templates" / "kit" / name).read_bytes()


class _KitFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written = 0

    def put(self, name: str, data: bytes, mode: int = 0o600) -> None:
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(self.folder / name, mode)  # whatever the umask
        self.written += 1

    def put_signed(self, name: str, signed: bytes, signature: Signature | None) -> None:
        """``NAME.bin``, and with a signature ``NAME.sig`` and ``NAME.pub.pem``."""
        self.put(f"{name}.bin", signed)
        if signature is None:
            return
        self.put(f"{name}.sig", base64.b64decode(signature.value_b64, validate=True))
        self.put(f"{name}.pub.pem", signature.public_key_pem.encode("ascii"))


def write_kit(source: ExportSource, folder: Path) -> int:
    """Write the kit into the empty ``folder``; returns the number of files written."""
    kit = _KitFolder(folder)
    name = os.fsencode(source.container.name)
    kit.put("container.sha256", hash_list_line(source.container_sha256, name))
    log = source.custody
    kit.put("custody.jsonl", b"".join(log.lines))
    kit.put_signed("manifest", source.manifest_bytes, source.seal.signature)
    for event in log.events:
        if event.signature is not None:
            kit.put_signed(f"signed-event-{event.seq:04d}", signing_bytes(event), event.signature)
        token = event.timestamp
        if token is not None and 0 <= token.stamped_seq < len(log.lines):
            stem = f"timestamp-{event.seq:04d}"
            kit.put(f"{stem}.bin", log.lines[token.stamped_seq].rstrip(b"\n"))
            kit.put(f"{stem}.tsr", base64.b64decode(token.response_der_b64, validate=True))
            kit.put(f"{stem}.tsq", base64.b64decode(token.request_der_b64, validate=True))
    if source.tsa_roots:
        roots = b"".join(root.public_bytes(Encoding.PEM) for root in source.tsa_roots)
        kit.put("tsa-roots.pem", roots)
    kit.put(VERIFY_SCRIPT, kit_file(VERIFY_SCRIPT), mode=0o700)
    kit.put(README, kit_file(README))
    return kit.written


__all__ = ["README", "VERIFY_SCRIPT", "kit_file", "write_kit"]
