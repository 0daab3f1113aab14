"""Canary cohorts: the router and the viewer-response function together, over thousands of simulated viewers.

Each viewer is a distinct CloudFront request id; its cookie goes back through the real HTTP shapes
(``Set-Cookie`` from the viewer-response result, ``Cookie`` into the next request's event).
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from hosting_toolkit.config import HostingConfig, RolloutConfig
from hosting_toolkit.contract import (
    COHORT_COOKIE,
    COHORTS,
    RELEASE_COOKIE,
    RELEASE_METADATA_KEY,
    ROUTING_KEY,
    RoutingState,
)
from hosting_toolkit.edge.code import render_router, render_viewer_response
from hosting_toolkit.edge.events import http_response, viewer_request_event, viewer_response_event
from hosting_toolkit.edge.sandbox import FunctionSandbox

pytestmark = pytest.mark.node

LIVE = "1111aaaa1111"
CANARY = "2222bbbb2222"
VIEWERS = 10_000
IDLE = 1800
MAXIMUM = 7200
CONFIG = HostingConfig(rollout=RolloutConfig(cohort_idle_seconds=IDLE, cohort_max_seconds=MAXIMUM))


@pytest.fixture(scope="module")
def sandbox(function_sandbox: FunctionSandbox) -> Iterator[FunctionSandbox]:
    function_sandbox.load("router", render_router(CONFIG))
    function_sandbox.load("viewer-response", render_viewer_response(CONFIG))
    yield function_sandbox


def routing(weight: int) -> dict[str, str]:
    return {ROUTING_KEY: RoutingState(live=LIVE, canary=CANARY, weight=weight).to_json()}


def request_ids(count: int, seed: int) -> list[str]:
    """Ids shaped like CloudFront's: 56 characters of URL-safe base64."""
    rng = random.Random(seed)
    return [base64.urlsafe_b64encode(rng.randbytes(42)).decode() for _ in range(count)]


@dataclass(frozen=True)
class Page:
    """What one page view gave a viewer: the release and the cookies to send next time."""

    release: str
    cookie_header: str
    set_cookies: dict[str, tuple[str, str]]


def released(request: dict[str, Any]) -> str:
    return str(request["uri"]).split("/")[2]


def view_pages(
    sandbox: FunctionSandbox, weight: int, ids: Sequence[str], cookies: Sequence[str | None], path: str = "/"
) -> list[Page]:
    """One page view per viewer: router, origin answer, viewer-response, the browser's cookie jar."""
    requests = [
        viewer_request_event("GET", path, [("Cookie", cookie)] if cookie else [], request_id=rid)
        for rid, cookie in zip(ids, cookies, strict=True)
    ]
    routed = sandbox.invoke_many("router", requests, routing(weight))
    responses = []
    for rid, invocation in zip(ids, routed, strict=True):
        assert invocation.ok and invocation.result is not None, invocation.error
        headers = [("Content-Type", "text/html"), (f"x-amz-meta-{RELEASE_METADATA_KEY}", released(invocation.result))]
        responses.append(viewer_response_event(invocation.result, 200, headers, request_id=rid))
    finished = sandbox.invoke_many("viewer-response", responses)
    pages = []
    for previous, invocation, routed_one in zip(cookies, finished, routed, strict=True):
        assert invocation.ok and invocation.result is not None, invocation.error
        jar = dict(part.split("=", 1) for part in (previous or "").split("; ") if part)
        set_cookies: dict[str, tuple[str, str]] = {}
        for name, value in http_response(invocation.result).headers:
            if name == "set-cookie":
                pair, _, attributes = value.partition("; ")
                cookie_name, _, cookie_value = pair.partition("=")
                set_cookies[cookie_name] = (cookie_value, attributes)
                jar[cookie_name] = cookie_value
        assert routed_one.result is not None
        page = Page(released(routed_one.result), "; ".join(f"{k}={v}" for k, v in jar.items()), set_cookies)
        pages.append(page)
    return pages


def first_visits(sandbox: FunctionSandbox, weight: int, seed: int) -> list[Page]:
    ids = request_ids(VIEWERS, seed)
    return view_pages(sandbox, weight, ids, [None] * VIEWERS)


def share(pages: Sequence[Page]) -> float:
    return 100 * sum(page.release == CANARY for page in pages) / len(pages)


