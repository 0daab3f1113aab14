"""Rollout steps in the release engine: a compare-and-set on what the rollout owns, idempotent, stoppable."""

from __future__ import annotations

from pathlib import Path

import pytest

from hosting_toolkit.config import HostingConfig, ReleaseConfig
from hosting_toolkit.contract import RoutingState
from hosting_toolkit.errors import InvalidInputError, NotFoundError
from hosting_toolkit.release.edge_wait import EdgeWait
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.kvs import KvsConflict, LocalKeyValueStore
from hosting_toolkit.release.rollout import Owned, Rollouts
from hosting_toolkit.release.storage import LocalObjectStore
from tests.fakes.sites import sample_site


class CountingKvs(LocalKeyValueStore):
    """The local store, counting writes; ``before_write`` runs once before the next write (a racing person)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes = 0
        self.before_write: list[object] = []

    def write(self, key: str, value: str, *, if_match: str) -> str:
        while self.before_write:
            action = self.before_write.pop()
            assert callable(action)
            action()
        self.writes += 1
        return super().write(key, value, if_match=if_match)


@pytest.fixture
def engine(tmp_path: Path) -> ReleaseEngine:
    config = HostingConfig(release=ReleaseConfig(concurrency=4, pins=2))
    engine = ReleaseEngine(
        LocalObjectStore(tmp_path / "bucket"), CountingKvs(tmp_path / "kvs.json"), config, actor="tests"
    )
    for rid in ("one", "two"):
        engine.create(sample_site(tmp_path / rid, marker=rid), release_id=rid, activate=False)
    return engine


def kvs(engine: ReleaseEngine) -> CountingKvs:
    assert isinstance(engine.kvs, CountingKvs)
    return engine.kvs


def test_the_first_step_of_a_site_with_nothing_live_makes_the_release_live(engine: ReleaseEngine) -> None:
    result = Rollouts(engine).step("r1", "one", 10, 0)

    assert result.outcome == "live"
    assert engine.status() == RoutingState(live="one")
    assert "nothing was live: one is live for every viewer (a canary needs a live release beside it)" in result.message
    (entry,) = engine.switches()
    assert (entry.action, entry.to_release, entry.automatic, entry.rollout) == ("activate", "one", True, "r1")
    assert Rollouts(engine).step("r1", "one", 100, 1).outcome == "unchanged"


def test_steps_give_their_share_then_everyone_with_one_write_each(engine: ReleaseEngine) -> None:
    engine.activate("one")
    rollouts = Rollouts(engine)
    writes = kvs(engine).writes

    outcomes = [rollouts.step("r1", "two", p, i).outcome for i, p in enumerate((10, 50, 100))]

    assert outcomes == ["shifted", "shifted", "shifted"]
    assert kvs(engine).writes == writes + 3
    assert engine.status() == RoutingState(live="two", pins=("one",))
    assert [e.action for e in engine.switches()] == ["promote", "canary", "canary", "activate"]


@pytest.mark.parametrize("percent", [10, 100])
def test_a_step_the_release_already_has_writes_nothing(engine: ReleaseEngine, percent: int) -> None:
    """A re-run of the same commit or an identical ZIP rolls out the live release again: nothing moves."""
    engine.activate("two")
    writes = kvs(engine).writes

    result = Rollouts(engine).step("r2", "two", percent, 0)

    assert result.outcome == "unchanged"
    assert kvs(engine).writes == writes
    assert engine.status() == RoutingState(live="two")


def test_a_smaller_share_than_the_canary_has_is_kept(engine: ReleaseEngine) -> None:
    engine.activate("one")
    rollouts = Rollouts(engine)
    rollouts.step("r1", "two", 50, 0)

    assert rollouts.step("r1", "two", 10, 1).outcome == "unchanged"
    assert engine.status().weight == 50


def test_a_step_after_a_manual_abort_stops_without_writing(engine: ReleaseEngine) -> None:
    engine.activate("one")
    rollouts = Rollouts(engine)
    rollouts.step("r1", "two", 10, 0)
    engine.abort()
    writes = kvs(engine).writes

    result = rollouts.step("r1", "two", 100, 1)

    assert result.outcome == "stopped"
    assert kvs(engine).writes == writes
    assert engine.status() == RoutingState(live="one")
    assert result.record.state == "taken-over"
    assert "expected live one, canary two at 10%, found live one, no canary" in result.message
    # Once taken over, every later step stops too.
    assert rollouts.step("r1", "two", 100, 2).outcome == "stopped"


def test_a_person_switching_between_the_steps_read_and_its_write_wins(engine: ReleaseEngine) -> None:
    engine.activate("one")
    rollouts = Rollouts(engine)
    rollouts.step("r1", "two", 10, 0)
    kvs(engine).before_write.append(lambda: ReleaseEngine(engine.store, engine.kvs, engine.config).abort())

    result = rollouts.step("r1", "two", 100, 1)

    assert result.outcome == "stopped"
    assert engine.status() == RoutingState(live="one")


def test_stop_aborts_the_canary_and_every_later_step_stops(engine: ReleaseEngine) -> None:
    engine.activate("one")
    rollouts = Rollouts(engine)
    rollouts.step("r1", "two", 10, 0)

    stopped = rollouts.stop()

    assert stopped.outcome == "aborted"
    assert engine.status() == RoutingState(live="one")
    assert rollouts.step("r1", "two", 100, 1).outcome == "stopped"
    assert engine.status() == RoutingState(live="one")
    assert engine.switches()[0].automatic is False


def test_undo_returns_to_the_live_release_before_the_rollout(engine: ReleaseEngine) -> None:
    engine.activate("one")
    rollouts = Rollouts(engine)
    rollouts.step("r1", "two", 100, 0)

    undone = rollouts.undo("r1", "two", "alarm checkout-errors fired")

    assert undone.outcome == "rolled-back"
    assert engine.status().live == "one"
    latest = engine.switches()[0]
    assert (latest.action, latest.automatic, latest.reason) == ("rollback", True, "alarm checkout-errors fired")


def test_undo_never_rolls_back_a_release_that_was_live_before_the_rollout(engine: ReleaseEngine) -> None:
    engine.activate("one")
    engine.activate("two")
    rollouts = Rollouts(engine)
    rollouts.step("r2", "two", 10, 0)

    undone = rollouts.undo("r2", "two", "alarm")

    assert undone.outcome == "nothing"
    assert engine.status().live == "two"


def test_undo_after_a_person_took_over_changes_nothing(engine: ReleaseEngine) -> None:
    engine.activate("one")
    rollouts = Rollouts(engine)
    rollouts.step("r1", "two", 10, 0)
    engine.canary("two", 30)
    writes = kvs(engine).writes

    undone = rollouts.undo("r1", "two", "alarm")

    assert undone.outcome == "taken-over"
    assert kvs(engine).writes == writes
    assert engine.status() == RoutingState(live="one", canary="two", weight=30)


def test_a_step_waits_for_the_edge_and_keeps_how_long_it_took(engine: ReleaseEngine) -> None:
    seen: list[RoutingState] = []

    def wait(state: RoutingState) -> EdgeWait:
        seen.append(state)
        return EdgeWait("one", "one", 4.25, 3, True)

    result = Rollouts(engine).step("r1", "one", 100, 0, steps=1, watch_minutes=10, wait=wait)

    assert seen == [RoutingState(live="one")]
    assert (result.record.edge_seconds, result.record.watch_minutes, result.record.steps) == (4.2, 10, 1)
    assert result.record.served_at >= result.record.started


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.step("r1", "two", 10, 1), r"its first step \(index 0\) never ran"),
        (lambda r: r.step("bad id", "two", 10, 0), "is not a valid rollout id"),
        (lambda r: r.step("r1", "two", 0, 0), "from 1 to 100"),
        (lambda r: r.step("r1", "ghost", 10, 0), "no release ghost"),
        (lambda r: r.undo("r1", "x --to y"), "is not a valid release id"),
        (lambda r: r.stop(), "no rollout has run on this site"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(engine: ReleaseEngine, call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises((InvalidInputError, NotFoundError), match=message):
        call(Rollouts(engine))


def test_a_step_of_another_release_under_the_same_rollout_is_refused(engine: ReleaseEngine) -> None:
    engine.activate("one")
    rollouts = Rollouts(engine)
    rollouts.step("r1", "two", 10, 0)

    with pytest.raises(InvalidInputError, match="rollout r1 rolls out two, not one"):
        rollouts.step("r1", "one", 100, 1)


def test_owned_ignores_a_weight_without_canary() -> None:
    assert Owned.of(RoutingState(live="a", weight=5)) == Owned("a", None, 0)
    assert KvsConflict  # the module's conflict type is what the engine retries on
