"""``[rules]`` and the www redirect through the local edge over real HTTP: the same rendered functions as CloudFront."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hosting_toolkit.config import parse_config
from hosting_toolkit.contract import RELEASE_HEADER
from hosting_toolkit.edge.sandbox import FunctionSandbox
from tests.fakes.sites import write_files
from tests.integration.conftest import Edge

pytestmark = [pytest.mark.integration, pytest.mark.node]

CONFIG = parse_config(
    {
        "site": {"mode": "static"},
        "domain": {"names": ["example.com"], "www_redirect": "www-to-apex"},
        "rules": {
            "redirects": [
                {"from": "/old", "to": "/pricing"},
                {"from": "/moved/*", "to": "/docs/:splat", "status": 302},
                {"from": "/blog/:year/:slug", "to": "/posts/:year-:slug", "status": 307},
                {"from": "/api/*", "to": "https://api.example.org/v1/:splat", "status": 308},
                {"from": "/docs/old", "to": "/never"},
            ],
            "rewrites": [
                {"from": "/app/*", "to": "/app/index.html"},
                {"from": "/docs/*", "to": "/guide/:splat"},
            ],
            "headers": [
                {"path": "/assets/*", "headers": {"cache-control": "public, max-age=60", "x-asset": "yes"}},
                {"path": "/app/*", "headers": {"x-frame": "app"}},
            ],
        },
    }
)


SITE_FILES = {
    "index.html": "<h1>home</h1>",
    "pricing.html": "<h1>pricing</h1>",
    "app/index.html": "<h1>app shell</h1>",
    "guide/install.html": "<h1>install</h1>",
    "guide/old.html": "<h1>old guide</h1>",
    "assets/app.js": "console.log(1)",
}


@pytest.fixture
def edge(tmp_path: Path, function_sandbox: FunctionSandbox) -> Iterator[Edge]:
    running = Edge(tmp_path, CONFIG, function_sandbox)
    running.engine.create(write_files(tmp_path / "site", SITE_FILES))
    yield running
    running.close()


@pytest.mark.parametrize(
    ("target", "status", "location"),
    [
        ("/old", 301, "/pricing"),
        ("/old?ref=mail&x=1", 301, "/pricing?ref=mail&x=1"),
        ("/moved/install", 302, "/docs/install"),
        ("/blog/2024/hello", 307, "/posts/2024-hello"),
        ("/api/users/7?fields=name", 308, "https://api.example.org/v1/users/7?fields=name"),
        ("/docs/old", 301, "/never"),
    ],
)
def test_redirect_rules_answer_at_the_edge(edge: Edge, target: str, status: int, location: str) -> None:
    got, headers, body = edge.get(target)
    assert (got, headers["location"], body) == (status, location, b"")
    assert headers[RELEASE_HEADER] == "none"
    assert headers["cache-control"] == ("max-age=3600" if status in (301, 308) else "no-store")
    assert "strict-transport-security" in headers


def test_the_www_name_is_redirected_with_path_and_query(edge: Edge) -> None:
    status, headers, _ = edge.get("/pricing?plan=pro", headers={"Host": "www.example.com"})
    assert (status, headers["location"]) == (301, "https://example.com/pricing?plan=pro")
    status, _, body = edge.get("/pricing", headers={"Host": "example.com"})
    assert (status, body) == (200, b"<h1>pricing</h1>")


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("/app/settings/profile", b"<h1>app shell</h1>"),
        ("/app", b"<h1>app shell</h1>"),
        ("/docs/install", b"<h1>install</h1>"),
        ("/docs/install?v=2", b"<h1>install</h1>"),
    ],
)
def test_rewrites_serve_another_file_of_the_release_under_the_same_url(edge: Edge, target: str, body: bytes) -> None:
    status, headers, got = edge.get(target)
    assert (status, got) == (200, body)
    assert "location" not in headers


def test_header_rules_apply_to_the_path_the_viewer_asked_for(edge: Edge) -> None:
    _, asset, _ = edge.get("/assets/app.js")
    assert (asset["cache-control"], asset["x-asset"]) == ("public, max-age=60", "yes")
    _, app, _ = edge.get("/app/settings")
    assert app["x-frame"] == "app"
    assert "x-asset" not in app
    _, page, _ = edge.get("/pricing")
    assert "x-frame" not in page and "x-asset" not in page


def test_header_rules_do_not_reach_an_origin_error_as_on_cloudfront(edge: Edge) -> None:
    status, headers, _ = edge.get("/assets/gone.js")

    assert status == 404
    assert "x-asset" not in headers and RELEASE_HEADER not in headers


def test_a_viewer_cannot_pick_header_rules_itself(edge: Edge) -> None:
    _, headers, _ = edge.get("/pricing", headers={"x-hosting-rules": "0.1"})
    assert "x-asset" not in headers and "x-frame" not in headers


@pytest.mark.parametrize(
    "target", ["/docs/%2e%2e/%2e%2e/_meta/x", "/docs/..%2F_meta", "/moved/%2E%2E", "/app/a%5c..", "/api//evil.example"]
)
def test_traversal_through_a_rule_placeholder_answers_400(edge: Edge, target: str) -> None:
    status, headers, _ = edge.get(target)
    assert status == 400
    assert "location" not in headers
