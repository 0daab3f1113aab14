"""The rendered edge functions, run in the Node sandbox with CloudFront's real event shapes."""

from __future__ import annotations

import json
import random
import shutil
import string
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hosting_toolkit.config import HostingConfig, SiteConfig
from hosting_toolkit.contract import (
    CHECK_HEADER,
    COHORT_COOKIE,
    FOLDER_HEADER,
    FOLDER_INDEX_METADATA_KEY,
    MAX_URI_LENGTH,
    PREVIEW_COOKIE,
    PREVIEW_COOKIE_ATTRIBUTES,
    PREVIEW_PARAM,
    PREVIEW_RELEASE_HEADER,
    PREVIEW_TOKEN_HEADER,
    PREVIEW_TOKEN_KEY,
    PREVIEW_TOKEN_PARAM,
    RELEASE_COOKIE,
    RELEASE_HEADER,
    RELEASE_METADATA_KEY,
    ROUTING_KEY,
    RoutingState,
    release_prefix,
)
from hosting_toolkit.edge.code import render_router, render_viewer_response
from hosting_toolkit.edge.events import (
    http_response,
    is_response,
    viewer_request_event,
    viewer_response_event,
)
from hosting_toolkit.edge.sandbox import FunctionSandbox, Invocation
from hosting_toolkit.release.preview import preview_path

pytestmark = pytest.mark.node

LIVE = "a1b2c3d4e5f6"
OLD = "0f0f0f0f0f0f"
UNPINNED = "9999aaaa9999"
ROUTED = {ROUTING_KEY: RoutingState(live=LIVE, pins=(OLD,)).to_json()}
METADATA_HEADER = f"x-amz-meta-{RELEASE_METADATA_KEY}"


@pytest.fixture(scope="module")
def sandbox(function_sandbox: FunctionSandbox) -> Iterator[FunctionSandbox]:
    for mode in ("spa", "static"):
        function_sandbox.load(f"router-{mode}", render_router(HostingConfig(site=SiteConfig(mode=mode))))
    function_sandbox.load("router-app", render_router(HostingConfig(site=SiteConfig(entry="app.html"))))
    function_sandbox.load("viewer-response", render_viewer_response(HostingConfig()))
    yield function_sandbox


def route(
    sandbox: FunctionSandbox,
    path: str,
    *,
    mode: str = "spa",
    cookie: str | None = None,
    kvs: dict[str, str] | None = None,
) -> Invocation:
    headers = [("Host", "www.example.com"), ("Accept", "text/html")]
    if cookie is not None:
        headers.append(("Cookie", cookie))
    invocation = sandbox.invoke(
        f"router-{mode}", viewer_request_event("GET", path, headers), ROUTED if kvs is None else kvs
    )
    assert invocation.ok, invocation.error
    return invocation


def routed_uri(invocation: Invocation) -> str:
    assert invocation.result is not None and not is_response(invocation.result), invocation.result
    return str(invocation.result["uri"])


def header(result: dict[str, Any] | None, name: str) -> str | None:
    assert result is not None
    entry = result.get("headers", {}).get(name)
    return None if entry is None else str(entry["value"])


# --- path mapping -------------------------------------------------------------------------------

SPA_CASES = [
    ("/", "/index.html"),
    ("/about", "/index.html"),
    ("/about/", "/index.html"),
    ("/users/42/edit", "/index.html"),
    ("/assets/app.3f9a.js", "/assets/app.3f9a.js"),
    ("/favicon.ico", "/favicon.ico"),
    ("/docs/page.html", "/docs/page.html"),
    ("/.well-known/security.txt", "/.well-known/security.txt"),
    ("/a%20b.css", "/a%20b.css"),
]

STATIC_CASES = [
    ("/", "/index.html"),
    ("/about/", "/about/index.html"),
    ("/about", "/about/index.html"),
    ("/blog/2024/post", "/blog/2024/post/index.html"),
    ("/v1.2/guide", "/v1.2/guide/index.html"),
    ("/about.html", "/about.html"),
    ("/img/logo.svg", "/img/logo.svg"),
]


@pytest.mark.parametrize(("path", "expected"), SPA_CASES)
def test_spa_mode_maps_extensionless_paths_to_the_entry_page(
    sandbox: FunctionSandbox, path: str, expected: str
) -> None:
    assert routed_uri(route(sandbox, path)) == f"/{release_prefix(LIVE)}{expected[1:]}"


