"""Wait for the edge: after a switch, poll the site until it serves the new routing state.

A KeyValueStore write reaches every CloudFront location within seconds, not at once. A switch is
confirmed by asking the site, with a fresh cache-busting query each time, which release serves a
viewer of the cohort that matters: a viewer inside the canary for a canary step, a viewer that no
canary can hold for everything else. The router answers every request (cache hit or not) after
reading the store, so the ``x-release`` header shows the state the location has.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from hosting_toolkit import __version__
from hosting_toolkit.contract import COHORT_COOKIE, COHORTS, RELEASE_HEADER, RoutingState
from hosting_toolkit.release.verify import Fetch, http_fetch

#: How long a switch waits for the edge by default.
EDGE_WAIT_SECONDS = 60.0
#: Pause between two requests while waiting.
EDGE_POLL_SECONDS = 1.0
#: The query parameter that makes every wait request unique.
CACHE_BUSTER = "__edge"


@dataclass(frozen=True)
class EdgeWait:
    """How a wait ended: whether the edge served ``expected``, what it served last, after how long."""

    expected: str
    served: str | None
    seconds: float
    requests: int
    ok: bool
    error: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"the edge serves {self.expected} (confirmed after {self.seconds:.1f} s, {self.requests} requests)"
        seen = self.served or self.error or "no x-release header"
        return (
            f"the edge did not serve {self.expected} within {self.seconds:.0f} s (last answer: {seen}); "
            "the switch is written and will still reach every location"
        )


def expected_release(state: RoutingState) -> tuple[str | None, int]:
    """The release a probe viewer must get in ``state``, and the cohort that probe carries.

    With a canary, the probe is in cohort 0, which every canary weight includes; without one, in the
    last cohort, which only a canary at 100% would include.
    """
    if state.canary and state.weight > 0:
        return state.canary, 0
    return state.live, COHORTS - 1


def wait_for_edge(
    site_url: str,
    state: RoutingState,
    *,
    timeout: float = EDGE_WAIT_SECONDS,
    interval: float = EDGE_POLL_SECONDS,
    fetch: Fetch = http_fetch,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> EdgeWait | None:
    """Poll ``site_url`` until a probe viewer gets the release ``state`` gives it; ``None`` when nothing is live."""
    expected, cohort = expected_release(state)
    if expected is None:
        return None
    started = clock()
    requests = 0
    served: str | None = None
    error: str | None = None
    base = site_url.rstrip("/")
    while True:
        requests += 1
        cookie = f"{COHORT_COOKIE}={cohort}.{int(time.time())}"
        headers = {"cookie": cookie, "user-agent": f"hosting-toolkit/{__version__} (edge wait)"}
        answer = fetch(f"{base}/?{CACHE_BUSTER}={secrets.token_hex(6)}", headers, min(10.0, max(timeout, 1.0)))
        served, error = answer.headers.get(RELEASE_HEADER), answer.error
        elapsed = clock() - started
        if served == expected:
            return EdgeWait(expected, served, elapsed, requests, True)
        if elapsed + interval > timeout:
            return EdgeWait(expected, served, elapsed, requests, False, error)
        sleep(interval)
