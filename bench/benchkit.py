"""Shared pieces of the benchmarks: local S3 servers, generated sites, CPU and memory readings."""

from __future__ import annotations

import base64
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # The scripts run as ``python bench/<script>.py``; the repository root holds ``tests.fakes``.
    sys.path.insert(0, str(ROOT))

REGION = "us-east-1"
_TICKS = os.sysconf("SC_CLK_TCK")
#: Settings of the machine that would send a client elsewhere than the local server.
_AWS_ENV_TO_CLEAR = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def isolate_aws_env() -> None:
    """Keep the machine's AWS profile, config files and endpoints out of every client of this process."""
    for name in _AWS_ENV_TO_CLEAR:
        os.environ.pop(name, None)
    nowhere = str(Path(tempfile.gettempdir()) / "hosting-bench-no-aws-config")
    os.environ.update(
        {
            "AWS_CONFIG_FILE": nowhere,
            "AWS_SHARED_CREDENTIALS_FILE": nowhere,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )


def stop_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit`` so ``finally`` blocks stop the servers, as on Ctrl-C."""

    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far, from ``/proc/<pid>/stat``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_mb(pid: int | str = "self") -> float:
    """Current resident set size of a process in MB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children_cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- local S3 servers --------------------------------------------------------------------------


class S3Server:
    """An S3-compatible server in a child process on 127.0.0.1, stopped by ``stop`` (idempotent)."""

    name = "s3"
    access_key = "testing"
    secret_key = "testing"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_file = workdir / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server is not running"
        return self._process.pid

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def version(self) -> str:
        return ""

    def start(self, timeout: float = 60.0) -> S3Server:
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self._process.returncode}; see {self.log_file}")
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=2).close()
                return self
            except urllib.error.HTTPError:
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s; see {self.log_file}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def session(self) -> Any:
        import boto3

        return boto3.Session(
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key, region_name=REGION
        )

    def client(self) -> Any:
        from botocore.config import Config

        return self.session().client(
            "s3",
            endpoint_url=self.endpoint,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}),
        )

    def create_bucket(self, bucket: str) -> None:
        self.client().create_bucket(Bucket=bucket)

    def drop_bucket(self, bucket: str) -> None:
        """Forget a bucket's objects so later runs do not pay for its size."""

    def cli_env(self) -> dict[str, str]:
        """Environment of an AWS CLI subprocess talking to this server."""
        env = dict(os.environ)
        env.update({"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key})
        return env


class MotoS3Server(S3Server):
    """``moto_server`` (moto[server]) from the venv running this script."""

    name = "moto"

    def command(self) -> list[str]:
        executable = Path(sys.executable).with_name("moto_server")
        if not executable.exists():
            raise RuntimeError(f"{executable} not found; install moto[server]")
        return [str(executable), "-H", "127.0.0.1", "-p", str(self.port)]

    def version(self) -> str:
        from importlib.metadata import version

        return f"moto_server {version('moto')}"

    def drop_bucket(self, bucket: str) -> None:
        # moto keeps every object in memory; a reset forgets all buckets at once.
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=30).close()


class S3rverServer(S3Server):
    """s3rver (npm) with its data on tmpfs, started with the legacy OpenSSL provider.

    Without ``--openssl-legacy-provider`` listings over 1,000 keys fail (its continuation tokens
    use DES); a data folder on tmpfs avoids about a millisecond of kernel time per small file.
    """

    name = "s3rver"
    access_key = "S3RVER"
    secret_key = "S3RVER"
    script = ROOT / "node_modules" / "s3rver" / "bin" / "s3rver.js"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        shm = Path("/dev/shm")
        self.data = Path(tempfile.mkdtemp(prefix="hosting-bench-s3rver-", dir=shm if shm.is_dir() else None))

    def command(self) -> list[str]:
        node = shutil.which("node")
        if node is None or not self.script.exists():
            raise RuntimeError(f"s3rver needs node and {self.script} (npm install)")
        return [
            node,
            "--openssl-legacy-provider",
            str(self.script),
            "--directory",
            str(self.data),
            "--address",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--silent",
        ]

    def version(self) -> str:
        import json

        package = json.loads((self.script.parent.parent / "package.json").read_text())
        return f"s3rver {package['version']}"

    def drop_bucket(self, bucket: str) -> None:
        # s3rver keeps a bucket as a folder; an unused bucket's folder can simply go.
        shutil.rmtree(self.data / bucket, ignore_errors=True)

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.data, ignore_errors=True)