@pytest.mark.parametrize(("path", "expected"), STATIC_CASES)
def test_static_mode_maps_directories_and_clean_urls_to_index_pages(
    sandbox: FunctionSandbox, path: str, expected: str
) -> None:
    assert routed_uri(route(sandbox, path, mode="static")) == f"/{release_prefix(LIVE)}{expected[1:]}"


# Files without a dot in their last segment. Static mode: the router maps them to `<path>/index.html`,
# where the release engine puts an alias of the file (tests/unit/test_release_manifest.py), and tags
# the request so that a folder's own index page is redirected to the slash. Spa mode: only
# `.well-known/` paths are files; every other extensionless path is an app route.
EXTENSIONLESS_CASES = [
    # (mode, viewer path, routed path, folder tag)
    ("static", "/LICENSE", "/LICENSE/index.html", "/LICENSE"),
    ("static", "/CNAME", "/CNAME/index.html", "/CNAME"),
    (
        "static",
        "/.well-known/apple-app-site-association",
        "/.well-known/apple-app-site-association/index.html",
        "/.well-known/apple-app-site-association",
    ),
    ("static", "/.well-known/security.txt", "/.well-known/security.txt", None),
    ("static", "/docs", "/docs/index.html", "/docs"),
    ("static", "/docs/", "/docs/index.html", None),
    ("static", "/docs/index.html", "/docs/index.html", None),
    ("static", "/", "/index.html", None),
    ("spa", "/.well-known/apple-app-site-association", "/.well-known/apple-app-site-association", None),
    ("spa", "/.well-known/assetlinks.json", "/.well-known/assetlinks.json", None),
    ("spa", "/.well-known/", "/.well-known/", None),
    ("spa", "/app/.well-known/x", "/index.html", None),
    ("spa", "/LICENSE", "/index.html", None),
    ("spa", "/docs", "/index.html", None),
]


@pytest.mark.parametrize(("mode", "path", "expected", "tag"), EXTENSIONLESS_CASES)
def test_extensionless_files_and_folders_are_mapped_per_mode(
    sandbox: FunctionSandbox, mode: str, path: str, expected: str, tag: str | None
) -> None:
    invocation = route(sandbox, path, mode=mode)
    assert routed_uri(invocation) == f"/{release_prefix(LIVE)}{expected[1:]}"
    assert header(invocation.result, FOLDER_HEADER) == tag


def test_a_viewers_own_folder_tag_is_dropped(sandbox: FunctionSandbox) -> None:
    for mode in ("spa", "static"):
        event = viewer_request_event("GET", "/docs/", [("Host", "h"), (FOLDER_HEADER, "//evil.example")])
        result = sandbox.invoke(f"router-{mode}", event, ROUTED).result
        assert header(result, FOLDER_HEADER) is None


FOLDER_INDEX = f"x-amz-meta-{FOLDER_INDEX_METADATA_KEY}"
REDIRECT_CASES = [
    # (viewer path, object's metadata, status, location)
    ("/docs", [(FOLDER_INDEX, "1")], 301, "/docs/"),
    ("/docs?lang=en&x=%20", [(FOLDER_INDEX, "1")], 301, "/docs/?lang=en&x=%20"),
    ("/a/b/c", [(FOLDER_INDEX, "1")], 301, "/a/b/c/"),
    # An alias of about.html or of an extensionless file is served where it is asked for.
    ("/about", [], 200, None),
    ("/LICENSE", [], 200, None),
    # With the slash, the folder's page is served.
    ("/docs/", [(FOLDER_INDEX, "1")], 200, None),
]


@pytest.mark.parametrize(("path", "metadata", "status", "location"), REDIRECT_CASES)
def test_a_static_folder_without_its_slash_redirects_to_it_keeping_the_query(
    sandbox: FunctionSandbox, path: str, metadata: list[tuple[str, str]], status: int, location: str | None
) -> None:
    routed = route(sandbox, path, mode="static").result
    assert routed is not None
    origin = [("Content-Type", "text/html; charset=utf-8"), (METADATA_HEADER, LIVE), *metadata]
    result = sandbox.invoke("viewer-response", viewer_response_event(routed, 200, origin)).result
    assert result is not None
    response = http_response(result)
    assert response.status == status
    assert dict(response.headers).get("location") == location
    assert FOLDER_INDEX not in dict(response.headers)
    assert (RELEASE_HEADER, LIVE) in response.headers


