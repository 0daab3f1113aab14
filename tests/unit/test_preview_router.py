"""Named previews in the real router and viewer-response functions: preview hosts, the main-domain
link, KVS reads per request, skew protection, traversal, noindex; in the Node sandbox and under njs."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hosting_toolkit.config import HostingConfig, PreviewsConfig
from hosting_toolkit.contract import (
    PREVIEW_COOKIE,
    PREVIEW_MARK_HEADER,
    PREVIEW_NAME_MARK,
    PREVIEW_PARAM,
    PREVIEW_TOKEN_KEY,
    PREVIEW_TOKEN_PARAM,
    RELEASE_COOKIE,
    ROBOTS_HEADER,
    ROUTING_KEY,
    PreviewState,
    RoutingState,
    preview_key,
    rules_key,
    signed_preview_token,
)
from hosting_toolkit.edge.code import (
    CLOUDFRONT_FUNCTION_LIMIT,
    ROUTER_PREVIEWS_ALLOWANCE,
    ROUTER_SIZE_BUDGET,
    render_router,
    render_viewer_response,
)
from hosting_toolkit.edge.events import viewer_request_event, viewer_response_event
from hosting_toolkit.edge.sandbox import FunctionSandbox, Invocation
from hosting_toolkit.release.release_rules import compile_rules

pytestmark = pytest.mark.node

DOMAIN = "preview.example.com"
LIVE = "a1b2c3d4e5f6"
PR = "0123456789ab"
PR_OLD = "ba9876543210"
TOKEN = "s3cret-token_value"
KVS = {
    ROUTING_KEY: RoutingState(live=LIVE).to_json(),
    PREVIEW_TOKEN_KEY: TOKEN,
    preview_key("pr-42"): PreviewState(
        live=PR, pins=(PR_OLD,), ref="pr:42", at="2026-01-01T00:00:00Z", token=TOKEN
    ).to_json(),
}
PRIVATE = HostingConfig(previews=PreviewsConfig(enabled=True, domain=DOMAIN))
PUBLIC = HostingConfig(previews=PreviewsConfig(enabled=True, domain=DOMAIN, public=True))
LINKED = HostingConfig(previews=PreviewsConfig(enabled=True))


@pytest.fixture(scope="module")
def sandbox(function_sandbox: FunctionSandbox) -> Iterator[FunctionSandbox]:
    function_sandbox.load("private", render_router(PRIVATE))
    function_sandbox.load("public", render_router(PUBLIC))
    function_sandbox.load("linked", render_router(LINKED))
    function_sandbox.load("plain", render_router(HostingConfig()))
    function_sandbox.load("viewer-response", render_viewer_response(HostingConfig()))
    yield function_sandbox


def call(
    sandbox: FunctionSandbox,
    path: str,
    *,
    host: str = "www.example.com",
    router: str = "private",
    cookie: str = "",
    kvs: dict[str, str] | None = None,
) -> Invocation:
    headers = [("Host", host), ("Accept", "text/html")] + ([("Cookie", cookie)] if cookie else [])
    invocation = sandbox.invoke(router, viewer_request_event("GET", path, headers), KVS if kvs is None else kvs)
    assert invocation.ok, invocation.error
    return invocation


def uri(invocation: Invocation) -> str:
    assert invocation.result is not None
    return str(invocation.result.get("uri", invocation.result.get("statusCode")))


@pytest.mark.parametrize("router", ["private", "public", "linked", "plain"])
def test_production_requests_read_only_the_routing_key(sandbox: FunctionSandbox, router: str) -> None:
    for path in ("/", "/about", "/assets/app.js"):
        routed = call(sandbox, path, router=router)
        assert routed.kvs_reads == 1
        assert uri(routed).startswith(f"/releases/{LIVE}/")
        assert PREVIEW_MARK_HEADER not in routed.result["headers"]  # type: ignore[index]


def test_a_private_preview_host_with_the_token_cookie_serves_its_release_in_one_read(sandbox: FunctionSandbox) -> None:
    routed = call(sandbox, "/", host=f"pr-42.{DOMAIN}", cookie=f"{PREVIEW_COOKIE}={PREVIEW_NAME_MARK}pr-42.{TOKEN}")
    assert uri(routed) == f"/releases/{PR}/index.html"
    # The preview's key holds its copy of the token: the token key is not read.
    assert routed.kvs_reads == 1
    assert routed.result["headers"][PREVIEW_MARK_HEADER] == {"value": "1"}  # type: ignore[index]


def test_a_preview_host_token_query_redirects_setting_the_cookie(sandbox: FunctionSandbox) -> None:
    routed = call(sandbox, f"/docs?{PREVIEW_TOKEN_PARAM}={TOKEN}&x=1", host=f"pr-42.{DOMAIN}")
    result = routed.result
    assert result is not None
    assert result["statusCode"] == 302
    assert result["headers"]["location"] == {"value": "/docs?x=1"}
    assert result["cookies"][PREVIEW_COOKIE]["value"] == f"{PREVIEW_NAME_MARK}pr-42.{TOKEN}"


def test_a_cookie_for_another_preview_opens_only_this_host_s_preview(sandbox: FunctionSandbox) -> None:
    kvs = {**KVS, preview_key("pr-7"): PreviewState(live=PR_OLD).to_json()}
    routed = call(sandbox, "/", host=f"pr-42.{DOMAIN}", cookie=f"{PREVIEW_COOKIE}=~pr-7.{TOKEN}", kvs=kvs)
    assert uri(routed) == f"/releases/{PR}/index.html"


@pytest.mark.parametrize(
    "cookie", ["", f"{PREVIEW_COOKIE}=~pr-42.wrong", f"{PREVIEW_COOKIE}=~pr-42.", f"{PREVIEW_COOKIE}={LIVE}.{TOKEN}x"]
)
def test_a_private_preview_host_without_the_token_answers_401_never_production(
    sandbox: FunctionSandbox, cookie: str
) -> None:
    routed = call(sandbox, "/", host=f"pr-42.{DOMAIN}", cookie=cookie)
    assert uri(routed) == "401"
    assert routed.kvs_reads <= 1


def test_a_signed_link_opens_its_preview_until_it_expires(sandbox: FunctionSandbox) -> None:
    host = f"pr-42.{DOMAIN}"
    valid = signed_preview_token("pr-42", TOKEN, int(time.time()) + 600)
    redirected = call(sandbox, f"/?{PREVIEW_TOKEN_PARAM}={valid}", host=host).result
    assert redirected is not None and redirected["statusCode"] == 302
    cookie = f"{PREVIEW_COOKIE}={redirected['cookies'][PREVIEW_COOKIE]['value']}"
    assert TOKEN not in cookie
    routed = call(sandbox, "/", host=host, cookie=cookie)
    assert (uri(routed), routed.kvs_reads) == (f"/releases/{PR}/index.html", 1)
    expired = signed_preview_token("pr-42", TOKEN, int(time.time()) - 1)
    other = signed_preview_token("pr-7", TOKEN, int(time.time()) + 600)
    forged = signed_preview_token("pr-42", "not-the-token", int(time.time()) + 600)
    for token in (expired, other, forged, valid.replace("-", "-0"), valid + "-1"):
        assert uri(call(sandbox, "/", host=host, cookie=f"{PREVIEW_COOKIE}=~pr-42.{token}")) == "401", token
    # Without a preview token in the store, nothing verifies.
    no_secret = {k: v for k, v in KVS.items() if k != PREVIEW_TOKEN_KEY}
    no_secret[preview_key("pr-42")] = PreviewState(live=PR, ref="pr:42").to_json()
    assert uri(call(sandbox, "/", host=host, cookie=f"{PREVIEW_COOKIE}=~pr-42.{valid}", kvs=no_secret)) == "401"


def test_a_public_preview_host_needs_no_token_and_reads_one_key(sandbox: FunctionSandbox) -> None:
    routed = call(sandbox, "/about", host=f"pr-42.{DOMAIN}", router="public")
    assert uri(routed) == f"/releases/{PR}/index.html"
    assert routed.kvs_reads == 1


def test_a_removed_preview_answers_404(sandbox: FunctionSandbox) -> None:
    routed = call(sandbox, "/", host=f"pr-9.{DOMAIN}", router="public")
    assert uri(routed) == "404"
    routed = call(sandbox, "/", host=f"pr-9.{DOMAIN}", cookie=f"{PREVIEW_COOKIE}=~pr-9.{TOKEN}")
    assert uri(routed) == "404"
    assert routed.kvs_reads == 1


@pytest.mark.parametrize(
    "host", [DOMAIN, f"a.b.{DOMAIN}", f"pr-42.{DOMAIN}.evil.com", f"pr-42x{DOMAIN}", f"-x.{DOMAIN}"]
)
def test_hosts_that_are_not_one_preview_label_are_production(sandbox: FunctionSandbox, host: str) -> None:
    routed = call(sandbox, "/", host=host, router="public")
    assert uri(routed) == f"/releases/{LIVE}/index.html"
    assert routed.kvs_reads == 1


def test_a_preview_host_never_serves_production(sandbox: FunctionSandbox) -> None:
    for host in (f"PR_42.{DOMAIN}", f"pr-43.{DOMAIN}"):
        assert uri(call(sandbox, "/", host=host, router="public")) == "404"


def test_preview_assets_follow_the_pin_of_the_preview_s_page(sandbox: FunctionSandbox) -> None:
    cookie = f"{PREVIEW_COOKIE}=~pr-42.{TOKEN}; {RELEASE_COOKIE}={PR_OLD}"
    host = f"pr-42.{DOMAIN}"
    assert uri(call(sandbox, "/assets/app.js", host=host, cookie=cookie)) == f"/releases/{PR_OLD}/assets/app.js"
    # Pages get the preview's newest release; a pin outside the preview is ignored.
    assert uri(call(sandbox, "/", host=host, cookie=cookie)) == f"/releases/{PR}/index.html"
    other = f"{PREVIEW_COOKIE}=~pr-42.{TOKEN}; {RELEASE_COOKIE}={LIVE}"
    assert uri(call(sandbox, "/assets/app.js", host=host, cookie=other)) == f"/releases/{PR}/assets/app.js"


@pytest.mark.parametrize(
    "path", ["/../x", "/a/%2e%2e/b", "/a%2fb", "/a\\b", "/a/./b", "/%00", "//etc/passwd", "/" + "a" * 1100]
)
@pytest.mark.parametrize("router", ["private", "public"])
def test_traversal_on_a_preview_host_answers_400_before_any_read(
    sandbox: FunctionSandbox, path: str, router: str
) -> None:
    routed = call(sandbox, path, host=f"pr-42.{DOMAIN}", router=router, cookie=f"{PREVIEW_COOKIE}=~pr-42.{TOKEN}")
    assert uri(routed) == "400"
    assert routed.kvs_reads == 0


def test_without_a_domain_the_main_domain_link_opens_a_named_preview(sandbox: FunctionSandbox) -> None:
    routed = call(sandbox, f"/?{PREVIEW_PARAM}=~pr-42&{PREVIEW_TOKEN_PARAM}={TOKEN}", router="linked")
    result = routed.result
    assert result is not None and result["statusCode"] == 302
    cookie = f"{PREVIEW_COOKIE}={result['cookies'][PREVIEW_COOKIE]['value']}"
    routed = call(sandbox, "/about", router="linked", cookie=cookie)
    assert uri(routed) == f"/releases/{PR}/index.html"
    assert routed.kvs_reads == 1
    # A wrong token serves production: the main domain never answers 401.
    routed = call(sandbox, "/about", router="linked", cookie=f"{PREVIEW_COOKIE}=~pr-42.nope")
    assert uri(routed) == f"/releases/{LIVE}/index.html"


def test_a_site_without_previews_never_reads_a_preview_key(sandbox: FunctionSandbox) -> None:
    routed = call(sandbox, "/", router="plain", cookie=f"{PREVIEW_COOKIE}=~pr-42.{TOKEN}", host=f"pr-42.{DOMAIN}")
    assert uri(routed) == f"/releases/{LIVE}/index.html"


def test_preview_responses_carry_noindex_and_production_does_not(sandbox: FunctionSandbox) -> None:
    for host, cookie, noindex in (
        (f"pr-42.{DOMAIN}", f"{PREVIEW_COOKIE}=~pr-42.{TOKEN}", True),
        ("www.example.com", "", False),
    ):
        routed = call(sandbox, "/", host=host, cookie=cookie).result
        assert routed is not None
        event = viewer_response_event(routed, 200, [("content-type", "text/html"), ("x-amz-meta-release", PR)])
        response = sandbox.invoke("viewer-response", event, {}).result
        assert response is not None
        assert (response["headers"].get(ROBOTS_HEADER) == {"value": "noindex"}) is noindex


def test_router_with_previews_stays_within_its_budget() -> None:
    for config in (PRIVATE, PUBLIC, LINKED):
        size = len(render_router(config).encode())
        assert size <= ROUTER_SIZE_BUDGET + ROUTER_PREVIEWS_ALLOWANCE < CLOUDFRONT_FUNCTION_LIMIT
    assert len(render_router(HostingConfig()).encode()) <= ROUTER_SIZE_BUDGET
    assert "preview:" not in render_router(HostingConfig())


NJS_STUB = """
const store = %s;
globalThis.reads = [];
export default {
  kvs: () => ({
    get: async (key, options) => {
      globalThis.reads.push(key);
      if (!(key in store)) throw new Error('key not found');
      return options && options.format === 'json' ? JSON.parse(store[key]) : store[key];
    },
  }),
};
"""


def test_preview_router_runs_under_njs(tmp_path: Path) -> None:
    njs = shutil.which("njs")
    if not njs:
        pytest.skip("njs is not installed")
    (tmp_path / "cloudfront").write_text(NJS_STUB % json.dumps(KVS))
    events = {
        "preview": {
            "context": {"requestId": "njs-1"},
            "request": {
                "method": "GET",
                "uri": "/about",
                "querystring": {},
                "headers": {"host": {"value": f"pr-42.{DOMAIN}"}},
                "cookies": {PREVIEW_COOKIE: {"value": f"~pr-42.{TOKEN}"}},
            },
        },
        "production": {
            "context": {"requestId": "njs-2"},
            "request": {
                "method": "GET",
                "uri": "/about",
                "querystring": {},
                "headers": {"host": {"value": "www.example.com"}},
                "cookies": {},
            },
        },
        "signed": {
            "context": {"requestId": "njs-4"},
            "request": {
                "method": "GET",
                "uri": "/",
                "querystring": {},
                "headers": {"host": {"value": f"pr-42.{DOMAIN}"}},
                "cookies": {
                    PREVIEW_COOKIE: {"value": "~pr-42." + signed_preview_token("pr-42", TOKEN, int(time.time()) + 600)}
                },
            },
        },
        "traversal": {
            "context": {"requestId": "njs-3"},
            "request": {
                "method": "GET",
                "uri": "/a/../../b",
                "querystring": {},
                "headers": {"host": {"value": f"pr-42.{DOMAIN}"}},
                "cookies": {},
            },
        },
    }
    script = tmp_path / "router.js"
    script.write_text(
        render_router(PRIVATE)
        + "const events = "
        + json.dumps(events)
        + ";\n(async () => { const out = {}; for (const k in events) { globalThis.reads = [];"
        " const r = await handler(events[k]); out[k] = [r.uri || r.statusCode, globalThis.reads]; }"
        " console.log(JSON.stringify(out)); })();\n"
    )
    run = subprocess.run(
        [njs, "-t", "module", "-p", str(tmp_path), str(script)], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["preview"] == [f"/releases/{PR}/index.html", [preview_key("pr-42")]]
    assert out["production"] == [f"/releases/{LIVE}/index.html", [ROUTING_KEY]]
    assert out["traversal"] == [400, []]
    assert out["signed"] == [f"/releases/{PR}/index.html", [preview_key("pr-42")]]


def _with_preview_rules(*, marked: bool) -> dict[str, str]:
    """The store with the preview's release bringing a ``_redirects`` rule; ``marked``: its state says so."""
    rules = compile_rules("/old /new 301\n", None, ["index.html"], mode="spa", entry="index.html").to_json()
    state = PreviewState(live=PR, pins=(PR_OLD,), ref="pr:42", rules=(PR,) if marked else (), token=TOKEN)
    return {**KVS, preview_key("pr-42"): state.to_json(), rules_key(PR): rules}


