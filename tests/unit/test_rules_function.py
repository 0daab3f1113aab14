"""``[rules]`` and the www redirect, applied by the rendered router and viewer-response function in the Node sandbox."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hosting_toolkit.config import HostingConfig, parse_config
from hosting_toolkit.contract import PREVIEW_TOKEN_KEY, RELEASE_HEADER, ROUTING_KEY, RoutingState
from hosting_toolkit.edge import code
from hosting_toolkit.edge.code import (
    CLOUDFRONT_FUNCTION_LIMIT,
    ROUTER_FILE,
    ROUTER_RULES_SIZE_BUDGET,
    ROUTER_SIZE_BUDGET,
    VIEWER_RESPONSE_RULES_SIZE_BUDGET,
    render,
    render_router,
    render_viewer_response,
)
from hosting_toolkit.edge.events import http_response, is_response, viewer_request_event, viewer_response_event
from hosting_toolkit.edge.rules import RULES_HEADER
from hosting_toolkit.edge.sandbox import FunctionSandbox, Invocation
from hosting_toolkit.errors import ConfigError
from hosting_toolkit.release.preview import preview_path
from tests.unit.test_app_context import run_app
from tests.unit.test_router_function import NJS_CLOUDFRONT_STUB, NJS_DRIVER, assert_confined, random_path

pytestmark = pytest.mark.node

LIVE = "a1b2c3d4e5f6"
ROUTED = {ROUTING_KEY: RoutingState(live=LIVE).to_json()}
STAGED = "5747ed5747ed"
TOKEN = "Zq3-x_9vPl0AbCdEfGhIjKlMnOpQrStU"

RULES: dict[str, list[dict[str, Any]]] = {
    "redirects": [
        {"from": "/old", "to": "/new"},
        {"from": "/found", "to": "/there", "status": 302},
        {"from": "/temporary", "to": "/there", "status": 307},
        {"from": "/permanent", "to": "/there", "status": 308},
        {"from": "/blog/:year/*", "to": "/news/:year/:splat"},
        {"from": "/u/:user/posts/:id", "to": "/people/:user-:id.html"},
        {"from": "/search", "to": "/find?source=old"},
        {"from": "/ext/*", "to": "https://docs.example.org/v2/:splat"},
        {"from": "/first/*", "to": "/one/:splat"},
        {"from": "/first/b", "to": "/two"},
        {"from": "/go/*", "to": "/:splat/x"},
        {"from": "/exact/", "to": "/with-slash"},
    ],
    "rewrites": [
        {"from": "/docs/*", "to": "/docs/index.html"},
        {"from": "/app/:page", "to": "/app/:page.html"},
        {"from": "/files/*", "to": "/static/:splat"},
        {"from": "/pick/a", "to": "/a.html"},
        {"from": "/pick/*", "to": "/any.html"},
        {"from": "/dot/*", "to": "/.:splat"},
    ],
    "headers": [
        {"path": "/assets/*", "headers": {"Cache-Control": "public, max-age=31536000, immutable"}},
        {"path": "/assets/fonts/*", "headers": {"access-control-allow-origin": "*"}},
        {"path": "/docs/*", "headers": {"x-robots-tag": "noindex"}},
        {"path": "/assets/sw.js", "headers": {"cache-control": "no-cache", "service-worker-allowed": "/"}},
    ],
}
DOMAIN = {"names": ["example.com"], "www_redirect": "www-to-apex"}
CONFIG = parse_config({"rules": RULES, "domain": DOMAIN})
STATIC_CONFIG = parse_config({"rules": RULES, "site": {"mode": "static"}})


@pytest.fixture(scope="module")
def sandbox(function_sandbox: FunctionSandbox) -> Iterator[FunctionSandbox]:
    function_sandbox.load("rules", render_router(CONFIG))
    function_sandbox.load("rules-static", render_router(STATIC_CONFIG))
    function_sandbox.load("rules-viewer-response", render_viewer_response(CONFIG))
    function_sandbox.load("plain", render_router(HostingConfig()))
    yield function_sandbox


def route(
    sandbox: FunctionSandbox,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    *,
    name: str = "rules",
    kvs: dict[str, str] | None = None,
) -> Invocation:
    headers = headers or []
    if not any(name == "Host" for name, _ in headers):
        headers = [("Host", "example.com"), *headers]
    event = viewer_request_event("GET", target, headers)
    invocation = sandbox.invoke(name, event, ROUTED if kvs is None else kvs)
    assert invocation.ok, invocation.error
    return invocation


def redirected(invocation: Invocation) -> tuple[int, str, str]:
    """Status, location and cache-control of a redirect the router answered without reading the KVS."""
    assert invocation.result is not None and is_response(invocation.result), invocation.result
    assert invocation.kvs_reads == 0
    response = http_response(invocation.result)
    headers = dict(response.headers)
    assert headers[RELEASE_HEADER] == "none"
    return response.status, headers["location"], headers["cache-control"]


def routed_uri(invocation: Invocation) -> str:
    assert invocation.result is not None and not is_response(invocation.result), invocation.result
    return str(invocation.result["uri"])


def bad_request(invocation: Invocation) -> bool:
    result = invocation.result
    return result is not None and is_response(result) and result["statusCode"] == 400


# --- redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "cache"),
    [
        ("/old", 301, "max-age=3600"),
        ("/found", 302, "no-store"),
        ("/temporary", 307, "no-store"),
        ("/permanent", 308, "max-age=3600"),
    ],
)
def test_each_redirect_status_is_answered_before_any_kvs_read(
    sandbox: FunctionSandbox, path: str, status: int, cache: str
) -> None:
    expected = "/new" if path == "/old" else "/there"
    assert redirected(route(sandbox, path)) == (status, expected, cache)


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/blog/2024/hello", "/news/2024/hello"),
        ("/blog/2024/a/b/c.html", "/news/2024/a/b/c.html"),
        ("/blog/2024/", "/news/2024/"),
        ("/blog/2024", "/news/2024/"),
        ("/blog/2024/caf%C3%A9", "/news/2024/caf%C3%A9"),
        ("/u/ada/posts/42", "/people/ada-42.html"),
        ("/go/a/b", "/a/b/x"),
        ("/exact/", "/with-slash"),
    ],
)
def test_name_and_splat_placeholders_take_what_the_viewer_sent(
    sandbox: FunctionSandbox, path: str, location: str
) -> None:
    assert redirected(route(sandbox, path))[1] == location


@pytest.mark.parametrize(
    "path", ["/blog", "/blog/", "/blogs/2024/x", "/u/ada/posts", "/u/ada/posts/42/more", "/exact", "/OLD", "/old/"]
)
def test_paths_that_do_not_match_a_pattern_segment_for_segment_are_not_redirected(
    sandbox: FunctionSandbox, path: str
) -> None:
    assert routed_uri(route(sandbox, path)).startswith(f"/releases/{LIVE}/")


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/old?x=1", "/new?x=1"),
        ("/old?x=1&x=2&q=a%20b&flag", "/new?x=1&x=2&q=a%20b&flag="),
        ("/search", "/find?source=old"),
        ("/search?q=cats", "/find?source=old&q=cats"),
        ("/ext/guide/intro?lang=en", "https://docs.example.org/v2/guide/intro?lang=en"),
        ("/ext", "https://docs.example.org/v2/"),
    ],
)
def test_the_query_string_passes_through_to_the_target(sandbox: FunctionSandbox, target: str, location: str) -> None:
    assert redirected(route(sandbox, target))[1] == location


def test_the_first_matching_redirect_wins_in_file_order(sandbox: FunctionSandbox) -> None:
    assert redirected(route(sandbox, "/first/b"))[1] == "/one/b"


def test_redirects_come_before_rewrites_and_previews(sandbox: FunctionSandbox) -> None:
    target = f"/old?{preview_path(STAGED, TOKEN).split('?')[1]}"
    invocation = route(sandbox, target, kvs={**ROUTED, PREVIEW_TOKEN_KEY: TOKEN})
    assert redirected(invocation)[1] == f"/new?{preview_path(STAGED, TOKEN).split('?')[1]}"


# --- the www redirect ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["www.example.com", "WWW.Example.COM"])
def test_the_www_name_gets_a_301_to_the_first_name_with_path_and_query(sandbox: FunctionSandbox, host: str) -> None:
    event = viewer_request_event("GET", "/a/b.html?x=1&y=%2F", [("Host", host)])
    invocation = sandbox.invoke("rules", event, ROUTED)
    assert redirected(invocation) == (301, "https://example.com/a/b.html?x=1&y=%2F", "max-age=3600")


def test_the_www_redirect_comes_before_the_rules_and_the_first_name_is_served(sandbox: FunctionSandbox) -> None:
    assert redirected(route(sandbox, "/old", [("Host", "www.example.com")]))[1] == "https://example.com/old"
    assert routed_uri(route(sandbox, "/about")) == f"/releases/{LIVE}/index.html"


def test_apex_to_www_redirects_the_bare_name() -> None:
    config = parse_config({"domain": {"names": ["www.example.com"], "www_redirect": "apex-to-www"}})
    with FunctionSandbox() as sandbox:
        sandbox.load("apex", render_router(config))
        event = viewer_request_event("GET", "/?q=1", [("Host", "example.com")])
        assert redirected(sandbox.invoke("apex", event, ROUTED)) == (
            301,
            "https://www.example.com/?q=1",
            "max-age=3600",
        )
        event = viewer_request_event("GET", "/", [("Host", "www.example.com")])
        assert routed_uri(sandbox.invoke("apex", event, ROUTED)) == f"/releases/{LIVE}/index.html"


# --- rewrites -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "path", "served"),
    [
        ("rules", "/docs/guide/install", "/docs/index.html"),
        ("rules", "/docs", "/docs/index.html"),
        ("rules", "/app/settings", "/app/settings.html"),
        ("rules", "/files/a/b.css", "/static/a/b.css"),
        ("rules", "/files/readme", "/index.html"),
        ("rules-static", "/files/readme", "/static/readme/index.html"),
        ("rules-static", "/files/", "/static/index.html"),
        ("rules", "/pick/a", "/a.html"),
        ("rules", "/pick/b", "/any.html"),
        ("rules", "/dot/well-known", "/.well-known"),
    ],
)
def test_rewrites_serve_the_target_of_the_chosen_release_mapped_like_any_path(
    sandbox: FunctionSandbox, name: str, path: str, served: str
) -> None:
    invocation = route(sandbox, path + "?keep=1", name=name)
    assert routed_uri(invocation) == f"/releases/{LIVE}{served}"
    assert invocation.result is not None and invocation.result["querystring"] == {"keep": {"value": "1"}}
    assert invocation.kvs_reads == 1


def test_a_preview_redirect_keeps_the_address_the_viewer_asked_for(sandbox: FunctionSandbox) -> None:
    target = f"/docs/guide?{preview_path(STAGED, TOKEN).split('?')[1]}"
    invocation = route(sandbox, target, kvs={**ROUTED, PREVIEW_TOKEN_KEY: TOKEN})
    assert invocation.result is not None and http_response(invocation.result).status == 302
    assert dict(http_response(invocation.result).headers)["location"] == "/docs/guide"


def test_a_previewed_release_is_served_the_rewritten_path(sandbox: FunctionSandbox) -> None:
    invocation = route(sandbox, "/docs/a", [("Cookie", f"__preview={STAGED}.{TOKEN}")], kvs={PREVIEW_TOKEN_KEY: TOKEN})
    assert routed_uri(invocation) == f"/releases/{STAGED}/docs/index.html"


# --- traversal ----------------------------------------------------------------------------------

TRAVERSALS = [
    "/files/%2e%2e/_meta/records.json",
    "/files/%2E%2E/%2E%2E/x",
    "/files/..%2f..%2fx",
    "/files/../x",
    "/files/a/../../x",
    "/files/a%5c..%5cx",
    "/files/a\\..\\x",
    "/files/%00",
    "/files//x",
    "/blog/2024/%2e%2e/x",
    "/blog/2024/..",
    "/ext/%2e%2e/%2f%2fevil.example",
    "/go//evil.example",
    "/app/%2e%2e",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_through_a_placeholder_is_refused_before_any_rule(sandbox: FunctionSandbox, path: str) -> None:
    invocation = route(sandbox, path)
    assert bad_request(invocation), invocation.result
    assert invocation.kvs_reads == 0


@pytest.mark.parametrize("path", ["/go", "/go/", "/dot", "/dot/"])
def test_a_rule_building_an_unsafe_path_answers_400_instead(sandbox: FunctionSandbox, path: str) -> None:
    """``/go`` would redirect to ``//x`` (another host), ``/dot`` rewrite to ``/.``: both refused."""
    invocation = route(sandbox, path)
    assert bad_request(invocation), invocation.result
    assert invocation.kvs_reads == 0


