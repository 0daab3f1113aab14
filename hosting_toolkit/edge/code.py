"""Render the deployed source of the edge functions from ``functions/`` and the site configuration.

Rendering keeps a file's leading ``import`` lines first, declares the synth-time settings as one
``const SITE`` line after them (for functions that take settings), drops blank lines and
comment-only lines, and minifies the result (whitespace and names, with the pinned terser): every
byte counts against CloudFront's 10 KB limit. Lines
between the comment lines ``// [name]`` and ``// [/name]`` are kept only when ``name`` is one of
the blocks asked for: the code applying ``[rules]`` is deployed only to sites that have rules.
The CDK app, the local edge server and the tests all run this same rendered code.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from collections.abc import Collection
from pathlib import Path

from hosting_toolkit.config import HostingConfig
from hosting_toolkit.edge.rules import response_headers, router_rules
from hosting_toolkit.errors import ConfigError

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
ROUTER_FILE = FUNCTIONS_DIR / "router.js"
VIEWER_RESPONSE_FILE = FUNCTIONS_DIR / "viewer_response.js"

#: Deployed size budget of the router; CloudFront's hard limit is 10 KB. It holds the code applying
#: a release's own ``_redirects``/``_headers`` (about 2.7 KB, deployed to every site since any release
#: may bring rules; about 5.2 KB in all today, minified); the rules themselves live in the KVS, so the
#: size does not grow with them.
ROUTER_SIZE_BUDGET = 6144
#: The router's budget with site-wide ``[rules]`` or a www redirect (their code and the compiled
#: rules), 128 bytes under CloudFront's limit; a site needing more rules ships them in its releases.
ROUTER_RULES_SIZE_BUDGET = 10112
#: Deployed size budget of the viewer-response function (the release tag, pins, cohorts, folder
#: redirects, the check header and the preview mark; about 2.4 KB today, minified).
VIEWER_RESPONSE_SIZE_BUDGET = 4096
#: The viewer-response function's budget with ``[[rules.headers]]`` (their values are in its code).
VIEWER_RESPONSE_RULES_SIZE_BUDGET = 9216
#: What the ``[previews]`` code (preview hosts, named previews, signed links; about 1.1 KB minified)
#: may add to the router's budget, which stays under CloudFront's limit.
ROUTER_PREVIEWS_ALLOWANCE = 1536
CLOUDFRONT_FUNCTION_LIMIT = 10 * 1024
#: The block of each function file holding the code that applies ``[rules]``.
RULES_BLOCK = "rules"
#: The router's block holding the code of named previews, deployed only with ``[previews]``.
PREVIEWS_BLOCK = "previews"
_BLOCK_MARK = re.compile(r"^// \[(/?)([a-z-]+)\]$")


def site_settings(config: HostingConfig) -> dict[str, object]:
    """The synth-time settings both functions read from ``SITE``: URL mapping and cohort lifetimes."""
    return {
        "mode": config.site.mode,
        "entry": config.site.entry,
        "cohortIdle": config.rollout.cohort_idle_seconds,
        "cohortMax": config.rollout.cohort_max_seconds,
    }


def router_settings(config: HostingConfig, *, preview_domain: str | None = None) -> dict[str, object]:
    """The router's ``SITE``: the shared settings, the compiled rules when the site has any, and the
    previews' domain and openness with ``[previews]`` (``preview_domain`` overrides the domain: the
    local edge serves previews at ``NAME.localhost``)."""
    settings = site_settings(config)
    if _router_has_rules(config):
        settings["rules"] = router_rules(config.rules, config.domain.redirect)
    if config.previews.enabled:
        domain = config.previews.domain if preview_domain is None else preview_domain
        settings["previews"] = {"domain": domain, "public": config.previews.public}
    return settings


def viewer_response_settings(config: HostingConfig) -> dict[str, object]:
    """The viewer-response function's ``SITE``: the shared settings, and the header rules' headers when there are any."""
    settings = site_settings(config)
    if config.rules.headers:
        settings["headers"] = response_headers(config.rules)
    return settings


def _router_has_rules(config: HostingConfig) -> bool:
    return bool(config.rules.count or config.domain.redirect)


def _lines(source: Path, blocks: Collection[str]) -> list[str]:
    """The stripped code lines of ``source``, without comments and without the blocks not in ``blocks``."""
    kept: list[str] = []
    open_block: str | None = None
    for number, raw in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        mark = _BLOCK_MARK.match(line)
        if mark:
            closing, name = mark[1] == "/", mark[2]
            if closing != (open_block is not None) or (closing and name != open_block):
                raise ValueError(f"{source.name}:{number}: unbalanced block mark {line!r}")
            open_block = None if closing else name
        elif line and not line.startswith("//") and (open_block is None or open_block in blocks):
            kept.append(line)
    if open_block is not None:
        raise ValueError(f"{source.name}: block [{open_block}] is never closed")
    return kept


#: The minifier of the deployed code, pinned in package.json and installed by ``npm ci``.
TERSER = FUNCTIONS_DIR.parent / "node_modules" / "terser" / "bin" / "terser"
#: Names kept as they are when the minifier shortens every other one: the entry point the runtime
#: calls, and the settings, so the deployed code shows them.
KEPT_NAMES = ("handler", "SITE")


@functools.lru_cache(maxsize=256)
def minify(code: str) -> str:
    """``code`` with whitespace removed and local and module-level names shortened (terser, mangling only).

    Nothing is rewritten beyond names and whitespace (no compression passes) and the output is
    ECMAScript 5 syntax wherever the input allows, so the deployed code behaves as the source reads;
    every test runs this output. The same code always gives the same bytes.
    """
    if not TERSER.exists():
        raise ConfigError(
            [f"the edge functions' minifier is not installed ({TERSER}): run `make setup` (or `npm ci`)"], None
        )
    reserved = ",".join(KEPT_NAMES)
    command = ["node", str(TERSER), "--module", "--ecma", "5", "--mangle", f"reserved=[{reserved}]"]
    # Quoted keys and double quotes keep the settings line plain JSON.
    command += ["--format", "quote_keys=true,quote_style=2"]
    try:
        done = subprocess.run(command, input=code, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        raise ConfigError([f"cannot run node for the edge functions' minifier: {exc}"], None) from exc
    if done.returncode != 0:
        raise ValueError(f"terser refused the function code: {done.stderr.strip()[-500:]}")
    return done.stdout.strip() + "\n"


def render(source: Path, settings: dict[str, object] | None = None, *, blocks: Collection[str] = ()) -> str:
    """Deployed code of one function file, with ``settings`` (when given) declared as ``SITE``.

    Lines are stripped one by one, so a function must not hold multi-line template literals; the
    result is minified (``minify``).
    Blocks (``// [name]`` ... ``// [/name]``, not nested) are kept only when named in ``blocks``.
    """
    body = _lines(source, blocks)
    imports = 0
    while imports < len(body) and body[imports].startswith("import "):
        imports += 1
    if any(line.startswith("import ") for line in body[imports:]):
        raise ValueError(f"{source.name}: import lines must come before any other code")
    head = body[:imports]
    if settings is not None:
        head.append("const SITE=" + json.dumps(settings, separators=(",", ":"), sort_keys=True) + ";")
    return minify("\n".join([*head, *body[imports:]]) + "\n")


def _within_budget(config: HostingConfig, name: str, code: str, budget: int, rules: str) -> str:
    """``code`` if it fits ``budget``; else a ``ConfigError`` naming the budget, the size and the rules that fill it."""
    size = len(code.encode())
    if size > budget:
        hint = "; remove rules, or merge them into fewer patterns (':name' and '*' match many paths)" if rules else ""
        raise ConfigError(
            [f"{name} function is {size:,} bytes{rules}, over its budget of {budget:,} bytes{hint}"],
            str(config.path) if config.path else None,
        )
    return code


def render_router(config: HostingConfig, *, preview_domain: str | None = None) -> str:
    """Deployed code of the viewer-request router; raises ``ConfigError`` over its size budget."""
    previews = config.previews.enabled
    extra = ROUTER_PREVIEWS_ALLOWANCE if previews else 0
    with_previews = " with previews" if previews else ""
    blocks = (PREVIEWS_BLOCK,) if previews else ()
    settings = router_settings(config, preview_domain=preview_domain)
    if not _router_has_rules(config):
        code = render(ROUTER_FILE, settings, blocks=blocks)
        budget = min(ROUTER_SIZE_BUDGET + extra, CLOUDFRONT_FUNCTION_LIMIT)
        return _within_budget(config, "router", code, budget, with_previews)
    code = render(ROUTER_FILE, settings, blocks=(RULES_BLOCK, *blocks))
    www = " and the www redirect" if config.domain.redirect else ""
    budget = min(ROUTER_RULES_SIZE_BUDGET + extra, CLOUDFRONT_FUNCTION_LIMIT)
    return _within_budget(config, "router", code, budget, f" with {config.rules.count} rules{www}{with_previews}")


def render_viewer_response(config: HostingConfig) -> str:
    """Deployed code of the viewer-response function; raises ``ConfigError`` over its size budget."""
    if not config.rules.headers:
        code = render(VIEWER_RESPONSE_FILE, site_settings(config))
        return _within_budget(config, "viewer-response", code, VIEWER_RESPONSE_SIZE_BUDGET, "")
    code = render(VIEWER_RESPONSE_FILE, viewer_response_settings(config), blocks=(RULES_BLOCK,))
    rules = f" with {len(config.rules.headers)} header rules"
    return _within_budget(config, "viewer-response", code, VIEWER_RESPONSE_RULES_SIZE_BUDGET, rules)
