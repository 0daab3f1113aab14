"""Edge function benchmark: time per request of the rendered router in the Node sandbox, and its size.

    python bench/function_bench.py [--requests 20000] [--viewers 10000] [--json]

Every path runs the deployed code of ``render_router`` (and of the viewer-response function) in
the sandbox the tests use; a request's time is the handler's own (``Invocation.duration_us``, from
its call until its promise settles), after a warm-up. Paths: ``plain`` (live only), ``canary``
(a canary at 50 %, viewers without and with a cohort cookie), ``preview`` (the token read, by
header, by cookie, and the query that answers with a redirect). The last table is the canary share
over ``--viewers`` simulated viewers (distinct request ids) against the weight.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import benchkit  # noqa: F401  (puts the repository root on sys.path)

from hosting_toolkit.config import HostingConfig
from hosting_toolkit.contract import (
    COHORT_COOKIE,
    PREVIEW_COOKIE,
    PREVIEW_RELEASE_HEADER,
    PREVIEW_TOKEN_HEADER,
    PREVIEW_TOKEN_KEY,
    ROUTING_KEY,
    RoutingState,
)
from hosting_toolkit.edge.code import ROUTER_SIZE_BUDGET, render_router, render_viewer_response
from hosting_toolkit.edge.events import viewer_request_event, viewer_response_event
from hosting_toolkit.edge.sandbox import FunctionSandbox, Invocation
from hosting_toolkit.release.preview import preview_path

LIVE = "a1b2c3d4e5f6"
CANARY = "c4c4c4c4c4c4"
STAGED = "5747ed5747ed"
TOKEN = "Zq3-x_9vPl0AbCdEfGhIjKlMnOpQrStU"
PINS = ("0f0f0f0f0f0f", "1e1e1e1e1e1e", "2d2d2d2d2d2d")
BROWSER = [
    ("Host", "www.example.com"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-GB,en;q=0.9"),
]


def request_ids(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [base64.urlsafe_b64encode(rng.randbytes(42)).decode() for _ in range(count)]


def store(*, canary: bool) -> dict[str, str]:
    state = RoutingState(live=LIVE, canary=CANARY if canary else None, weight=50 if canary else 0, pins=PINS)
    return {ROUTING_KEY: state.to_json(), PREVIEW_TOKEN_KEY: TOKEN}


def paths(count: int) -> list[str]:
    """A mix of page navigations and hashed assets, as a browser sends them."""
    mix = ["/", "/pricing", "/docs/getting-started", "/assets/index-BdW3x1Yz.js", "/assets/index-4f3a9c1e.css"]
    return [mix[i % len(mix)] for i in range(count)]


Case = tuple[str, str, dict[str, str], Callable[[int], list[dict[str, Any]]]]


def cases() -> list[Case]:
    now = int(time.time())
    cohort = f"{COHORT_COOKIE}=4821.{now}; theme=dark"

    def events(headers: Callable[[int], list[tuple[str, str]]], target: Callable[[str], str] = lambda p: p) -> Any:
        def build(count: int) -> list[dict[str, Any]]:
            ids = request_ids(count, count)
            return [
                viewer_request_event("GET", target(path), BROWSER + headers(i), request_id=ids[i])
                for i, path in enumerate(paths(count))
            ]

        return build

    no_headers: Callable[[int], list[tuple[str, str]]] = lambda i: []  # noqa: E731
    preview_query = preview_path(STAGED, TOKEN).split("?")[1]
    return [
        ("plain", "live only, no cookie", store(canary=False), events(no_headers)),
        ("plain", "live only, release pin cookie", store(canary=False), events(lambda i: [("Cookie", f"__release={PINS[1]}")])),
        ("canary", "canary at 50 %, new viewer", store(canary=True), events(no_headers)),
        ("canary", "canary at 50 %, cohort cookie", store(canary=True), events(lambda i: [("Cookie", cohort)])),
        (
            "preview",
            "preview headers",
            store(canary=True),
            events(lambda i: [(PREVIEW_RELEASE_HEADER, STAGED), (PREVIEW_TOKEN_HEADER, TOKEN)]),
        ),
        ("preview", "preview cookie", store(canary=True), events(lambda i: [("Cookie", f"{PREVIEW_COOKIE}={STAGED}.{TOKEN}")])),
        ("preview", "preview query (302)", store(canary=True), events(no_headers, lambda p: f"{p}?{preview_query}")),
        ("preview", "wrong token", store(canary=True), events(lambda i: [(PREVIEW_RELEASE_HEADER, STAGED), (PREVIEW_TOKEN_HEADER, "x" * 32)])),
    ]  # fmt: skip


def figures(invocations: list[Invocation]) -> dict[str, float]:
    durations = sorted(i.duration_us for i in invocations)
    return {
        "mean_us": statistics.fmean(durations),
        "p95_us": durations[int(0.95 * (len(durations) - 1))],
        "kvs_reads": statistics.fmean(i.kvs_reads for i in invocations),
    }


def run(sandbox: FunctionSandbox, name: str, events: list[dict[str, Any]], kvs: dict[str, str]) -> list[Invocation]:
    result: list[Invocation] = []
    for start in range(0, len(events), 2000):
        result.extend(sandbox.invoke_many(name, events[start : start + 2000], kvs))
    failed = [i.error for i in result if not i.ok]
    if failed:
        raise SystemExit(f"{name} failed: {failed[0]}")
    return result


def canary_shares(sandbox: FunctionSandbox, viewers: int) -> list[dict[str, float]]:
    rows = []
    for weight in (1, 5, 10, 25, 33, 50, 75, 90):
        kvs = {ROUTING_KEY: RoutingState(live=LIVE, canary=CANARY, weight=weight).to_json()}
        events = [viewer_request_event("GET", "/", request_id=rid) for rid in request_ids(viewers, 1000 + weight)]
        routed = run(sandbox, "router", events, kvs)
        share = 100 * sum(str((i.result or {}).get("uri", "")).startswith(f"/releases/{CANARY}/") for i in routed)
        rows.append({"weight": weight, "share": share / viewers, "error": share / viewers - weight})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="requests timed per case")
    parser.add_argument("--viewers", type=int, default=10_000, help="simulated viewers per canary weight")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    config = HostingConfig()
    router = render_router(config)
    viewer_response = render_viewer_response(config)
    report: dict[str, Any] = {
        "router_bytes": len(router.encode()),
        "router_budget_bytes": ROUTER_SIZE_BUDGET,
        "viewer_response_bytes": len(viewer_response.encode()),
        "cases": [],
    }
    with FunctionSandbox() as sandbox:
        sandbox.load("router", router)
        sandbox.load("viewer-response", viewer_response)
        for path, label, kvs, build in cases():
            events = build(args.requests)
            run(sandbox, "router", events[: min(5000, len(events))], kvs)
            report["cases"].append({"path": path, "case": label, **figures(run(sandbox, "router", events, kvs))})
        routed = run(sandbox, "router", cases()[2][3](args.requests), store(canary=True))
        responses = [
            viewer_response_event(
                i.result or {}, 200, [("Content-Type", "text/html"), ("x-amz-meta-release", LIVE)], request_id=str(n)
            )
            for n, i in enumerate(routed)
        ]
        run(sandbox, "viewer-response", responses[:5000], {})
        report["viewer_response"] = figures(run(sandbox, "viewer-response", responses, {}))
        report["canary_share"] = canary_shares(sandbox, args.viewers)

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"router: {report['router_bytes']} bytes deployed (budget {ROUTER_SIZE_BUDGET}, CloudFront limit 10240)")
    print(f"viewer-response: {report['viewer_response_bytes']} bytes deployed")
    print(f"\n{'path':8} {'case':32} {'mean µs':>8} {'p95 µs':>8} {'KVS reads':>10}")
    for row in report["cases"]:
        print(f"{row['path']:8} {row['case']:32} {row['mean_us']:8.1f} {row['p95_us']:8.1f} {row['kvs_reads']:10.2f}")
    vr = report["viewer_response"]
    print(
        f"{'response':8} {'viewer-response, page':32} {vr['mean_us']:8.1f} {vr['p95_us']:8.1f} {vr['kvs_reads']:10.2f}"
    )
    print(f"\ncanary share over {args.viewers:,} viewers (distinct request ids)")
    print(f"{'weight %':>8} {'share %':>8} {'error':>7}")
    for row in report["canary_share"]:
        print(f"{row['weight']:8d} {row['share']:8.2f} {row['error']:+7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
