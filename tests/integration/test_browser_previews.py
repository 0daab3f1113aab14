"""A preview in a real browser: headless Chromium opens ``preview open``'s link at ``NAME.localhost`` on the
local edge, keeps the preview by its cookie, and still gets production on the site's own address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hosting_toolkit.config import HostingConfig, PreviewsConfig, ReleaseConfig, SiteConfig
from hosting_toolkit.contract import LOCAL_PREVIEW_DOMAIN, RELEASE_HEADER, ROBOTS_HEADER
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.release.preview import preview_token
from hosting_toolkit.release.previews import preview_link, stage_preview
from tests.fakes.sites import write_files
from tests.integration.conftest import Edge
from tests.integration.test_browser_skew import CHROMIUM, CHROMIUM_FLAGS

pytestmark = [pytest.mark.integration, pytest.mark.node]

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed")


def site(root: Path, version: str) -> Path:
    return write_files(
        root,
        {
            "index.html": f'<h1 id="v">{version}</h1><script src="/assets/app-{version}.js"></script>',
            f"assets/app-{version}.js": f"document.body.dataset.script = '{version}';",
        },
    )


@pytest.fixture
def edge(tmp_path: Path, function_sandbox: FunctionSandbox) -> Iterator[Edge]:
    config = HostingConfig(
        site=SiteConfig(mode="static"), release=ReleaseConfig(concurrency=4), previews=PreviewsConfig(enabled=True)
    )
    running = Edge(tmp_path, config, function_sandbox)
    yield running
    running.close()


def test_a_browser_opens_the_preview_link_and_keeps_production_apart(edge: Edge, tmp_path: Path) -> None:
    edge.engine.create(site(tmp_path / "prod", "prod"), release_id="prod1")
    edge.engine.create(site(tmp_path / "pr", "pr"), release_id="pr1", activate=False)
    stage_preview(edge.engine, "pr-5", "pr1", "pr:5")
    link = preview_link(
        "pr-5", domain=LOCAL_PREVIEW_DOMAIN, base_url=edge.url, token=preview_token(edge.engine.kvs).value
    )

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            page: Any = browser.new_page()
            response = page.goto(link)
            assert page.url == f"http://pr-5.localhost:{edge.port}/"
            assert response.headers[RELEASE_HEADER] == "pr1"
            assert response.headers[ROBOTS_HEADER] == "noindex"
            page.wait_for_function("document.body.dataset.script === 'pr'")
            assert page.inner_text("#v") == "pr"
            # The cookie keeps the preview without the token in the address.
            again = page.goto(f"http://pr-5.localhost:{edge.port}/")
            assert again.headers[RELEASE_HEADER] == "pr1"
            production = page.goto(f"{edge.url}/")
            assert production.headers[RELEASE_HEADER] == "prod1"
            assert ROBOTS_HEADER not in production.headers
            assert page.inner_text("#v") == "prod"
        finally:
            browser.close()