def test_spa_mode_uses_the_configured_entry_page(sandbox: FunctionSandbox) -> None:
    assert routed_uri(route(sandbox, "/deep/link", mode="app")) == f"/releases/{LIVE}/app.html"


def test_query_string_headers_and_cookies_pass_through_unchanged(sandbox: FunctionSandbox) -> None:
    event = viewer_request_event("GET", "/app.js?v=1&v=2&q=a%20b", [("Host", "h"), ("Cookie", "theme=dark")])
    result = sandbox.invoke("router-spa", event, ROUTED).result
    assert result is not None
    assert result["querystring"] == event["request"]["querystring"]
    assert result["headers"] == {**event["request"]["headers"], RELEASE_HEADER: {"value": LIVE}}
    assert result["cookies"] == {"theme": {"value": "dark"}}
    assert result["method"] == "GET"


def test_the_router_names_the_chosen_release_in_a_request_header_a_viewer_cannot_set(
    sandbox: FunctionSandbox,
) -> None:
    event = viewer_request_event("GET", "/about", [(RELEASE_HEADER, OLD)])
    result = sandbox.invoke("router-spa", event, ROUTED).result
    assert result is not None
    assert result["headers"][RELEASE_HEADER] == {"value": LIVE}


def test_common_path_reads_the_kvs_exactly_once(sandbox: FunctionSandbox) -> None:
    for path in ("/", "/about", "/assets/app.js"):
        assert route(sandbox, path).kvs_reads == 1
        assert route(sandbox, path, cookie=f"{RELEASE_COOKIE}={OLD}").kvs_reads == 1


# --- release choice -----------------------------------------------------------------------------

STICKY_CASES = [
    pytest.param(f"{RELEASE_COOKIE}={OLD}", OLD, id="pinned-release"),
    pytest.param(f"{RELEASE_COOKIE}={LIVE}", LIVE, id="live-release"),
    pytest.param(f"{RELEASE_COOKIE}={UNPINNED}", LIVE, id="no-longer-pinned"),
    pytest.param(f"{RELEASE_COOKIE}=../{OLD}", LIVE, id="traversal-in-cookie"),
    pytest.param(f"{RELEASE_COOKIE}=OLD", LIVE, id="uppercase-id"),
    pytest.param(f"{RELEASE_COOKIE}=", LIVE, id="empty-cookie"),
    pytest.param(f"{RELEASE_COOKIE}={'a' * 41}", LIVE, id="too-long-id"),
    pytest.param(f"other={OLD}", LIVE, id="other-cookie"),
    pytest.param(f"theme=dark; {RELEASE_COOKIE}={OLD}", OLD, id="among-other-cookies"),
]


@pytest.mark.parametrize(("cookie", "chosen"), STICKY_CASES)
def test_assets_follow_the_release_cookie_only_while_that_release_is_pinned(
    sandbox: FunctionSandbox, cookie: str, chosen: str
) -> None:
    for mode in ("spa", "static"):
        assert (
            routed_uri(route(sandbox, "/assets/app.js", mode=mode, cookie=cookie))
            == f"/releases/{chosen}/assets/app.js"
        )


@pytest.mark.parametrize("path", ["/", "/about", "/docs/", "/index.html", "/blog/post.html"])
def test_page_navigations_get_the_live_release_whatever_the_cookie(sandbox: FunctionSandbox, path: str) -> None:
    for mode in ("spa", "static"):
        uri = routed_uri(route(sandbox, path, mode=mode, cookie=f"{RELEASE_COOKIE}={OLD}"))
        assert uri.startswith(f"/releases/{LIVE}/"), (mode, path, uri)


CANARY = "c4c4c4c4c4c4"


def cohort_cookie(cohort: int, issued: float | None = None) -> str:
    return f"{COHORT_COOKIE}={cohort}.{int(time.time() if issued is None else issued)}"


def canary_state(weight: int) -> dict[str, str]:
    return {ROUTING_KEY: RoutingState(live=LIVE, canary=CANARY, weight=weight, pins=(OLD,)).to_json()}


