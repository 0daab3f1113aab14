"""Skew protection cost: what carrying the retained releases' hashed assets costs each release.

    python bench/skew_bench.py [--server local|moto] [--files 5000] [--megabytes 100] [--releases 11]
                               [--churn 0.1] [--keep 10] [--json]

Builds a generated site (``benchkit.generate_site``) and releases it ``--releases`` times, each
build renaming a ``--churn`` share of its content-hashed files (new hash, new bytes) as a real
rebuild does. Every release is made live, so the engine carries into it the hashed assets of the
retained releases it lacks (server-side copies). For each release it prints the copies, the bytes
carried, the time of the carrying step, and the bound the design promises: never more than the
retained releases' own hashed files. ``--server moto`` runs over the S3 protocol (moto_server on
127.0.0.1, started and stopped here); ``local`` uses the local target's file store.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import benchkit
from benchkit import Site

from hosting_toolkit.config import HostingConfig
from hosting_toolkit.release.content import is_content_hashed
from hosting_toolkit.release.engine import Progress, ReleaseEngine
from hosting_toolkit.release.kvs import LocalKeyValueStore
from hosting_toolkit.release.s3 import S3ObjectStore, s3_client
from hosting_toolkit.target import local_target

CARRY_LABEL = "carrying assets"
HASH_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class PhaseTimer(Progress):
    """Times each step the engine reports by its label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def begin(self, label: str, total: int) -> None:
        self._current = (label, time.perf_counter())

    def end(self) -> None:
        if self._current is not None:
            label, started = self._current
            self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - started
            self._current = None

    def carry_seconds(self) -> float:
        return sum(s for label, s in self.seconds.items() if label.startswith(CARRY_LABEL))


@dataclass(frozen=True)
class Row:
    """One release: its own files, what was carried into it, and the bound."""

    release: str
    files: int
    hashed_files: int
    carried_files: int
    carried_bytes: int
    carry_seconds: float
    release_seconds: float
    bound_files: int


def rebuild(site: Site, *, churn: float, seed: int) -> Site:
    """The next build: ``churn`` of the hashed files get a new hash in their name and new bytes."""
    rng = random.Random(seed)
    hashed = [p for p in site.paths if is_content_hashed(p)]
    renamed = set(rng.sample(hashed, max(1, round(len(hashed) * churn))))
    paths = []
    for path in site.paths:
        if path not in renamed:
            paths.append(path)
            continue
        old = site.root / path
        head, _, ext = path.rpartition(".")
        if ext == "map":
            head, _, ext = head.rpartition(".")
            ext += ".map"
        stem, _, _digest = head.rpartition("-")
        new = path
        while new in site.paths or not is_content_hashed(new):
            new = f"{stem}-{''.join(rng.choice(HASH_ALPHABET) for _ in range(8))}.{ext}"
        target = site.root / new
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rng.randbytes(old.stat().st_size))
        old.unlink()
        paths.append(new)
    return replace(site, paths=tuple(sorted(paths)))


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    config = HostingConfig()
    config = replace(config, release=replace(config.release, keep=args.keep))
    site = benchkit.generate_site(
        workdir / "site", files=args.files, total_bytes=args.megabytes * 1_000_000, seed=args.seed
    )
    server: benchkit.S3Server | None = None
    if args.server == "moto":
        (workdir / "moto").mkdir()
        server = benchkit.MotoS3Server(workdir / "moto").start()
        server.create_bucket("skew-bench")
        client = s3_client(concurrency=16, endpoint_url=server.endpoint, session=server.session())
        store: Any = S3ObjectStore(client, "skew-bench", concurrency=16)
        kvs: Any = LocalKeyValueStore(workdir / "kvs.json")
    else:
        target = local_target(workdir / "target", config)
        store, kvs = target.store, target.kvs
    rows: list[Row] = []
    own_hashed: dict[str, int] = {}
    try:
        for n in range(args.releases):
            if n:
                site = rebuild(site, churn=args.churn, seed=args.seed + n)
            timer = PhaseTimer()
            engine = ReleaseEngine(store, kvs, config, actor="bench", progress=timer)
            bound = sum(own_hashed[r] for r in engine.retained())
            started = time.perf_counter()
            result = engine.create(site.root, message=f"build {n}")
            elapsed = time.perf_counter() - started
            hashed = sum(1 for p in site.paths if is_content_hashed(p))
            own_hashed[result.id] = hashed
            row = Row(
                release=result.id,
                files=site.files,
                hashed_files=hashed,
                carried_files=result.carried_files,
                carried_bytes=result.carried_bytes,
                carry_seconds=round(timer.carry_seconds(), 3),
                release_seconds=round(elapsed, 3),
                bound_files=bound,
            )
            rows.append(row)
            log(
                f"release {n + 1}/{args.releases} {row.release}: carried {row.carried_files} files "
                f"({row.carried_bytes / 1e6:.1f} MB) in {row.carry_seconds:.2f} s; bound {bound}"
            )
    finally:
        if server is not None:
            server.stop()
    steady = rows[args.keep :] or rows[-1:]
    return {
        "server": args.server,
        "files": args.files,
        "megabytes": args.megabytes,
        "churn": args.churn,
        "keep": args.keep,
        "releases": [asdict(r) for r in rows],
        "steady_state": {
            "carried_files": max(r.carried_files for r in steady),
            "carried_megabytes": round(max(r.carried_bytes for r in steady) / 1e6, 1),
            "carry_seconds": max(r.carry_seconds for r in steady),
            "within_bound": all(r.carried_files <= r.bound_files for r in rows),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=("local", "moto"), default="local")
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--releases", type=int, default=11, help="releases made in a row (default 11)")
    parser.add_argument("--churn", type=float, default=0.1, help="share of hashed files renamed per build")
    parser.add_argument("--keep", type=int, default=10, help="release.keep: newest releases retained")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    benchkit.isolate_aws_env()
    benchkit.stop_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="skew-bench-") as tmp:
        figures = run(args, Path(tmp))
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(
        f"Skew protection cost: {args.files} files / {args.megabytes} MB, {args.churn:.0%} of hashed files "
        f"renamed per build, keep {args.keep}, {args.server} store"
    )
    print(f"{'release':<14}{'files':>7}{'hashed':>8}{'carried':>9}{'MB':>8}{'carry s':>9}{'release s':>11}{'bound':>8}")
    for r in figures["releases"]:
        print(
            f"{r['release']:<14}{r['files']:>7}{r['hashed_files']:>8}{r['carried_files']:>9}"
            f"{r['carried_bytes'] / 1e6:>8.1f}{r['carry_seconds']:>9.2f}{r['release_seconds']:>11.2f}{r['bound_files']:>8}"
        )
    s = figures["steady_state"]
    print(
        f"steady state (retention full): at most {s['carried_files']} copies, {s['carried_megabytes']} MB, "
        f"{s['carry_seconds']:.2f} s per release; every release within its bound: {s['within_bound']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
