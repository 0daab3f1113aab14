"""Rendering the deployed code of the edge functions."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from hosting_toolkit.config import HostingConfig, RolloutConfig, SiteConfig
from hosting_toolkit.edge import code
from hosting_toolkit.edge.code import (
    CLOUDFRONT_FUNCTION_LIMIT,
    ROUTER_SIZE_BUDGET,
    VIEWER_RESPONSE_SIZE_BUDGET,
    render,
    render_router,
    render_viewer_response,
)
from hosting_toolkit.errors import ConfigError

CONFIGS = {
    "spa": HostingConfig(site=SiteConfig(mode="spa")),
    "static": HostingConfig(site=SiteConfig(mode="static")),
    "long-entry": HostingConfig(site=SiteConfig(entry="a-rather-long-entry-page-name-for-a-site.html")),
}


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_router_stays_within_its_size_budget(config: HostingConfig) -> None:
    assert len(render_router(config).encode()) <= ROUTER_SIZE_BUDGET < CLOUDFRONT_FUNCTION_LIMIT


def test_viewer_response_stays_within_its_size_budget() -> None:
    assert len(render_viewer_response(HostingConfig()).encode()) <= VIEWER_RESPONSE_SIZE_BUDGET


def settings_of(rendered: str) -> object:
    """The settings the rendered code declares as ``SITE`` (plain JSON)."""
    start = rendered.index("const SITE=") + len("const SITE=")
    return json.JSONDecoder().raw_decode(rendered, start)[0]


def test_rendered_router_starts_with_its_import_then_the_site_settings() -> None:
    rendered = render_router(HostingConfig(site=SiteConfig(mode="static", entry="home.html")))
    assert rendered.startswith("import ") and rendered.index('from"cloudfront";const SITE={') > 0
    assert settings_of(rendered) == {"cohortIdle": 3600, "cohortMax": 86400, "entry": "home.html", "mode": "static"}
    assert rendered.count("const SITE=") == 1


def test_both_functions_get_the_cohort_lifetimes_of_the_rollout_config() -> None:
    config = HostingConfig(rollout=RolloutConfig(cohort_idle_seconds=600, cohort_max_seconds=7200))
    for rendered in (render_router(config), render_viewer_response(config)):
        assert settings_of(rendered) == code.site_settings(config)
        assert code.site_settings(config)["cohortIdle"] == 600
        assert code.site_settings(config)["cohortMax"] == 7200


@pytest.mark.parametrize("rendered", [render_router(HostingConfig()), render_viewer_response(HostingConfig())])
def test_rendering_drops_comments_blank_lines_and_indentation(rendered: str) -> None:
    lines = rendered.splitlines()
    assert rendered.endswith("\n")
    assert all(line and line == line.strip() and not line.startswith("//") for line in lines)
    assert "/*" not in rendered and "\n//" not in rendered
    assert "function handler(" in rendered


def test_viewer_response_has_no_imports_and_starts_with_the_site_settings() -> None:
    rendered = render_viewer_response(HostingConfig())
    assert "import " not in rendered
    assert rendered.startswith("const SITE=")


def test_oversized_router_raises_naming_budget_and_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "router.js"
    source.write_text("import cf from 'cloudfront';\n" + "const PADDING = '" + "x" * ROUTER_SIZE_BUDGET + "';\n")
    monkeypatch.setattr(code, "ROUTER_FILE", source)
    size = len(render(source, code.site_settings(HostingConfig())).encode())
    with pytest.raises(ConfigError) as caught:
        render_router(HostingConfig())
    assert caught.value.problems == [
        f"router function is {size:,} bytes, over its budget of {ROUTER_SIZE_BUDGET:,} bytes"
    ]


def test_import_after_code_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "late.js"
    source.write_text("const A = 1;\nimport cf from 'cloudfront';\n")
    with pytest.raises(ValueError, match="import lines must come before any other code"):
        render(source, {})


NJS_CLOUDFRONT_STUB = """
const store = { routing: '{"live":"abc"}' };
export default {
  kvs: () => ({
    get: async (key, options) => {
      if (!(key in store)) throw new Error('key not found');
      return options && options.format === 'json' ? JSON.parse(store[key]) : store[key];
    },
  }),
};
"""


@pytest.mark.parametrize(
    ("name", "event"),
    [
        (
            "router",
            {
                "context": {"requestId": "njs-1"},
                "request": {"method": "GET", "uri": "/about", "querystring": {}, "headers": {}, "cookies": {}},
            },
        ),
        (
            "viewer-response",
            {
                "context": {"requestId": "njs-1"},
                "request": {
                    "method": "GET",
                    "uri": "/releases/abc/index.html",
                    "headers": {"x-release": {"value": "abc"}},
                    "cookies": {},
                },
                "response": {"statusCode": 200, "headers": {"content-type": {"value": "text/html"}}, "cookies": {}},
            },
        ),
    ],
)
def test_rendered_functions_run_under_njs(tmp_path: Path, name: str, event: dict[str, object]) -> None:
    """njs rejects syntax CloudFront's runtime also lacks (e.g. ``?.``), so the deployed code must load there."""
    njs = shutil.which("njs")
    if not njs:
        pytest.skip("njs is not installed")
    (tmp_path / "cloudfront").write_text(NJS_CLOUDFRONT_STUB)
    rendered = render_router(HostingConfig()) if name == "router" else render_viewer_response(HostingConfig())
    script = tmp_path / f"{name}.js"
    script.write_text(
        rendered + f"Promise.resolve(handler({json.dumps(event)})).then((r) => console.log(JSON.stringify(r)));\n"
    )
    run = subprocess.run(
        [njs, "-t", "module", "-p", str(tmp_path), str(script)], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if name == "router":
        assert result["uri"] == "/releases/abc/index.html"
    else:
        assert result["headers"]["x-release"] == {"value": "abc"}


def test_njs_rejects_syntax_cloudfront_lacks(tmp_path: Path) -> None:
    njs = shutil.which("njs")
    if not njs:
        pytest.skip("njs is not installed")
    script = tmp_path / "optional.js"
    script.write_text("function handler(event) { return event?.request; }\n")
    run = subprocess.run([njs, "-t", "module", str(script)], capture_output=True, text=True, timeout=30)
    assert run.returncode != 0


def test_the_deployed_code_is_minified_keeping_the_entry_point_and_its_strings() -> None:
    source = (code.FUNCTIONS_DIR / "router.js").read_text(encoding="utf-8")
    rendered = render_router(HostingConfig())
    assert len(rendered.encode()) < len(source.encode()) / 2
    assert "async function handler(" in rendered
    assert "'routing'" in source and '"routing"' in rendered
    assert render_router(HostingConfig()) == rendered


def test_a_missing_minifier_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(code, "TERSER", tmp_path / "terser")
    with pytest.raises(ConfigError, match=r"minifier is not installed.*make setup"):
        code.minify("async function handler(e) { return e.request; }\n")