@pytest.mark.parametrize(
    ("cohort", "weight", "chosen"),
    [(0, 1, CANARY), (99, 1, CANARY), (100, 1, LIVE), (999, 10, CANARY), (1000, 10, LIVE), (9999, 100, CANARY)],
)
def test_pages_get_the_canary_exactly_when_the_cohort_is_below_the_weight(
    sandbox: FunctionSandbox, cohort: int, weight: int, chosen: str
) -> None:
    invocation = route(sandbox, "/about", cookie=cohort_cookie(cohort), kvs=canary_state(weight))
    assert routed_uri(invocation) == f"/releases/{chosen}/index.html"
    assert invocation.kvs_reads == 1


def test_a_canary_with_an_invalid_id_or_weight_is_ignored(sandbox: FunctionSandbox) -> None:
    for state in ({"live": LIVE, "canary": "../x", "weight": 100}, {"live": LIVE, "canary": CANARY, "weight": "all"}):
        uri = routed_uri(route(sandbox, "/", cookie=cohort_cookie(0), kvs={ROUTING_KEY: json.dumps(state)}))
        assert uri == f"/releases/{LIVE}/index.html"


@pytest.mark.parametrize(
    ("pinned", "cohort", "chosen"),
    [(CANARY, 9999, CANARY), (LIVE, 0, LIVE), (OLD, 0, OLD), (UNPINNED, 0, CANARY), (UNPINNED, 9999, LIVE)],
)
def test_assets_follow_a_pin_to_the_live_canary_or_retained_release_else_the_cohort(
    sandbox: FunctionSandbox, pinned: str, cohort: int, chosen: str
) -> None:
    cookie = f"{RELEASE_COOKIE}={pinned}; {cohort_cookie(cohort)}"
    uri = routed_uri(route(sandbox, "/assets/app.js", cookie=cookie, kvs=canary_state(50)))
    assert uri == f"/releases/{chosen}/assets/app.js"


NOT_LIVE_STATES = [
    pytest.param({}, id="missing-key"),
    pytest.param({ROUTING_KEY: "{}"}, id="empty-state"),
    pytest.param({ROUTING_KEY: json.dumps({"pins": [OLD]})}, id="pins-without-live"),
    pytest.param({ROUTING_KEY: json.dumps({"live": "../etc"})}, id="invalid-live-id"),
    pytest.param({ROUTING_KEY: "null"}, id="null"),
    pytest.param({ROUTING_KEY: "[]"}, id="array"),
    pytest.param({ROUTING_KEY: "not json"}, id="malformed"),
]


@pytest.mark.parametrize("kvs", NOT_LIVE_STATES)
def test_without_a_live_release_the_router_answers_a_readable_503(
    sandbox: FunctionSandbox, kvs: dict[str, str]
) -> None:
    invocation = route(sandbox, "/", kvs=kvs, cookie=f"{RELEASE_COOKIE}={OLD}")
    response = invocation.result
    assert response is not None and is_response(response)
    assert response["statusCode"] == 503
    assert header(response, RELEASE_HEADER) == "none"
    assert header(response, "cache-control") == "no-store"
    assert (header(response, "content-type") or "").startswith("text/html")
    assert "not published yet" in response["body"]
    assert invocation.kvs_reads == 1


# --- preview ------------------------------------------------------------------------------------

STAGED = "5747ed5747ed"
TOKEN = "Zq3-x_9vPl0AbCdEfGhIjKlMnOpQrStU"
PREVIEWABLE = {**canary_state(100), PREVIEW_TOKEN_KEY: TOKEN}


def test_a_preview_query_with_the_token_redirects_without_it_and_sets_the_cookie(sandbox: FunctionSandbox) -> None:
    target = f"/docs/page?x=1&{preview_path(STAGED, TOKEN).split('?')[1]}&y=a%20b&y=2&flag"
    invocation = route(sandbox, target, kvs=PREVIEWABLE)
    response = http_response(invocation.result or {})
    assert response.status == 302
    assert (("location", "/docs/page?x=1&y=a%20b&y=2&flag=")) in response.headers
    assert ("set-cookie", f"{PREVIEW_COOKIE}={STAGED}.{TOKEN}; {PREVIEW_COOKIE_ATTRIBUTES}") in response.headers
    assert ("cache-control", "no-store") in response.headers
    assert "HttpOnly" in PREVIEW_COOKIE_ATTRIBUTES and "Secure" in PREVIEW_COOKIE_ATTRIBUTES
    assert "SameSite=Lax" in PREVIEW_COOKIE_ATTRIBUTES
    assert invocation.kvs_reads == 1


