"""Throughput of ``lab verify-all`` on a folder of small bundles, beside sha256sum and 7-Zip.

    .venv/bin/python bench/lab_verify_all.py [--bundles 200] [--rounds 3] [--max-file-kib 32]
                                             [--keep DIR]

Makes ``--bundles`` bundles, each from its own tree of 3-6 files of 1 KiB to
``--max-file-kib`` (32) KiB of seeded random bytes in one folder, with ``evidence-kit
acquire`` (age recipient key slot, two acquisitions at a time), checks once that ``lab
verify-all --json`` counts every bundle as verified, then runs, alternately and
``--rounds`` times each: ``lab verify-all --jobs 1`` and ``--jobs 2`` with the identity
(every bundle in full: container SHA-256 against the custody log, zip layout, every member
decrypted, every digest), ``sha256sum`` of all the containers (keyless fixity, one
process), and the check a third party would script with stock tools: per bundle, ``7zz e
-so`` of the key slot through ``age -d`` gives the zip password, and ``7zz t`` (password on
its standard input, as the kit's VERIFY.sh does) decrypts every member and checks its MAC,
run by ``xargs -P1`` and ``xargs -P2``. Prints medians in seconds, bundles/s, ratios to
``--jobs 1`` and to 7-Zip at the same parallelism, the peak memory (RSS) of the
evidence-kit runs, the speed-up of two jobs over one and the machine's core count.
Benchmarks, not tests: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyrage

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / ".venv" / "bin" / "evidence-kit"
KEY_SLOT = "keyslots/00-x25519.age"
ACQUIRE_AT_ONCE = 2
BUNDLES_PER_CASE = 10
# One bundle, the stock-tool way: $1 the age identity, $2 the container. The password goes
# to 7-Zip on its standard input, never in argv.
STOCK_CHECK = (
    "set -o pipefail; "
    f'pw=$(7zz e -so "$2" {KEY_SLOT} 2>/dev/null </dev/null | age -d -i "$1") || exit 1; '
    "[[ $pw =~ ^[0-9a-f]{64}$ ]] || exit 1; "
    """printf '%s\\n' "$pw" | 7zz t "$2" >/dev/null 2>&1"""
)
PEAK_RSS: dict[str, int] = {}


def timed(command: list[str], label: str = "", stdin: Path | None = None) -> float:
    """Wall time of ``command``; its peak RSS (KiB) is kept under ``label``."""
    with open(stdin or os.devnull, "rb") as source:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=source
        )
        _pid, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        code = os.waitstatus_to_exitcode(status)
        raise SystemExit(f"failed (exit {code}): {' '.join(command)}")
    if label:
        PEAK_RSS[label] = max(PEAK_RSS.get(label, 0), usage.ru_maxrss)
    return elapsed


def cpu_seconds() -> float:
    """CPU time spent so far by the whole machine, idle excluded (Linux /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this process and of the children it (or they) waited for."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def make_source(root: Path, rng: random.Random, max_kib: int) -> None:
    """A small tree: one folder of 3-6 files of 1 KiB to ``max_kib`` KiB of random bytes."""
    folder = root / "files"
    folder.mkdir(parents=True)
    for index in range(rng.randint(3, 6)):
        (folder / f"f{index}.bin").write_bytes(rng.randbytes(rng.randint(1024, max_kib * 1024)))


def acquire(source: Path, bundle: Path, index: int, recipient: str) -> None:
    command = [
        *(str(TOOL), "acquire", str(source), "--out", str(bundle)),
        *("--case-number", f"BENCH-{index // BUNDLES_PER_CASE + 1}"),
        *("--evidence-number", f"E-{index + 1}", "--examiner", "bench"),
        *("--recipient", recipient, "--unattended", "--quiet"),
    ]
    done = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()
        raise SystemExit(f"failed (exit {done.returncode}): {' '.join(command)}\n{said}")


def prepare(work: Path, count: int, recipient: str, max_kib: int) -> list[Path]:
    """``count`` bundles in ``work/bundles``, each from its own tree in ``work/sources``."""
    sources, bundles = work / "sources", work / "bundles"
    for old in (sources, bundles):
        shutil.rmtree(old, ignore_errors=True)
    bundles.mkdir(parents=True)
    rng = random.Random(20261129)
    jobs = []
    for index in range(count):
        source = sources / f"s{index + 1:03d}"
        make_source(source, rng, max_kib)
        jobs.append((source, bundles / f"b{index + 1:03d}.zip", index))
    with ThreadPoolExecutor(max_workers=ACQUIRE_AT_ONCE) as pool:
        futures = [pool.submit(acquire, *job, recipient) for job in jobs]
        for future in futures:
            future.result()
    return [bundle for _source, bundle, _index in jobs]


def check_counts(folder: Path, identity: Path, count: int) -> None:
    """One ``--json`` run: every bundle must come out verified."""
    command = [str(TOOL), "lab", "verify-all", str(folder), "--identity", str(identity)]
    done = subprocess.run(
        [*command, "--json"], stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    try:
        counts = json.loads(done.stdout)["counts"]
    except (ValueError, KeyError, TypeError):
        raise SystemExit(
            f"no counts in the JSON of (exit {done.returncode}): {' '.join(command)} --json\n"
            f"{done.stdout.decode(errors='replace')[:2000]}"
        ) from None
    if done.returncode != 0 or counts.get("verified") != count:
        raise SystemExit(
            f"expected {count} verified, exit 0; got exit {done.returncode}, counts {counts}:\n"
            f"  {' '.join(command)} --json"
        )
    print(f"lab verify-all --json: {counts['verified']} of {count} bundles verified")


def key_slot_names(bundle: Path) -> list[str]:
    listing = subprocess.run(
        ["7zz", "l", "-slt", str(bundle)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths = [line[len("Path = ") :] for line in listing.splitlines() if line.startswith("Path = ")]
    return [path for path in paths if path.startswith("keyslots/")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-file-kib", type=int, default=32, help="largest file, in KiB")
    parser.add_argument(
        "--keep", type=Path, help="work folder (default: a temp folder); bundles/ is made anew"
    )
    args = parser.parse_args()
    if args.bundles < 1 or args.rounds < 1 or args.max_file_kib < 1:
        parser.error("--bundles, --rounds and --max-file-kib are 1 or more")
    work = args.keep or Path(tempfile.mkdtemp(prefix="ek-lab-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        identity = pyrage.x25519.Identity.generate()
        identity_file = work / "lab.key"
        identity_file.unlink(missing_ok=True)
        descriptor = os.open(identity_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"{identity}\n")
        recipient = str(identity.to_public())

        start = time.perf_counter()
        bundles = prepare(work, args.bundles, recipient, args.max_file_kib)
        prepared = time.perf_counter() - start
        folder = work / "bundles"
        size = sum(bundle.stat().st_size for bundle in bundles)
        print(
            f"prepared {len(bundles)} bundles ({size / 2**20:.1f} MiB of containers) in "
            f"{prepared:.1f} s, {ACQUIRE_AT_ONCE} acquisitions at a time"
        )
        check_counts(folder, identity_file, len(bundles))

        verify_all = [str(TOOL), "lab", "verify-all", str(folder), "--identity", str(identity_file)]
        commands: dict[str, tuple[list[str], Path | None]] = {
            "verify-all --jobs 1": ([*verify_all, "--jobs", "1", "--quiet"], None),
            "verify-all --jobs 2": ([*verify_all, "--jobs", "2", "--quiet"], None),
            "sha256sum": (["sha256sum", *map(str, bundles)], None),
        }
        stock = shutil.which("7zz") and shutil.which("age")
        if stock:
            slots = key_slot_names(bundles[0])
            if slots != [KEY_SLOT]:
                raise SystemExit(f"expected the key slot {KEY_SLOT} in {bundles[0]}, got {slots}")
            names = work / "bundles.list"
            names.write_bytes(b"".join(os.fsencode(bundle) + b"\0" for bundle in bundles))
            for jobs in (1, 2):
                xargs = ["xargs", "-0", "-n", "1", "-P", str(jobs)]
                script = [*xargs, "bash", "-c", STOCK_CHECK, "stock-check", str(identity_file)]
                commands[f"7zz+age xargs -P{jobs}"] = (script, names)
        else:
            print("7zz (Debian package 7zip) or age is not installed: no stock-tool peer")

        runs: dict[str, list[float]] = {what: [] for what in commands}
        busy, ours, start = cpu_seconds(), own_cpu_seconds(), time.perf_counter()
        for _round in range(args.rounds):
            for what, (command, stdin) in commands.items():
                label = what if what.startswith("verify-all") else ""
                runs[what].append(timed(command, label, stdin))
        wall = time.perf_counter() - start
        busy, ours = cpu_seconds() - busy, own_cpu_seconds() - ours
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    medians = {what: statistics.median(times) for what, times in runs.items()}
    base = medians["verify-all --jobs 1"]
    count = len(bundles)
    print(
        f"\n{count} bundles, {size / 2**20:.1f} MiB of containers, median of {args.rounds} "
        f"rounds, {os.cpu_count()} cores (os.cpu_count())"
    )
    print(
        f"CPU time during the {wall:.0f} s of rounds: {ours:.1f} s these runs, "
        f"{busy - ours:.1f} s other processes (all cores)"
    )
    print(f"  {'what':<22} {'seconds':>8} {'bundles/s':>10} {'x jobs 1':>9} {'x 7zz':>6} "
          f"{'peak RSS':>9}")  # fmt: skip
    for what, median in medians.items():
        peer = ""
        if what.startswith("verify-all") and stock:
            peer = f"7zz+age xargs -P{what[-1]}"
        versus = f"{median / medians[peer]:6.2f}" if peer else f"{'-':>6}"
        rss = f"{PEAK_RSS[what] / 1024:5.0f} MiB" if what in PEAK_RSS else f"{'-':>9}"
        print(f"  {what:<22} {median:8.2f} {count / median:10.1f} {median / base:9.2f} "
              f"{versus} {rss}")  # fmt: skip
    print(f"  speed-up of --jobs 2 over --jobs 1: {base / medians['verify-all --jobs 2']:.2f}x")
    if stock:
        one, two = medians["7zz+age xargs -P1"], medians["7zz+age xargs -P2"]
        print(f"  speed-up of xargs -P2 over -P1: {one / two:.2f}x")
    print("  x 7zz: against the 7zz+age run with as many processes at a time")
    print(
        "  peak RSS: ru_maxrss from os.wait4 on the evidence-kit process: the largest of that"
        " process\n  and the worker processes it waited for, not their sum"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
