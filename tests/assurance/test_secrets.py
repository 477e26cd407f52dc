"""Secrets stay secret: no passphrase, bundle key, signing key or age identity leaks.

The secrets: the bundle passphrase (given in a file, in EVIDENCE_KIT_PASSPHRASE, and typed
at a hidden prompt), every bundle's key (the 64-hex zip password, recovered here by
age-decrypting a key slot with the test identity, as docs/format.md tells a third party),
a signing key's passphrase (--sign-passphrase-file, EVIDENCE_KIT_SIGN_PASSPHRASE, prompt)
and the key itself, and age identities. Each is searched for as text and in every
encoding a reader would try: hex, base64 and URL-safe base64 at each of the three
alignments inside a longer base64 text, UTF-16, JSON and HTML escapes, any letter case,
and with white space removed from the haystack (PEM and wrapped text).

Where: the stdout and stderr of every command (``--json`` and error paths too), the argv
and environment of every program the tool starts (every ``execve`` recorded by strace,
and /proc/PID/cmdline and environ polled while the tool runs), the tool's own argv (its
own environment may hold only what the person put there), every file the tool creates
anywhere (strace records each creation; all must lie in the output and temp folders,
but for POSIX semaphores unlinked at once), every file left in the output folder and
the run's own TMPDIR, which must be empty afterwards, files seen in TMPDIR while the
tool ran, and the decrypted members of every bundle. Files the tool writes must be
owner-only (0600; folders 0700); public keys are meant to be shared (0644). Without a
working strace the tests are skipped, visibly.

``lab ingest`` and ``lab verify-all`` run with ``--jobs 2``, so the worker process
they start, and the keys it receives, are watched too.

Every command is a real ``python -m evidence_kit`` process with the argv a person would
type; hidden prompts are answered through a pseudo-terminal once its echo is off.
"""

from __future__ import annotations

import base64
import html
import json
import os
import pty
import re
import select
import stat
import subprocess
import sys
import termios
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyrage
import pytest
import pyzipper
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.assurance.figures import Figures
from tests.conftest import CASE_ARGS, AgeKey, require_tool
from tests.tsa import LocalTsa, TsaPki

TOOL = (sys.executable, "-m", "evidence_kit")
SECRET_VARIABLES = ("EVIDENCE_KIT_PASSPHRASE", "EVIDENCE_KIT_SIGN_PASSPHRASE")
FILE_PASSPHRASE = "tamarind quarry beacon 6620"
ENVIRONMENT_PASSPHRASE = "zàfferano cobalt 4417 风"  # non-ASCII: JSON would escape it
PROMPT_PASSPHRASE = "juniper vessel orbit 3158"
WRONG_PASSPHRASE = "tamarind quarry beacon 6621"
SIGN_PASSPHRASE = "copper meadow signal 7734"
PROMPT_SIGN_PASSPHRASE = "saffron ledger canyon 9042"
WRONG_SIGN_PASSPHRASE = "copper meadow signal 7735"
RUN_TIMEOUT = 300
POLL_SECONDS = 0.002
# The system calls that give a file or folder a name, as strace spells them.
CREATING_CALLS = (
    "open", "openat", "creat", "mkdir", "mkdirat", "rename", "renameat", "renameat2",
    "link", "linkat", "symlink", "symlinkat", "mknod", "mknodat",
)  # fmt: skip


# ------------------------------------------------------------------- what is a leak


