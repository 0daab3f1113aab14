"""The one place that writes the key-value store: read with the ETag, change, write with ``IfMatch``.

The routing state has its typed helpers; any other key (the preview token) goes through the same
conditional update.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from hosting_toolkit.contract import ROUTING_KEY, RoutingState, rules_key
from hosting_toolkit.errors import BackendError, ReleaseConflictError
from hosting_toolkit.release.kvs import KeyValueStore, KvsConflict

MAX_ATTEMPTS = 12


@dataclass(frozen=True)
class RoutingChange:
    """The state a write replaced, the state it wrote, and how many attempts it took."""

    before: RoutingState
    after: RoutingState
    attempts: int


@dataclass(frozen=True)
class KeyChange:
    """The value a write replaced (``None``: absent), the value it wrote, and how many attempts it took."""

    before: str | None
    after: str | None
    attempts: int


def _parse(kvs: KeyValueStore, value: str | None) -> RoutingState:
    try:
        return RoutingState.from_json(value)
    except ValueError as exc:
        raise BackendError(f"the routing state in {kvs.description} is not valid JSON: {exc}") from exc


def read_routing(kvs: KeyValueStore) -> tuple[RoutingState, str]:
    """The current routing state and the store ETag it was read at."""
    value, etag = kvs.read(ROUTING_KEY)
    return _parse(kvs, value), etag


def update_key(
    kvs: KeyValueStore,
    key: str,
    change: Callable[[str | None], str | None],
    *,
    attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> KeyChange:
    """Apply ``change`` to the value of ``key`` in one conditional write, re-reading after each conflict.

    ``change`` is called again on the fresh value after a conflict, so a racing writer's update is
    never lost; returning the value unchanged (or ``None``: keys are never deleted) writes nothing.
    """
    for attempt in range(1, attempts + 1):
        before, etag = kvs.read(key)
        after = change(before)
        if after == before or after is None:
            return KeyChange(before, before, attempt)
        try:
            kvs.write(key, after, if_match=etag)
        except KvsConflict:
            sleep(min(0.5, 0.01 * 2**attempt) * random.random())
            continue
        return KeyChange(before, after, attempt)
    what = "the routing state" if key == ROUTING_KEY else f"the key {key!r}"
    raise ReleaseConflictError(f"{what} kept changing; gave up after {attempts} attempts")


def rules_marks(
    kvs: KeyValueStore,
    releases: Iterable[str],
    *,
    known: Iterable[str] = (),
    marks: Iterable[str] = (),
    looked_up: dict[str, bool] | None = None,
) -> tuple[str, ...]:
    """Which of ``releases`` have a rules key, for the ``rules`` marks of a routing or preview state.

    A release's rules key is written before it can take traffic and removed only once it serves no
    one, so a release ``known`` to the earlier state keeps its mark (in ``marks`` or not); only the
    others cost a read each (once per ``looked_up``).
    """
    known, marks = set(known), set(marks)
    looked_up = {} if looked_up is None else looked_up

    def has_rules(release: str) -> bool:
        if release in known:
            return release in marks
        if release not in looked_up:
            looked_up[release] = kvs.read(rules_key(release))[0] is not None
        return looked_up[release]

    return tuple(r for r in releases if has_rules(r))


def marked(
    kvs: KeyValueStore, before: RoutingState, after: RoutingState, looked_up: dict[str, bool] | None = None
) -> RoutingState:
    """``after`` with ``rules`` naming exactly its serving releases that have a rules key
    (``rules_marks``); the oldest pins go while the marked state is over one KVS value."""
    rules = rules_marks(kvs, after.serving, known=before.serving, marks=before.rules, looked_up=looked_up)
    state = replace(after, rules=rules)
    while True:
        try:
            state.to_json()
            return state
        except ValueError:
            if not state.pins:
                raise
            pins = state.pins[:-1]
            state = replace(
                state, pins=pins, rules=tuple(r for r in state.rules if r in (state.live, state.canary, *pins))
            )


def update_routing(
    kvs: KeyValueStore,
    change: Callable[[RoutingState], RoutingState],
    *,
    attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> RoutingChange:
    """Apply ``change`` to the current routing state in one conditional write (see ``update_key``).

    Every routing change goes through here, so the rules marks always follow the releases (``marked``).
    """
    seen: list[tuple[RoutingState, RoutingState]] = []
    looked_up: dict[str, bool] = {}

    def change_text(value: str | None) -> str | None:
        before = _parse(kvs, value)
        after = marked(kvs, before, change(before), looked_up)
        seen.append((before, after))
        return value if after == before else after.to_json()

    result = update_key(kvs, ROUTING_KEY, change_text, attempts=attempts, sleep=sleep)
    before, after = seen[-1]
    return RoutingChange(before, after, result.attempts)


def delete_key(
    kvs: KeyValueStore,
    key: str,
    *,
    unless: Callable[[str], bool] = lambda _: False,
    attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> KeyChange:
    """Delete ``key`` in one conditional write, re-reading after each conflict; absent: nothing written.

    ``unless`` sees the current value and may keep the key (a racing writer's newer value).
    """
    if key == ROUTING_KEY:
        raise BackendError("the routing state is never deleted")
    for attempt in range(1, attempts + 1):
        before, etag = kvs.read(key)
        if before is None or unless(before):
            return KeyChange(before, before, attempt)
        try:
            kvs.delete(key, if_match=etag)
        except KvsConflict:
            sleep(min(0.5, 0.01 * 2**attempt) * random.random())
            continue
        return KeyChange(before, None, attempt)
    raise ReleaseConflictError(f"the key {key!r} kept changing; gave up after {attempts} attempts")