@pytest.mark.parametrize("path", ["/", "/about", "/assets/app.js", "/blog/post.html"])
def test_the_preview_cookie_or_headers_serve_pages_and_assets_of_the_staged_release(
    sandbox: FunctionSandbox, path: str
) -> None:
    by_cookie = route(sandbox, path, cookie=f"{PREVIEW_COOKIE}={STAGED}.{TOKEN}; {cohort_cookie(0)}", kvs=PREVIEWABLE)
    headers = [(PREVIEW_RELEASE_HEADER, STAGED), (PREVIEW_TOKEN_HEADER, TOKEN)]
    by_headers = sandbox.invoke("router-spa", viewer_request_event("GET", path, headers), PREVIEWABLE)
    for invocation in (by_cookie, by_headers):
        assert routed_uri(invocation).startswith(f"/releases/{STAGED}/")
        # The token, and the previewed release's rules key (a preview does not read the routing marks).
        assert invocation.kvs_reads == 2


def test_a_preview_works_before_anything_is_live(sandbox: FunctionSandbox) -> None:
    headers = [(PREVIEW_RELEASE_HEADER, STAGED), (PREVIEW_TOKEN_HEADER, TOKEN)]
    invocation = sandbox.invoke("router-spa", viewer_request_event("GET", "/", headers), {PREVIEW_TOKEN_KEY: TOKEN})
    assert routed_uri(invocation) == f"/releases/{STAGED}/index.html"


def near_misses(token: str, rng: random.Random) -> list[str]:
    alphabet = string.ascii_letters + string.digits + "-_"
    cut = rng.randrange(1, len(token))
    candidates = [
        "",
        token[:-1],
        token + rng.choice(alphabet),
        token[:cut] + rng.choice(alphabet.replace(token[cut], "")) + token[cut + 1 :],
        token.upper() if token != token.upper() else token.lower(),
        token.replace("-", "%2D"),
        " " + token,
        "".join(rng.choice(alphabet) for _ in range(len(token))),
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 64))),
    ]
    return [wrong for wrong in candidates if wrong != token]


def test_no_wrong_or_missing_token_ever_reaches_a_staged_release(sandbox: FunctionSandbox) -> None:
    """Every way of asking, with thousands of wrong tokens and ids, serves the live or canary release."""
    rng = random.Random(5)
    batches: list[tuple[dict[str, str], list[dict[str, Any]]]] = []
    for _ in range(400):
        secret = "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(32))
        events = []
        for wrong in near_misses(secret, rng):
            release = rng.choice([STAGED, OLD, UNPINNED, "../" + STAGED, STAGED.upper()])
            headers = [(PREVIEW_RELEASE_HEADER, release), (PREVIEW_TOKEN_HEADER, wrong)]
            events += [
                viewer_request_event("GET", f"/?{PREVIEW_PARAM}={release}&{PREVIEW_TOKEN_PARAM}={wrong}"),
                viewer_request_event("GET", "/app.js", headers),
                viewer_request_event("GET", "/", [("Cookie", f"{PREVIEW_COOKIE}={release}.{wrong}")]),
                viewer_request_event("GET", f"/?{PREVIEW_PARAM}={release}"),
            ]
        batches.append(({**canary_state(rng.randint(1, 100)), PREVIEW_TOKEN_KEY: secret}, events))
    # Without a token in the store nothing can be previewed, not even with an empty token.
    asks = [(PREVIEW_RELEASE_HEADER, STAGED), (PREVIEW_TOKEN_HEADER, "")]
    batches.append((canary_state(5), [viewer_request_event("GET", "/", asks)]))
    served = [
        invocation for store, events in batches for invocation in sandbox.invoke_many("router-spa", events, store)
    ]
    assert len(served) > 10_000
    for invocation in served:
        assert invocation.ok and invocation.result is not None and not is_response(invocation.result)
        assert invocation.result["uri"].split("/")[2] in (LIVE, CANARY), invocation.result


# --- path safety --------------------------------------------------------------------------------