@pytest.mark.parametrize("weight", [1, 10, 33, 50])
def test_canary_share_over_ten_thousand_viewers_is_within_one_and_a_half_points(
    sandbox: FunctionSandbox, weight: int
) -> None:
    pages = first_visits(sandbox, weight, seed=weight)

    assert abs(share(pages) - weight) <= 1.5, share(pages)
    # Without a cookie, both functions derive the same cohort from the request id: the cookie
    # the viewer-response sets names the cohort the router chose by.
    for page in pages:
        cohort = int(page.set_cookies[COHORT_COOKIE][0].split(".")[0])
        assert 0 <= cohort < COHORTS
        assert (cohort < weight * COHORTS // 100) == (page.release == CANARY)


def test_raising_the_weight_moves_no_viewer_out_of_the_canary(sandbox: FunctionSandbox) -> None:
    pages = first_visits(sandbox, 10, seed=7)
    in_canary = {i for i, page in enumerate(pages) if page.release == CANARY}
    for step, weight in enumerate((25, 50)):
        ids = request_ids(VIEWERS, seed=100 + step)
        pages = view_pages(sandbox, weight, ids, [p.cookie_header for p in pages])
        now_in = {i for i, page in enumerate(pages) if page.release == CANARY}
        assert in_canary <= now_in, f"{len(in_canary - now_in)} viewers left the canary at {weight}%"
        assert abs(100 * len(now_in) / VIEWERS - weight) <= 1.5
        in_canary = now_in


def test_a_viewer_never_flips_between_releases_at_one_weight(sandbox: FunctionSandbox) -> None:
    ids = request_ids(500, seed=3)
    pages = view_pages(sandbox, 30, ids, [None] * len(ids))
    chosen = [p.release for p in pages]
    for visit in range(5):
        pages = view_pages(sandbox, 30, request_ids(500, seed=40 + visit), [p.cookie_header for p in pages])
        assert [p.release for p in pages] == chosen


def cookie_after(sandbox: FunctionSandbox, cookie: str, request_id: str = "viewer-1") -> tuple[str, str, str]:
    """The cohort cookie value and attributes a page response sets, and the release the page came from."""
    page = view_pages(sandbox, 50, [request_id], [cookie])[0]
    value, attributes = page.set_cookies[COHORT_COOKIE]
    return value, attributes, page.release


def test_each_page_view_restarts_the_idle_lifetime_of_the_cohort_cookie(sandbox: FunctionSandbox) -> None:
    issued = int(time.time()) - 600
    value, attributes, release = cookie_after(sandbox, f"{COHORT_COOKIE}=42.{issued}")
    assert value == f"42.{issued}"
    assert attributes == f"Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={IDLE}"
    assert release == CANARY


def test_the_cohort_cookie_never_outlives_its_maximum_lifetime(sandbox: FunctionSandbox) -> None:
    issued = int(time.time()) - (MAXIMUM - 100)
    value, attributes, _ = cookie_after(sandbox, f"{COHORT_COOKIE}=42.{issued}")
    assert value == f"42.{issued}"
    max_age = int(attributes.rsplit("Max-Age=", 1)[1])
    assert 95 <= max_age <= 101


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(f"{COHORT_COOKIE}=42.{int(time.time()) - MAXIMUM - 5}", id="past-its-maximum-lifetime"),
        pytest.param(f"{COHORT_COOKIE}=12345.{int(time.time())}", id="cohort-out-of-range"),
        pytest.param(f"{COHORT_COOKIE}=-1.{int(time.time())}", id="negative-cohort"),
        pytest.param(f"{COHORT_COOKIE}=abc", id="malformed"),
        pytest.param(f"{COHORT_COOKIE}=1.2.3", id="too-many-parts"),
        pytest.param(f"{COHORT_COOKIE}=", id="empty"),
    ],
)
def test_an_expired_or_invalid_cohort_is_drawn_again_the_same_way_by_both_functions(
    sandbox: FunctionSandbox, cookie: str
) -> None:
    fresh_value, _, fresh_release = cookie_after(sandbox, "", request_id="viewer-9")
    value, attributes, release = cookie_after(sandbox, cookie, request_id="viewer-9")
    cohort, issued = value.split(".")
    assert cohort == fresh_value.split(".")[0]
    assert abs(int(issued) - time.time()) < 5
    assert attributes.endswith(f"Max-Age={IDLE}")
    assert release == fresh_release == (CANARY if int(cohort) < 50 * COHORTS // 100 else LIVE)


def test_assets_never_get_a_cohort_cookie_and_pages_keep_the_release_pin(sandbox: FunctionSandbox) -> None:
    request = viewer_request_event("GET", "/assets/app.js", request_id="viewer-2")
    routed = sandbox.invoke("router", request, routing(50)).result
    assert routed is not None
    headers = [("Content-Type", "text/javascript"), (f"x-amz-meta-{RELEASE_METADATA_KEY}", released(routed))]
    result = sandbox.invoke("viewer-response", viewer_response_event(routed, 200, headers, request_id="viewer-2"))
    assert result.result is not None and COHORT_COOKIE not in result.result["cookies"]
    page = cookie_after(sandbox, "")
    assert page[2] in (LIVE, CANARY)
    pages = view_pages(sandbox, 50, ["viewer-3"], [None])
    assert pages[0].set_cookies[RELEASE_COOKIE][0] == pages[0].release


def test_the_common_and_canary_paths_read_the_kvs_once(sandbox: FunctionSandbox) -> None:
    events = [
        viewer_request_event("GET", path, request_id=rid) for rid in request_ids(200, 5) for path in ("/", "/a.js")
    ]
    for weight in (1, 50, 100):
        assert {i.kvs_reads for i in sandbox.invoke_many("router", events, routing(weight))} == {1}