def _base64_core(value: bytes, shift: int, encode: Callable[[bytes], bytes]) -> bytes:
    """The characters of ``value`` base64-encoded ``shift`` bytes into a longer text that
    depend on ``value`` alone (the same wherever in a base64 text it sits)."""
    encoded = encode(bytes(shift) + value)
    start = -(-8 * shift // 6)
    end = 8 * (shift + len(value)) // 6
    return encoded[start:end]


def encodings(value: bytes) -> set[bytes]:
    """``value`` and the forms it could take in a file or an output (matched ignoring
    ASCII case, so hex and escapes in either case are covered)."""
    forms = {value, value.hex().encode()}
    for shift in range(3):
        forms.add(_base64_core(value, shift, base64.b64encode))
        forms.add(_base64_core(value, shift, base64.urlsafe_b64encode))
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        forms.add(json.dumps(text)[1:-1].encode())
        forms.add(html.escape(text).encode())
        forms.add(text.encode("utf-16-le"))
    assert all(len(form) >= 12 for form in forms), "a secret too short to search for"
    return forms


def squeezed(data: bytes) -> bytes:
    """``data`` without ASCII white space: base64 wrapped over lines is found too."""
    return re.sub(rb"[ \t\r\n]+", b"", data)


@dataclass(frozen=True)
class Place:
    kind: str  # "stdout", "file", "argv (execve)", ...
    label: str
    data: bytes
    allowed: frozenset[bytes] = frozenset()  # values of the secrets that belong here


@dataclass
class SecretScan:
    """Places are collected as the commands run; secrets as they come to exist (a bundle
    key only once its bundle is made); :meth:`leaks` searches every place for every one."""

    secrets: dict[str, bytes] = field(default_factory=dict)
    places: list[Place] = field(default_factory=list)

    def secret(self, name: str, value: bytes | str) -> None:
        self.secrets[name] = value.encode("utf-8") if isinstance(value, str) else value

    def place(self, kind: str, label: str, data: bytes, allowed: Iterable[bytes] = ()) -> None:
        self.places.append(Place(kind, label, data, frozenset(allowed)))

    def leaks(self) -> list[str]:
        owners: dict[bytes, set[str]] = {}
        for name, value in self.secrets.items():
            for form in encodings(value):
                owners.setdefault(form.lower(), set()).add(name)
        pattern = re.compile(
            b"|".join(re.escape(form) for form in sorted(owners, key=len, reverse=True)),
            re.IGNORECASE,
        )
        found = []
        for place in self.places:
            names: set[str] = set()
            for blob in (place.data, squeezed(place.data)):
                for match in pattern.finditer(blob):
                    names |= {
                        name
                        for name in owners[match.group().lower()]
                        if self.secrets[name] not in place.allowed
                    }
            if names:
                found.append(f"{place.kind}: {place.label}: {', '.join(sorted(names))}")
        return found

    def kinds(self) -> Counter[str]:
        return Counter(place.kind for place in self.places)


# --------------------------------------------------------------- watching a real run


@dataclass(frozen=True)
class Exec:
    """One execve strace saw: which thread, which program, its argv and environment."""

    pid: int
    program: bytes
    argv: tuple[bytes, ...]
    environ: tuple[bytes, ...]
    succeeded: bool


_HEX_STRING = re.compile(rb'"((?:\\x[0-9a-f]{2})*)"')
_FD_PATH = re.compile(rb"(?:\d+|AT_FDCWD)<((?:\\x[0-9a-f]{2})*)>")


def _unhex(text: bytes) -> bytes:
    return bytes.fromhex(text.replace(b"\\x", b"").decode("ascii"))


def _strings(text: bytes) -> list[bytes]:
    return [_unhex(m.group(1)) for m in _HEX_STRING.finditer(text)]


def parse_trace(folder: Path, cwd: Path) -> tuple[list[Exec], list[bytes]]:
    """Every execve, and every path given a name (absolute), from ``strace -ff -y -xx``."""
    execs: list[Exec] = []
    created: list[bytes] = []
    for trace in sorted(folder.iterdir()):
        pid = int(trace.name.rpartition(".")[2])
        for line in trace.read_bytes().splitlines():
            call, paren, rest = line.partition(b"(")
            name = call.decode("ascii", "replace")
            if not paren or "<" in name:
                continue
            args, _sep, result = rest.rpartition(b") = ")
            succeeded = result[:1] != b"-"
            if name == "execve":
                lists = re.findall(rb"\[([^\]]*)\]", args)
                execs.append(
                    Exec(
                        pid,
                        _strings(args)[0] if _strings(args) else b"",
                        tuple(_strings(lists[0])) if lists else (),
                        tuple(_strings(lists[1])) if len(lists) > 1 else (),
                        succeeded,
                    )
                )
                continue
            if name not in CREATING_CALLS or not succeeded:
                continue
            if name in ("open", "openat") and b"O_CREAT" not in args:
                continue
            returned = _FD_PATH.match(result)
            if name in ("open", "openat", "creat") and returned:
                created.append(_unhex(returned.group(1)))
                continue
            folders = [_unhex(m.group(1)) for m in _FD_PATH.finditer(args)]
            names = _strings(args)
            target = names[-1]
            base = folders[-1] if folders and name.endswith(("at", "at2")) else b""
            if not target.startswith(b"/"):
                target = os.path.join(base or os.fsencode(cwd), target)
            created.append(os.path.normpath(target))
    return execs, created


class ProcessWatch(threading.Thread):
    """Polls /proc while a run lasts: the argv and environment of the tool and of every
    descendant, and the bytes of every file in the run's TMPDIR."""

    def __init__(self, root_pid: int, temp: Path) -> None:
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.temp = temp
        self.seen: dict[int, set[tuple[bytes, bytes]]] = {}
        self.temp_files: dict[str, set[bytes]] = {}
        self.done = threading.Event()

    def run(self) -> None:
        family = {self.root_pid}
        listed: set[int] = set()
        while True:
            finished = self.done.is_set()
            now = {int(name) for name in os.listdir("/proc") if name.isdigit()}
            for pid in sorted(now - listed):
                if _parent(pid) in family:
                    family.add(pid)
            listed = now
            for pid in family & now:
                seen = _read_proc(pid)
                if seen is not None:
                    self.seen.setdefault(pid, set()).add(seen)
            for folder, _dirs, files in os.walk(self.temp):
                for name in files:
                    path = os.path.join(folder, name)
                    try:
                        with open(path, "rb") as handle:
                            self.temp_files.setdefault(path, set()).add(handle.read())
                    except OSError:
                        continue
            if finished:
                return
            time.sleep(POLL_SECONDS)


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return int(fields[1]) if len(fields) > 1 else None


def _read_proc(pid: int) -> tuple[bytes, bytes] | None:
    try:
        with (
            open(f"/proc/{pid}/cmdline", "rb") as cmdline,
            open(f"/proc/{pid}/environ", "rb") as environ,
        ):
            return cmdline.read(), environ.read()
    except OSError:
        return None


@dataclass
class Run:
    label: str
    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes  # empty for a terminal run: everything is in stdout
    terminal: bool
    execs: list[Exec]
    created: list[bytes]
    watch: ProcessWatch


def _strace_prefix(trace: Path) -> list[str]:
    return [
        "strace", "-f", "-ff", "-qq", "-y", "-xx", "-v", "-s", "1048576",
        *(["--seccomp-bpf"] if _seccomp_bpf() else []),
        # "?": a call this architecture lacks (aarch64 has no open, mkdir...) is no error
        "-e", "trace=execve," + ",".join("?" + call for call in CREATING_CALLS),
        "-o", str(trace / "trace"), "--",
    ]  # fmt: skip


_PROBED: dict[str, bool] = {}
_REFUSAL: list[str] = []


def _seccomp_bpf() -> bool:
    return _PROBED.get("seccomp-bpf", False)


def require_strace(tmp_path: Path) -> None:
    """strace, able to trace here (ptrace may be refused in a container): skip otherwise."""
    require_tool("strace")
    if "usable" not in _PROBED:
        probe = tmp_path / "probe"
        for flags in (["--seccomp-bpf"], []):
            done = subprocess.run(
                ["strace", "-f", "-qq", *flags, "-e", "trace=execve", "-o", str(probe), "true"],
                capture_output=True, check=False, timeout=60,
            )  # fmt: skip
            if done.returncode == 0:
                _PROBED.update({"usable": True, "seccomp-bpf": bool(flags)})
                break
        else:
            _PROBED["usable"] = False
            _REFUSAL.append(done.stderr.decode(errors="replace").strip()[:200])
    if not _PROBED["usable"]:
        pytest.skip(f"strace cannot trace processes here: {_REFUSAL[0]}")


# ---------------------------------------------------------------------- the lab bench


@dataclass
class Lab:
    """Folders of one campaign: inputs the test writes, then what the tool may write."""

    root: Path
    scan: SecretScan = field(default_factory=SecretScan)
    runs: list[Run] = field(default_factory=list)
    source: Path = field(init=False)  # the seized folder every acquisition reads

    def __post_init__(self) -> None:
        for folder in (self.inputs, self.out, self.keys.parent, self.temp, self.home, self.work):
            folder.mkdir(parents=True, exist_ok=True)
        self.source = self.inputs / "seized"
        (self.source / "mail").mkdir(parents=True)
        (self.source / "mail" / "inbox.mbox").write_bytes(b"From: a@example.org\n\nhello\n")
        (self.source / "photo.bin").write_bytes(os.urandom(300_000))
        (self.source / "large.bin").write_bytes(os.urandom(1_200_000))  # its own member
        (self.source / "link-to-mail").symlink_to("mail")

    @property
    def inputs(self) -> Path:  # what the test writes: passphrase files
        return self.root / "inputs"

    @property
    def out(self) -> Path:  # the output folder the tool is pointed at
        return self.root / "out"

    @property
    def keys(self) -> Path:
        return self.out / "keys"

    @property
    def temp(self) -> Path:  # the tool's TMPDIR
        return self.root / "tmp"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def work(self) -> Path:  # the working folder the tool runs in
        return self.root / "work"

    def secret_file(self, name: str, text: str) -> Path:
        path = self.inputs / name
        path.write_text(text + "\n", encoding="utf-8")
        path.chmod(0o600)
        return path

    def environment(self, extra: dict[str, str]) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(self.temp),
            "PYTHONDONTWRITEBYTECODE": "1",  # the interpreter's caches are not the tool's
            **extra,
        }

    def run(
        self,
        label: str,
        *args: str | Path,
        env: dict[str, str] | None = None,
        expect: int = 0,
        prompts: Sequence[tuple[str, str]] = (),
        secret_in_argv: bool = False,
    ) -> Run:
        """One real run under strace and the /proc watch; ``prompts`` are answered on a
        pseudo-terminal; ``secret_in_argv``: the person typed a secret on the command line
        (the tool must still not repeat it)."""
        words = tuple(str(a) for a in args)
        given = env or {}
        trace = Path(self.root / "traces" / f"{len(self.runs):02d}")
        trace.mkdir(parents=True)
        argv = [*_strace_prefix(trace), *TOOL, *words]
        environment = self.environment(given)
        if prompts:
            returncode, stdout, stderr, watch = _run_on_terminal(
                argv, environment, self.work, self.temp, prompts
            )
        else:
            process = subprocess.Popen(
                argv, cwd=self.work, env=environment, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            watch = ProcessWatch(process.pid, self.temp)
            watch.start()
            try:
                stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
            finally:
                watch.done.set()
                watch.join()
            returncode = process.returncode
        execs, created = parse_trace(trace, self.work)
        run = Run(label, words, returncode, stdout, stderr, bool(prompts), execs, created, watch)
        self.runs.append(run)
        shown = (stdout + stderr).decode(errors="replace")[-3000:]
        assert returncode == expect, f"{label}: exit {returncode}, expected {expect}\n{shown}"
        assert b"Traceback" not in stdout + stderr, f"{label}: traceback\n{shown}"
        self._collect(run, given, secret_in_argv)
        return run

    def _collect(self, run: Run, given: dict[str, str], secret_in_argv: bool) -> None:
        """Every place this run could have left a secret. The tool's own environment holds
        what the person put there; the tracer and ``setsid`` are the test's, not the tool's."""
        scan = self.scan
        scan.place("terminal" if run.terminal else "stdout", run.label, run.stdout)
        scan.place("stderr", run.label, run.stderr)
        put_there = {value.encode() for name, value in given.items() if name in SECRET_VARIABLES}
        tools = [e for e in run.execs if e.succeeded and e.argv[1:3] == (b"-m", b"evidence_kit")]
        assert tools, f"{run.label}: strace did not see the tool start"
        for one in run.execs:
            if not one.succeeded:
                continue  # a PATH search: the same argv and environment as the exec that ran
            own = one in tools
            who = "the tool" if own else f"program {one.program.decode(errors='replace')}"
            if not (own and secret_in_argv):
                scan.place("argv (execve)", f"{run.label}: {who}", b"\0".join(one.argv))
            scan.place("environment (execve)", f"{run.label}: {who}", b"\0".join(one.environ),
                       allowed=put_there if own else ())  # fmt: skip
        assert any(
            cmdline.split(b"\0")[1:3] == [b"-m", b"evidence_kit"]
            for seen in run.watch.seen.values()
            for cmdline, _environ in seen
        ), f"{run.label}: the /proc watch never saw the tool"
        for pid, seen in run.watch.seen.items():
            for cmdline, environ in seen:
                program = os.path.basename(cmdline.split(b"\0")[0]).decode(errors="replace")
                if program in ("strace", "setsid"):
                    continue
                own = cmdline.split(b"\0")[1:3] == [b"-m", b"evidence_kit"]
                who = "the tool" if own else f"process {program} ({pid})"
                if not (own and secret_in_argv):
                    scan.place("argv (/proc)", f"{run.label}: {who}", cmdline)
                scan.place("environment (/proc)", f"{run.label}: {who}", environ,
                           allowed=put_there if own else ())  # fmt: skip
        for path, contents in run.watch.temp_files.items():
            for content in contents:
                scan.place("temp file while running", f"{run.label}: {path}", content)
        left = sorted(str(p.relative_to(self.temp)) for p in self.temp.rglob("*"))
        assert left == [], f"{run.label}: left in TMPDIR: {left}"

    # ------------------------------------------------------------------ afterwards

    def bundle_key(self, name: str, container: Path, identity: AgeKey) -> str:
        """The zip password, from a key slot opened with the test identity (as
        ``age -d -i lab.key slot.age`` would); registered as a secret, raw and as text."""
        with zipfile.ZipFile(container) as archive:
            slot = next(n for n in archive.namelist() if n.endswith("-x25519.age"))
            opened: bytes = pyrage.decrypt(archive.read(slot), [identity.identity])
        password = opened.decode("ascii")
        assert re.fullmatch("[0-9a-f]{64}", password)
        self.scan.secret(f"bundle key of {name}", password)
        self.scan.secret(f"bundle key of {name} (raw)", bytes.fromhex(password))
        return password

    def bundle_members(self, name: str, container: Path, password: str) -> None:
        """Every member decrypted (packs hold their items stored, in the clear)."""
        with pyzipper.AESZipFile(container) as archive:
            archive.setpassword(password.encode("ascii"))
            for member in archive.namelist():
                self.scan.place("bundle member (decrypted)", f"{name}: {member}",
                                archive.read(member))  # fmt: skip

    def signing_secrets(self, name: str, pem: Path, passphrase: str) -> None:
        key = serialization.load_pem_private_key(pem.read_bytes(), passphrase.encode())
        assert isinstance(key, Ed25519PrivateKey)
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )  # fmt: skip
        self.scan.secret(f"signing key {name} (private bytes)", raw)
        unencrypted = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )  # fmt: skip
        self.scan.secret(f"signing key {name} (PKCS#8 DER)", unencrypted)

    def identity_secrets(self, name: str, text: str) -> None:
        self.scan.secret(f"age identity {name}", text)
        self.scan.secret(f"age identity {name} (raw)", bech32_payload(text))

    def files(self) -> Iterator[Path]:
        for folder in (self.out, self.temp, self.home, self.work):
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    yield path

    def created_by_tool(self) -> set[bytes]:
        return {path for run in self.runs for path in run.created}


