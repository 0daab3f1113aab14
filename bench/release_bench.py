"""Release benchmark: first release against ``aws s3 cp``, incremental release, rollback, local edge.

    python bench/release_bench.py [--server moto|s3rver|both|none] [--files 5000] [--megabytes 100] [--quick] [--json]

Starts each S3 server itself on a free 127.0.0.1 port and always stops it again. Every timed
figure is the median of ``--repeat`` runs with its spread in brackets.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import benchkit
from benchkit import Figure, S3Server, Site

from hosting_toolkit.config import HostingConfig
from hosting_toolkit.contract import RELEASES_PREFIX
from hosting_toolkit.release.engine import ReleaseEngine, ReleaseResult
from hosting_toolkit.release.kvs import AwsKeyValueStore, LocalKeyValueStore, kvs_client
from hosting_toolkit.release.s3 import S3ObjectStore, s3_client
from hosting_toolkit.target import local_target

CONCURRENCY = 16
CONFIG = HostingConfig()
CHANGED_FRACTION = 0.01
#: Targets the figures are held against.
TARGET_RATIO = 2.0
TARGET_INCREMENTAL_PERCENT = 2.0
METHODS = ("aws_cli", "engine_native", "engine_botocore")
METHOD_LABELS = {
    "aws_cli": "aws s3 cp --recursive",
    "engine_native": "engine, native (awscrt)",
    "engine_botocore": "engine, botocore",
}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Timing:
    """One timed upload: wall seconds, client CPU seconds, server CPU seconds."""

    wall: float
    client_cpu: float
    server_cpu: float


@dataclass
class ServerFigures:
    """Every reading taken against one server, over all runs."""

    server: str
    version: str
    first: dict[str, list[Timing]] = field(default_factory=lambda: {m: [] for m in METHODS})
    incremental: list[dict[str, Any]] = field(default_factory=list)
    rollback: list[dict[str, Any]] = field(default_factory=list)


# -- first release -------------------------------------------------------------------------------


def engine_for(server: S3Server, bucket: str, *, native: bool, kvs_file: Path) -> ReleaseEngine:
    client = s3_client(concurrency=CONCURRENCY, endpoint_url=server.endpoint, session=server.session())
    store = S3ObjectStore(client, bucket, concurrency=CONCURRENCY, native=native)
    if native and store._native is None:
        raise RuntimeError("native uploads are not available: install awscrt")
    return ReleaseEngine(store, LocalKeyValueStore(kvs_file), CONFIG, actor="bench")


def timed_release(engine: ReleaseEngine, server: S3Server, source: Path) -> tuple[Timing, ReleaseResult]:
    cpu, server_cpu, started = time.process_time(), server.cpu_seconds(), time.perf_counter()
    result = engine.create(source, message="bench")
    wall = time.perf_counter() - started
    return Timing(wall, time.process_time() - cpu, server.cpu_seconds() - server_cpu), result


def timed_cli_upload(server: S3Server, source: Path, bucket: str) -> Timing:
    aws = Path(sys.executable).with_name("aws")
    command = [str(aws), "s3", "cp", "--recursive", "--quiet", "--endpoint-url", server.endpoint]
    command += [str(source), f"s3://{bucket}/"]
    cpu, server_cpu, started = benchkit.children_cpu_seconds(), server.cpu_seconds(), time.perf_counter()
    completed = subprocess.run(command, env=server.cli_env(), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    timing = Timing(wall, benchkit.children_cpu_seconds() - cpu, server.cpu_seconds() - server_cpu)
    if completed.returncode != 0:
        raise RuntimeError(f"aws s3 cp failed ({completed.returncode}): {completed.stderr.strip()[-500:]}")
    return timing


def count_objects(server: S3Server, bucket: str) -> int:
    paginator = server.client().get_paginator("list_objects_v2")
    return sum(page.get("KeyCount", 0) for page in paginator.paginate(Bucket=bucket))


# -- rollback ------------------------------------------------------------------------------------


class CountingStore:
    """Passes every call to the store and counts writes of release files (native uploads included)."""

    def __init__(self, inner: S3ObjectStore) -> None:
        self._inner = inner
        self.release_writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _count(self, key: str) -> None:
        if key.startswith(RELEASES_PREFIX):
            self.release_writes += 1

    def put_file(self, key: str, source: Path, **kwargs: Any) -> None:
        self._count(key)
        self._inner.put_file(key, source, **kwargs)

    def put_bytes(self, key: str, data: bytes, **kwargs: Any) -> bool:
        self._count(key)
        return self._inner.put_bytes(key, data, **kwargs)

    def copy(self, source_key: str, key: str, **kwargs: Any) -> None:
        self._count(key)
        self._inner.copy(source_key, key, **kwargs)


class CountingKeyValueStore:
    """Counts reads and writes on a local key-value store (used when the KVS fake is unavailable)."""

    def __init__(self, inner: LocalKeyValueStore) -> None:
        self._inner = inner
        self.calls: Counter[str] = Counter()

    @property
    def description(self) -> str:
        return self._inner.description

    def read(self, key: str) -> tuple[str | None, str]:
        self.calls["read"] += 1
        return self._inner.read(key)

    def write(self, key: str, value: str, *, if_match: str) -> str:
        self.calls["write"] += 1
        return self._inner.write(key, value, if_match=if_match)


#: KVS operations that change the store (the local wrapper counts "write").
_KVS_WRITES = ("PutKey", "UpdateKeys", "DeleteKey", "write")


def measure_rollback(engine: ReleaseEngine, server: S3Server, expected_live: str) -> dict[str, Any]:
    """Roll back once, counting S3 requests by operation and KVS requests by kind."""
    local_kvs = engine.kvs
    assert isinstance(local_kvs, LocalKeyValueStore)
    store = CountingStore(engine.store)  # type: ignore[arg-type]
    client = engine.store.client  # type: ignore[attr-defined]
    s3_calls: Counter[str] = Counter()
    release_requests: Counter[str] = Counter()

    def on_call(event_name: str, params: dict[str, Any], **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        s3_calls[operation] += 1
        bucket_path = f"/{engine.store.bucket}/{RELEASES_PREFIX}"  # type: ignore[attr-defined]
        if operation in ("PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart") and str(
            params.get("url_path", "")
        ).startswith(bucket_path):
            release_requests[operation] += 1

    try:
        from tests.fakes.kvs_server import FakeKeyValueStoreServer
    except ImportError:
        FakeKeyValueStoreServer = None

    fake = None
    counting = None
    kvs: Any
    if FakeKeyValueStoreServer is not None:
        fake = FakeKeyValueStoreServer().start()
        items, _ = local_kvs.snapshot()
        arn = fake.create_store(items=items)
        kvs = AwsKeyValueStore(kvs_client(endpoint_url=fake.url, session=server.session()), arn)
        kvs_kind = "CloudFront KVS data-plane fake over HTTP (tests/fakes/kvs_server.py)"
    else:
        kvs = counting = CountingKeyValueStore(local_kvs)
        kvs_kind = "counting wrapper around LocalKeyValueStore"
    rollback_engine = ReleaseEngine(store, kvs, CONFIG, actor="bench")  # type: ignore[arg-type]
    client.meta.events.register("before-call.s3", on_call)
    try:
        started = time.perf_counter()
        change = rollback_engine.rollback()
        wall = time.perf_counter() - started
    finally:
        client.meta.events.unregister("before-call.s3", on_call)
        if fake is not None:
            fake.stop()
    kvs_calls = dict(fake.requests) if fake is not None else dict(counting.calls)  # type: ignore[union-attr]
    writes = sum(n for op, n in kvs_calls.items() if op in _KVS_WRITES)
    reads = sum(kvs_calls.values()) - writes
    if change.after.live != expected_live:
        raise RuntimeError(f"rollback went to {change.after.live}, expected {expected_live}")
    return {
        "time_s": wall,
        "kvs": kvs_kind,
        "kvs_writes": writes,
        "kvs_reads": reads,
        "kvs_calls": kvs_calls,
        "s3_calls": dict(sorted(s3_calls.items())),
        "release_file_writes": store.release_writes + sum(release_requests.values()),
        "attempts": change.attempts,
    }


# -- one server ----------------------------------------------------------------------------------


def bench_server(kind: str, sites: tuple[Site, Site], repeat: int, workdir: Path) -> ServerFigures:
    site, changed = sites
    server = benchkit.SERVERS[kind](workdir)
    log(f"starting {kind}")
    with benchkit.running(server):
        figures = ServerFigures(kind, server.version())
        for run in range(repeat):
            # Rotate the order so drift of the shared machine's load does not favour one method.
            order = METHODS[run % len(METHODS) :] + METHODS[: run % len(METHODS)]
            for method in order:
                bucket = f"bench-{method.replace('_', '-')}-{run}"
                server.create_bucket(bucket)
                log(f"{kind} run {run + 1}/{repeat}: {METHOD_LABELS[method]}")
                if method == "aws_cli":
                    timing = timed_cli_upload(server, site.root, bucket)
                    uploaded = count_objects(server, bucket)
                    if uploaded != site.files:
                        raise RuntimeError(f"aws s3 cp left {uploaded} objects, expected {site.files}")
                else:
                    engine = engine_for(
                        server, bucket, native=method == "engine_native", kvs_file=workdir / f"kvs-{bucket}.json"
                    )
                    timing, first = timed_release(engine, server, site.root)
                    if method == "engine_native":
                        log(f"{kind} run {run + 1}/{repeat}: incremental release and rollback")
                        figures.incremental.append(incremental(engine, server, changed, first))
                        figures.rollback.append(measure_rollback(engine, server, first.id))
                figures.first[method].append(timing)
                server.drop_bucket(bucket)
        return figures


def incremental(engine: ReleaseEngine, server: S3Server, changed: Site, first: ReleaseResult) -> dict[str, Any]:
    timing, result = timed_release(engine, server, changed.root)
    if result.base_release != first.id:
        raise RuntimeError(f"incremental release based on {result.base_release}, expected {first.id}")
    return {
        "time_s": timing.wall,
        "client_cpu_s": timing.client_cpu,
        "server_cpu_s": timing.server_cpu,
        "files": result.files,
        "bytes": result.bytes,
        "uploaded_files": result.uploaded_files,
        "uploaded_bytes": result.uploaded_bytes,
        "copied_files": result.copied_files,
        "uploaded_percent": 100 * result.uploaded_bytes / result.bytes,
    }


# -- local edge throughput -----------------------------------------------------------------------

_EDGE_JS = "app-Xk39fQ2a.js"


def _edge_site(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bench</title></head><body>{}</body></html>'
    )
    (root / "index.html").write_text(page.format("home " * 400))
    (root / "404.html").write_text(page.format("not found"))
    (root / "assets").mkdir(exist_ok=True)
    (root / "assets" / _EDGE_JS).write_bytes(b"console.log(1);" + b" " * 20_000)
    (root / "assets" / "site-7d3e2a10.css").write_text("body{margin:0}\n")
    return root


#: What the mix asks for and what each path must answer.
EDGE_PATHS: tuple[tuple[str, int], ...] = (
    ("/", 200),
    ("/about", 200),
    (f"/assets/{_EDGE_JS}", 200),
    ("/assets/missing-0badc0de.js", 404),
    ("/assets/..%2f..%2f_meta/records/x.json", 400),
)


def load(host: str, port: int, requests: int, clients: int) -> dict[str, Any]:
    """Send ``requests`` over ``clients`` keep-alive connections; latencies in ms and statuses."""
    barrier = threading.Barrier(clients + 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: list[Counter[str]] = [Counter() for _ in range(clients)]
    share = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        barrier.wait()
        for n in range(share[index]):
            path, _ = EDGE_PATHS[(n + index) % len(EDGE_PATHS)]
            started = time.perf_counter()
            connection.request("GET", path, headers={"accept": "text/html,*/*"})
            response = connection.getresponse()
            response.read()
            latencies[index].append((time.perf_counter() - started) * 1000)
            statuses[index][f"{path} {response.status}"] += 1
            if response.will_close:
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    flat = sorted(x for per in latencies for x in per)
    total: Counter[str] = Counter()
    for per in statuses:
        total.update(per)
    cuts = statistics.quantiles(flat, n=100)
    return {
        "requests": len(flat),
        "wall_s": wall,
        "rps": len(flat) / wall,
        "p50_ms": cuts[49],
        "p95_ms": cuts[94],
        "max_ms": flat[-1],
        "statuses": dict(sorted(total.items())),
    }


def bench_serve(workdir: Path, requests: int, clients: int, repeat: int) -> dict[str, Any]:
    """Requests per second, latency and answers of the local edge under keep-alive load."""
    from hosting_toolkit.edge.sandbox import FunctionSandbox
    from hosting_toolkit.local.edge import LocalEdge
    from hosting_toolkit.local.server import make_server

    target = local_target(workdir / "edge-target", CONFIG)
    ReleaseEngine(target.store, target.kvs, CONFIG, actor="bench").create(_edge_site(workdir / "edge-site"))
    assert isinstance(target.kvs, LocalKeyValueStore)
    runs: list[dict[str, Any]] = []
    with (
        FunctionSandbox() as sandbox,
        ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool,
    ):
        edge = LocalEdge(store=target.store, kvs=target.kvs, config=CONFIG, sandbox=sandbox)
        server = make_server(edge, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, name="edge", daemon=True)
        thread.start()
        host, port = str(server.server_address[0]), int(server.server_address[1])
        # The load comes from another process, so its threads do not compete for this one's GIL.
        try:
            pool.submit(load, host, port, min(50, requests), clients).result()
            for run in range(repeat):
                log(f"local edge run {run + 1}/{repeat}: {requests} requests, {clients} connections")
                runs.append(pool.submit(load, host, port, requests, clients).result())
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
    expected = {f"{path} {status}" for path, status in EDGE_PATHS}
    return {
        "requests": requests,
        "clients": clients,
        "rps": Figure.of([r["rps"] for r in runs]),
        "p50_ms": Figure.of([r["p50_ms"] for r in runs]),
        "p95_ms": Figure.of([r["p95_ms"] for r in runs]),
        "statuses": runs[-1]["statuses"],
        "unexpected_statuses": sorted({s for r in runs for s in r["statuses"]} - expected),
    }


# -- report --------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def summarize(figures: ServerFigures) -> dict[str, Any]:
    first = {
        method: {
            "wall_s": Figure.of([t.wall for t in timings]),
            "client_cpu_s": Figure.of([t.client_cpu for t in timings]),
            "server_cpu_s": Figure.of([t.server_cpu for t in timings]),
        }
        for method, timings in figures.first.items()
    }
    cli = [t.wall for t in figures.first["aws_cli"]]
    ratios = {
        method: Figure.of([c / t.wall for c, t in zip(cli, figures.first[method], strict=True)])
        for method in ("engine_native", "engine_botocore")
    }
    inc = figures.incremental
    rb = figures.rollback
    return {
        "server": figures.server,
        "version": figures.version,
        "first_release": first,
        "speedup_vs_aws_cli": ratios,
        "incremental": {
            "uploaded_percent": Figure.of([i["uploaded_percent"] for i in inc]),
            "uploaded_files": inc[-1]["uploaded_files"],
            "uploaded_bytes": inc[-1]["uploaded_bytes"],
            "copied_files": inc[-1]["copied_files"],
            "files": inc[-1]["files"],
            "bytes": inc[-1]["bytes"],
            "time_s": Figure.of([i["time_s"] for i in inc]),
            "client_cpu_s": Figure.of([i["client_cpu_s"] for i in inc]),
            "server_cpu_s": Figure.of([i["server_cpu_s"] for i in inc]),
        },
        "rollback": {
            "time_s": Figure.of([r["time_s"] for r in rb]),
            "kvs_writes": max(r["kvs_writes"] for r in rb),
            "kvs_reads": max(r["kvs_reads"] for r in rb),
            "kvs_calls": rb[-1]["kvs_calls"],
            "kvs": rb[-1]["kvs"],
            "s3_calls": rb[-1]["s3_calls"],
            "release_file_writes": max(r["release_file_writes"] for r in rb),
        },
    }


def render_server(server: dict[str, Any], site: Site, repeat: int) -> str:
    out: list[str] = []
    files = site.files
    first = server["first_release"]
    out.append(f"\n== {server['version']} on 127.0.0.1 ==")
    out.append(f"\nfirst release: {files} files, {site.bytes / 1e6:.1f} MB (seconds; median [min-max] of {repeat})")
    rows = []
    for method in METHODS:
        f = first[method]
        rate = Figure.of([files / w for w in f["wall_s"].samples])
        rows.append(
            [
                METHOD_LABELS[method],
                f["wall_s"].text(),
                rate.text("{:.0f}"),
                f["client_cpu_s"].text(),
                f["server_cpu_s"].text(),
                f"{1000 * f['server_cpu_s'].median / files:.2f}",
            ]
        )
    out.append(
        benchkit.table(rows, ["uploader", "wall s", "files/s", "client CPU s", "server CPU s", "server ms/file"])
    )
    native = server["speedup_vs_aws_cli"]["engine_native"]
    botocore = server["speedup_vs_aws_cli"]["engine_botocore"]
    out.append(
        f"speed-up vs aws s3 cp: native {native.text(unit='x')}  (target >= {TARGET_RATIO:.1f}x: "
        f"{verdict(native.median >= TARGET_RATIO)});  botocore {botocore.text(unit='x')}"
    )
    inc = server["incremental"]
    pct = inc["uploaded_percent"]
    out.append(
        f"\nincremental release ({inc['uploaded_files']} of {inc['files']} files changed): "
        f"uploaded {inc['uploaded_bytes']:,} of {inc['bytes']:,} bytes = {pct.text('{:.2f}', ' %')} "
        f"(target < {TARGET_INCREMENTAL_PERCENT:.0f} %: {verdict(pct.median < TARGET_INCREMENTAL_PERCENT)}); "
        f"copied {inc['copied_files']} files server-side; time {inc['time_s'].text(unit=' s')}, "
        f"client CPU {inc['client_cpu_s'].text(unit=' s')}, server CPU {inc['server_cpu_s'].text(unit=' s')}"
    )
    rb = server["rollback"]
    ok = rb["kvs_writes"] == 1 and rb["release_file_writes"] == 0
    s3 = ", ".join(f"{op} {n}" for op, n in rb["s3_calls"].items())
    kvs = ", ".join(f"{op} {n}" for op, n in sorted(rb["kvs_calls"].items()))
    out.append(
        f"\nrollback: {rb['kvs_writes']} KVS write, {rb['release_file_writes']} release-file writes "
        f"(target 1 and 0: {verdict(ok)}); time {rb['time_s'].text('{:.3f}', ' s')}\n"
        f"  KVS requests: {kvs}  [{rb['kvs']}]\n"
        f"  S3 requests:  {s3}  (the PutObject is the _meta/history entry)"
    )
    return "\n".join(out)


def render_serve(serve: dict[str, Any]) -> str:
    unexpected = serve["unexpected_statuses"]
    return (
        f"\nlocal edge (serve: real router + viewer-response functions in the Node sandbox): "
        f"{serve['requests']} requests over {serve['clients']} keep-alive connections, {len(EDGE_PATHS)} paths\n"
        f"  {serve['rps'].text('{:.0f}', ' req/s')}, p50 {serve['p50_ms'].text('{:.1f}', ' ms')}, "
        f"p95 {serve['p95_ms'].text('{:.1f}', ' ms')}; statuses: "
        + ("all as expected" if not unexpected else "UNEXPECTED " + ", ".join(unexpected))
    )


def to_json(value: Any) -> Any:
    if isinstance(value, Figure):
        return value.to_json()
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def environment() -> dict[str, Any]:
    from importlib.metadata import version

    aws = subprocess.run(
        [str(Path(sys.executable).with_name("aws")), "--version"], capture_output=True, text=True, check=False
    )
    return {
        "date": date.today().isoformat(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "boto3": version("boto3"),
        "botocore": version("botocore"),
        "awscrt": version("awscrt"),
        "aws_cli": (aws.stdout or aws.stderr).strip(),
    }


#: Defaults of a full run and of ``--quick``; options given on the command line override either.
FULL: dict[str, Any] = {"server": "both", "files": 5000, "megabytes": 100.0, "repeat": 2, "requests": 2000}
QUICK: dict[str, Any] = {"server": "moto", "files": 500, "megabytes": 10.0, "repeat": 1, "requests": 200}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--server", choices=("moto", "s3rver", "both", "none"), help="S3 server(s) to run (default both)"
    )
    parser.add_argument("--files", type=int, help="files in the generated site (default 5000)")
    parser.add_argument("--megabytes", type=float, help="total size of the site in MB (default 100)")
    parser.add_argument("--repeat", type=int, help="runs of every timed measurement (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated site (default 1)")
    parser.add_argument("--requests", type=int, help="requests to the local edge per run (default 2000)")
    parser.add_argument("--clients", type=int, default=4, help="keep-alive client connections (default 4)")
    parser.add_argument("--no-serve", action="store_true", help="skip the local edge throughput")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 500 files / 10 MB, moto, one run (explicit options win)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout (table on stderr)")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.files < 1 or args.repeat < 1 or args.clients < 1 or args.requests < args.clients:
        parser.error("--files, --repeat and --clients must be at least 1, --requests at least --clients")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchkit.isolate_aws_env()
    benchkit.stop_on_sigterm()
    servers = {"both": ["moto", "s3rver"], "none": []}.get(args.server, [args.server])
    stream = sys.stderr if args.json else sys.stdout
    workdir = Path(tempfile.mkdtemp(prefix="hosting-bench-"))
    failures: list[str] = []

    def show(text: str) -> None:
        print(text, file=stream, flush=True)

    try:
        if servers:
            log(f"generating {args.files} files / {args.megabytes:g} MB (seed {args.seed}) in {workdir}")
            site = benchkit.generate_site(
                workdir / "site", files=args.files, total_bytes=int(args.megabytes * 1e6), seed=args.seed
            )
            shutil.copytree(site.root, workdir / "site-changed")
            changed = Site(workdir / "site-changed", site.paths, site.bytes)
            benchkit.change_files(changed, fraction=CHANGED_FRACTION, seed=args.seed + 1)
        else:
            site = changed = Site(workdir / "site", (), 0)
        env = environment()
        summary: dict[str, Any] = {
            "environment": env,
            "site": {"files": site.files, "bytes": site.bytes, "seed": args.seed, "repeat": args.repeat},
            "servers": [],
        }
        show(
            f"hosting-toolkit release benchmark, {env['date']}, {env['cpus']} CPUs, load average "
            f"{env['load_average'][0]:.1f} at the start; {env['aws_cli']}"
        )
        # Each section is shown as soon as it is measured; a failing one does not lose the others.
        for kind in servers:
            try:
                server = summarize(bench_server(kind, (site, changed), args.repeat, workdir))
            except Exception as exc:
                failures.append(f"{kind}: {exc!r}")
                log(f"{kind} benchmark failed: {exc!r}")
                continue
            summary["servers"].append(server)
            show(render_server(server, site, args.repeat))
        if not args.no_serve:
            try:
                summary["serve"] = bench_serve(workdir, args.requests, args.clients, args.repeat)
                show(render_serve(summary["serve"]))
            except Exception as exc:
                failures.append(f"local edge: {exc!r}")
                log(f"local edge benchmark failed: {exc!r}")
        summary["environment"]["load_average_end"] = os.getloadavg()
        summary["failures"] = failures
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(to_json(summary), indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
