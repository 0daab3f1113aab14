"""The rollout state machine, executed: the real definition runs on the States Language interpreter, each
operator build runs the real ``OPERATE_COMMAND`` with bash against a local target holding two releases, and
the alarms are scripted on the execution's virtual clock. Requests are checked against botocore's models of
DescribeAlarms and StartBuild, and the routing is read back with ``status --json``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import validate_parameters
from typer.testing import CliRunner

from hosting_toolkit.cli.main import app
from hosting_toolkit.config import RolloutConfig
from hosting_toolkit.pipeline.buildspec import ENV_HOME, ENV_PERCENT, ENV_RELEASE_ID, ENV_STEP, OPERATE_COMMAND
from hosting_toolkit.pipeline.rollout import (
    DESCRIBE_ALARMS,
    PROJECT_PLACEHOLDER,
    RETRACT,
    ROLLED_BACK,
    START_BUILD,
    WATCH_SECONDS,
    rollout_definition,
)
from tests.fakes.sites import write_files
from tests.fakes.states import Execution, StateMachine, TaskFailure, VirtualClock

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_cli_env")]

#: The release engine installed beside the Python running the tests, as the operator build installs it.
TOOLKIT = Path(sys.executable).with_name("hosting-toolkit")
OPERATE_PROJECT = "docs-operate"
#: The pipeline's own alarm, and one of ``[rollout] alarms`` (a composite alarm, with the characters
#: that a States.Format template must escape).
ERROR_RATE = "docs-5xx-error-rate"
NAMED = "team's {checkout} errors"
CANARY = RolloutConfig(strategy="canary", percent=10, interval_minutes=10, bake_minutes=5)
ALL_AT_ONCE = RolloutConfig(bake_minutes=5)

_BOTOCORE = botocore.session.get_session()


def routing(target: Path) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["--local", str(target), "status", "--json"])
    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    return {key: status[key] for key in ("live", "canary", "weight")}


LIVE_ONE = {"live": "one", "canary": None, "weight": 0}
LIVE_TWO = {"live": "two", "canary": None, "weight": 0}


def camel(value: Any) -> Any:
    """Step Functions' PascalCase parameters as the JSON protocol's camelCase (CodeBuild's API)."""
    if isinstance(value, list):
        return [camel(item) for item in value]
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: camel(item) for key, item in value.items()}
    return value


def request_shape(service: str, operation: str) -> Any:
    return _BOTOCORE.get_service_model(service).operation_model(operation).input_shape