SERVERS: dict[str, type[S3Server]] = {"moto": MotoS3Server, "s3rver": S3rverServer}


@contextmanager
def running(server: S3Server) -> Iterator[S3Server]:
    """The server started, and stopped again however the block ends (error, Ctrl-C, SIGTERM)."""
    try:
        yield server.start()
    finally:
        server.stop()


# -- generated sites -----------------------------------------------------------------------------

_WORD_TEXT = (
    "about account activity admin analytics api archive article auth billing blog calendar cart "
    "catalog changelog checkout community compare contact dashboard docs download editor events "
    "explore faq feed gallery getting-started guides help home insights integrations invoices "
    "jobs labs learn library login map marketplace media news notifications onboarding orders "
    "partners payments pricing privacy products profile projects reference releases reports "
    "roadmap search security settings showcase signup solutions status support team templates "
    "terms tutorials updates upload usage videos webhooks welcome workspace"
)
_WORDS = tuple(_WORD_TEXT.split())
_HASH_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

#: Kinds of files a documentation or marketing site's build emits: share of files, median size.
_KINDS: tuple[tuple[str, float, int], ...] = (
    ("page", 0.30, 14_000),
    ("js", 0.20, 18_000),
    ("map", 0.05, 40_000),
    ("css", 0.05, 8_000),
    ("image", 0.30, 45_000),
    ("svg", 0.04, 3_000),
    ("font", 0.01, 30_000),
    ("json", 0.05, 4_000),
)


def _hash(rng: random.Random, length: int = 8) -> str:
    return "".join(rng.choice(_HASH_ALPHABET) for _ in range(length))


def _slug(rng: random.Random, words: int = 2) -> str:
    return "-".join(rng.choice(_WORDS) for _ in range(words))


def _path_of(kind: str, rng: random.Random) -> str:
    section = rng.choice(_WORDS)
    if kind == "page":
        style = rng.random()
        if style < 0.4:
            return f"docs/{section}/{_slug(rng)}.html"
        if style < 0.7:
            return f"blog/{rng.randint(2019, 2026)}/{rng.randint(1, 12):02d}/{_slug(rng, 3)}/index.html"
        return f"{section}/{_slug(rng)}/index.html"
    if kind in ("js", "map"):
        name = f"assets/js/{_slug(rng, 1)}-{_hash(rng)}.js"
        return name + ".map" if kind == "map" else name
    if kind == "css":
        return f"assets/css/{_slug(rng, 1)}-{_hash(rng)}.css"
    if kind == "image":
        ext = rng.choice((".webp", ".webp", ".png", ".jpg", ".avif"))
        return f"images/{section}/{_slug(rng)}-{rng.choice((320, 640, 960, 1280, 1920))}w{ext}"
    if kind == "svg":
        return f"icons/{_slug(rng)}.svg"
    if kind == "font":
        return f"assets/fonts/{rng.choice(('inter', 'roboto', 'source-sans', 'fira-code'))}-{_hash(rng)}.woff2"
    return f"data/{section}/{_slug(rng)}.json"


_TEXT_KINDS = {"page", "js", "map", "css", "svg", "json", "txt"}
_HEADS = {
    "txt": b"User-agent: *\nAllow: /\n",
    "page": b'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Page</title></head><body>\n',
    "js": b'"use strict";\n',
    "css": b":root{--accent:#0a7}\n",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">\n',
    "json": b'{"items":"',
    "map": b'{"version":3,"mappings":"',
}