def test_any_rule_output_stays_inside_the_release_or_on_the_site(sandbox: FunctionSandbox) -> None:
    rng = random.Random(60601)
    prefixes = ["/files", "/blog/2024", "/go", "/ext", "/dot", "/app", "/docs", "/u/x/posts"]
    events = []
    for _ in range(3000):
        path = random_path(rng)
        target = rng.choice(prefixes) + (path if path.startswith("/") else "/" + path)
        events.append(viewer_request_event("GET", target, [("Host", "example.com")]))
    outcomes = {"routed": 0, "redirected": 0, "refused": 0}
    for event, invocation in zip(events, sandbox.invoke_many("rules", events, ROUTED), strict=True):
        result = invocation.result
        assert invocation.ok and result is not None, invocation.error
        if not is_response(result):
            outcomes["routed"] += 1
            assert_confined(str(result["uri"]), LIVE)
        elif result["statusCode"] == 400:
            outcomes["refused"] += 1
        else:
            outcomes["redirected"] += 1
            location = result["headers"]["location"]["value"]
            assert location.startswith(("/", "https://docs.example.org/v2/")), (event["request"]["uri"], location)
            assert not location.startswith("//"), location
            if location.startswith("/"):
                path = location.split("?")[0]
                segments = path.split("/")[1:]
                assert not {".", ".."} & set(segments) and "" not in segments[:-1], location
                assert not any(bad in path.lower() for bad in ("%2e", "%2f", "%5c", "\\")), location
    assert min(outcomes.values()) > 100, outcomes