UNSAFE_PATHS = [
    "/../etc/passwd",
    "/..",
    "/a/../../b",
    "/a/..",
    "/%2e%2e/x",
    "/%2E%2e/",
    "/a/%2E/b",
    "/a%2fb",
    "/a%2Fb",
    "/a%5cb",
    "/a%5Cb",
    "/a\\b",
    "/a%00",
    "/a%0a",
    "/a%1F",
    "/a%7f",
    "/./a",
    "/a/.",
    "//a",
    "/a//b",
    "/a\x00b",
    "/a\nb",
    "/a\x7fb",
    "a",
    "",
    "/" + "a" * MAX_URI_LENGTH,
    "/" + "x" * 1999,
]


@pytest.mark.parametrize("path", UNSAFE_PATHS, ids=lambda p: repr(p[:24]))
@pytest.mark.parametrize("mode", ["spa", "static"])
def test_unsafe_paths_answer_400_without_reading_the_kvs(sandbox: FunctionSandbox, path: str, mode: str) -> None:
    invocation = route(sandbox, path, mode=mode)
    response = invocation.result
    assert response is not None and is_response(response)
    assert response["statusCode"] == 400
    assert header(response, RELEASE_HEADER) == "none"
    assert (header(response, "content-type") or "").startswith("text/plain")
    assert invocation.kvs_reads == 0


def test_longest_allowed_path_is_routed(sandbox: FunctionSandbox) -> None:
    path = "/" + "a" * (MAX_URI_LENGTH - 4) + ".js"
    assert len(path) == MAX_URI_LENGTH
    assert routed_uri(route(sandbox, path)) == f"/releases/{LIVE}{path}"


FRAGMENTS = [
    "a", "b.js", "index.html", ".", "..", "...", ".hidden", "%2e", "%2E", "%2f", "%2F", "%5c", "%5C", "%00",
    "%25", "%252e", "%20", "\\", "/", "//", "?", "#", ";", "~", "é", "%", "%2", "%c0%ae", "\t", "\x00", "-", "_",
]  # fmt: skip


def random_path(rng: random.Random) -> str:
    parts = [rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 8))]
    separator = rng.choice(["/", "/", "/", ""])
    return "/" + separator.join(parts) if rng.random() < 0.95 else separator.join(parts)


def assert_confined(uri: str, release: str) -> None:
    prefix = f"/{release_prefix(release)}"
    assert uri.startswith(prefix), uri
    rest = uri[len(prefix) :]
    segments = rest.split("/")
    assert "." not in segments and ".." not in segments, uri
    assert "" not in segments, uri
    assert "\\" not in rest, uri
    lowered = rest.lower()
    for encoded in ("%2e", "%2f", "%5c", "%00"):
        assert encoded not in lowered, uri
    assert all(ord(char) >= 32 and ord(char) != 127 for char in rest), uri


@pytest.mark.parametrize("mode", ["spa", "static"])
def test_any_routed_uri_stays_inside_the_chosen_release(sandbox: FunctionSandbox, mode: str) -> None:
    rng = random.Random(20240601)
    routed = rejected = 0
    for _ in range(1500):
        path = random_path(rng)
        cookie = rng.choice([None, f"{RELEASE_COOKIE}={OLD}", f"{RELEASE_COOKIE}={UNPINNED}"])
        invocation = route(sandbox, path, mode=mode, cookie=cookie)
        result = invocation.result
        assert result is not None
        if is_response(result):
            assert result["statusCode"] == 400, (path, result)
            rejected += 1
            continue
        routed += 1
        pinned = cookie == f"{RELEASE_COOKIE}={OLD}" and not str(result["uri"]).endswith(".html")
        assert_confined(str(result["uri"]), OLD if pinned else LIVE)
    assert routed > 100 and rejected > 100, (routed, rejected)


# --- viewer response ----------------------------------------------------------------------------


def respond(
    sandbox: FunctionSandbox, uri: str, status: int, headers: list[tuple[str, str]], *, routed_to: str | None = None
) -> dict[str, Any]:
    """The viewer-response function's answer; ``routed_to`` adds the router's request header naming the release."""
    tag = [(RELEASE_HEADER, routed_to)] if routed_to else []
    request = viewer_request_event("GET", uri, [("Host", "h"), *tag])["request"]
    invocation = sandbox.invoke("viewer-response", viewer_response_event(request, status, headers))
    assert invocation.ok, invocation.error
    assert invocation.kvs_reads == 0
    assert invocation.result is not None
    return invocation.result


