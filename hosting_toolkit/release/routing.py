"""The one place that writes the routing state: read with the ETag, change, write with ``IfMatch``."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from hosting_toolkit.contract import ROUTING_KEY, RoutingState
from hosting_toolkit.errors import BackendError, ReleaseConflictError
from hosting_toolkit.release.kvs import KeyValueStore, KvsConflict

MAX_ATTEMPTS = 12


@dataclass(frozen=True)
class RoutingChange:
    """The state a write replaced, the state it wrote, and how many attempts it took."""

    before: RoutingState
    after: RoutingState
    attempts: int


def read_routing(kvs: KeyValueStore) -> tuple[RoutingState, str]:
    """The current routing state and the store ETag it was read at."""
    value, etag = kvs.read(ROUTING_KEY)
    try:
        return RoutingState.from_json(value), etag
    except ValueError as exc:
        raise BackendError(f"the routing state in {kvs.description} is not valid JSON: {exc}") from exc


def update_routing(
    kvs: KeyValueStore,
    change: Callable[[RoutingState], RoutingState],
    *,
    attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> RoutingChange:
    """Apply ``change`` to the current state in one conditional write, re-reading after each conflict.

    ``change`` is called again on the fresh state after a conflict, so a racing writer's update is
    never lost: every successful write is computed from the state it replaces.
    """
    for attempt in range(1, attempts + 1):
        before, etag = read_routing(kvs)
        after = change(before)
        if after == before:
            return RoutingChange(before, after, attempt)
        try:
            kvs.write(ROUTING_KEY, after.to_json(), if_match=etag)
        except KvsConflict:
            sleep(min(0.5, 0.01 * 2**attempt) * random.random())
            continue
        return RoutingChange(before, after, attempt)
    raise ReleaseConflictError(f"the routing state kept changing; gave up after {attempts} attempts")
