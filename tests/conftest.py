"""Shared fixtures: real keys, real bundles, the real CLI.

Bundles are made with an age X25519 recipient by default: a passphrase slot costs about
two seconds of scrypt per use, so passphrase tests share one session-wide bundle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from evidence_kit.acquire import AcquireRequest, acquire
from evidence_kit.bundle import open_container, unlock
from evidence_kit.canonical import load_record
from evidence_kit.cli.app import app
from evidence_kit.keys import KeyMaterial
from evidence_kit.models import AcquireResult, CaseInfo, ItemRecord, Manifest
from evidence_kit.naming import path_bytes

pytest_plugins = (
    "tests.tsa",  # the local RFC 3161 TSA fixtures
    "tests.assurance.figures",  # the assurance campaign's published figures
)

REPO = Path(__file__).resolve().parent.parent
SAMPLE_CASES = REPO / "sample_cases"
PASSPHRASE = "violet harbour lantern 2291"
CASE = CaseInfo(
    case_number="GZ-2026-0117",
    evidence_number="E-03",
    examiner="Officer Chen Jing",
    description="laptop D: drive of the suspect",
    location="Guangzhou, Tianhe station",
)
# The required case fields of CASE as acquire options.
CASE_ARGS = (
    "--case-number", CASE.case_number,
    "--evidence-number", CASE.evidence_number,
    "--examiner", CASE.examiner,
)  # fmt: skip


@dataclass(frozen=True)
class AgeKey:
    identity_file: Path
    recipient: str
    identity: pyrage.x25519.Identity

    @property
    def material(self) -> KeyMaterial:
        return KeyMaterial(identities=(self.identity,))


@dataclass(frozen=True)
class SigningKey:
    private_pem: Path
    public_pem: Path
    key: Ed25519PrivateKey


@dataclass(frozen=True)
class Bundle:
    container: Path
    custody_log: Path
    result: AcquireResult


@pytest.fixture(scope="session")
def age_key(tmp_path_factory: pytest.TempPathFactory) -> AgeKey:
    folder = tmp_path_factory.mktemp("age")
    identity = pyrage.x25519.Identity.generate()
    path = folder / "lab.key"
    path.write_text(f"# created: for tests\n# public key: {identity.to_public()}\n{identity}\n")
    path.chmod(0o600)
    return AgeKey(path, str(identity.to_public()), identity)


@pytest.fixture(scope="session")
def other_age_key(tmp_path_factory: pytest.TempPathFactory) -> AgeKey:
    folder = tmp_path_factory.mktemp("age-other")
    identity = pyrage.x25519.Identity.generate()
    path = folder / "other.key"
    path.write_text(f"{identity}\n")
    return AgeKey(path, str(identity.to_public()), identity)


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    """An Ed25519 key made by ``openssl genpkey``, as officers are told to make them."""
    folder = tmp_path_factory.mktemp("signing")
    private_pem, public_pem = folder / "officer.pem", folder / "officer.pub.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private_pem)], check=True
    )
    subprocess.run(
        ["openssl", "pkey", "-in", str(private_pem), "-pubout", "-out", str(public_pem)], check=True
    )
    key = serialization.load_pem_private_key(private_pem.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return SigningKey(private_pem, public_pem, key)


@pytest.fixture(scope="session")
def passphrase_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pass") / "passphrase.txt"
    path.write_text(PASSPHRASE + "\n")
    path.chmod(0o600)
    return path


MakeBundle = Callable[..., Bundle]


@pytest.fixture
def make_bundle(tmp_path: Path, age_key: AgeKey) -> MakeBundle:
    """Acquire ``sources`` into ``tmp_path/out/NAME.zip`` through the library API."""

    def make(sources: Sequence[Path] | Path, name: str = "bundle", **options: Any) -> Bundle:
        out_dir = tmp_path / "out"
        out_dir.mkdir(exist_ok=True)
        output = out_dir / f"{name}.zip"
        options.setdefault("recipients", [pyrage.x25519.Recipient.from_str(age_key.recipient)])
        options.setdefault("case", CASE)
        request = AcquireRequest(
            sources=[sources] if isinstance(sources, Path) else list(sources),
            output=output,
            **options,
        )
        result = acquire(request)
        return Bundle(output, Path(result.custody_log), result)

    return make


@pytest.fixture
def small_tree(tmp_path: Path) -> Path:
    """A small seized folder with the kinds of objects acquisition must handle."""
    root = tmp_path / "seized"
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "empty-folder").mkdir()
    (root / "docs" / "customers.csv").write_text("name,phone\n张伟,17012345678\n")
    (root / "docs" / "deep" / "zero.bin").write_bytes(b"")
    (root / "docs" / "deep" / "random.bin").write_bytes(os.urandom(200_000))
    (root / "large.bin").write_bytes(os.urandom(1_500_000))  # over the pack limit
    (root / "link-to-docs").symlink_to("docs")
    return root


@pytest.fixture
def cli() -> Callable[..., Any]:
    """Run the Typer app in-process; returns Click's Result (stdout, stderr, exit_code)."""
    runner = CliRunner()

    def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Any:
        return runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)

    return invoke


def read_manifest(container: Path, key: AgeKey | KeyMaterial) -> tuple[Manifest, bytes]:
    """The manifest of a bundle and its exact bytes, opened with ``key``."""
    material = key.material if isinstance(key, AgeKey) else key
    bundle = open_container(container, trusted=None)
    try:
        unlock(bundle, material, trusted=None)
        assert bundle.manifest is not None and bundle.manifest_bytes is not None
        return load_record(Manifest, bundle.manifest_bytes), bundle.manifest_bytes
    finally:
        bundle.close()


def items_by_path(manifest: Manifest) -> dict[bytes, ItemRecord]:
    """Items keyed by their exact path bytes (no two items share a path)."""
    items = {path_bytes(item.path): item for item in manifest.items}
    assert len(items) == len(manifest.items), "two items share one path"
    return items


def require_tool(name: str) -> str:
    """The path of a third-party tool the test runs for real; skip visibly without it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (CI installs it; see .ci/run)")
    return path
