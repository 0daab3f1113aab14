"""The release engine's wheels, hash-locked in ``engine.lock`` and shipped in the package asset.

Every build of the pipeline, the operator's rollbacks included, installs the release engine from the
wheels shipped with it (``pip install --no-index --require-hashes``), so no build needs a package
index: ``hosting-toolkit deploy`` downloads them once per lock and build platform into a cache, and
synthesis copies them into the asset. ``python -m hosting_toolkit.pipeline.wheelhouse lock``
(``make lock``) makes the lock again from ``requirements.txt``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hosting_toolkit.pipeline.buildspec import LOCK_PATH, PROJECT_ROOT, PYTHON_VERSION, release_requirements

#: The lock the build installs from; ``LOCK_PATH`` inside the package asset.
LOCK_FILE = PROJECT_ROOT / LOCK_PATH
#: The package's build backend (``[build-system] requires``), locked and shipped too: the build installs
#: the package itself without build isolation, which would fetch the backend from an index.
BUILD_BACKEND = "setuptools==80.9.0"
#: The CPUs a build may run on, and the glibc of the build image (Amazon Linux 2023: 2.34), whose wheels
#: are those of every manylinux from 2.17 (manylinux2014) to it.
ARCHITECTURES = ("x86_64", "aarch64")
BUILD_GLIBC_MINOR = 34
OLDEST_MANYLINUX_MINOR = 17
#: Where prepared wheelhouses are kept, one folder per lock and platform, under the user's cache.
CACHE_SUBDIR = "hosting-toolkit/wheelhouses"
#: What the lock file says of itself, above what the resolver writes.
LOCK_HEADER = """\
# The release engine's whole dependency closure, hash-locked for CPython {python} on manylinux x86_64 and
# aarch64. The pipeline's builds install exactly these wheels, shipped in the package asset, with
# `pip install --no-index --require-hashes`. Made from requirements.txt by `make lock`; do not edit.
"""

_NAME_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;]+)\s*(;.*?)?\s*((?:--hash=\S+\s*)*)$")


class WheelhouseError(Exception):
    """The wheelhouse cannot be prepared or does not match the lock."""


@dataclass(frozen=True)
class Locked:
    """One requirement of the lock: an exact version and the hashes of its files."""

    name: str
    version: str
    marker: str
    hashes: frozenset[str]


def normalize(name: str) -> str:
    """A project name as PyPI compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK_FILE) -> dict[str, Locked]:
    """The requirements of a lock file by normalized name; every one pinned with ``==`` and hashed."""
    text = path.read_text(encoding="utf-8")
    entries: dict[str, Locked] = {}
    logical = re.sub(r"\\\n", " ", "\n".join(line.split("#", 1)[0].rstrip() for line in text.splitlines()))
    for line in (raw.strip() for raw in logical.splitlines()):
        if not line:
            continue
        match = _NAME_RE.match(line)
        if match is None:
            raise WheelhouseError(f"{path}: {line.split()[0]!r} is not pinned as name==version")
        hashes = frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", match.group(5)))
        if not hashes:
            raise WheelhouseError(f"{path}: {match.group(1)} has no --hash")
        name = normalize(match.group(1))
        entries[name] = Locked(name, match.group(3), (match.group(4) or "").lstrip("; ").strip(), hashes)
    return entries


def lock_digest(path: Path = LOCK_FILE) -> str:
    """What names a lock's wheelhouses: the first 16 hex digits of the lock's SHA-256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class Platform:
    """The interpreter and CPU a wheelhouse is for."""

    python_version: str = PYTHON_VERSION
    architecture: str = "x86_64"

    @property
    def tag(self) -> str:
        return f"cp{self.python_version.replace('.', '')}-{self.architecture}"

    def download_options(self) -> list[str]:
        """pip's options selecting this platform's wheels, whatever platform runs pip (which does not widen a
        manylinux tag to the older ones itself)."""
        minors = range(BUILD_GLIBC_MINOR, OLDEST_MANYLINUX_MINOR - 1, -1)
        tags = [*(f"manylinux_2_{minor}_{self.architecture}" for minor in minors), f"manylinux2014_{self.architecture}"]
        return [
            *(option for tag in tags for option in ("--platform", tag)),
            "--python-version",
            self.python_version,
            "--implementation",
            "cp",
        ]


#: The platform of the pipeline's builds (``BUILD_IMAGE``: Amazon Linux 2023 standard 5.0 on x86_64).
BUILD_PLATFORM = Platform()


@dataclass(frozen=True)
class Wheelhouse:
    """A folder holding exactly one wheel of each requirement of the lock for one platform."""

    path: Path
    wheels: tuple[str, ...]
    size: int
    reused: bool = False
    seconds: float = 0.0

    @property
    def megabytes(self) -> float:
        return self.size / 1_000_000

    def summary(self) -> str:
        how = "reused" if self.reused else f"prepared in {self.seconds:.1f} s"
        return f"{len(self.wheels)} wheels, {self.megabytes:.1f} MB, {how}: {self.path}"


def default_cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """The user's cache folder of wheelhouses (``$XDG_CACHE_HOME``, default ``~/.cache``)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / CACHE_SUBDIR


