"""Throughput of acquire and verify, side by side with 7-Zip and sha256sum, in one run.

    .venv/bin/python bench/throughput.py [--size-mib 1024] [--rounds 3] [--empty-files N]

Makes a random file of the given size and a tree of ``--small-files`` files of 1-64 KiB
(and uses the bundled sample cases), then runs, alternately and ``--rounds`` times each:
``cat`` to /dev/null, ``sha256sum``, ``openssl dgst -sha256``, ``hashdeep`` (where
installed), ``7zz a -tzip -mem=AES256 -mx0`` (what a user would pick instead),
``evidence-kit acquire`` (age recipient key slot, so no scrypt cost is counted) and
``evidence-kit verify`` with the identity, and on the large file ``acquire --hash sha1,md5``
(the cost of the extra digests). Prints medians in seconds, MiB/s, ratios to
7-Zip, and the peak memory (RSS) of acquire and verify. A last run of ``--empty-files``
empty files (one round, 7-Zip only as peer) shows memory per item against the bundle
size, which is nearly all manifest. Benchmarks, not tests: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyrage

REPO = Path(__file__).resolve().parent.parent
TOOL = Path(sys.executable).with_name("evidence-kit")
CASE_ARGS = [
    "--case-number",
    "BENCH-1",
    "--evidence-number",
    "E-1",
    "--examiner",
    "bench",
    "--unattended",
    "--quiet",
]


PEAK_RSS: dict[str, int] = {}


def timed(command: list[str], label: str = "") -> float:
    """Wall time of ``command``; its peak RSS (KiB) is kept under ``label``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    if label:
        PEAK_RSS[label] = max(PEAK_RSS.get(label, 0), usage.ru_maxrss)
    return elapsed


def make_random(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        remaining = size
        while remaining:
            chunk = min(remaining, 8 << 20)
            handle.write(os.urandom(chunk))
            remaining -= chunk


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def bench_source(
    name: str,
    source: Path,
    work: Path,
    rounds: int,
    identity: Path,
    recipient: str,
    peers_too: bool = True,
    extra_digests: bool = False,
) -> None:
    size = source.stat().st_size if source.is_file() else tree_size(source)
    bundle = work / "bundle.zip"
    seven = work / "seven.zip"

    def clean() -> None:
        for path in (bundle, bundle.with_suffix(".custody.jsonl"), seven):
            path.unlink(missing_ok=True)

    files = (
        [str(source)]
        if source.is_file()
        else [str(p) for p in sorted(source.rglob("*")) if p.is_file() and not p.is_symlink()]
    )
    peers = {
        "cat": ["cat"],
        "sha256sum": ["sha256sum"],
        "openssl dgst": ["openssl", "dgst", "-sha256"],
    }
    if shutil.which("hashdeep"):
        peers["hashdeep"] = ["hashdeep", "-c", "sha256"]
    if not peers_too:
        peers = {}
    seven_zip = ["7zz", "a", "-tzip", "-mem=AES256", "-mx0", "-pbench-password"]
    acquire = [str(TOOL), "acquire", str(source), "--out", str(bundle), "--recipient", recipient]
    verify = [str(TOOL), "verify", str(bundle), "--identity", str(identity), "--quiet"]
    rows = (*peers, "7zz", "acquire", "verify", *(["acquire +sha1,md5"] if extra_digests else []))
    runs: dict[str, list[float]] = {k: [] for k in rows}
    for _round in range(rounds):
        clean()
        for what, command in peers.items():
            runs[what].append(sum(timed([*command, *batch]) for batch in batches(files)))
        runs["7zz"].append(timed([*seven_zip, str(seven), str(source)]))
        runs["acquire"].append(timed([*acquire, *CASE_ARGS], f"{name}/acquire"))
        bundle_size = bundle.stat().st_size
        runs["verify"].append(timed(verify, f"{name}/verify"))
        if extra_digests:
            clean()
            three = [*acquire, "--hash", "sha1,md5", *CASE_ARGS]
            runs["acquire +sha1,md5"].append(timed(three, f"{name}/acquire +sha1,md5"))
    clean()
    seven_time = statistics.median(runs["7zz"])
    print(f"\n{name}: {size / 2**20:.1f} MiB, {len(files)} files, median of {rounds} rounds")
    print(f"  {'what':<18} {'seconds':>8} {'MiB/s':>8} {'x 7-Zip':>8}")
    for what, times in runs.items():
        median = statistics.median(times)
        rate = size / 2**20 / median if median else float("nan")
        print(f"  {what:<18} {median:8.2f} {rate:8.1f} {median / seven_time:8.2f}")
    for what in ("acquire", "verify"):
        print(f"  peak RSS of {what}: {PEAK_RSS[f'{name}/{what}'] / 1024:.0f} MiB")
    print(f"  bundle: {bundle_size / 2**20:.1f} MiB")


def batches(files: list[str], size: int = 2000) -> list[list[str]]:
    return [files[i : i + size] for i in range(0, len(files), size)]


def make_small_files(root: Path, count: int) -> None:
    """``count`` files of 1-64 KiB of seeded random bytes, 200 to a folder."""
    rng = random.Random(20261128)
    for index in range(count):
        folder = root / f"d{index // 200:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:05d}.bin").write_bytes(rng.randbytes(rng.randint(1024, 65536)))


def make_empty_files(root: Path, count: int) -> None:
    """``count`` empty files, 1,000 to a folder: the manifest is nearly all the bundle."""
    for index in range(count):
        folder = root / f"d{index // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{index:06d}.txt").touch()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small-files", type=int, default=20_000)
    parser.add_argument(
        "--empty-files", type=int, default=100_000, help="memory run, one round (0: skip)"
    )
    parser.add_argument("--keep", type=Path, help="work folder (default: a temp folder)")
    args = parser.parse_args()
    if shutil.which("7zz") is None:
        print("7zz (Debian package 7zip) is needed for the side-by-side run", file=sys.stderr)
        return 2
    work = args.keep or Path(tempfile.mkdtemp(prefix="ek-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        identity = pyrage.x25519.Identity.generate()
        identity_file = work / "lab.key"
        identity_file.write_text(f"{identity}\n")
        recipient = str(identity.to_public())
        random_file = work / "random.bin"
        make_random(random_file, args.size_mib << 20)
        subprocess.run(["cat", str(random_file)], check=True, stdout=subprocess.DEVNULL)
        bench_source(
            f"random file ({args.size_mib} MiB, in the page cache)",
            random_file,
            work,
            args.rounds,
            identity_file,
            recipient,
            extra_digests=True,
        )
        if args.small_files:
            small = work / "small"
            make_small_files(small, args.small_files)
            bench_source(
                f"{args.small_files} small files (1-64 KiB)",
                small,
                work,
                args.rounds,
                identity_file,
                recipient,
            )
        if args.empty_files:
            empty = work / "empty"
            make_empty_files(empty, args.empty_files)
            bench_source(
                f"{args.empty_files} empty files (memory per item)",
                empty,
                work,
                1,
                identity_file,
                recipient,
                peers_too=False,
            )
        for case in ("leak-shop", "phone-dump"):
            bench_source(
                f"sample case {case}",
                REPO / "sample_cases" / case / "seized",
                work,
                args.rounds,
                identity_file,
                recipient,
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
