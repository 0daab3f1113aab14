"""Render the deployed source of the edge functions from ``functions/`` and the site configuration.

Rendering keeps a file's leading ``import`` lines first, declares the synth-time settings as one
``const SITE`` line after them (for functions that take settings), and drops blank lines,
comment-only lines and indentation: every byte counts against CloudFront's 10 KB limit. The CDK
app, the local edge server and the tests all run this same rendered code.
"""

from __future__ import annotations

import json
from pathlib import Path

from hosting_toolkit.config import HostingConfig

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
ROUTER_FILE = FUNCTIONS_DIR / "router.js"
VIEWER_RESPONSE_FILE = FUNCTIONS_DIR / "viewer_response.js"

#: Deployed size budget of the router; CloudFront's hard limit is 10 KB.
ROUTER_SIZE_BUDGET = 6144
#: Deployed size budget of the viewer-response function.
VIEWER_RESPONSE_SIZE_BUDGET = 3072
CLOUDFRONT_FUNCTION_LIMIT = 10 * 1024


def site_settings(config: HostingConfig) -> dict[str, object]:
    """The synth-time settings both functions read from ``SITE``: URL mapping and cohort lifetimes."""
    return {
        "mode": config.site.mode,
        "entry": config.site.entry,
        "cohortIdle": config.rollout.cohort_idle_seconds,
        "cohortMax": config.rollout.cohort_max_seconds,
    }


def render(source: Path, settings: dict[str, object] | None = None) -> str:
    """Deployed code of one function file, with ``settings`` (when given) declared as ``SITE``.

    Lines are stripped one by one, so a function must not hold multi-line template literals.
    """
    lines = (line.strip() for line in source.read_text(encoding="utf-8").splitlines())
    body = [line for line in lines if line and not line.startswith("//")]
    imports = 0
    while imports < len(body) and body[imports].startswith("import "):
        imports += 1
    if any(line.startswith("import ") for line in body[imports:]):
        raise ValueError(f"{source.name}: import lines must come before any other code")
    head = body[:imports]
    if settings is not None:
        head.append("const SITE=" + json.dumps(settings, separators=(",", ":"), sort_keys=True) + ";")
    return "\n".join([*head, *body[imports:]]) + "\n"


def _within_budget(name: str, code: str, budget: int) -> str:
    size = len(code.encode())
    if size > budget:
        raise ValueError(f"{name} function is {size} bytes, over its budget of {budget} bytes")
    return code


def render_router(config: HostingConfig) -> str:
    """Deployed code of the viewer-request router; raises ``ValueError`` over its size budget."""
    return _within_budget("router", render(ROUTER_FILE, site_settings(config)), ROUTER_SIZE_BUDGET)


def render_viewer_response(config: HostingConfig) -> str:
    """Deployed code of the viewer-response function; raises ``ValueError`` over its size budget."""
    return _within_budget(
        "viewer-response", render(VIEWER_RESPONSE_FILE, site_settings(config)), VIEWER_RESPONSE_SIZE_BUDGET
    )
