"""Canary, promote and abort in the release engine, and the preview token: one conditional KVS write each."""

from __future__ import annotations

from pathlib import Path

import pytest

from hosting_toolkit.config import HostingConfig, ReleaseConfig
from hosting_toolkit.contract import PREVIEW_TOKEN_KEY, RoutingState
from hosting_toolkit.errors import InvalidInputError, NotFoundError, ReleaseConflictError
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.kvs import LocalKeyValueStore
from hosting_toolkit.release.preview import preview, preview_token
from hosting_toolkit.release.records import JSON_TYPE, PendingMarker, now, pending_key
from hosting_toolkit.release.routing import update_key
from hosting_toolkit.release.storage import LocalObjectStore
from tests.fakes.sites import sample_site


class CountingKvs(LocalKeyValueStore):
    """The local store, counting writes per key."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[str] = []

    def write(self, key: str, value: str, *, if_match: str) -> str:
        self.writes.append(key)
        return super().write(key, value, if_match=if_match)


@pytest.fixture
def engine(tmp_path: Path) -> ReleaseEngine:
    config = HostingConfig(release=ReleaseConfig(concurrency=4, pins=2))
    return ReleaseEngine(
        LocalObjectStore(tmp_path / "bucket"), CountingKvs(tmp_path / "kvs.json"), config, actor="tests"
    )


def releases(engine: ReleaseEngine, tmp_path: Path, *ids: str) -> None:
    for rid in ids:
        engine.create(sample_site(tmp_path / rid, marker=rid), release_id=rid, activate=False)


def writes(engine: ReleaseEngine) -> list[str]:
    assert isinstance(engine.kvs, CountingKvs)
    return engine.kvs.writes


def test_canary_sets_the_release_and_weight_with_one_write_and_keeps_live_and_pins(
    engine: ReleaseEngine, tmp_path: Path
) -> None:
    releases(engine, tmp_path, "one", "two", "three")
    engine.activate("one")
    engine.activate("two")
    before = len(writes(engine))

    change = engine.canary("three", 10)

    assert change.after == RoutingState(live="two", canary="three", weight=10, pins=("one",))
    assert len(writes(engine)) == before + 1
    assert engine.history()[-1].action == "canary"
    assert (engine.history()[-1].from_release, engine.history()[-1].to_release) == ("two", "three")
    assert {i.id: i.state for i in engine.list_releases()} == {"one": "previous", "two": "live", "three": "canary"}


def test_raising_the_canary_weight_is_one_more_write(engine: ReleaseEngine, tmp_path: Path) -> None:
    releases(engine, tmp_path, "one", "two")
    engine.activate("one")
    engine.canary("two", 10)

    change = engine.canary("two", 50)

    assert (change.before.weight, change.after.weight) == (10, 50)
    assert change.after.canary == "two"


@pytest.mark.parametrize("percent", [0, 101, -5, True])
def test_canary_refuses_a_percentage_outside_1_to_100(engine: ReleaseEngine, tmp_path: Path, percent: int) -> None:
    releases(engine, tmp_path, "one", "two")
    engine.activate("one")
    with pytest.raises(InvalidInputError, match="from 1 to 100"):
        engine.canary("two", percent)


def test_canary_refuses_unknown_incomplete_and_live_releases_and_an_empty_site(
    engine: ReleaseEngine, tmp_path: Path
) -> None:
    releases(engine, tmp_path, "one", "two")
    with pytest.raises(InvalidInputError, match="nothing is live yet"):
        engine.canary("two", 10)
    engine.activate("one")
    engine.store.put_bytes(pending_key("half"), PendingMarker("half", "x", now()).to_json(), content_type=JSON_TYPE)
    with pytest.raises(NotFoundError, match="no release ghost"):
        engine.canary("ghost", 10)
    with pytest.raises(InvalidInputError, match="incomplete"):
        engine.canary("half", 10)
    with pytest.raises(InvalidInputError, match="already live"):
        engine.canary("one", 10)
    assert engine.status() == RoutingState(live="one")


def test_promote_makes_the_canary_live_and_pins_the_previous_live_release(
    engine: ReleaseEngine, tmp_path: Path
) -> None:
    releases(engine, tmp_path, "one", "two")
    engine.activate("one")
    engine.canary("two", 25)
    before = len(writes(engine))

    change = engine.promote()

    assert change.after == RoutingState(live="two", pins=("one",))
    assert len(writes(engine)) == before + 1
    entry = engine.history()[-1]
    assert (entry.action, entry.from_release, entry.to_release) == ("promote", "one", "two")
    assert engine.rollback().after.live == "one"


def test_promote_without_a_canary_is_not_found(engine: ReleaseEngine, tmp_path: Path) -> None:
    releases(engine, tmp_path, "one")
    engine.activate("one")
    with pytest.raises(NotFoundError, match="no canary to promote"):
        engine.promote()


def test_promote_refuses_when_the_canary_changed_meanwhile(engine: ReleaseEngine, tmp_path: Path) -> None:
    releases(engine, tmp_path, "one", "two", "three")
    engine.activate("one")
    engine.canary("two", 25)
    real_status = engine.status

    def status_then_race() -> RoutingState:
        state = real_status()
        engine.status = real_status  # type: ignore[method-assign]
        engine.canary("three", 5)
        return state

    engine.status = status_then_race  # type: ignore[method-assign]
    with pytest.raises(ReleaseConflictError, match="changed from two to three"):
        engine.promote()
    assert engine.status().canary == "three"


def test_abort_clears_the_canary_and_leaves_live_and_pins(engine: ReleaseEngine, tmp_path: Path) -> None:
    releases(engine, tmp_path, "one", "two", "three")
    engine.activate("one")
    engine.activate("two")
    engine.canary("three", 40)

    change = engine.abort()

    assert change.after == RoutingState(live="two", pins=("one",))
    entry = engine.history()[-1]
    assert (entry.action, entry.from_release, entry.to_release) == ("abort", "three", "two")
    # An aborted canary was never live: it is staged, and rollback does not go back to it.
    assert {i.id: i.state for i in engine.list_releases()}["three"] == "staged"
    assert engine.rollback().after.live == "one"


def test_abort_without_a_canary_changes_nothing(engine: ReleaseEngine, tmp_path: Path) -> None:
    releases(engine, tmp_path, "one")
    engine.activate("one")
    before = (len(writes(engine)), len(engine.history()))

    change = engine.abort()

    assert change.before == change.after == RoutingState(live="one")
    assert (len(writes(engine)), len(engine.history())) == before


def test_activate_clears_a_running_canary(engine: ReleaseEngine, tmp_path: Path) -> None:
    releases(engine, tmp_path, "one", "two", "three")
    engine.activate("one")
    engine.canary("two", 10)
    assert engine.activate("three").after == RoutingState(live="three", pins=("one",))


def test_prune_keeps_the_canary(engine: ReleaseEngine, tmp_path: Path) -> None:
    releases(engine, tmp_path, "one", "two", "three")
    engine.activate("two")
    engine.canary("one", 10)
    assert set(engine.prune(keep=0).removed) == {"three"}


# --- the preview token --------------------------------------------------------------------------


def test_the_preview_token_is_created_once_then_reused(engine: ReleaseEngine) -> None:
    first = preview_token(engine.kvs)
    again = preview_token(engine.kvs)

    assert first.created and not again.created
    assert first.value == again.value and len(first.value) >= 32 and "." not in first.value
    assert writes(engine) == [PREVIEW_TOKEN_KEY]


def test_rotating_the_preview_token_replaces_it(engine: ReleaseEngine) -> None:
    first = preview_token(engine.kvs)
    rotated = preview_token(engine.kvs, rotate=True)
    assert rotated.created and rotated.value != first.value
    assert engine.kvs.read(PREVIEW_TOKEN_KEY)[0] == rotated.value


def test_preview_refuses_unknown_and_incomplete_releases_without_creating_a_token(
    engine: ReleaseEngine, tmp_path: Path
) -> None:
    engine.store.put_bytes(pending_key("half"), PendingMarker("half", "x", now()).to_json(), content_type=JSON_TYPE)
    with pytest.raises(NotFoundError):
        preview(engine, "ghost", "https://www.example.com")
    with pytest.raises(InvalidInputError, match="incomplete"):
        preview(engine, "half", "https://www.example.com")
    with pytest.raises(InvalidInputError, match="not a valid release id"):
        preview(engine, "../x", "https://www.example.com")
    assert writes(engine) == []


def test_preview_link_carries_the_release_and_token(engine: ReleaseEngine, tmp_path: Path) -> None:
    releases(engine, tmp_path, "v1.2")
    shown = preview(engine, "v1.2", "https://www.example.com/")
    assert shown.url == f"https://www.example.com/?__preview=v1.2&__token={shown.token}"
    assert preview(engine, "v1.2", None).url == f"/?__preview=v1.2&__token={shown.token}"


def test_update_key_never_writes_the_routing_state_and_retries_conflicts(tmp_path: Path) -> None:
    kvs = CountingKvs(tmp_path / "kvs.json")
    seen: list[str | None] = []

    def change(value: str | None) -> str:
        seen.append(value)
        if len(seen) == 1:
            # Another writer changes the store between this read and the write.
            etag = kvs.read("other")[1]
            LocalKeyValueStore.write(kvs, "other", "x", if_match=etag)
        return (value or "") + "a"

    result = update_key(kvs, "counter", change, sleep=lambda _: None)

    assert result.attempts == 2 and result.after == "a"
    assert kvs.read("counter")[0] == "a"
