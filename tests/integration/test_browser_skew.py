"""Skew protection in a real browser: headless Chromium on a Vite build with a lazy route, served by the local edge.

The builds are committed in ``tests/fixtures/vite-app/dist/v1..v3`` (rebuild with its ``build.sh``):
the same app whose chunks, the lazy route's included, have other content hashes in each version.
Every scenario keeps a page of an older release open while routing changes, then follows the
lazy route in it, and checks that every asset request got that very asset: status 200, the bytes
of the build it belongs to, and ``x-release`` naming that build's release.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hosting_toolkit.config import HostingConfig, SiteConfig
from hosting_toolkit.contract import RELEASE_COOKIE, RELEASE_HEADER
from hosting_toolkit.edge.sandbox import FunctionSandbox
from tests.integration.conftest import Edge

pytestmark = [pytest.mark.integration, pytest.mark.node]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BUILDS = Path(__file__).resolve().parents[1] / "fixtures" / "vite-app" / "dist"

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does)", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Python playwright is not installed (requirements-dev.txt)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Playwright starts Chromium with a fresh temporary profile (--user-data-dir) each time.
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        yield launched
        launched.close()


@dataclass
class Site:
    """The local edge with the Vite builds released on it, and every asset response the browser got."""

    edge: Edge
    context: Any
    releases: dict[str, str] = field(default_factory=dict)
    assets: list[tuple[str, int, str, bytes]] = field(default_factory=list)

    def release(self, version: str, **options: Any) -> str:
        rid = self.edge.engine.create(BUILDS / version, release_id=version, **options).id
        self.releases[rid] = version
        return rid

    def open(self, path: str = "/") -> Any:
        page = self.context.new_page()
        page.on("response", self._seen)
        page.goto(self.edge.url.replace("127.0.0.1", "localhost") + path)
        page.wait_for_selector("#home, #lazy")
        return page

    def _seen(self, response: Any) -> None:
        path = response.url.split("//", 1)[1].split("/", 1)[1].split("?")[0]
        if path.startswith("assets/"):
            self.assets.append((path, response.status, response.headers.get(RELEASE_HEADER, ""), response.body()))

    def cookie(self) -> str | None:
        return next((c["value"] for c in self.context.cookies() if c["name"] == RELEASE_COOKIE), None)

    def follow_lazy_route(self, page: Any) -> str:
        page.click("#to-lazy")
        page.wait_for_selector("#lazy, #failed")
        return str(page.inner_text("#app"))

    def assert_every_asset_was_its_own(self) -> None:
        """Each asset request got the asset of the build that holds it, named by its release."""
        assert self.assets
        for path, status, release, body in self.assets:
            assert status == 200, (path, status, release)
            assert release in self.releases, (path, release)
            assert body == (BUILDS / self.releases[release] / path).read_bytes(), (path, release)


@pytest.fixture
def site(tmp_path: Path, function_sandbox: FunctionSandbox, browser: Any) -> Iterator[Site]:
    config = HostingConfig(site=SiteConfig(mode="spa"))
    edge = Edge(tmp_path, config, function_sandbox)
    context = browser.new_context()
    yield Site(edge, context)
    context.close()
    edge.close()


def test_builds_have_other_lazy_chunks_in_every_version() -> None:
    lazy = {v: sorted(p.name for p in (BUILDS / v / "assets").glob("lazy-*.js")) for v in ("v1", "v2", "v3")}
    assert len({tuple(names) for names in lazy.values()}) == 3 and all(len(n) == 1 for n in lazy.values())
    assert shutil.which("node")


def test_one_tab_open_across_a_release(site: Site) -> None:
    site.release("v1")
    tab = site.open()
    site.release("v2")

    assert site.follow_lazy_route(tab) == "lazy route of v1"
    site.assert_every_asset_was_its_own()


def test_two_tabs_an_old_one_follows_its_lazy_route_after_the_new_one_took_the_cookie(site: Site) -> None:
    site.release("v1")
    old = site.open()
    site.release("v2")
    new = site.open()
    assert new.inner_text("#app") == "home v2"
    assert site.cookie() == "v2"

    assert site.follow_lazy_route(old) == "lazy route of v1"
    assert site.follow_lazy_route(new) == "lazy route of v2"
    site.assert_every_asset_was_its_own()


def test_a_tab_older_than_the_cookie_lifetime(site: Site) -> None:
    site.release("v1")
    tab = site.open()
    site.release("v2")
    site.release("v3")
    site.context.clear_cookies()

    assert site.follow_lazy_route(tab) == "lazy route of v1"
    site.assert_every_asset_was_its_own()


def test_rollback_with_a_tab_of_the_rolled_back_release_open(site: Site) -> None:
    site.release("v1")
    site.release("v2")
    rolled_back = site.open()
    site.edge.engine.rollback()
    fresh = site.open()
    assert fresh.inner_text("#app") == "home v1"
    assert site.cookie() == "v1"

    assert site.follow_lazy_route(rolled_back) == "lazy route of v2"
    assert site.follow_lazy_route(fresh) == "lazy route of v1"
    site.assert_every_asset_was_its_own()


def test_canary_with_a_tab_of_the_live_release_open(site: Site) -> None:
    site.release("v1")
    old = site.open()
    site.release("v2", activate=False)
    site.edge.engine.canary("v2", 100)
    canary = site.open()
    assert canary.inner_text("#app") == "home v2"
    assert site.cookie() == "v2"

    assert site.follow_lazy_route(old) == "lazy route of v1"
    assert site.follow_lazy_route(canary) == "lazy route of v2"
    site.assert_every_asset_was_its_own()
