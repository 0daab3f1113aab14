"""A release's own ``_redirects``/``_headers`` rules, compiled and read from the KVS by the real functions (sandbox and njs)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hosting_toolkit.config import HostingConfig, SiteConfig
from hosting_toolkit.contract import (
    PREVIEW_RELEASE_HEADER,
    PREVIEW_TOKEN_HEADER,
    PREVIEW_TOKEN_KEY,
    RELEASE_HEADER,
    RELEASE_RULES_HEADER,
    ROUTING_KEY,
    RoutingState,
    rules_key,
)
from hosting_toolkit.edge.code import (
    CLOUDFRONT_FUNCTION_LIMIT,
    ROUTER_SIZE_BUDGET,
    VIEWER_RESPONSE_SIZE_BUDGET,
    render_router,
    render_viewer_response,
)
from hosting_toolkit.edge.events import http_response, is_response, viewer_request_event, viewer_response_event
from hosting_toolkit.edge.sandbox import FunctionSandbox, Invocation
from hosting_toolkit.release.release_rules import compile_rules
from tests.unit.test_router_function import NJS_CLOUDFRONT_STUB, NJS_DRIVER

pytestmark = pytest.mark.node

CORPUS = json.loads((Path(__file__).parents[1] / "data" / "netlify_rules_corpus.json").read_text(encoding="utf-8"))
RELEASE = "c0ffee000001"
OTHER = "0ld000000002"
TOKEN = "Zq3-x_9vPl0AbCdEfGhIjKlMnOpQrStU"


def compiled(case: dict[str, Any]) -> str:
    rules = compile_rules(
        case.get("redirects"), case.get("headers"), case["files"], mode=case.get("mode", "spa"), entry="index.html"
    )
    return rules.to_json()


def store_of(case: dict[str, Any]) -> dict[str, str]:
    value = compiled(case)
    store = {ROUTING_KEY: RoutingState(live=RELEASE, rules=(RELEASE,) if value else ()).to_json()}
    if value:
        store[rules_key(RELEASE)] = value
    return store


CASES = [
    pytest.param(case, request, id=f"{case['name']}: {request['path']}")
    for case in CORPUS["cases"]
    for request in case["requests"]
]


@pytest.fixture(scope="module")
def sandbox(function_sandbox: FunctionSandbox) -> Iterator[FunctionSandbox]:
    for mode in ("spa", "static"):
        function_sandbox.load(f"router-{mode}", render_router(HostingConfig(site=SiteConfig(mode=mode))))
    function_sandbox.load("viewer-response", render_viewer_response(HostingConfig()))
    yield function_sandbox


def origin_response(routed: dict[str, Any]) -> dict[str, Any]:
    """The event of the origin's 200 for the routed request, as S3 answers a release file."""
    return viewer_response_event(
        routed, 200, [("content-type", "text/html; charset=utf-8"), ("x-amz-meta-release", RELEASE)]
    )


def check(sandbox: FunctionSandbox, case: dict[str, Any], expected: dict[str, Any]) -> Invocation:
    mode = case.get("mode", "spa")
    routed = sandbox.invoke(f"router-{mode}", viewer_request_event("GET", expected["path"]), store_of(case))
    assert routed.ok and routed.result is not None, routed.error
    if expected["status"] >= 300 and expected["status"] < 500 and "serves" not in expected:
        assert is_response(routed.result), routed.result
        response = http_response(routed.result)
        headers = dict(response.headers)
        assert response.status == expected["status"]
        if "location" in expected:
            assert headers["location"] == expected["location"]
            assert headers[RELEASE_HEADER] == RELEASE
        return routed
    assert not is_response(routed.result), routed.result
    assert routed.result["uri"] == f"/releases/{RELEASE}/{expected['serves']}"
    finished = sandbox.invoke("viewer-response", origin_response(routed.result))
    assert finished.ok and finished.result is not None, finished.error
    response = http_response(finished.result)
    assert response.status == expected["status"]
    got = dict(response.headers)
    for name, value in expected.get("headers", {}).items():
        assert got.get(name) == value, name
    return routed