def wheelhouse_path(cache_root: Path, platform: Platform = BUILD_PLATFORM, lock: Path = LOCK_FILE) -> Path:
    """The folder of the wheelhouse of ``lock`` for ``platform`` in ``cache_root``."""
    return cache_root / f"{lock_digest(lock)}-{platform.tag}"


def _wheel_project(filename: str) -> str:
    return normalize(filename.split("-", 1)[0])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_wheelhouse(directory: Path, lock: Path = LOCK_FILE) -> Wheelhouse:
    """``directory`` as a wheelhouse of ``lock``; raises ``WheelhouseError`` naming every wheel missing,
    unexpected or not matching its hash. A requirement with an environment marker (``colorama ; sys_platform
    == 'win32'``) may be absent: the build's pip skips it."""
    if not directory.is_dir():
        raise WheelhouseError(f"{directory}: no such wheelhouse")
    locked = read_lock(lock)
    problems: list[str] = []
    found: dict[str, str] = {}
    wheels = sorted(p for p in directory.iterdir() if p.is_file())
    for wheel in wheels:
        project = _wheel_project(wheel.name)
        if wheel.suffix != ".whl" or project not in locked:
            problems.append(f"{wheel.name} is not a wheel of the lock")
        elif _sha256(wheel) not in locked[project].hashes:
            problems.append(f"{wheel.name} does not match its hash in the lock")
        elif project in found:
            problems.append(f"{wheel.name} and {found[project]} are both wheels of {project}")
        else:
            found[project] = wheel.name
    missing = sorted(name for name, entry in locked.items() if name not in found and not entry.marker)
    problems += [f"no wheel of {name}=={locked[name].version}" for name in missing]
    if problems:
        raise WheelhouseError(f"{directory} is not the wheelhouse of {lock.name}: " + "; ".join(problems))
    return Wheelhouse(directory, tuple(w.name for w in wheels), sum(w.stat().st_size for w in wheels))


def download_command(target: Path, platform: Platform, lock: Path = LOCK_FILE) -> list[str]:
    """The ``pip download`` of every wheel of ``lock`` for ``platform``, hash-checked, into ``target``."""
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--no-deps",
        "--require-hashes",
        *platform.download_options(),
        "--dest",
        str(target),
        "-r",
        str(lock),
    ]