def test_viewer_response_names_the_release_from_s3_metadata_and_pins_html_viewers(sandbox: FunctionSandbox) -> None:
    result = respond(
        sandbox,
        f"/releases/{LIVE}/index.html",
        200,
        [("Content-Type", "text/html; charset=utf-8"), ("X-Amz-Meta-Release", LIVE), ("Server", "AmazonS3")],
    )
    assert header(result, RELEASE_HEADER) == LIVE
    assert METADATA_HEADER not in result["headers"]
    assert header(result, "server") == "AmazonS3"
    assert result["cookies"][RELEASE_COOKIE] == {
        "value": LIVE,
        "attributes": "Path=/; Secure; SameSite=Lax; Max-Age=3600",
    }


def test_viewer_response_does_not_pin_on_assets_or_errors(sandbox: FunctionSandbox) -> None:
    asset = respond(
        sandbox, f"/releases/{LIVE}/app.js", 200, [("Content-Type", "text/javascript"), (METADATA_HEADER, LIVE)]
    )
    assert header(asset, RELEASE_HEADER) == LIVE
    assert RELEASE_COOKIE not in asset["cookies"]
    missing = respond(
        sandbox, f"/releases/{LIVE}/nope.html", 403, [("Content-Type", "application/xml")], routed_to=LIVE
    )
    assert header(missing, RELEASE_HEADER) == LIVE
    assert RELEASE_COOKIE not in missing["cookies"]


@pytest.mark.parametrize(
    "uri", [f"/releases/{OLD}/docs/index.html", "/docs/", "/docs"], ids=["rewritten", "viewers", "clean"]
)
def test_a_304_page_without_metadata_gets_the_routers_release_whichever_uri_the_function_sees(
    sandbox: FunctionSandbox, uri: str
) -> None:
    """CloudFront may pass the viewer's URI or the router's rewritten one: the answer is the same."""
    result = respond(sandbox, uri, 304, [("Set-Cookie", "session=1; Path=/; HttpOnly")], routed_to=OLD)
    assert header(result, RELEASE_HEADER) == OLD
    assert result["cookies"]["session"] == {"value": "1", "attributes": "Path=/; HttpOnly"}
    assert result["cookies"][RELEASE_COOKIE]["value"] == OLD


@pytest.mark.parametrize("uri", [f"/releases/{OLD}/app.js", "/app.js"], ids=["rewritten", "viewers"])
def test_a_304_asset_pins_no_viewer_whichever_uri_the_function_sees(sandbox: FunctionSandbox, uri: str) -> None:
    result = respond(sandbox, uri, 304, [], routed_to=OLD)
    assert header(result, RELEASE_HEADER) == OLD
    assert RELEASE_COOKIE not in result["cookies"]


def test_the_check_header_is_answered_with_the_uri_the_function_sees(sandbox: FunctionSandbox) -> None:
    page = [("Content-Type", "text/html")]
    assert CHECK_HEADER not in respond(sandbox, "/docs/", 200, page, routed_to=OLD)["headers"]

    def seen(uri: str, headers: list[tuple[str, str]]) -> str | None:
        request = viewer_request_event("GET", uri, [(CHECK_HEADER, "1"), *headers])["request"]
        result = sandbox.invoke("viewer-response", viewer_response_event(request, 200, page)).result
        assert result is not None
        return header(result, CHECK_HEADER)

    assert seen("/docs/", [(RELEASE_HEADER, OLD)]) == "/docs/ tagged"
    assert seen(f"/releases/{OLD}/docs/index.html", []) == f"/releases/{OLD}/docs/index.html"


def test_viewer_response_without_a_release_says_none(sandbox: FunctionSandbox) -> None:
    result = respond(sandbox, "/elsewhere/index.html", 200, [("Content-Type", "text/html")])
    assert header(result, RELEASE_HEADER) == "none"
    assert RELEASE_COOKIE not in result["cookies"]


