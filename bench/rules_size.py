"""Deployed sizes of the edge functions with and without ``[rules]``, and the largest rule set that fits.

    python bench/rules_size.py

Each figure is the rendered code the CDK app deploys (``render_router`` / ``render_viewer_response``).
"""

from __future__ import annotations

from hosting_toolkit.config import parse_config
from hosting_toolkit.edge.code import (
    ROUTER_RULES_SIZE_BUDGET,
    ROUTER_SIZE_BUDGET,
    VIEWER_RESPONSE_RULES_SIZE_BUDGET,
    VIEWER_RESPONSE_SIZE_BUDGET,
    render_router,
    render_viewer_response,
)
from hosting_toolkit.errors import ConfigError


def size(code: str) -> int:
    return len(code.encode())


def redirects(count: int) -> dict[str, object]:
    return {"rules": {"redirects": [{"from": f"/old-page-{i}", "to": f"/new-page-{i}"} for i in range(count)]}}


def largest() -> tuple[int, int]:
    """The most single-path redirects whose router fits its budget, and that router's size."""
    fitting = (0, 0)
    for count in range(1, 200):
        try:
            fitting = (count, size(render_router(parse_config(redirects(count)))))
        except ConfigError:
            return fitting
    return fitting


def main() -> None:
    base = parse_config({})
    rows = [
        ("router, no rules", size(render_router(base)), ROUTER_SIZE_BUDGET),
        ("router, 1 redirect", size(render_router(parse_config(redirects(1)))), ROUTER_RULES_SIZE_BUDGET),
        (
            "router, www redirect only",
            size(render_router(parse_config({"domain": {"names": ["example.com"], "www_redirect": "www-to-apex"}}))),
            ROUTER_RULES_SIZE_BUDGET,
        ),
        ("viewer-response, no rules", size(render_viewer_response(base)), VIEWER_RESPONSE_SIZE_BUDGET),
        (
            "viewer-response, 1 header rule",
            size(
                render_viewer_response(
                    parse_config({"rules": {"headers": [{"path": "/assets/*", "headers": {"x-asset": "yes"}}]}})
                )
            ),
            VIEWER_RESPONSE_RULES_SIZE_BUDGET,
        ),
    ]
    count, fitting = largest()
    rows.append((f"router, {count} redirects (most that fit)", fitting, ROUTER_RULES_SIZE_BUDGET))
    print(f"{'function':42} {'bytes':>6} {'budget':>7}")
    for name, measured, budget in rows:
        print(f"{name:42} {measured:>6,} {budget:>7,}")
    try:
        render_router(parse_config(redirects(count + 1)))
    except ConfigError as exc:
        print(f"\n{count + 1} redirects: {exc.problems[0]}")


if __name__ == "__main__":
    main()