@pytest.mark.parametrize(("router", "reads"), [("private", 2), ("public", 2)])
def test_a_preview_applies_the_rules_of_its_release_with_one_more_read(
    sandbox: FunctionSandbox, router: str, reads: int
) -> None:
    cookie = f"{PREVIEW_COOKIE}={PREVIEW_NAME_MARK}pr-42.{TOKEN}"
    routed = call(
        sandbox, "/old", host=f"pr-42.{DOMAIN}", router=router, cookie=cookie, kvs=_with_preview_rules(marked=True)
    )
    assert routed.result is not None
    assert (routed.result["statusCode"], routed.result["headers"]["location"]) == (301, {"value": "/new"})
    assert routed.kvs_reads == reads
    # Production, whose live release has no rules, is untouched by the preview's.
    production = call(sandbox, "/old", router=router, kvs=_with_preview_rules(marked=True))
    assert (uri(production), production.kvs_reads) == (f"/releases/{LIVE}/index.html", 1)


def test_a_preview_release_its_state_does_not_mark_costs_no_rules_read(sandbox: FunctionSandbox) -> None:
    routed = call(sandbox, "/old", host=f"pr-42.{DOMAIN}", router="public", kvs=_with_preview_rules(marked=False))
    assert (uri(routed), routed.kvs_reads) == (f"/releases/{PR}/index.html", 1)