def test_router_and_viewer_response_together_give_http_headers(sandbox: FunctionSandbox) -> None:
    routed = route(sandbox, "/pricing", cookie=f"{RELEASE_COOKIE}={UNPINNED}").result
    assert routed is not None
    result = sandbox.invoke(
        "viewer-response", viewer_response_event(routed, 200, [("Content-Type", "text/html"), (METADATA_HEADER, LIVE)])
    ).result
    assert result is not None
    response = http_response(result)
    assert response.status == 200
    assert (RELEASE_HEADER, LIVE) in response.headers
    assert ("set-cookie", f"{RELEASE_COOKIE}={LIVE}; Path=/; Secure; SameSite=Lax; Max-Age=3600") in response.headers
    assert response.body is None


def test_generated_503_turns_into_an_http_response(sandbox: FunctionSandbox) -> None:
    result = route(sandbox, "/", kvs={}).result
    assert result is not None
    response = http_response(result)
    assert response.status == 503
    assert response.reason == "Service Unavailable"
    assert (RELEASE_HEADER, "none") in response.headers
    assert response.body is not None and b"not published yet" in response.body


# --- the same cases under njs -------------------------------------------------------------------

NJS_CLOUDFRONT_STUB = """
export default {
  kvs: () => ({
    get: async (key, options) => {
      const store = globalThis.kvsData;
      if (!(key in store)) throw new Error('key not found');
      return options && options.format === 'json' ? JSON.parse(store[key]) : store[key];
    },
  }),
};
"""

NJS_DRIVER = """
const cases = JSON.parse(CASES);
async function main() {
  for (let i = 0; i < cases.length; i++) {
    globalThis.kvsData = cases[i].kvs;
    const result = await handler(cases[i].event);
    console.log(JSON.stringify(result));
  }
}
main();
"""


def test_router_gives_the_same_answers_under_njs(sandbox: FunctionSandbox, tmp_path: Path) -> None:
    """njs implements the same restricted JavaScript as CloudFront's runtime, so both must agree."""
    njs = shutil.which("njs")
    if not njs:
        pytest.skip("njs is not installed")
    (tmp_path / "cloudfront").write_text(NJS_CLOUDFRONT_STUB)
    cases: list[dict[str, Any]] = []
    for path, _ in SPA_CASES:
        cases.append(
            {"event": viewer_request_event("GET", path, [("Cookie", f"{RELEASE_COOKIE}={OLD}")]), "kvs": ROUTED}
        )
    for path in UNSAFE_PATHS[:12]:
        cases.append({"event": viewer_request_event("GET", path), "kvs": ROUTED})
    for kvs in ({}, {ROUTING_KEY: "{}"}, {ROUTING_KEY: '{"live":"../x"}'}):
        cases.append({"event": viewer_request_event("GET", "/"), "kvs": kvs})
    # Cohorts drawn from request ids (FNV-1a must agree bit for bit) or read from the cookie.
    for n in range(40):
        event = viewer_request_event("GET", "/", request_id=f"{n:04d}-{'x' * n}-Zz09_")
        cases.append({"event": event, "kvs": canary_state(50)})
    for cookie in (cohort_cookie(10), cohort_cookie(9000), cohort_cookie(10, issued=0), "__cohort=abc"):
        cases.append({"event": viewer_request_event("GET", "/", [("Cookie", cookie)]), "kvs": canary_state(50)})
    for target, headers in (
        (f"/a?q=1&{preview_path(STAGED, TOKEN).split('?')[1]}", []),
        ("/a", [("Cookie", f"{PREVIEW_COOKIE}={STAGED}.{TOKEN}")]),
        ("/a", [("Cookie", f"{PREVIEW_COOKIE}={STAGED}.wrong")]),
        ("/a.js", [(PREVIEW_RELEASE_HEADER, STAGED), (PREVIEW_TOKEN_HEADER, TOKEN)]),
    ):
        cases.append({"event": viewer_request_event("GET", target, headers), "kvs": PREVIEWABLE})
    for mode in ("spa", "static"):
        script = tmp_path / f"router-{mode}.js"
        code = render_router(HostingConfig(site=SiteConfig(mode=mode)))
        script.write_text(code + f"const CASES = {json.dumps(json.dumps(cases))};\n" + NJS_DRIVER)
        run = subprocess.run(
            [njs, "-t", "module", "-p", str(tmp_path), str(script)], capture_output=True, text=True, timeout=30
        )
        assert run.returncode == 0, run.stdout + run.stderr
        njs_results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        sandbox_results = [sandbox.invoke(f"router-{mode}", case["event"], case["kvs"]).result for case in cases]
        assert njs_results == sandbox_results