# --- header rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "tag"),
    [
        ("/assets/app.js", "0"),
        ("/assets/fonts/a.woff2", "0.1"),
        ("/assets/sw.js", "0.3"),
        ("/docs/guide", "2"),
        ("/about", None),
    ],
)
def test_the_router_tags_a_request_with_the_header_rules_of_the_path_asked_for(
    sandbox: FunctionSandbox, path: str, tag: str | None
) -> None:
    invocation = route(sandbox, path, [(RULES_HEADER, "1.2.3")])
    assert invocation.result is not None
    found = invocation.result["headers"].get(RULES_HEADER)
    assert (found["value"] if found else None) == tag


def respond(sandbox: FunctionSandbox, path: str, origin: list[tuple[str, str]], status: int = 200) -> dict[str, str]:
    """The headers the viewer gets for ``path``: the router's request, the origin's response, the viewer-response function."""
    routed = route(sandbox, path).result
    assert routed is not None and not is_response(routed)
    event = viewer_response_event(routed, status, [*origin, ("x-amz-meta-release", LIVE)])
    result = sandbox.invoke("rules-viewer-response", event).result
    assert result is not None
    return dict(http_response(result).headers)


def test_header_rules_add_and_replace_response_headers_later_rules_winning(sandbox: FunctionSandbox) -> None:
    origin = [("content-type", "text/javascript"), ("cache-control", "public, max-age=0, must-revalidate")]
    asset = respond(sandbox, "/assets/app.js", origin)
    assert asset["cache-control"] == "public, max-age=31536000, immutable"
    assert asset[RELEASE_HEADER] == LIVE
    worker = respond(sandbox, "/assets/sw.js", origin)
    assert worker["cache-control"] == "no-cache"
    assert worker["service-worker-allowed"] == "/"
    font = respond(sandbox, "/assets/fonts/a.woff2", [("content-type", "font/woff2")])
    assert font["access-control-allow-origin"] == "*"
    assert "cache-control" in font