def test_a_preview_key_without_a_copy_of_the_token_checks_the_token_key(sandbox: FunctionSandbox) -> None:
    # A key moved while no token existed yet holds none: the router reads the token as before.
    kvs = {**KVS, preview_key("pr-42"): PreviewState(live=PR, ref="pr:42").to_json()}
    host, cookie = f"pr-42.{DOMAIN}", f"{PREVIEW_COOKIE}=~pr-42.{TOKEN}"
    routed = call(sandbox, "/", host=host, cookie=cookie, kvs=kvs)
    assert (uri(routed), routed.kvs_reads) == (f"/releases/{PR}/index.html", 2)
    assert uri(call(sandbox, "/", host=host, cookie=f"{PREVIEW_COOKIE}=~pr-42.wrong", kvs=kvs)) == "401"


def test_a_preview_host_answers_with_the_token_its_key_holds_not_an_older_one(sandbox: FunctionSandbox) -> None:
    rotated = {
        **KVS,
        PREVIEW_TOKEN_KEY: "new-token",
        preview_key("pr-42"): PreviewState(live=PR, token="new-token").to_json(),
    }
    host = f"pr-42.{DOMAIN}"
    assert uri(call(sandbox, "/", host=host, cookie=f"{PREVIEW_COOKIE}=~pr-42.{TOKEN}", kvs=rotated)) == "401"
    assert uri(call(sandbox, "/", host=host, cookie=f"{PREVIEW_COOKIE}=~pr-42.new-token", kvs=rotated)).startswith(
        "/releases/"
    )
