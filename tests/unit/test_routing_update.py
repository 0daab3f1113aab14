"""The one writer of the routing state: conditional writes, re-read and retry after a conflict."""

from __future__ import annotations

import pytest

from hosting_toolkit.contract import ROUTING_KEY, RoutingState
from hosting_toolkit.errors import BackendError, ReleaseConflictError
from hosting_toolkit.release.kvs import KvsConflict
from hosting_toolkit.release.routing import MAX_ATTEMPTS, read_routing, update_routing


class RacingKvs:
    """A store another writer changes between each read and write, ``conflicts`` times."""

    def __init__(self, conflicts: int, value: str | None = None) -> None:
        self.conflicts = conflicts
        self.value = value
        self.version = 0
        self.reads: list[str] = []
        self.writes: list[tuple[str, str, str]] = []

    @property
    def description(self) -> str:
        return "racing test store"

    def read(self, key: str) -> tuple[str | None, str]:
        etag = f"v{self.version}"
        if key != ROUTING_KEY:
            # No release here has a rules key.
            return None, etag
        self.reads.append(etag)
        return self.value, etag

    def write(self, key: str, value: str, *, if_match: str) -> str:
        self.writes.append((key, value, if_match))
        if self.conflicts > 0:
            # Another writer got in first: it adds itself to the pins.
            self.conflicts -= 1
            self.version += 1
            state = RoutingState.from_json(self.value)
            self.value = RoutingState(live=state.live, pins=(*state.pins, f"other{self.version}")).to_json()
            raise KvsConflict(f"ETag is v{self.version}, not {if_match}")
        assert if_match == f"v{self.version}"
        self.version += 1
        self.value = value
        return f"v{self.version}"


def make_live(release_id: str, seen: list[RoutingState]):  # type: ignore[no-untyped-def]
    def change(state: RoutingState) -> RoutingState:
        seen.append(state)
        return RoutingState(live=release_id, pins=state.pins)

    return change


def test_write_names_the_etag_it_read() -> None:
    kvs = RacingKvs(conflicts=0)

    result = update_routing(kvs, make_live("a", []), sleep=lambda _: None)

    assert kvs.writes == [(ROUTING_KEY, '{"live":"a"}', "v0")]
    assert (result.before, result.after, result.attempts) == (RoutingState(), RoutingState(live="a"), 1)


def test_conflicts_re_read_and_apply_the_change_to_the_fresh_state() -> None:
    kvs = RacingKvs(conflicts=3)
    seen: list[RoutingState] = []
    sleeps: list[float] = []

    result = update_routing(kvs, make_live("mine", seen), sleep=sleeps.append)

    assert result.attempts == 4
    assert kvs.reads == ["v0", "v1", "v2", "v3"]
    assert [w[2] for w in kvs.writes] == ["v0", "v1", "v2", "v3"]
    assert [s.pins for s in seen] == [(), ("other1",), ("other1", "other2"), ("other1", "other2", "other3")]
    assert RoutingState.from_json(kvs.value) == RoutingState(live="mine", pins=("other1", "other2", "other3"))
    assert len(sleeps) == 3 and all(0 <= s <= 0.5 for s in sleeps)


def test_gives_up_after_max_attempts_with_a_release_conflict() -> None:
    kvs = RacingKvs(conflicts=MAX_ATTEMPTS)
    seen: list[RoutingState] = []

    with pytest.raises(ReleaseConflictError, match=f"gave up after {MAX_ATTEMPTS} attempts"):
        update_routing(kvs, make_live("mine", seen), sleep=lambda _: None)

    assert len(kvs.reads) == len(kvs.writes) == len(seen) == MAX_ATTEMPTS
    assert RoutingState.from_json(kvs.value).live is None


def test_succeeds_on_the_last_allowed_attempt() -> None:
    kvs = RacingKvs(conflicts=MAX_ATTEMPTS - 1)

    result = update_routing(kvs, make_live("mine", []), sleep=lambda _: None)

    assert result.attempts == MAX_ATTEMPTS
    assert RoutingState.from_json(kvs.value).live == "mine"


def test_unchanged_state_is_not_written() -> None:
    kvs = RacingKvs(conflicts=0, value='{"live":"a"}')

    result = update_routing(kvs, lambda state: state, sleep=lambda _: None)

    assert kvs.writes == []
    assert result.before == result.after == RoutingState(live="a")


def test_unreadable_routing_state_is_a_backend_error() -> None:
    kvs = RacingKvs(conflicts=0, value="{not json")

    with pytest.raises(BackendError, match="racing test store"):
        read_routing(kvs)


def test_routing_state_json_is_compact_and_bounded() -> None:
    state = RoutingState(live="a", canary="b", weight=10, pins=("c", "d"))

    assert state.to_json() == '{"live":"a","canary":"b","weight":10,"pins":["c","d"]}'
    assert RoutingState.from_json(state.to_json()) == state
    assert RoutingState.from_json(None) == RoutingState.from_json("") == RoutingState()
    with pytest.raises(ValueError, match="over the KVS limit"):
        RoutingState(live="a", pins=tuple(f"release-{n:030d}" for n in range(40))).to_json()