@pytest.mark.parametrize(("case", "expected"), CASES)
def test_corpus_case_through_the_router_and_viewer_response(
    sandbox: FunctionSandbox, case: dict[str, Any], expected: dict[str, Any]
) -> None:
    routed = check(sandbox, case, expected)
    assert routed.kvs_reads == (2 if compiled(case) else 1)


@pytest.mark.parametrize("case", CORPUS["refused"], ids=[c["name"] for c in CORPUS["refused"]])
def test_corpus_refusals_name_the_file_and_line(case: dict[str, Any]) -> None:
    with pytest.raises(Exception) as caught:
        compile_rules(case.get("redirects"), case.get("headers"), ["index.html"], mode="spa", entry="index.html")
    assert case["problem"] in str(caught.value)


def test_reads_per_request_one_without_rules_two_with_rules(sandbox: FunctionSandbox) -> None:
    with_rules = compile_rules("/old /new 301\n", None, ["index.html"], mode="spa", entry="index.html").to_json()
    plain = {ROUTING_KEY: RoutingState(live=OTHER).to_json(), rules_key(RELEASE): with_rules}
    ruled = {ROUTING_KEY: RoutingState(live=RELEASE, rules=(RELEASE,)).to_json(), rules_key(RELEASE): with_rules}
    for path in ("/", "/old", "/assets/app.js", "/a/b/c"):
        assert sandbox.invoke("router-spa", viewer_request_event("GET", path), plain).kvs_reads == 1
        assert sandbox.invoke("router-spa", viewer_request_event("GET", path), ruled).kvs_reads == 2
    redirected = sandbox.invoke("router-spa", viewer_request_event("GET", "/old"), ruled).result
    assert redirected is not None and redirected["statusCode"] == 301
    # An unmarked release is never read for rules, even when a key exists.
    assert sandbox.invoke("router-spa", viewer_request_event("GET", "/old"), plain).result["uri"].endswith("index.html")  # type: ignore[index]


def test_rules_follow_the_chosen_release_canary_and_pins(sandbox: FunctionSandbox) -> None:
    rules = compile_rules("/promo /sale 302\n", None, ["index.html"], mode="spa", entry="index.html").to_json()
    state = RoutingState(live=OTHER, canary=RELEASE, weight=100, pins=(RELEASE,), rules=(RELEASE,))
    store = {ROUTING_KEY: state.to_json(), rules_key(RELEASE): rules}
    canary = sandbox.invoke("router-spa", viewer_request_event("GET", "/promo"), store).result
    assert canary is not None and canary["statusCode"] == 302
    live = {
        ROUTING_KEY: RoutingState(live=OTHER, pins=(RELEASE,), rules=(RELEASE,)).to_json(),
        **{rules_key(RELEASE): rules},
    }
    page = sandbox.invoke("router-spa", viewer_request_event("GET", "/promo"), live)
    assert page.result is not None and page.result["uri"] == f"/releases/{OTHER}/index.html" and page.kvs_reads == 1
    pinned = sandbox.invoke(
        "router-spa", viewer_request_event("GET", "/promo.js", [("Cookie", f"__release={RELEASE}")]), live
    )
    assert (
        pinned.result is not None and pinned.result["uri"] == f"/releases/{RELEASE}/promo.js" and pinned.kvs_reads == 2
    )


def test_a_preview_applies_the_previewed_release_rules(sandbox: FunctionSandbox) -> None:
    rules = compile_rules("/promo /sale 302\n", None, ["index.html"], mode="spa", entry="index.html").to_json()
    store = {ROUTING_KEY: RoutingState(live=OTHER).to_json(), rules_key(RELEASE): rules, PREVIEW_TOKEN_KEY: TOKEN}
    headers = [(PREVIEW_RELEASE_HEADER, RELEASE), (PREVIEW_TOKEN_HEADER, TOKEN)]
    previewed = sandbox.invoke("router-spa", viewer_request_event("GET", "/promo", headers), store)
    assert previewed.result is not None and previewed.result["statusCode"] == 302 and previewed.kvs_reads == 2
    headers = [(PREVIEW_RELEASE_HEADER, OTHER), (PREVIEW_TOKEN_HEADER, TOKEN)]
    other = sandbox.invoke("router-spa", viewer_request_event("GET", "/promo", headers), store)
    assert other.result is not None and other.result["uri"] == f"/releases/{OTHER}/index.html"


