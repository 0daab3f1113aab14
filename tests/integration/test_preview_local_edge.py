"""Previews through the local edge over HTTP: the redirect, the cookie, the headers, and wrong tokens."""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from hosting_toolkit.config import HostingConfig, SiteConfig
from hosting_toolkit.contract import (
    PREVIEW_COOKIE,
    PREVIEW_COOKIE_ATTRIBUTES,
    PREVIEW_PARAM,
    PREVIEW_RELEASE_HEADER,
    PREVIEW_TOKEN_HEADER,
    PREVIEW_TOKEN_PARAM,
    RELEASE_COOKIE,
    RELEASE_HEADER,
)
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.release.preview import preview, preview_token
from tests.fakes.sites import write_files
from tests.integration.conftest import Edge

pytestmark = [pytest.mark.integration, pytest.mark.node]


def site(root: Path, version: str) -> Path:
    return write_files(
        root,
        {
            "index.html": f'<h1>home {version}</h1><script src="/assets/app-{version}.js"></script>',
            "docs/index.html": f"<h1>docs {version}</h1>",
            f"assets/app-{version}.js": f"console.log('{version}')",
        },
    )


@pytest.fixture
def edge(tmp_path: Path, function_sandbox: FunctionSandbox) -> Iterator[Edge]:
    running = Edge(tmp_path, HostingConfig(site=SiteConfig(mode="static")), function_sandbox)
    yield running
    running.close()


@pytest.fixture
def staged(edge: Edge, tmp_path: Path) -> tuple[str, str, str]:
    """A live release, a staged one, and the preview token."""
    edge.engine.create(site(tmp_path / "v1", "1"), release_id="live1")
    edge.engine.create(site(tmp_path / "v2", "2"), release_id="staged2", activate=False)
    return "live1", "staged2", preview_token(edge.engine.kvs).value


def cookie_pair(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0]


def test_the_preview_link_redirects_sets_the_cookie_and_shows_the_staged_release(
    edge: Edge, staged: tuple[str, str, str]
) -> None:
    live, staged_id, _ = staged
    link = preview(edge.engine, staged_id, edge.url)

    status, headers, _ = edge.get(link.url.removeprefix(edge.url).replace("/?", "/docs/?q=1&", 1))

    assert status == 302
    assert headers["location"] == "/docs/?q=1"
    assert headers["cache-control"] == "no-store"
    assert headers["set-cookie"] == f"{PREVIEW_COOKIE}={staged_id}.{link.token}; {PREVIEW_COOKIE_ATTRIBUTES}"
    cookie = {"Cookie": cookie_pair(headers["set-cookie"])}
    status, headers, body = edge.get("/docs/?q=1", cookie)
    assert (status, headers[RELEASE_HEADER], body) == (200, staged_id, b"<h1>docs 2</h1>")
    status, headers, _ = edge.get("/assets/app-2.js", cookie)
    assert (status, headers[RELEASE_HEADER]) == (200, staged_id)
    # Everyone else still gets the live release.
    assert edge.get("/docs/")[1][RELEASE_HEADER] == live


def test_rotating_the_token_ends_every_preview_cookie(edge: Edge, staged: tuple[str, str, str]) -> None:
    live, staged_id, token = staged
    cookie = {"Cookie": f"{PREVIEW_COOKIE}={staged_id}.{token}"}
    assert edge.get("/", cookie)[1][RELEASE_HEADER] == staged_id

    preview_token(edge.engine.kvs, rotate=True)

    assert edge.get("/", cookie)[1][RELEASE_HEADER] == live


def test_tools_preview_with_headers_without_any_cookie(edge: Edge, staged: tuple[str, str, str]) -> None:
    _, staged_id, token = staged
    headers = {PREVIEW_RELEASE_HEADER: staged_id, PREVIEW_TOKEN_HEADER: token}
    status, response, body = edge.get("/", headers)
    assert (status, response[RELEASE_HEADER], body.startswith(b"<h1>home 2")) == (200, staged_id, True)
    assert PREVIEW_COOKIE not in response.get("set-cookie", "")


def test_a_preview_works_before_any_release_is_live(edge: Edge, tmp_path: Path) -> None:
    edge.engine.create(site(tmp_path / "v1", "1"), release_id="first", activate=False)
    token = preview_token(edge.engine.kvs).value
    assert edge.get("/")[0] == 503
    status, headers, _ = edge.get("/", {PREVIEW_RELEASE_HEADER: "first", PREVIEW_TOKEN_HEADER: token})
    assert (status, headers[RELEASE_HEADER]) == (200, "first")


def test_wrong_or_missing_tokens_over_http_never_reach_the_staged_release(
    edge: Edge, staged: tuple[str, str, str]
) -> None:
    live, staged_id, token = staged
    rng = random.Random(11)
    alphabet = string.ascii_letters + string.digits + "-_"
    wrong_tokens = ["", token[:-1], token + "x", token.swapcase(), token[::-1]]
    wrong_tokens += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 48))) for _ in range(40)]
    seen: set[tuple[int, str]] = set()
    for wrong in wrong_tokens:
        assert wrong != token
        for ask in (
            (f"/?{PREVIEW_PARAM}={staged_id}&{PREVIEW_TOKEN_PARAM}={wrong}", {}),
            ("/", {PREVIEW_RELEASE_HEADER: staged_id, PREVIEW_TOKEN_HEADER: wrong}),
            ("/", {"Cookie": f"{PREVIEW_COOKIE}={staged_id}.{wrong}"}),
            ("/", {"Cookie": f"{PREVIEW_COOKIE}={staged_id}"}),
            (f"/?{PREVIEW_PARAM}={staged_id}", {}),
            ("/", {PREVIEW_RELEASE_HEADER: staged_id}),
        ):
            status, headers, _ = edge.get(ask[0], ask[1])
            assert "location" not in headers
            seen.add((status, headers[RELEASE_HEADER]))
    assert seen == {(200, live)}


def test_a_pinned_asset_keeps_its_release_while_pages_get_the_live_one(edge: Edge, tmp_path: Path) -> None:
    edge.engine.create(site(tmp_path / "v1", "1"), release_id="one")
    status, headers, _ = edge.get("/")
    assert status == 200
    pin = next(c for c in headers["set-cookie"].split("\n") if c.startswith(f"{RELEASE_COOKIE}="))
    edge.engine.create(site(tmp_path / "v2", "2"), release_id="two")

    status, headers, body = edge.get("/assets/app-1.js", {"Cookie": cookie_pair(pin)})
    assert (status, headers[RELEASE_HEADER], body) == (200, "one", b"console.log('1')")
    assert edge.get("/", {"Cookie": cookie_pair(pin)})[1][RELEASE_HEADER] == "two"