def _content(kind: str, size: int, rng: random.Random) -> bytes:
    if kind not in _TEXT_KINDS:
        return rng.randbytes(size)
    head = _HEADS[kind]
    filler = base64.b64encode(rng.randbytes(max(0, size - len(head)) * 3 // 4 + 3))
    return (head + filler)[:size]


@dataclass(frozen=True)
class Site:
    """A generated build folder: where it is, its files (relative paths) and their total size."""

    root: Path
    paths: tuple[str, ...]
    bytes: int

    @property
    def files(self) -> int:
        return len(self.paths)


def generate_site(root: Path, *, files: int, total_bytes: int, seed: int) -> Site:
    """A deterministic site of ``files`` files totalling about ``total_bytes`` (same seed, same bytes)."""
    rng = random.Random(seed)
    names = [kind for kind, _, _ in _KINDS]
    weights = [share for _, share, _ in _KINDS]
    medians = {kind: median for kind, _, median in _KINDS}
    chosen = dict([("index.html", "page"), ("404.html", "page"), ("robots.txt", "txt")][: max(1, files)])
    while len(chosen) < files:
        kind = rng.choices(names, weights)[0]
        chosen.setdefault(_path_of(kind, rng), kind)
    paths = sorted(chosen)
    raw = [rng.lognormvariate(0, 0.9) * medians.get(chosen[p], 1_000) for p in paths]
    scale = total_bytes / sum(raw)
    sizes = [max(64, int(r * scale)) for r in raw]
    for path, size in zip(paths, sizes, strict=True):
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_content(chosen[path], size, rng))
    return Site(root, tuple(paths), sum(sizes))


def change_files(site: Site, *, fraction: float, seed: int) -> list[str]:
    """Rewrite ``fraction`` of the site's files with new random bytes of the same size."""
    rng = random.Random(seed)
    count = max(1, round(site.files * fraction))
    changed = sorted(rng.sample(list(site.paths), count))
    for path in changed:
        target = site.root / path
        target.write_bytes(rng.randbytes(target.stat().st_size))
    return changed


def small_files_site(root: Path, *, files: int, min_size: int, max_size: int, seed: int) -> Site:
    """``files`` small files (``min_size``..``max_size`` bytes) in nested folders of ~100 files each."""
    rng = random.Random(seed)
    extensions = (".html", ".js", ".css", ".json", ".svg", ".txt")
    paths = ["index.html"]
    for n in range(1, files):
        top, middle, leaf = n // 10_000, (n // 100) % 100, n % 100
        ext = extensions[n % len(extensions)]
        paths.append(f"{_WORDS[top % len(_WORDS)]}-{top}/group-{middle:02d}/item-{leaf:02d}-{_hash(rng, 6)}{ext}")
    total = 0
    made: set[Path] = set()
    for path in paths:
        target = root / path
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        size = rng.randint(min_size, max_size)
        target.write_bytes(rng.randbytes(size))
        total += size
    return Site(root, tuple(paths), total)


# -- figures -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """Repeated readings of one quantity: median and spread."""

    samples: tuple[float, ...]

    @classmethod
    def of(cls, samples: Sequence[float]) -> Figure:
        return cls(tuple(samples))

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    def text(self, fmt: str = "{:.2f}", unit: str = "") -> str:
        if not self.samples:
            return "-"
        median = fmt.format(self.median) + unit
        if len(self.samples) == 1:
            return median
        return f"{median} [{fmt.format(min(self.samples))}-{fmt.format(max(self.samples))}]"

    def to_json(self) -> dict[str, Any]:
        return {"median": self.median, "min": min(self.samples), "max": max(self.samples), "samples": self.samples}


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A plain-text table with columns padded to their widest cell."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out)
