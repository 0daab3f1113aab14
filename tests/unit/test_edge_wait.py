"""Waiting for the edge after a switch: which viewer is probed, what counts as served, and the bound."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from hosting_toolkit.contract import COHORT_COOKIE, COHORTS, RELEASE_HEADER, RoutingState
from hosting_toolkit.release.edge_wait import CACHE_BUSTER, expected_release, wait_for_edge
from hosting_toolkit.release.verify import Fetched


class Edge:
    """Answers with ``served`` in turn (the last one for ever), on a clock that each request moves a second."""

    def __init__(self, *served: str | None) -> None:
        self.served = list(served)
        self.now = 0.0
        self.requests: list[tuple[str, dict[str, str]]] = []

    def fetch(self, url: str, headers: dict[str, str], timeout: float) -> Fetched:
        self.requests.append((url, headers))
        release = self.served.pop(0) if len(self.served) > 1 else self.served[0]
        if release is None:
            return Fetched(0, error="no response")
        return Fetched(200, {RELEASE_HEADER: release})

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (RoutingState(live="a"), ("a", COHORTS - 1)),
        (RoutingState(live="a", canary="b", weight=10), ("b", 0)),
        (RoutingState(), (None, COHORTS - 1)),
    ],
)
def test_the_probe_is_a_viewer_the_new_state_decides(state: RoutingState, expected: tuple[str | None, int]) -> None:
    assert expected_release(state) == expected


def test_waits_until_the_edge_serves_the_release_and_says_how_long() -> None:
    edge = Edge("old", "old", "new")

    waited = wait_for_edge(
        "https://d1.example", RoutingState(live="new"), fetch=edge.fetch, clock=edge.clock, sleep=edge.sleep, interval=2
    )

    assert waited is not None and waited.ok
    assert (waited.requests, waited.seconds) == (3, 4.0)
    assert "confirmed after 4.0 s, 3 requests" in waited.describe()
    urls = [urlsplit(url) for url, _ in edge.requests]
    assert len({u.query for u in urls}) == 3 and all(u.query.startswith(f"{CACHE_BUSTER}=") for u in urls)
    assert all(h["cookie"].startswith(f"{COHORT_COOKIE}={COHORTS - 1}.") for _, h in edge.requests)


def test_a_canary_is_confirmed_with_a_viewer_inside_it() -> None:
    edge = Edge("b")

    waited = wait_for_edge(
        "https://d1.example/",
        RoutingState(live="a", canary="b", weight=5),
        fetch=edge.fetch,
        clock=edge.clock,
        sleep=edge.sleep,
    )

    assert waited is not None and waited.ok
    assert edge.requests[0][1]["cookie"].startswith(f"{COHORT_COOKIE}=0.")
    assert edge.requests[0][0].startswith("https://d1.example/?")


def test_gives_up_after_the_bound_and_says_the_switch_still_holds() -> None:
    edge = Edge(None)

    waited = wait_for_edge(
        "https://d1.example",
        RoutingState(live="new"),
        timeout=10,
        interval=1,
        fetch=edge.fetch,
        clock=edge.clock,
        sleep=edge.sleep,
    )

    assert waited is not None and not waited.ok
    assert (waited.seconds, waited.requests) == (10, 11)
    assert "did not serve new within 10 s (last answer: no response)" in waited.describe()
    assert "will still reach every location" in waited.describe()


def test_nothing_live_needs_no_wait() -> None:
    edge = Edge("x")

    assert wait_for_edge("https://d1.example", RoutingState(), fetch=edge.fetch) is None
    assert edge.requests == []
