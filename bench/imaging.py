"""Imaging throughput: ``acquire --image`` side by side with dd, dc3dd and ewfacquire.

    .venv/bin/python bench/imaging.py [--size-mib 1024] [--rounds 3] [--keep DIR]

Makes a raw image file of random bytes (in the page cache), then runs, alternately and
``--rounds`` times each, every imager that is installed, each writing its own copy to the
same folder: ``dd bs=1M conv=fsync`` (a copy, no digest), ``dc3dd hash=sha256`` (a copy
and its SHA-256), ``ewfacquire`` (an uncompressed E01 with MD5 and SHA-256, unattended),
and ``evidence-kit acquire --image`` (SHA-256, piecewise digests, AES-256, custody log;
age recipient key slot). Prints medians, MiB/s, ratios to dd and each run's peak memory.
Benchmarks, not tests: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyrage

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / ".venv" / "bin" / "evidence-kit"
CASE_ARGS = ["--case-number", "BENCH-1", "--evidence-number", "E-1", "--examiner", "bench"]
PEAK_RSS: dict[str, int] = {}


def timed(command: list[str], label: str) -> float:
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{label} failed (status {status}): {' '.join(command)}")
    PEAK_RSS[label] = max(PEAK_RSS.get(label, 0), usage.ru_maxrss)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="work folder (default: a temp folder)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="ek-imaging-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        image = work / "disk.img"
        with image.open("wb") as handle:
            for _ in range(args.size_mib):
                handle.write(os.urandom(1 << 20))
        subprocess.run(["cat", str(image)], check=True, stdout=subprocess.DEVNULL)
        recipient = str(pyrage.x25519.Identity.generate().to_public())
        out = work / "out"
        imagers: dict[str, list[str]] = {
            "dd": ["dd", f"if={image}", f"of={out}.dd", "bs=1M", "conv=fsync", "status=none"]
        }
        if shutil.which("dc3dd"):
            imagers["dc3dd"] = ["dc3dd", f"if={image}", f"of={out}.dc3dd", "hash=sha256",
                                "nwspc=on"]  # fmt: skip
        if shutil.which("ewfacquire"):
            imagers["ewfacquire"] = ["ewfacquire", "-u", "-t", f"{out}.ewf", "-c", "none",
                                     "-d", "sha256", "-q", str(image)]  # fmt: skip
        imagers["acquire --image"] = [
            *(str(TOOL), "acquire", "--image", str(image), "--out", f"{out}.zip"),
            *("--recipient", recipient, *CASE_ARGS, "-q"),
        ]
        runs: dict[str, list[float]] = {name: [] for name in imagers}
        for _round in range(args.rounds):
            for name, command in imagers.items():
                for old in work.glob("out.*"):
                    old.unlink()
                runs[name].append(timed(command, name))
        for old in work.glob("out.*"):
            old.unlink()
        base = statistics.median(runs["dd"])
        print(f"\nraw image of {args.size_mib} MiB (page cache), median of {args.rounds} rounds")
        print(f"  {'what':<16} {'seconds':>8} {'MiB/s':>8} {'x dd':>6} {'peak RSS':>9}")
        for name, times in runs.items():
            median = statistics.median(times)
            print(f"  {name:<16} {median:8.2f} {args.size_mib / median:8.1f} "
                  f"{median / base:6.2f} {PEAK_RSS[name] / 1024:7.0f} MiB")  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