def prepare_wheelhouse(cache_root: Path, platform: Platform = BUILD_PLATFORM, *, lock: Path = LOCK_FILE) -> Wheelhouse:
    """The wheelhouse of ``lock`` for ``platform``: the cached one when it is complete, else downloaded from the
    package index pip is configured with, checked against the lock, and then cached (never half-written)."""
    path = wheelhouse_path(cache_root, platform, lock)
    if path.is_dir():
        try:
            return _reused(check_wheelhouse(path, lock))
        except WheelhouseError:
            shutil.rmtree(path)
    started = time.monotonic()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}-", dir=path.parent) as tmp:
        staging = Path(tmp) / "wheels"
        done = subprocess.run(download_command(staging, platform, lock), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise WheelhouseError(
                f"could not download the release engine's wheels for {platform.tag} (pip exit code "
                f"{done.returncode}): {detail}"
            )
        check_wheelhouse(staging, lock)
        try:
            staging.rename(path)
        except OSError:
            if not path.is_dir():
                raise
    prepared = check_wheelhouse(path, lock)
    return Wheelhouse(prepared.path, prepared.wheels, prepared.size, False, time.monotonic() - started)


#: The command that prepares the build platform's wheelhouse without deploying.
PREPARE_COMMAND = "python -m hosting_toolkit.pipeline.wheelhouse prepare"
#: Context of the CDK app naming the wheelhouse to ship (``hosting-toolkit deploy`` sets it).
WHEELHOUSE_CONTEXT_KEY = "wheelhouse"
#: That context's value for a synthesis that deploys no build (``destroy``, ``diff``): ship no wheels.
NO_WHEELHOUSE = "none"


def shipped_wheelhouse(given: str | None, cache_root: Path, *, pipeline: bool) -> Path | None:
    """The wheelhouse a synthesis ships: ``given`` (the ``wheelhouse`` context), else the prepared one of the
    build platform in ``cache_root``; none without a pipeline, or when ``given`` is ``NO_WHEELHOUSE``. Raises
    ``WheelhouseError`` when a pipeline would ship none otherwise, or one that does not match the lock: its
    every build would fail to install."""
    if given == NO_WHEELHOUSE:
        return None
    if given:
        return check_wheelhouse(Path(given).expanduser().resolve()).path
    if not pipeline:
        return None
    path = wheelhouse_path(cache_root)
    try:
        return check_wheelhouse(path).path
    except WheelhouseError as exc:
        raise WheelhouseError(
            f"the pipeline's builds install the release engine from wheels shipped with it, and none are "
            f"prepared for {LOCK_FILE.name} ({exc}). Deploy with 'hosting-toolkit deploy', which prepares "
            f"them; or run '{PREPARE_COMMAND}' before 'cdk deploy', or pass '-c {WHEELHOUSE_CONTEXT_KEY}=DIR' "
            f"('-c {WHEELHOUSE_CONTEXT_KEY}={NO_WHEELHOUSE}' for a command that deploys no build: diff, destroy)"
        ) from None


def _reused(wheelhouse: Wheelhouse) -> Wheelhouse:
    return Wheelhouse(wheelhouse.path, wheelhouse.wheels, wheelhouse.size, reused=True)


def lock_inputs() -> list[str]:
    """What the lock is resolved from: the build's pins of ``requirements.txt`` and the package's build backend."""
    return [*release_requirements(), BUILD_BACKEND]


def make_lock(lock: Path = LOCK_FILE, *, check_platforms: Sequence[Platform] | None = None) -> str:
    """Resolve ``lock_inputs()`` with uv into ``lock`` (hashes of every file of each pinned version), then
    download the wheels of each build platform with the new lock, so a lock no build could install is never
    kept. The lock's text."""
    uv = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if uv is None:
        raise WheelhouseError("uv is not installed; run 'make setup' (requirements-dev.txt pins it)")
    with tempfile.TemporaryDirectory(prefix="hosting-lock-") as tmp:
        inputs = Path(tmp) / "engine.in"
        inputs.write_text("\n".join(lock_inputs()) + "\n", encoding="utf-8")
        resolved = Path(tmp) / "engine.lock"
        command = [
            uv,
            *("pip", "compile", "--quiet", "--generate-hashes", "--universal", "--no-header"),
            *("--no-annotate", "--python-version", PYTHON_VERSION, str(inputs), "-o", str(resolved)),
        ]
        subprocess.run(command, check=True)
        text = LOCK_HEADER.format(python=PYTHON_VERSION) + resolved.read_text(encoding="utf-8")
        candidate = Path(tmp) / "candidate.lock"
        candidate.write_text(text, encoding="utf-8")
        read_lock(candidate)
        for platform in check_platforms or [Platform(architecture=arch) for arch in ARCHITECTURES]:
            wheelhouse = prepare_wheelhouse(Path(tmp) / "check", platform, lock=candidate)
            print(f"{platform.tag}: {wheelhouse.summary()}", file=sys.stderr)
    lock.write_text(text, encoding="utf-8")
    return text


def main(argv: Sequence[str]) -> int:
    """``lock``: make ``engine.lock`` again; ``prepare [ARCH]``: prepare (or find) the wheelhouse of a platform."""
    try:
        if list(argv[:1]) == ["lock"]:
            make_lock()
            print(f"wrote {LOCK_FILE}", file=sys.stderr)
            return 0
        if argv[:1] and argv[0] == "prepare":
            architecture = argv[1] if len(argv) > 1 else BUILD_PLATFORM.architecture
            if architecture not in ARCHITECTURES:
                raise WheelhouseError(f"unknown architecture {architecture!r} ({', '.join(ARCHITECTURES)})")
            print(prepare_wheelhouse(default_cache_root(), Platform(architecture=architecture)).summary())
            return 0
    except (WheelhouseError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("usage: python -m hosting_toolkit.pipeline.wheelhouse lock | prepare [x86_64|aarch64]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
