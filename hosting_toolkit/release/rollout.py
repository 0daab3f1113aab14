"""Automated rollouts: the steps the pipeline's rollout runs, each a compare-and-set on what it owns.

A rollout owns the part of the routing state it moves: the live release, the canary and its weight.
Its record (``_meta/rollouts/runs/<rollout>.json``) keeps that part as the rollout left it; each
step and the final undo first compare it with the store, inside the same conditional write, and
change nothing when they differ: a person who aborted the canary, activated or rolled back a release
meanwhile has taken over, and the rollout stops. ``stop`` leaves a marker that every later step
honours, so a stopped rollout never moves a viewer again.

Steps are idempotent: a step asking for a share the release already has (or more) succeeds without
writing, so a re-run of the same commit, a retried build or an identical ZIP never rolls the site
back. With nothing live, the first step makes the release live for everyone: there is nothing to
compare a canary with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from hosting_toolkit.contract import RoutingState, is_release_id
from hosting_toolkit.errors import InvalidInputError, NotFoundError
from hosting_toolkit.release.edge_wait import EdgeWait
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.records import JSON_TYPE, ROLLOUTS_PREFIX, now
from hosting_toolkit.release.routing import RoutingChange

#: What a rollout step did; the pipeline's state machine stops the rollout on ``stopped``.
Outcome = Literal["shifted", "live", "unchanged", "stopped"]
#: What an undo did.
UndoOutcome = Literal["aborted", "rolled-back", "kept-live", "taken-over", "nothing"]
RolloutState = Literal["running", "stopped", "taken-over", "rolled-back"]

RUNS_PREFIX = f"{ROLLOUTS_PREFIX}runs/"
STOPS_PREFIX = f"{ROLLOUTS_PREFIX}stops/"
LATEST_KEY = f"{ROLLOUTS_PREFIX}latest.json"
#: Rollout ids: Step Functions execution names, or any name a person gives.
_ROLLOUT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")

Waiter = Callable[[RoutingState], EdgeWait | None]


def check_rollout_id(value: str) -> str:
    if not _ROLLOUT_ID.match(value):
        raise InvalidInputError(f"{value!r} is not a valid rollout id: 1-80 of A-Z a-z 0-9 . _ - starting with one")
    return value


@dataclass(frozen=True)
class Owned:
    """The part of the routing state a rollout moves: the live release, the canary and its weight."""

    live: str | None
    canary: str | None
    weight: int

    @classmethod
    def of(cls, state: RoutingState) -> Owned:
        return cls(state.live, state.canary, state.weight if state.canary else 0)

    def describe(self) -> str:
        live = self.live or "nothing"
        return f"live {live}, canary {self.canary} at {self.weight}%" if self.canary else f"live {live}, no canary"


@dataclass(frozen=True)
class RolloutRecord:
    """One rollout as its steps left it."""

    id: str
    release: str
    started: str
    updated: str
    state: RolloutState
    #: The last step done (0-based; -1 before the first) and the share of viewers it gave.
    step: int
    percent: int
    #: The owned routing when the rollout started, and as its last step left it.
    before: Owned
    owned: Owned
    #: When the edge served the last step (the watch of that step starts there), and how long that took.
    served_at: str = ""
    edge_seconds: float | None = None
    #: How many steps the rollout has, and how long the state machine watches the last step done (0: unknown).
    steps: int = 0
    watch_minutes: int = 0
    reason: str = ""
    actor: str = ""

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> RolloutRecord:
        raw = json.loads(data)
        raw["before"] = Owned(**raw["before"])
        raw["owned"] = Owned(**raw["owned"])
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


@dataclass(frozen=True)
class StepResult:
    """What one step did and why."""

    outcome: Outcome
    message: str
    change: RoutingChange | None
    record: RolloutRecord
    edge: EdgeWait | None = None


@dataclass(frozen=True)
class UndoResult:
    outcome: UndoOutcome
    message: str
    change: RoutingChange | None
    record: RolloutRecord | None


class _TakenOver(Exception):
    def __init__(self, state: RoutingState) -> None:
        super().__init__("the routing changed")
        self.state = state


def _run_key(rollout_id: str) -> str:
    return f"{RUNS_PREFIX}{rollout_id}.json"


def _stop_key(rollout_id: str) -> str:
    return f"{STOPS_PREFIX}{rollout_id}.json"


class Rollouts:
    """The rollouts of one site, through its release engine."""

    def __init__(self, engine: ReleaseEngine) -> None:
        self.engine = engine
        self.store = engine.store

    # -- records -------------------------------------------------------------------------------

    def load(self, rollout_id: str) -> RolloutRecord | None:
        data = self.store.get(_run_key(check_rollout_id(rollout_id)))
        return None if data is None else RolloutRecord.from_json(data)

    def latest(self) -> RolloutRecord | None:
        """The rollout started last, if any."""
        data = self.store.get(LATEST_KEY)
        if data is None:
            return None
        return self.load(json.loads(data)["id"])

    def stopped(self, rollout_id: str) -> bool:
        return self.store.get(_stop_key(rollout_id)) is not None

    def _save(self, record: RolloutRecord) -> RolloutRecord:
        record = replace(record, updated=now())
        self.store.put_bytes(_run_key(record.id), record.to_json(), content_type=JSON_TYPE)
        return record

    # -- steps ---------------------------------------------------------------------------------

    def step(
        self,
        rollout_id: str,
        release: str,
        percent: int,
        index: int,
        *,
        steps: int = 0,
        watch_minutes: int = 0,
        wait: Waiter | None = None,
    ) -> StepResult:
        """Give ``release`` ``percent`` of viewers (100: everyone) as step ``index`` of ``rollout_id``.

        ``steps`` and ``watch_minutes`` (the rollout's number of steps, this step's watch) are kept for
        ``rollout status``.
        """
        check_rollout_id(rollout_id)
        if isinstance(percent, bool) or not 1 <= percent <= 100:
            raise InvalidInputError(f"the share of a step is a whole number from 1 to 100, not {percent}")
        if index < 0:
            raise InvalidInputError(f"the step index is 0 or more, not {index}")
        self.engine.require_complete(release)
        record = self.load(rollout_id)
        if record is None:
            if index != 0:
                raise NotFoundError(f"rollout {rollout_id} has no record: its first step (index 0) never ran")
            state = self.engine.status()
            at = now()
            record = RolloutRecord(
                rollout_id, release, at, at, "running", -1, 0, Owned.of(state), Owned.of(state), actor=self.engine.actor
            )
            record = self._save(record)
            self.store.put_bytes(LATEST_KEY, json.dumps({"id": rollout_id}).encode(), content_type=JSON_TYPE)
        elif record.release != release:
            raise InvalidInputError(f"rollout {rollout_id} rolls out {record.release}, not {release}")
        if record.state != "running" or self.stopped(rollout_id):
            why = record.reason or "it was stopped with: hosting-toolkit rollout stop"
            if record.state == "running":
                record = self._save(replace(record, state="stopped", reason=why))
            return StepResult(
                "stopped", f"rollout {rollout_id} is {record.state} ({why}); nothing changed", None, record
            )

        expected = record.owned
        # Before any viewer can get it, the release holds the assets of every retained release (skew protection).
        self.engine.prepare(release)
        outcome: list[Outcome] = []

        def change(state: RoutingState) -> RoutingState:
            outcome.clear()
            if Owned.of(state) != expected:
                raise _TakenOver(state)
            if state.live is None:
                outcome.append("live")
                return self.engine.live_state(state, release)
            if state.live == release and state.canary is None:
                outcome.append("unchanged")
                return state
            if percent >= 100:
                outcome.append("shifted")
                return self.engine.live_state(state, release)
            if state.canary == release and state.weight >= percent:
                outcome.append("unchanged")
                return state
            outcome.append("shifted")
            return self.engine.canary_state(state, release, percent)

        try:
            with self.engine.automated(rollout_id, f"step {index + 1}: {percent}% of viewers"):
                routed = self.engine.change_routing(_step_action, change, source=None, target=release)
        except _TakenOver as taken:
            now_owned = Owned.of(taken.state)
            why = f"the routing was changed outside the rollout (expected {expected.describe()}, found {now_owned.describe()})"
            record = self._save(replace(record, state="taken-over", reason=why))
            return StepResult("stopped", f"rollout {rollout_id} stops: {why}; nothing changed", None, record)

        result: Outcome = outcome[-1] if outcome else "unchanged"
        edge = wait(routed.after) if wait is not None else None
        record = self._save(
            replace(
                record,
                step=max(record.step, index),
                percent=100 if routed.after.live == release and routed.after.canary is None else routed.after.weight,
                owned=Owned.of(routed.after),
                served_at=now(),
                edge_seconds=None if edge is None else round(edge.seconds, 1),
                steps=max(steps, 0),
                watch_minutes=max(watch_minutes, 0),
            )
        )
        if result == "live" and percent < 100:
            message = f"nothing was live: {release} is live for every viewer (a canary needs a live release beside it)"
        elif result == "live":
            message = f"nothing was live: {release} is live for every viewer"
        elif result == "unchanged":
            share = "every viewer" if routed.after.live == release else f"{routed.after.weight}% of viewers"
            message = f"{release} already has {share}; nothing changed"
        elif percent >= 100:
            message = f"{release} is live for every viewer (was {routed.before.live})"
        else:
            message = f"{release} has {percent}% of viewers; live stays {routed.after.live}"
        return StepResult(result, message, routed, record, edge)

    def undo(self, rollout_id: str, release: str, reason: str = "") -> UndoResult:
        """Take the viewers the rollout gave ``release`` back, only if the routing is as the rollout left it."""
        check_rollout_id(rollout_id)
        if not is_release_id(release):
            raise InvalidInputError(f"{release!r} is not a valid release id")
        record = self.load(rollout_id)
        if record is None:
            return UndoResult("nothing", f"rollout {rollout_id} never moved a viewer; nothing changed", None, None)
        if record.release != release:
            raise InvalidInputError(f"rollout {rollout_id} rolls out {record.release}, not {release}")
        expected = record.owned
        before = record.before
        if before.live and before.live != release and self.engine.record(before.live) is not None:
            self.engine.prepare(before.live)
        outcome: list[UndoOutcome] = []

        def change(state: RoutingState) -> RoutingState:
            outcome.clear()
            if Owned.of(state) != expected:
                raise _TakenOver(state)
            if state.canary == release and before.canary == release and state.weight > before.weight:
                outcome.append("aborted")
                return replace(state, weight=before.weight)
            if state.canary == release and before.canary != release:
                outcome.append("aborted")
                return replace(state, canary=None, weight=0)
            if state.live == release and before.live != release:
                if before.live is None or self.engine.record(before.live) is None:
                    outcome.append("kept-live")
                    return state
                outcome.append("rolled-back")
                return self.engine.live_state(state, before.live)
            outcome.append("nothing")
            return state

        try:
            with self.engine.automated(rollout_id, reason or "the rollout failed"):
                routed = self.engine.change_routing(
                    _undo_action, change, source=release, target=before.live or expected.live or release
                )
        except _TakenOver as taken:
            why = f"the routing was changed outside the rollout (found {Owned.of(taken.state).describe()})"
            record = self._save(replace(record, state="taken-over", reason=f"{reason}; {why}" if reason else why))
            return UndoResult("taken-over", f"{why}: the rollout leaves it as it is", None, record)
        result = outcome[-1] if outcome else "nothing"
        messages = {
            "aborted": f"canary {release} stopped; every viewer gets {routed.after.live}",
            "rolled-back": f"rolled back from {release} to {routed.after.live}",
            "kept-live": f"nothing was live before {release}, so it stays live",
            "nothing": f"{release} has no viewers the rollout gave it; nothing changed",
            "taken-over": "",
        }
        record = self._save(replace(record, state="rolled-back", owned=Owned.of(routed.after), reason=reason))
        return UndoResult(result, messages[result], routed, record)

    def stop(self, rollout_id: str | None = None) -> UndoResult:
        """Stop a rollout: no later step moves a viewer, and the canary it gave viewers is aborted."""
        record = self.load(rollout_id) if rollout_id else self.latest()
        if record is None:
            raise NotFoundError(f"no rollout {rollout_id}" if rollout_id else "no rollout has run on this site")
        marker = json.dumps({"id": record.id, "time": now(), "actor": self.engine.actor}).encode()
        self.store.put_bytes(_stop_key(record.id), marker, content_type=JSON_TYPE)
        release = record.release

        def change(state: RoutingState) -> RoutingState:
            return replace(state, canary=None, weight=0) if state.canary == release else state

        routed = self.engine.change_routing(lambda _: "abort", change, source=release, target=release)
        stopped_record = record
        if record.state == "running":
            stopped_record = self._save(
                replace(record, state="stopped", owned=Owned.of(routed.after), reason="stopped by a person")
            )
        if routed.before.canary == release:
            message = f"rollout {record.id} stopped; canary {release} aborted, every viewer gets {routed.after.live}"
        elif routed.after.live == release:
            message = f"rollout {record.id} stopped; {release} stays live (roll back with: hosting-toolkit rollback)"
        else:
            message = f"rollout {record.id} stopped; {release} has no viewers"
        return UndoResult("aborted" if routed.before.canary == release else "nothing", message, routed, stopped_record)


def _step_action(change: RoutingChange) -> str:
    """The history action of a step, by what it changed."""
    if change.after.live == change.before.live:
        return "canary"
    return "promote" if change.before.canary == change.after.live else "activate"


def _undo_action(change: RoutingChange) -> str:
    return "rollback" if change.after.live != change.before.live else "abort"


def minutes_left(record: RolloutRecord, watch_minutes: int, *, at: datetime | None = None) -> float | None:
    """Minutes left in the watch of the record's last step, or ``None`` when it has not been served."""
    if not record.served_at:
        return None
    served = datetime.strptime(record.served_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    elapsed = ((at or datetime.now(UTC)) - served).total_seconds() / 60
    return max(0.0, watch_minutes - elapsed)