@dataclass
class Rollout:
    """The world a rollout runs in: the operator build, the local target and the alarms, on one clock."""

    target: Path
    home: Path
    #: Alarm name -> minute of the execution from which it is in ALARM (0: already before it starts).
    firing_from: dict[str, float] = field(default_factory=dict)
    existing: frozenset[str] = frozenset({ERROR_RATE, NAMED})
    composite: frozenset[str] = frozenset({NAMED})
    clock: VirtualClock = field(default_factory=VirtualClock)
    #: The operator builds run, as (step, release, percent), and the routing read right after each shift.
    builds: list[tuple[str, str, str | None]] = field(default_factory=list)
    after_shift: list[dict[str, Any]] = field(default_factory=list)
    #: The minutes at which the alarms' states were read.
    reads: list[float] = field(default_factory=list)

    def start_build(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``codebuild:startBuild.sync``: the operator project's command, run with the build's environment."""
        validate_parameters(camel(parameters), request_shape("codebuild", "StartBuild"))
        assert parameters["ProjectName"] == OPERATE_PROJECT
        overrides = {item["Name"]: item["Value"] for item in parameters["EnvironmentVariablesOverride"]}
        environment = {k: v for k, v in os.environ.items() if not k.startswith("HOSTING_TOOLKIT_")}
        environment |= {
            ENV_HOME: str(self.home),
            "HOSTING_TOOLKIT_LOCAL": str(self.target),
            "HOSTING_TOOLKIT_ACTOR": "tests",
            **overrides,
        }
        self.builds.append((overrides[ENV_STEP], overrides[ENV_RELEASE_ID], overrides.get(ENV_PERCENT)))
        done = subprocess.run(["bash", "-c", OPERATE_COMMAND], env=environment, capture_output=True, text=True)
        build = {"ProjectName": OPERATE_PROJECT, "BuildStatus": "SUCCEEDED" if done.returncode == 0 else "FAILED"}
        if done.returncode != 0:
            # A .sync job that ends in failure fails its task with States.TaskFailed; the cause carries the job.
            raise TaskFailure("States.TaskFailed", json.dumps({"Build": build, "Log": done.stderr}))
        if overrides[ENV_STEP] == "shift":
            self.after_shift.append(routing(self.target))
        return {"Build": build}

    def describe_alarms(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``aws-sdk:cloudwatch:describeAlarms``: the named alarms that exist, those in ALARM if asked."""
        validate_parameters(parameters, request_shape("cloudwatch", "DescribeAlarms"))
        assert parameters["AlarmTypes"] == ["MetricAlarm", "CompositeAlarm"]
        minute = self.clock.seconds / 60
        names = [name for name in parameters["AlarmNames"] if name in self.existing]
        if parameters.get("StateValue") == "ALARM":
            self.reads.append(minute)
            names = [name for name in names if minute >= self.firing_from.get(name, math.inf)]
        return {
            "MetricAlarms": [{"AlarmName": name} for name in names if name not in self.composite],
            "CompositeAlarms": [{"AlarmName": name} for name in names if name in self.composite],
        }

    def run(
        self,
        rollout: RolloutConfig,
        *,
        release: str = "two",
        watched: tuple[str, ...] = (ERROR_RATE, NAMED),
        named: tuple[str, ...] = (NAMED,),
    ) -> Execution:
        definition = rollout_definition(rollout, watched=watched, named=named)
        # As the stack deploys it: the operator project's name substituted into the definition.
        deployed = json.loads(json.dumps(definition).replace(PROJECT_PLACEHOLDER, OPERATE_PROJECT))
        handlers = {START_BUILD: self.start_build, DESCRIBE_ALARMS: self.describe_alarms}
        return StateMachine(deployed).execute({"release": release}, handlers, self.clock)


@pytest.fixture
def world(tmp_path: Path) -> Rollout:
    """A local target where release one is live and release two is staged, and the operator's toolkit home."""
    target = tmp_path / "target"
    for release, extra in (("one", []), ("two", ["--no-activate"])):
        site = write_files(tmp_path / release, {"index.html": f"<h1>{release}</h1>"})
        result = CliRunner().invoke(app, ["--local", str(target), "release", str(site), "--id", release, *extra])
        assert result.exit_code == 0, result.stderr
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "hosting-toolkit").symlink_to(TOOLKIT)
    assert routing(target) == LIVE_ONE
    return Rollout(target=target, home=home)


