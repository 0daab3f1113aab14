"""Memory benchmark: peak RSS of a release of many small files, measured on a child process.

    python bench/memory_bench.py [--files 100000] [--local-only] [--json]

The release runs in a child process (so this process's memory is not counted) against (a) a local
target, the bucket kept as files, and (b) s3rver on tmpfs with native (awscrt) uploads. The peak
RSS is the child's ``ru_maxrss`` from ``wait4``; a sampler also records when the peak happened.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import benchkit

TARGET_PEAK_MB = 300.0
SAMPLE_INTERVAL_S = 0.2


def log(message: str) -> None:
    print(f"[memory] {message}", file=sys.stderr, flush=True)


# -- the child: one release, reporting its own phases ------------------------------------------


def run_child(args: argparse.Namespace) -> int:
    import resource

    from hosting_toolkit.config import HostingConfig
    from hosting_toolkit.release.engine import Progress, ReleaseEngine
    from hosting_toolkit.release.kvs import LocalKeyValueStore
    from hosting_toolkit.release.s3 import S3ObjectStore, s3_client
    from hosting_toolkit.target import local_target

    config = HostingConfig()
    started = time.perf_counter()
    phases: list[dict[str, Any]] = []

    class PhaseProgress(Progress):
        """Notes the time and the resident memory at the start and end of each step."""

        def begin(self, label: str, total: int) -> None:
            phases.append({"step": label.split()[0], "units": total, "start_s": time.perf_counter() - started})
            phases[-1]["rss_at_start_mb"] = benchkit.rss_mb()

        def end(self) -> None:
            phases[-1]["end_s"] = time.perf_counter() - started
            phases[-1]["rss_at_end_mb"] = benchkit.rss_mb()

    if args.child == "local":
        target = local_target(Path(args.target), config)
        store, kvs = target.store, target.kvs
    else:
        import boto3

        session = boto3.Session(
            aws_access_key_id=args.access_key, aws_secret_access_key=args.secret_key, region_name=benchkit.REGION
        )
        client = s3_client(concurrency=config.release.concurrency, endpoint_url=args.endpoint, session=session)
        store = S3ObjectStore(client, args.bucket, concurrency=config.release.concurrency, native=True)
        if store._native is None:
            raise RuntimeError("native uploads are not available: install awscrt")
        kvs = LocalKeyValueStore(Path(args.target) / "kvs.json")
    engine = ReleaseEngine(store, kvs, config, actor="bench", progress=PhaseProgress())
    ready_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu = time.process_time()
    begun = time.perf_counter()
    result = engine.create(Path(args.site), message="memory bench")
    wall = time.perf_counter() - begun
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": time.process_time() - cpu,
                "ready_rss_mb": ready_mb,
                "end_rss_mb": benchkit.rss_mb(),
                "self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "files": result.files,
                "bytes": result.bytes,
                "uploaded_files": result.uploaded_files,
                "phases": phases,
            }
        ),
        flush=True,
    )
    return 0


# -- the parent: start the child, sample it, read its peak -----------------------------------


def measure(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one child release; its report, its ``ru_maxrss`` and its sampled RSS over time."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    started = time.perf_counter()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.perf_counter() - started, benchkit.rss_mb(process.pid)))
            done.wait(SAMPLE_INTERVAL_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        assert process.stdout is not None
        output = process.stdout.read().decode()
        # wait4 gives this child's own rusage; RUSAGE_CHILDREN would mix in every earlier child.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    except BaseException:
        if process.returncode is None:
            process.kill()
            process.wait()
        raise
    finally:
        done.set()
        sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"the release child failed with exit code {process.returncode}")
    report = json.loads(output.strip().splitlines()[-1])
    peak_at, peak_sampled = max(samples, key=lambda s: s[1]) if samples else (0.0, 0.0)
    report.update(
        {
            "peak_rss_mb": usage.ru_maxrss / 1024,
            "child_wall_s": time.perf_counter() - started,
            "child_cpu_s": usage.ru_utime + usage.ru_stime,
            "sampled_peak_rss_mb": peak_sampled,
            "sampled_peak_at_s": peak_at,
            "files_per_s": report["files"] / report["wall_s"],
        }
    )
    return report


def child_command(site: Path, mode: str, target: Path, extra: list[str] | None = None) -> list[str]:
    script = str(Path(__file__).resolve())
    return [sys.executable, script, "--child", mode, "--site", str(site), "--target", str(target), *(extra or [])]


def render(results: dict[str, dict[str, Any]], files: int, megabytes: float) -> str:
    rows = []
    for name, r in results.items():
        peak = r["peak_rss_mb"]
        rows.append(
            [
                name,
                f"{r['wall_s']:.1f}",
                f"{r['files_per_s']:.0f}",
                f"{r['child_cpu_s']:.1f}",
                f"{r['ready_rss_mb']:.0f}",
                f"{peak:.0f}",
                f"{r['sampled_peak_at_s']:.0f}",
                f"{'ok' if peak < TARGET_PEAK_MB else 'MISSED'}",
            ]
        )
    header = ["target", "release s", "files/s", "child CPU s", "RSS ready MB", "peak RSS MB", "peak at s", "< 300 MB"]
    out = [f"release of {files:,} files, {megabytes:.0f} MB (child process; peak = ru_maxrss from wait4)"]
    out.append(benchkit.table(rows, header))
    for name, r in results.items():
        steps = "; ".join(
            f"{p['step']} {p.get('end_s', 0) - p['start_s']:.1f} s, RSS {p['rss_at_start_mb']:.0f}->"
            f"{p.get('rss_at_end_mb', 0):.0f} MB"
            for p in r["phases"]
        )
        finishing = r["wall_s"] - max((p.get("end_s", 0) for p in r["phases"]), default=0)
        extra = f"; s3rver CPU {r['server_cpu_s']:.1f} s" if "server_cpu_s" in r else ""
        out.append(
            f"  {name}: {steps}; then verify, manifest, record and switch {finishing:.1f} s; "
            f"RSS at the end {r['end_rss_mb']:.0f} MB{extra}"
        )
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000, help="files in the release (default 100000)")
    parser.add_argument("--min-bytes", type=int, default=200, help="smallest file (default 200)")
    parser.add_argument("--max-bytes", type=int, default=2048, help="largest file (default 2048)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--local-only", action="store_true", help="skip the s3rver run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout (table on stderr)")
    parser.add_argument("--child", choices=("local", "s3"), help=argparse.SUPPRESS)
    parser.add_argument("--site", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    parser.add_argument("--access-key", help=argparse.SUPPRESS)
    parser.add_argument("--secret-key", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.files < 1 or not 1 <= args.min_bytes <= args.max_bytes:
        parser.error("--files must be at least 1 and 1 <= --min-bytes <= --max-bytes")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchkit.isolate_aws_env()
    if args.child:
        return run_child(args)
    benchkit.stop_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="hosting-memory-bench-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        log(f"generating {args.files:,} files of {args.min_bytes}-{args.max_bytes} bytes in {workdir}")
        started = time.perf_counter()
        site = benchkit.small_files_site(
            workdir / "site", files=args.files, min_size=args.min_bytes, max_size=args.max_bytes, seed=args.seed
        )
        log(f"generated {site.bytes / 1e6:.0f} MB in {time.perf_counter() - started:.0f} s")

        log("release to a local target (bucket as files)")
        results["local"] = measure(child_command(site.root, "local", workdir / "local-target"))
        shutil.rmtree(workdir / "local-target", ignore_errors=True)

        if not args.local_only:
            with benchkit.running(benchkit.S3rverServer(workdir)) as server:
                server.create_bucket("memory-bench")
                log(f"release to s3rver at {server.endpoint} (native uploads)")
                cpu = server.cpu_seconds()
                extra = ["--endpoint", server.endpoint, "--bucket", "memory-bench"]
                extra += ["--access-key", server.access_key, "--secret-key", server.secret_key]
                results["s3rver"] = measure(child_command(site.root, "s3", workdir / "s3-target", extra))
                results["s3rver"]["server_cpu_s"] = server.cpu_seconds() - cpu
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(render(results, site.files, site.bytes / 1e6), file=sys.stderr if args.json else sys.stdout, flush=True)
    if args.json:
        print(json.dumps({"files": site.files, "bytes": site.bytes, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