def test_a_viewer_cannot_choose_headers_or_status(sandbox: FunctionSandbox) -> None:
    store = {ROUTING_KEY: RoutingState(live=OTHER).to_json()}
    forged = [(RELEASE_RULES_HEADER, json.dumps([404, {"x-evil": "1"}]))]
    routed = sandbox.invoke("router-spa", viewer_request_event("GET", "/", forged), store).result
    assert routed is not None and RELEASE_RULES_HEADER not in routed["headers"]
    finished = sandbox.invoke("viewer-response", origin_response(routed)).result
    assert finished is not None and finished["statusCode"] == 200 and "x-evil" not in finished["headers"]


def test_the_deployed_size_does_not_grow_with_the_rules(sandbox: FunctionSandbox) -> None:
    for mode in ("spa", "static"):
        size = len(render_router(HostingConfig(site=SiteConfig(mode=mode))).encode())
        assert size <= ROUTER_SIZE_BUDGET < CLOUDFRONT_FUNCTION_LIMIT
    assert len(render_viewer_response(HostingConfig()).encode()) <= VIEWER_RESPONSE_SIZE_BUDGET
    # The code is the same whatever a release carries: its rules are data in the KVS.
    many = "\n".join(f"/p{n} /q{n}" for n in range(30))
    value = compile_rules(many, None, ["index.html"], mode="spa", entry="index.html").to_json()
    store = {ROUTING_KEY: RoutingState(live=RELEASE, rules=(RELEASE,)).to_json(), rules_key(RELEASE): value}
    answer = sandbox.invoke("router-spa", viewer_request_event("GET", "/p29"), store).result
    assert answer is not None and answer["headers"]["location"]["value"] == "/q29"


def test_the_corpus_gives_the_same_answers_under_njs(sandbox: FunctionSandbox, tmp_path: Path) -> None:
    """njs implements the restricted JavaScript of CloudFront's runtime: both functions must agree with the sandbox."""
    njs = shutil.which("njs")
    if not njs:
        pytest.skip("njs is not installed")
    (tmp_path / "cloudfront").write_text(NJS_CLOUDFRONT_STUB)
    for mode in ("spa", "static"):
        cases = [
            {"event": viewer_request_event("GET", request["path"], request_id=f"r{n}"), "kvs": store_of(case)}
            for n, case in enumerate(CORPUS["cases"])
            if case.get("mode", "spa") == mode
            for request in case["requests"]
        ]
        routed = njs_results(
            njs, tmp_path, f"router-{mode}", render_router(HostingConfig(site=SiteConfig(mode=mode))), cases
        )
        assert routed == [sandbox.invoke(f"router-{mode}", c["event"], c["kvs"]).result for c in cases]
        responses = [{"event": origin_response(r), "kvs": {}} for r in routed if not is_response(r)]
        finished = njs_results(
            njs, tmp_path, f"viewer-response-{mode}", render_viewer_response(HostingConfig()), responses
        )
        assert finished == [sandbox.invoke("viewer-response", c["event"]).result for c in responses]


def njs_results(njs: str, folder: Path, name: str, code: str, cases: list[dict[str, Any]]) -> list[Any]:
    script = folder / f"{name}.js"
    script.write_text(code + f"const CASES = {json.dumps(json.dumps(cases))};\n" + NJS_DRIVER)
    run = subprocess.run(
        [njs, "-t", "module", "-p", str(folder), str(script)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(cases)
    return results