def test_header_rules_match_the_viewer_path_not_the_rewritten_one(sandbox: FunctionSandbox) -> None:
    headers = respond(sandbox, "/docs/guide", [("content-type", "text/html")])
    assert headers["x-robots-tag"] == "noindex"
    assert "set-cookie" in headers


def test_a_path_without_header_rules_keeps_the_origin_headers(sandbox: FunctionSandbox) -> None:
    origin = [("content-type", "text/html"), ("cache-control", "no-cache")]
    headers = respond(sandbox, "/about", origin)
    assert headers["cache-control"] == "no-cache"
    assert "x-robots-tag" not in headers


def test_a_tag_the_viewer_sends_never_selects_header_rules(sandbox: FunctionSandbox) -> None:
    invocation = route(sandbox, "/about", [(RULES_HEADER, "0")])
    assert invocation.result is not None and RULES_HEADER not in invocation.result["headers"]


def test_the_viewer_response_ignores_tags_that_name_no_rule(sandbox: FunctionSandbox) -> None:
    request = viewer_request_event("GET", f"/releases/{LIVE}/a.js", [(RULES_HEADER, "9.x.-1.__proto__.length")])
    event = viewer_response_event(request["request"], 200, [("content-type", "text/javascript")])
    invocation = sandbox.invoke("rules-viewer-response", event)
    assert invocation.ok, invocation.error
    assert invocation.result is not None
    assert set(invocation.result["headers"]) == {"content-type", RELEASE_HEADER}