def bech32_payload(text: str) -> bytes:
    """The bytes a Bech32 string (an ``AGE-SECRET-KEY-1…``) carries."""
    charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    data = text.lower().rpartition("1")[2][:-6]
    accumulator, bits, out = 0, 0, bytearray()
    for char in data:
        accumulator = (accumulator << 5) | charset.index(char)
        bits += 5
        while bits >= 8:
            bits -= 8
            out.append((accumulator >> bits) & 0xFF)
    return bytes(out)


def _run_on_terminal(
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    temp: Path,
    prompts: Sequence[tuple[str, str]],
) -> tuple[int, bytes, bytes, ProcessWatch]:
    """Run ``argv`` with a pseudo-terminal as its controlling terminal and stdio; type
    each answer once its prompt is shown and the terminal no longer echoes."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        ["setsid", "--ctty", *argv], cwd=cwd, env=env, stdin=slave, stdout=slave,
        stderr=slave, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    watch = ProcessWatch(process.pid, temp)
    watch.start()
    transcript = bytearray()
    pending = list(prompts)
    since = 0
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _w, _x = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the terminal has closed it
                    chunk = b""
                if not chunk:
                    break
                transcript += chunk
            if pending and pending[0][0].encode() in transcript[since:]:
                if not termios.tcgetattr(master)[3] & termios.ECHO:
                    os.write(master, pending.pop(0)[1].encode("utf-8") + b"\n")
                    since = len(transcript)
            elif not ready and process.poll() is not None:
                break
        else:
            process.kill()
            raise AssertionError(f"no end after {RUN_TIMEOUT} s: {bytes(transcript)[-2000:]!r}")
        returncode = process.wait(timeout=RUN_TIMEOUT)
    finally:
        os.close(master)
        watch.done.set()
        watch.join()
    assert not pending, f"never prompted for {pending[0][0]!r}: {bytes(transcript)[-2000:]!r}"
    return returncode, bytes(transcript), b"", watch


# ------------------------------------------------------------------------ the checks


@dataclass(frozen=True)
class ModeCheck:
    checked: int
    wrong: list[str]
    outcomes: Counter[str]


def modes_of(lab: Lab, exempt: Iterable[Path] = ()) -> ModeCheck:
    """Every file and folder the tool created (strace) or left in its folders must be
    owner-only: files 0600, folders 0700 (public keys 0644)."""
    skipped = {os.fsencode(p) for p in exempt}
    paths = set(lab.created_by_tool())
    for folder in (lab.out, lab.temp, lab.home, lab.work):
        paths |= {os.fsencode(p) for p in folder.rglob("*")}
    wrong, outcomes, checked = [], Counter[str](), 0
    for path in sorted(paths):
        if any(path == s or path.startswith(s + b"/") for s in skipped):
            continue
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue  # a temp name, renamed or removed
        if stat.S_ISLNK(info.st_mode) or path == os.fsencode(lab.out):
            continue  # a link has no mode of its own; the output folder is the test's
        checked += 1
        mode = stat.S_IMODE(info.st_mode)
        public = path.endswith((b".pub.pem", b".age.pub"))
        expected = 0o700 if stat.S_ISDIR(info.st_mode) else 0o644 if public else 0o600
        outcomes[oct(mode)] += 1
        if mode != expected:
            wrong.append(f"{path.decode(errors='replace')}: {oct(mode)}, expected {oct(expected)}")
    return ModeCheck(checked, wrong, outcomes)


def strays(lab: Lab) -> tuple[list[str], list[str]]:
    """Paths the tool gave a name to outside the output and temp folders: those still
    there afterwards, and those already gone (a POSIX semaphore tqdm's lock makes in
    /dev/shm is unlinked at once: it holds a counter, no data)."""
    allowed = (os.fsencode(lab.out) + b"/", os.fsencode(lab.temp) + b"/")
    outside = sorted(p for p in lab.created_by_tool() if not p.startswith(allowed))
    left = [p.decode(errors="replace") for p in outside if os.path.lexists(p)]
    gone = [p.decode(errors="replace") for p in outside if not os.path.lexists(p)]
    return left, gone


def scan_files(lab: Lab, identity_files: Collection[Path]) -> None:
    """Every file left in the folders the tool may write, and every file it created
    anywhere; a new age identity belongs in its own key file, and nowhere else."""
    seen = set()
    for path in lab.files():
        seen.add(os.fsencode(path))
        allowed: set[bytes] = set()
        if path in identity_files:
            identity = _identity_in(path)
            allowed = {identity.encode(), bech32_payload(identity)}
        lab.scan.place("file", str(path.relative_to(lab.root)), path.read_bytes(), allowed)
    for created in lab.created_by_tool() - seen:
        if os.path.isfile(created) and not os.path.islink(created):
            with open(created, "rb") as handle:
                lab.scan.place("file", created.decode(errors="replace"), handle.read())


def finish(lab: Lab, figures: Figures, name: str, exempt: Iterable[Path] = ()) -> None:
    """The assertions every campaign ends with, and its figures."""
    left_outside, gone = strays(lab)
    not_semaphores = [path for path in gone if not path.startswith("/dev/shm/sem.")]
    leaks = lab.scan.leaks()
    modes = modes_of(lab, exempt)
    kinds = lab.scan.kinds()
    processes = sum(len({e.pid for e in run.execs if e.succeeded}) for run in lab.runs)
    polled = sum(len(run.watch.seen) for run in lab.runs)
    places = len(lab.scan.places)
    figures.record(
        f"secret scan: {name}",
        tried=places,
        detected=places - len(leaks),
        reasons=[f"{kind}" for kind, n in kinds.items() for _ in range(n)],
        note=(
            f"{len(lab.runs)} real runs; {len(lab.scan.secrets)} secrets, each with its "
            f"encodings ({', '.join(sorted(lab.scan.secrets))}); {processes} programs started "
            f"(execve seen by strace, the tool included), {polled} processes polled in /proc; "
            f"{len(gone)} POSIX semaphores made and unlinked in /dev/shm (tqdm's lock); a "
            "place counts as detected when it holds no secret"
        ),
    )
    figures.record(
        f"file modes: {name}",
        tried=modes.checked,
        detected=modes.checked - len(modes.wrong),
        reasons=[mode for mode, n in modes.outcomes.items() for _ in range(n)],
        note="files 0600 and folders 0700, public keys 0644; detected = as expected",
    )
    problems = [f"secret found: {leak}" for leak in leaks]
    problems += [f"left outside the output and temp folders: {path}" for path in left_outside]
    problems += [f"made outside the output and temp folders: {path}" for path in not_semaphores]
    problems += [f"mode: {wrong}" for wrong in modes.wrong]
    assert problems == [], "\n".join(problems)


# ------------------------------------------------------------------------------ tests


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    require_strace(tmp_path)
    return Lab(tmp_path / "lab")


def _new_keys(lab: Lab, name: str, passphrase_file: Path) -> tuple[Path, str]:
    """``keys new`` with a passphrase file; its secrets registered (read back from the
    files it wrote); returns the signing key and the recipient."""
    made = lab.run(f"keys new {name}", "keys", "new", name, "--out", lab.keys,
                   "--sign-passphrase-file", passphrase_file, "--json")  # fmt: skip
    document = json.loads(made.stdout)
    pem = Path(document["signing_key"])
    if not pem.is_absolute():
        pem = lab.work / pem
    lab.signing_secrets(name, pem, passphrase_file.read_text().removesuffix("\n"))
    identity_file = lab.keys / f"{name}.age"
    lab.identity_secrets(name, _identity_in(identity_file))
    return pem, document["age_recipient"]


def test_acquire_verify_and_extract_leak_no_secret(
    lab: Lab, age_key: AgeKey, figures: Figures
) -> None:
    """The everyday path: a passphrase-protected signing key made by ``keys new``; acquire
    with a passphrase file, a recipient and that key; verify with a wrong passphrase (the
    error path, --json); extract with the identity, recording a signed event."""
    scan = lab.scan
    passphrase = lab.secret_file("passphrase.txt", FILE_PASSPHRASE)
    wrong = lab.secret_file("wrong.txt", WRONG_PASSPHRASE)
    sign_passphrase = lab.secret_file("sign-passphrase.txt", SIGN_PASSPHRASE)
    for name, value in (("bundle passphrase (file)", FILE_PASSPHRASE),
                        ("wrong bundle passphrase", WRONG_PASSPHRASE),
                        ("signing key passphrase", SIGN_PASSPHRASE)):  # fmt: skip
        scan.secret(name, value)
    lab.identity_secrets("of the test", str(age_key.identity))
    pem, _recipient = _new_keys(lab, "officer", sign_passphrase)
    container = lab.out / "A.zip"
    lab.run(
        "acquire", "acquire", lab.source, "--out", container, *CASE_ARGS,
        "--recipient", age_key.recipient, "--passphrase-file", passphrase,
        "--sign", pem, "--sign-passphrase-file", sign_passphrase, "--unattended", "--json",
    )  # fmt: skip
    lab.run("verify, wrong passphrase", "verify", container, "--passphrase-file", wrong,
            "--json", expect=4)  # fmt: skip
    lab.run(
        "extract", "extract", container, "--out", lab.out / "extracted",
        "--identity", age_key.identity_file, "--sign", pem,
        "--sign-passphrase-file", sign_passphrase, "--actor", "Officer Chen Jing", "--json",
    )  # fmt: skip
    password = lab.bundle_key("A.zip", container, age_key)
    lab.bundle_members("A.zip", container, password)
    scan_files(lab, [lab.keys / "officer.age"])
    finish(lab, figures, "acquire, verify (wrong passphrase), extract")


@pytest.mark.slow
def test_every_command_leaks_no_secret(
    lab: Lab, age_key: AgeKey, local_tsa: LocalTsa, tsa_pki: TsaPki, figures: Figures
) -> None:
    """Every command, each way a secret can be given, success and error paths; the TSA
    answers with tokens rfc3161-client cannot parse, so the tool runs ``openssl`` on
    them: programs it starts are there to be watched."""
    scan = lab.scan
    require_tool("openssl")
    local_tsa.mode = "with-chain"
    passphrase = lab.secret_file("passphrase.txt", FILE_PASSPHRASE)
    wrong = lab.secret_file("wrong.txt", WRONG_PASSPHRASE)
    sign_passphrase = lab.secret_file("sign-passphrase.txt", SIGN_PASSPHRASE)
    wrong_sign = lab.secret_file("wrong-sign.txt", WRONG_SIGN_PASSPHRASE)
    weak = lab.secret_file("weak.txt", "aaaa1111")
    for name, value in (("bundle passphrase (file)", FILE_PASSPHRASE),
                        ("bundle passphrase (prompt)", PROMPT_PASSPHRASE),
                        ("signing key passphrase (prompt)", PROMPT_SIGN_PASSPHRASE),
                        ("wrong bundle passphrase", WRONG_PASSPHRASE),
                        ("signing key passphrase", SIGN_PASSPHRASE),
                        ("wrong signing key passphrase", WRONG_SIGN_PASSPHRASE)):  # fmt: skip
        scan.secret(name, value)
    scan.secret("bundle passphrase (environment)", ENVIRONMENT_PASSPHRASE)
    lab.identity_secrets("of the test", str(age_key.identity))
    by_env = {"EVIDENCE_KIT_PASSPHRASE": ENVIRONMENT_PASSPHRASE}
    sign_by_env = {"EVIDENCE_KIT_SIGN_PASSPHRASE": SIGN_PASSPHRASE}
    tsa = ("--tsa", local_tsa.url, "--tsa-ca", tsa_pki.root_cert)
    identity = ("--identity", age_key.identity_file)
    actor = ("--actor", "Officer Chen Jing")

    pem, _recipient = _new_keys(lab, "officer", sign_passphrase)
    public = lab.keys / "officer.sign.pub.pem"
    signed = ("--sign", pem, "--sign-passphrase-file", sign_passphrase)
    lab.run("keys new --protect (prompt)", "keys", "new", "clerk", "--out", lab.keys,
            "--protect", prompts=[("Passphrase for the signing key", PROMPT_SIGN_PASSPHRASE),
                                  ("Repeat for confirmation", PROMPT_SIGN_PASSPHRASE)])  # fmt: skip
    clerk = lab.keys / "clerk.sign.pem"
    lab.signing_secrets("clerk", clerk, PROMPT_SIGN_PASSPHRASE)
    lab.identity_secrets("clerk", _identity_in(lab.keys / "clerk.age"))

    # acquire: passphrase from a file, from the environment, from a prompt; errors
    a, b, c = lab.out / "A.zip", lab.out / "B.zip", lab.out / "C.zip"
    acquired = lab.run(
        "acquire (passphrase file, signed, TSA)", "acquire", lab.source, "--out", a,
        *CASE_ARGS, "--recipient", age_key.recipient, "--passphrase-file", passphrase,
        *signed, *tsa, "--hash", "sha256,sha1,md5", "--unattended", "--json",
    )  # fmt: skip
    assert json.loads(acquired.stdout)["timestamp"] == "stamped"
    assert any(e.program.endswith(b"/openssl") and e.succeeded for e in acquired.execs), (
        "the tool ran no openssl: nothing shows the started programs are watched"
    )
    lab.run(
        "acquire (passphrase from the environment)", "acquire", lab.source, "--out", b,
        *CASE_ARGS, "--recipient", age_key.recipient, "--sign", pem, "--unattended", "--json",
        env={**by_env, **sign_by_env},
    )  # fmt: skip
    lab.run(
        "acquire (passphrase at a prompt)", "acquire", lab.source, "--out", c, *CASE_ARGS,
        prompts=[("New bundle passphrase", PROMPT_PASSPHRASE),
                 ("Repeat for confirmation", PROMPT_PASSPHRASE)],
    )  # fmt: skip
    lab.run("acquire: passphrase typed on the command line", "acquire", lab.source, "--out",
            lab.out / "refused.zip", *CASE_ARGS, "--passphrase", FILE_PASSPHRASE, "--json",
            expect=2, secret_in_argv=True)  # fmt: skip
    lab.run("acquire: weak passphrase", "acquire", lab.source, "--out", lab.out / "weak.zip",
            *CASE_ARGS, "--passphrase-file", weak, "--unattended", "--json", expect=2)  # fmt: skip
    lab.run("acquire: wrong signing passphrase", "acquire", lab.source, "--out",
            lab.out / "wrong-sign.zip", *CASE_ARGS, "--recipient", age_key.recipient,
            "--sign", pem, "--sign-passphrase-file", wrong_sign, "--unattended", "--json",
            expect=4)  # fmt: skip

    # verify, inspect, extract, each way in; wrong keys
    lab.run("verify (passphrase file, signed event, TSA roots)", "verify", a,
            "--passphrase-file", passphrase, "--trust", public, "--tsa-ca", tsa_pki.root_cert,
            *signed, *actor, "--json")  # fmt: skip
    lab.run("verify --against (environment)", "verify", b, "--against", lab.source, "--json",
            env=by_env)  # fmt: skip
    lab.run("verify: wrong passphrase file", "verify", a, "--passphrase-file", wrong, "--json",
            expect=4)  # fmt: skip
    lab.run("verify: wrong passphrase in the environment", "verify", b, expect=4,
            env={"EVIDENCE_KIT_PASSPHRASE": WRONG_PASSPHRASE})  # fmt: skip
    lab.run("inspect (identity)", "inspect", a, *identity, "--json")
    lab.run("inspect (environment)", "inspect", b, env=by_env)
    lab.run("extract (prompt, signed by a prompted key)", "extract", c, "--out",
            lab.out / "from-C", "--sign", clerk, *actor,
            prompts=[("Bundle passphrase", PROMPT_PASSPHRASE),
                     ("Passphrase of", PROMPT_SIGN_PASSPHRASE)])  # fmt: skip
    lab.run("extract (passphrase file, signing passphrase in the environment)", "extract", a,
            "--out", lab.out / "from-A", "--passphrase-file", passphrase, "--sign", pem, *actor,
            "--json", env=sign_by_env)  # fmt: skip
    lab.run("extract: wrong passphrase", "extract", a, "--out", lab.out / "never",
            "--passphrase-file", wrong, "--json", expect=4)  # fmt: skip

    # export (every format), report, custody, timestamp
    for form in ("sha256sum", "hashdeep", "dfxml", "case", "bagit", "kit"):
        lab.run(f"export {form}", "export", a, "--format", form, "--out",
                lab.out / f"export-{form}", *identity, "--tsa-ca", tsa_pki.root_cert,
                "--json")  # fmt: skip
    lab.run("export (passphrase file, signed)", "export", a, "--format", "dfxml", "--out",
            lab.out / "A.dfxml", "--passphrase-file", passphrase, *signed, *actor,
            "--json")  # fmt: skip
    lab.run("export (environment)", "export", b, "--format", "sha256sum", "--out",
            lab.out / "B.sha256", "--sign", pem, *actor, env={**by_env, **sign_by_env})  # fmt: skip
    lab.run("report", "report", a, "--out", lab.out / "report.html", *identity, "--trust",
            public, "--tsa-ca", tsa_pki.root_cert, *signed, *actor, "--json")  # fmt: skip
    lab.run("report (environment)", "report", b, "--out", lab.out / "report-B.html",
            env=by_env)  # fmt: skip
    lab.run("custody add (passphrase file)", "custody", "add", a, "--action", "transferred",
            "--to", "Evidence store", *actor, *signed, "--json")  # fmt: skip
    lab.run("custody add (environment)", "custody", "add", a, "--action", "received",
            *actor, "--sign", pem, "--json", env=sign_by_env)  # fmt: skip
    lab.run("custody add: wrong signing passphrase", "custody", "add", a, "--action", "stored",
            *actor, "--sign", pem, "--sign-passphrase-file", wrong_sign, "--json",
            expect=4)  # fmt: skip
    lab.run("timestamp", "timestamp", a, *tsa, *signed, *actor, "--json")
    # Variables exported in the shell reach commands that start openssl on the tokens.
    exported = {**by_env, **sign_by_env}
    openssl_runs: list[tuple[str, tuple[str | Path, ...]]] = [
        ("timestamp (environment)", ("timestamp", a, *tsa, "--sign", pem, *actor, "--json")),
        ("verify (environment, signed event)", ("verify", a, *identity, "--tsa-ca",
         tsa_pki.root_cert, "--sign", pem, *actor, "--json")),
    ]  # fmt: skip
    for label, words in openssl_runs:
        shown = lab.run(label, *words, env=exported)
        assert any(e.program.endswith(b"/openssl") and e.succeeded for e in shown.execs), label
    lab.run("custody show (environment)", "custody", "show", a, "--trust", public, "--json",
            env=exported)  # fmt: skip
    lab.run("custody receipt", "custody", "receipt", a, "--out", lab.out / "receipt.html",
            "--json")  # fmt: skip

    # the lab: worker processes get the keys through their pipe, never argv or environment
    register = lab.out / "register.sqlite"
    lab.run("lab ingest (identity, signed, --jobs 2)", "lab", "ingest", a, b, *identity,
            "--register", register, *signed, *actor, "--jobs", "2", "--json")  # fmt: skip
    lab.run("lab ingest (environment, signed by an environment key)", "lab", "ingest", b,
            "--register", register, "--sign", pem, *actor, "--json",
            env={**by_env, **sign_by_env})  # fmt: skip
    lab.run("lab verify-all (passphrase file, --jobs 2)", "lab", "verify-all", lab.out,
            "--passphrase-file", passphrase, "--jobs", "2", "--json", expect=4)  # fmt: skip
    lab.run("lab verify-all (environment, --jobs 2)", "lab", "verify-all", lab.out,
            "--jobs", "2", env=by_env, expect=4)  # fmt: skip
    lab.run("lab verify-all: wrong passphrase", "lab", "verify-all", lab.out,
            "--passphrase-file", wrong, "--json", expect=4)  # fmt: skip

    for name, container in (("A.zip", a), ("B.zip", b)):
        lab.bundle_members(name, container, lab.bundle_key(name, container, age_key))
    with zipfile.ZipFile(c) as archive:  # no recipient: only the passphrase opens it
        slot = archive.read(next(n for n in archive.namelist() if n.endswith("-scrypt.age")))
    password = pyrage.passphrase.decrypt(slot, PROMPT_PASSPHRASE).decode("ascii")
    scan.secret("bundle key of C.zip", password)
    scan.secret("bundle key of C.zip (raw)", bytes.fromhex(password))
    lab.bundle_members("C.zip", c, password)
    scan_files(lab, [lab.keys / "officer.age", lab.keys / "clerk.age"])
    finish(lab, figures, "every command", exempt=[lab.out / "export-kit"])


def test_an_exported_kit_is_owner_only(lab: Lab, age_key: AgeKey, figures: Figures) -> None:
    """A kit holds ``manifest.bin``, the manifest in the clear (every seized file's name):
    its files must be owner-only like every other file the tool writes."""
    container = lab.out / "A.zip"
    lab.run("acquire", "acquire", lab.source, "--out", container, *CASE_ARGS, "--recipient",
            age_key.recipient, "--unattended", "--json")  # fmt: skip
    kit = lab.out / "kit"
    lab.run("export kit", "export", container, "--format", "kit", "--out", kit,
            "--identity", age_key.identity_file, "--json")  # fmt: skip
    found = {p.name: stat.S_IMODE(p.stat().st_mode) for p in kit.iterdir()}
    expected = {name: 0o700 if name == "VERIFY.sh" else 0o600 for name in found}
    owner_only = sum(found[name] == expected[name] for name in found)
    figures.record(
        "file modes: export --format kit", tried=len(found), detected=owner_only,
        reasons=[oct(mode) for mode in found.values()],
        note="files 0600, VERIFY.sh 0700; detected = as expected",
    )  # fmt: skip
    assert stat.S_IMODE(kit.stat().st_mode) == 0o700
    assert found == expected


def _identity_in(path: Path) -> str:
    return next(line for line in path.read_text().splitlines() if line.startswith("AGE-SECRET"))