def test_all_at_once_makes_the_release_live_then_watches_the_bake_minute_by_minute(world: Rollout) -> None:
    execution = world.run(ALL_AT_ONCE)

    assert (execution.status, execution.error) == ("SUCCEEDED", None), execution.cause
    assert world.builds == [("shift", "two", "100")]
    assert routing(world.target) == LIVE_TWO
    assert execution.seconds == ALL_AT_ONCE.bake_minutes * WATCH_SECONDS
    # Once before the first step, then once a minute of the bake.
    assert world.reads == [0, 1, 2, 3, 4, 5]
    existence = execution.calls[DESCRIBE_ALARMS][0]
    assert existence == {"AlarmNames": [NAMED], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"], "MaxRecords": 100}


def test_canary_gives_its_share_for_its_interval_then_everyone(world: Rollout) -> None:
    execution = world.run(CANARY)

    assert execution.status == "SUCCEEDED", execution.cause
    assert world.builds == [("shift", "two", "10"), ("shift", "two", "100")]
    assert world.after_shift == [{"live": "one", "canary": "two", "weight": 10}, LIVE_TWO]
    assert routing(world.target) == LIVE_TWO
    assert execution.seconds == CANARY.total_minutes * WATCH_SECONDS
    assert world.reads == list(range(CANARY.total_minutes + 1))


def test_linear_adds_its_step_of_viewers_until_everyone_has_the_release(world: Rollout) -> None:
    linear = RolloutConfig(strategy="linear", percent=25, interval_minutes=2, bake_minutes=2)

    execution = world.run(linear)

    assert execution.status == "SUCCEEDED", execution.cause
    assert world.builds == [("shift", "two", p) for p in ("25", "50", "75", "100")]
    assert world.after_shift == [
        *({"live": "one", "canary": "two", "weight": weight} for weight in (25, 50, 75)),
        LIVE_TWO,
    ]
    assert execution.seconds == 8 * WATCH_SECONDS


def test_an_alarm_during_the_canary_aborts_it_and_fails_the_rollout(world: Rollout) -> None:
    world.firing_from = {ERROR_RATE: 3}

    execution = world.run(CANARY)

    assert (execution.status, execution.error) == ("FAILED", "AlarmFired")
    assert world.builds == [("shift", "two", "10"), ("retract", "two", None)]
    assert routing(world.target) == LIVE_ONE
    assert execution.cause == (
        f'alarms went into ALARM while two had 10% of viewers: ["{ERROR_RATE}"] []; '
        "any viewers it had went back to the release before it"
    )
    assert execution.visited[-2:] == [RETRACT, ROLLED_BACK]
    assert execution.seconds == 3 * WATCH_SECONDS


def test_an_alarm_during_the_bake_rolls_the_release_back(world: Rollout) -> None:
    world.firing_from = {NAMED: 2}

    execution = world.run(ALL_AT_ONCE)

    assert (execution.status, execution.error) == ("FAILED", "AlarmFired")
    assert world.builds == [("shift", "two", "100"), ("retract", "two", None)]
    assert world.after_shift == [LIVE_TWO]
    assert routing(world.target) == LIVE_ONE
    assert f"while two had 100% of viewers: [] {json.dumps([NAMED])}" in (execution.cause or "")


def test_an_alarm_already_firing_stops_the_rollout_before_anything_changes(world: Rollout) -> None:
    world.firing_from = {ERROR_RATE: 0, NAMED: 0}

    execution = world.run(CANARY)

    assert (execution.status, execution.error) == ("FAILED", "AlarmAlreadyFiring")
    assert START_BUILD not in execution.calls
    assert routing(world.target) == LIVE_ONE
    assert execution.cause == (
        f'the rollout of two did not start because alarms are in ALARM: ["{ERROR_RATE}"] {json.dumps([NAMED])}; '
        "nothing was changed (to release anyway: hosting-toolkit activate two)"
    )


def test_a_named_alarm_that_does_not_exist_stops_the_rollout_before_anything_changes(world: Rollout) -> None:
    world.existing = frozenset({ERROR_RATE})

    execution = world.run(CANARY)

    assert (execution.status, execution.error) == ("FAILED", "AlarmNotFound")
    assert execution.cause == (
        f"rollout.alarms names 1 alarms but only 0 exist in this region: {NAMED}; nothing was changed"
    )
    assert START_BUILD not in execution.calls
    assert routing(world.target) == LIVE_ONE


def test_a_failed_shift_is_retracted_and_fails_the_rollout(world: Rollout) -> None:
    execution = world.run(CANARY, release="ghost")

    assert (execution.status, execution.error) == ("FAILED", "StepFailed")
    assert world.builds == [("shift", "ghost", "10"), ("retract", "ghost", None)]
    assert execution.cause == (
        "the step giving ghost 10% of viewers failed (States.TaskFailed); see the operator build log; "
        "any viewers it had went back to the release before it"
    )
    assert routing(world.target) == LIVE_ONE
    assert execution.seconds == 0


def test_without_watched_alarms_the_steps_still_wait_their_minutes(world: Rollout) -> None:
    execution = world.run(CANARY, watched=(), named=())

    assert execution.status == "SUCCEEDED", execution.cause
    assert DESCRIBE_ALARMS not in execution.calls
    assert world.builds == [("shift", "two", "10"), ("shift", "two", "100")]
    assert routing(world.target) == LIVE_TWO
    assert execution.seconds == CANARY.total_minutes * WATCH_SECONDS