# --- the common path and the no-rules router ----------------------------------------------------


def test_the_common_path_still_reads_the_kvs_exactly_once(sandbox: FunctionSandbox) -> None:
    for path in ("/", "/about", "/assets/app.js", "/docs/x", "/files/a.css"):
        assert route(sandbox, path).kvs_reads == 1


def test_rule_code_without_a_matching_rule_answers_as_the_router_without_rules(sandbox: FunctionSandbox) -> None:
    empty = {"www": None, "r": [], "headers": []}
    settings = {**code.site_settings(HostingConfig()), "rules": empty}
    sandbox.load("empty-rules", render(ROUTER_FILE, settings, blocks=(code.RULES_BLOCK,)))
    rng = random.Random(7)
    events = []
    for n in range(600):
        path = random_path(rng)
        cookie = rng.choice(["", f"__release={LIVE}", "__cohort=10.1", f"__preview={STAGED}.{TOKEN}"])
        query = rng.choice(["", "?a=1", f"?{preview_path(STAGED, TOKEN).split('?')[1]}"])
        events.append(
            viewer_request_event("GET", path + query, [("Cookie", cookie)] if cookie else [], request_id=f"r{n}")
        )
    store = {ROUTING_KEY: RoutingState(live=LIVE, canary=STAGED, weight=50).to_json(), PREVIEW_TOKEN_KEY: TOKEN}
    plain = [(i.result, i.kvs_reads) for i in sandbox.invoke_many("plain", events, store)]
    ruled = [(i.result, i.kvs_reads) for i in sandbox.invoke_many("empty-rules", events, store)]
    assert plain == ruled


def test_the_router_without_rules_stays_within_its_own_budget() -> None:
    assert len(render_router(HostingConfig()).encode()) <= ROUTER_SIZE_BUDGET


# --- size budgets -------------------------------------------------------------------------------


def many_redirects(count: int) -> dict[str, Any]:
    return {"redirects": [{"from": f"/old-page-{n}", "to": f"/new-page-{n}"} for n in range(count)]}


