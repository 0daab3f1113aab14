"""The local edge over real HTTP: the rendered functions, the local bucket and KVS, CloudFront's headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hosting_toolkit.config import HeadersConfig, HostingConfig, SiteConfig
from hosting_toolkit.contract import COHORT_COOKIE, RELEASE_COOKIE, RELEASE_HEADER
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.local.edge import security_headers
from hosting_toolkit.release.content import IMMUTABLE, REVALIDATE
from hosting_toolkit.release.engine import Progress
from tests.integration.conftest import Edge

pytestmark = [pytest.mark.integration, pytest.mark.node]

CSP = "default-src 'self'"


def build(root: Path, version: str) -> Path:
    files = {
        "index.html": f"<h1>home {version}</h1>",
        "pricing.html": f"<h1>pricing {version}</h1>",
        f"assets/app-{version}1a2b3c4d.js": f"console.log({version})",
        "robots.txt": "User-agent: *",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def edge(tmp_path: Path, function_sandbox: FunctionSandbox) -> Iterator[Edge]:
    config = HostingConfig(site=SiteConfig(mode="static"), headers=HeadersConfig(content_security_policy=CSP))
    running = Edge(tmp_path, config, function_sandbox)
    yield running
    running.close()


def test_nothing_live_answers_the_routers_503_page(edge: Edge) -> None:
    status, headers, body = edge.get("/")
    assert status == 503
    assert headers[RELEASE_HEADER] == "none"
    assert b"not published yet" in body


def test_a_release_is_served_with_its_stored_headers_and_the_security_headers(edge: Edge, tmp_path: Path) -> None:
    first = edge.engine.create(build(tmp_path / "v1", "1"))
    status, headers, body = edge.get("/")
    assert (status, body) == (200, b"<h1>home 1</h1>")
    assert headers[RELEASE_HEADER] == first.id
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == REVALIDATE
    assert "x-amz-meta-release" not in headers
    cookies = headers["set-cookie"].split("\n")
    assert cookies[0].startswith(f"{RELEASE_COOKIE}={first.id};")
    assert cookies[1].startswith(f"{COHORT_COOKIE}=")
    for name, value in security_headers(HeadersConfig(content_security_policy=CSP)):
        assert headers[name] == value
    status, headers, _ = edge.get("/assets/app-11a2b3c4d.js")
    assert status == 200 and headers["cache-control"] == IMMUTABLE
    assert "set-cookie" not in headers


def test_static_clean_urls_reach_the_html_file(edge: Edge, tmp_path: Path) -> None:
    edge.engine.create(build(tmp_path / "v1", "1"))
    assert edge.get("/pricing")[2] == b"<h1>pricing 1</h1>"
    assert edge.get("/pricing.html")[2] == b"<h1>pricing 1</h1>"


def test_a_switch_shows_at_once_and_rollback_returns(edge: Edge, tmp_path: Path) -> None:
    first = edge.engine.create(build(tmp_path / "v1", "1"))
    second = edge.engine.create(build(tmp_path / "v2", "2"))
    assert edge.get("/")[1][RELEASE_HEADER] == second.id
    edge.engine.rollback()
    assert edge.get("/")[1][RELEASE_HEADER] == first.id


def test_assets_of_a_pinned_page_keep_their_release_while_pages_get_the_live_one(edge: Edge, tmp_path: Path) -> None:
    first = edge.engine.create(build(tmp_path / "v1", "1"))
    second = edge.engine.create(build(tmp_path / "v2", "2"))
    cookie = {"Cookie": f"{RELEASE_COOKIE}={first.id}"}
    status, headers, _ = edge.get("/assets/app-11a2b3c4d.js", cookie)
    assert (status, headers[RELEASE_HEADER]) == (200, first.id)
    assert edge.get("/", cookie)[1][RELEASE_HEADER] == second.id


@pytest.mark.parametrize("path", ["/%2e%2e/%2e%2e/etc/passwd", "/../kvs.json", "/a%2fb", "/a%5c..%5cb", "//etc"])
def test_paths_leaving_the_release_folder_answer_400(edge: Edge, tmp_path: Path, path: str) -> None:
    edge.engine.create(build(tmp_path / "v1", "1"))
    status, headers, _ = edge.get(path)
    assert status == 400
    assert headers[RELEASE_HEADER] == "none"


def test_missing_file_is_404_and_revalidation_is_304(edge: Edge, tmp_path: Path) -> None:
    edge.engine.create(build(tmp_path / "v1", "1"))
    assert edge.get("/assets/missing.js")[0] == 404
    status, headers, _ = edge.get("/robots.txt")
    assert status == 200
    status, _, body = edge.get("/robots.txt", {"If-None-Match": headers["etag"]})
    assert (status, body) == (304, b"")


def test_head_has_headers_and_no_body(edge: Edge, tmp_path: Path) -> None:
    edge.engine.create(build(tmp_path / "v1", "1"))
    status, headers, body = edge.get("/", method="HEAD")
    assert status == 200 and body == b""
    assert headers["content-length"] == str(len(b"<h1>home 1</h1>"))


def test_the_demo_releases_switches_and_rolls_back(tmp_path: Path) -> None:
    from hosting_toolkit.local.demo import run_demo

    lines: list[str] = []
    ids = run_demo(tmp_path, HostingConfig(), port=0, say=lines.append)
    text = "\n".join(lines)
    assert len(set(ids)) == 4
    assert "GET / -> 503" in text
    assert f"x-release: {ids[0]}" in text and f"x-release: {ids[1]}" in text
    assert "-> 400" in text
    assert "GET /assets/gone.js -> 404" in text
    assert f"GET / with the preview token -> x-release: {ids[2]}; without it -> {ids[1]}" in text
    share = float(re.search(r"at 20%: ([0-9.]+)% of 1000 new viewers", text).group(1))  # type: ignore[union-attr]
    assert 15 <= share <= 25
    assert f"aborted: every viewer is back on {ids[1]}" in text
    assert "GET /launch -> 302 to / (before: 200)" in text
    assert f"rolled back to {ids[1]}: GET /launch -> 200; the redirect left with its release" in text
    preview = re.search(r"-> x-release: ([0-9a-f]+); production at \S+ -> x-release: (\S+)", text)
    assert preview is not None and preview[1] not in ids and preview[2] == ids[1]


def with_files_without_extensions(root: Path) -> Path:
    build(root, "1")
    for rel, text in {
        "LICENSE": "MIT License",
        ".well-known/apple-app-site-association": '{"applinks":{}}',
        "docs/index.html": '<a href="guide.html">guide</a>',
        "docs/guide.html": "<h1>guide</h1>",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_static_mode_serves_every_file_and_redirects_a_folder_to_its_slash(edge: Edge, tmp_path: Path) -> None:
    edge.engine.create(with_files_without_extensions(tmp_path / "v1"))

    status, headers, body = edge.get("/LICENSE")
    assert (status, headers["content-type"], body) == (200, "text/plain; charset=utf-8", b"MIT License")
    status, headers, body = edge.get("/.well-known/apple-app-site-association")
    assert (status, headers["content-type"], body) == (200, "application/json", b'{"applinks":{}}')
    status, headers, _ = edge.get("/docs?lang=en")
    assert (status, headers["location"]) == (301, "/docs/?lang=en")
    assert "x-amz-meta-folder-index" not in headers
    assert edge.get("/docs/")[0] == 200
    assert edge.get("/docs/guide")[2] == b"<h1>guide</h1>"
    assert edge.get("/pricing")[:1] == (200,)
    assert edge.get("/pricing")[2] == b"<h1>pricing 1</h1>"


def test_spa_mode_serves_files_without_extensions_as_themselves(
    tmp_path: Path, function_sandbox: FunctionSandbox
) -> None:
    notes: list[str] = []

    class Notes(Progress):
        def note(self, message: str) -> None:
            notes.append(message)

    running = Edge(tmp_path, HostingConfig(site=SiteConfig(mode="spa")), function_sandbox)
    try:
        running.engine.progress = Notes()
        running.engine.create(with_files_without_extensions(tmp_path / "v1"))
        status, headers, body = running.get("/.well-known/apple-app-site-association")
        assert (status, headers["content-type"], body) == (200, "application/json", b'{"applinks":{}}')
        status, headers, body = running.get("/LICENSE")
        assert (status, headers["content-type"], body) == (200, "text/plain; charset=utf-8", b"MIT License")
        assert running.get("/about")[2] == b"<h1>home 1</h1>"
    finally:
        running.close()
    assert any("rules: 1 redirects and rewrites, 0 header rules" in n for n in notes)