def largest_fitting(make: Any) -> int:
    """The most rules ``make`` builds that both functions take (by bisection: each render is minified)."""

    def fits(count: int) -> bool:
        try:
            render_router(parse_config({"rules": make(count)}))
            render_viewer_response(parse_config({"rules": make(count)}))
        except ConfigError:
            return False
        return True

    low, high = 1, 1024
    assert fits(low) and not fits(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def test_a_rule_set_over_the_router_budget_fails_naming_budget_size_and_rules(tmp_path: Path) -> None:
    fitting = largest_fitting(many_redirects)
    # The router also holds the code of the releases' own rules, which have no such limit.
    assert fitting >= 100
    assert len(render_router(parse_config({"rules": many_redirects(fitting)})).encode()) <= ROUTER_RULES_SIZE_BUDGET
    config = parse_config({"rules": many_redirects(fitting + 1)}, tmp_path / "hosting.toml")
    with pytest.raises(ConfigError) as caught:
        render_router(config)
    size = len(render(ROUTER_FILE, code.router_settings(config), blocks=(code.RULES_BLOCK,)).encode())
    assert size > ROUTER_RULES_SIZE_BUDGET
    assert caught.value.problems == [
        f"router function is {size:,} bytes with {fitting + 1} rules, over its budget of "
        f"{ROUTER_RULES_SIZE_BUDGET:,} bytes; remove rules, or merge them into fewer patterns "
        "(':name' and '*' match many paths)"
    ]
    assert caught.value.path == str(tmp_path / "hosting.toml")
    assert ROUTER_RULES_SIZE_BUDGET < CLOUDFRONT_FUNCTION_LIMIT


def test_header_values_over_the_viewer_response_budget_fail_naming_it() -> None:
    rules = {"headers": [{"path": f"/p{n}/*", "headers": {"link": "<https://cdn.example>; " * 20}} for n in range(20)]}
    config = parse_config({"rules": rules})
    with pytest.raises(ConfigError) as caught:
        render_viewer_response(config)
    assert caught.value.problems[0].startswith("viewer-response function is ")
    assert f"bytes with 20 header rules, over its budget of {VIEWER_RESPONSE_RULES_SIZE_BUDGET:,} bytes" in str(
        caught.value
    )


@pytest.mark.synth
def test_synth_of_an_oversized_rule_set_fails_with_the_message_and_no_traceback(tmp_path: Path) -> None:
    lines = [f'[[rules.redirects]]\nfrom = "/old-page-{n}"\nto = "/new-page-{n}"\n' for n in range(300)]
    config = tmp_path / "hosting.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    result = run_app(tmp_path, HOSTING_TOOLKIT_CONFIG=str(config))
    assert result.returncode == ConfigError.exit_code, result.stderr
    assert f"{config}: router function is" in result.stderr
    assert f"with 300 rules, over its budget of {ROUTER_RULES_SIZE_BUDGET:,} bytes" in result.stderr
    assert "Traceback" not in result.stderr


# --- njs ----------------------------------------------------------------------------------------


def test_the_rules_router_gives_the_same_answers_under_njs(sandbox: FunctionSandbox, tmp_path: Path) -> None:
    """njs implements the restricted JavaScript of CloudFront's runtime, so the rule code must run there too."""
    njs = shutil.which("njs")
    if not njs:
        pytest.skip("njs is not installed")
    (tmp_path / "cloudfront").write_text(NJS_CLOUDFRONT_STUB)
    targets = ["/old?x=1", "/blog/2024/a/b", "/search?q=1", "/ext/x", "/docs/a", "/files/%2e%2e/x", "/go", "/assets/a"]
    cases = [{"event": viewer_request_event("GET", t, [("Host", "example.com")]), "kvs": ROUTED} for t in targets]
    cases.append({"event": viewer_request_event("GET", "/a?b=1", [("Host", "www.example.com")]), "kvs": ROUTED})
    script = tmp_path / "router.js"
    script.write_text(render_router(CONFIG) + f"const CASES = {json.dumps(json.dumps(cases))};\n" + NJS_DRIVER)
    run = subprocess.run(
        [njs, "-t", "module", "-p", str(tmp_path), str(script)], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stdout + run.stderr
    njs_results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert njs_results == [sandbox.invoke("rules", case["event"], case["kvs"]).result for case in cases]
