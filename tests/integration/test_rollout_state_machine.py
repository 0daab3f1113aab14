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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import validate_parameters
from typer.testing import CliRunner

from hosting_toolkit.cli.main import app
from hosting_toolkit.config import HostingConfig, RolloutConfig
from hosting_toolkit.contract import COHORT_COOKIE, COHORTS, RELEASE_HEADER
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.pipeline.buildspec import (
    ENV_HOME,
    ENV_OUTCOME,
    ENV_PERCENT,
    ENV_REASON,
    ENV_RELEASE_ID,
    ENV_ROLLOUT,
    ENV_STEP,
    OPERATE_COMMAND,
)
from hosting_toolkit.pipeline.rollout import (
    DESCRIBE_ALARMS,
    PROJECT_PLACEHOLDER,
    PUBLISH,
    RETRACT,
    ROLLED_BACK,
    START_BUILD,
    TOPIC_PLACEHOLDER,
    WATCH_SECONDS,
    rollout_definition,
)
from tests.fakes.sites import write_files
from tests.fakes.states import Execution, StateMachine, TaskFailure, VirtualClock
from tests.integration.conftest import Edge

pytestmark = [pytest.mark.integration, pytest.mark.node, pytest.mark.usefixtures("clean_cli_env")]

#: The release engine installed beside the Python running the tests, as the operator build installs it.
TOOLKIT = Path(sys.executable).with_name("hosting-toolkit")
OPERATE_PROJECT = "docs-operate"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:docs-releases"
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
#: How a rolled-back execution's cause ends.
BACK = (
    "the viewers the rollout gave it went back to the release before it, unless a person had changed the "
    "routing (hosting-toolkit history tells)"
)
LIVE_TWO = {"live": "two", "canary": None, "weight": 0}
NOTHING_LIVE = {"live": None, "canary": None, "weight": 0}


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
    #: A local edge serving the target, which the steps wait for.
    site_url: str | None = None
    #: The operator builds run, as (step, release, percent), and the routing read right after each shift.
    builds: list[tuple[str, str, str | None]] = field(default_factory=list)
    after_shift: list[dict[str, Any]] = field(default_factory=list)
    #: The minutes at which the alarms' states were read.
    reads: list[float] = field(default_factory=list)
    #: What each shift exported, the rollout ids the builds carried, the retract reasons, the build logs.
    outcomes: list[str] = field(default_factory=list)
    rollouts: set[str] = field(default_factory=set)
    reasons: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    #: Notifications published, as (subject, message).
    notifications: list[tuple[str, str]] = field(default_factory=list)
    #: What a person does during the rollout: minute of the execution -> action, run before that minute's reading.
    meanwhile: dict[float, Callable[[], None]] = field(default_factory=dict)

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
            # With a local edge serving the target, each step waits for it as it waits for CloudFront.
            **({"HOSTING_TOOLKIT_SITE_URL": self.site_url} if self.site_url else {"HOSTING_TOOLKIT_NO_WAIT": "1"}),
            **overrides,
        }
        self.builds.append((overrides[ENV_STEP], overrides[ENV_RELEASE_ID], overrides.get(ENV_PERCENT)))
        self.rollouts.add(overrides.get(ENV_ROLLOUT, ""))
        if overrides.get(ENV_REASON):
            self.reasons.append(overrides[ENV_REASON])
        exported = self.home / "exported"
        # CodeBuild reads the exported variables once the commands are done (OPERATE_BUILDSPEC's list).
        script = f'{OPERATE_COMMAND}\nprintf %s "${{{ENV_OUTCOME}:-}}" > "{exported}"'
        done = subprocess.run(["bash", "-c", script], env=environment, capture_output=True, text=True)
        self.logs.append(done.stderr)
        build = {"ProjectName": OPERATE_PROJECT, "BuildStatus": "SUCCEEDED" if done.returncode == 0 else "FAILED"}
        if done.returncode != 0:
            # A .sync job that ends in failure fails its task with States.TaskFailed; the cause carries the job.
            raise TaskFailure("States.TaskFailed", json.dumps({"Build": build, "Log": done.stderr}))
        if overrides[ENV_STEP] == "shift":
            self.after_shift.append(routing(self.target))
            outcome = exported.read_text()
            self.outcomes.append(outcome)
            build["ExportedEnvironmentVariables"] = [{"Name": ENV_OUTCOME, "Value": outcome}]
        return {"Build": build}

    def publish(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``sns:publish``: the notification, checked against SNS's Publish request."""
        validate_parameters(parameters, request_shape("sns", "Publish"))
        assert parameters["TopicArn"] == TOPIC_ARN
        self.notifications.append((parameters["Subject"], parameters["Message"]))
        return {"MessageId": f"m-{len(self.notifications)}"}

    def describe_alarms(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``aws-sdk:cloudwatch:describeAlarms``: the named alarms that exist, those in ALARM if asked."""
        validate_parameters(parameters, request_shape("cloudwatch", "DescribeAlarms"))
        assert parameters["AlarmTypes"] == ["MetricAlarm", "CompositeAlarm"]
        minute = self.clock.seconds / 60
        for at in sorted(self.meanwhile):
            if at <= minute:
                self.meanwhile.pop(at)()
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
        notify: bool = False,
        name: str = "rollout-docs-1",
    ) -> Execution:
        definition = rollout_definition(rollout, watched=watched, named=named, notify=notify)
        # As the stack deploys it: the operator project's name and the topic substituted into the definition.
        text = json.dumps(definition).replace(PROJECT_PLACEHOLDER, OPERATE_PROJECT)
        deployed = json.loads(text.replace(TOPIC_PLACEHOLDER, TOPIC_ARN))
        handlers = {START_BUILD: self.start_build, DESCRIBE_ALARMS: self.describe_alarms, PUBLISH: self.publish}
        return StateMachine(deployed).execute({"release": release}, handlers, self.clock, name=name)


def make_world(tmp_path: Path, *, live: bool) -> Rollout:
    target = tmp_path / "target"
    for release, extra in (("one", [] if live else ["--no-activate"]), ("two", ["--no-activate"])):
        site = write_files(
            tmp_path / release,
            {"index.html": f"<h1>{release}</h1><script src=/app-{release}.js></script>", f"app-{release}.js": "1"},
        )
        result = CliRunner().invoke(app, ["--local", str(target), "release", str(site), "--id", release, *extra])
        assert result.exit_code == 0, result.stderr
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "hosting-toolkit").symlink_to(TOOLKIT)
    assert routing(target) == (LIVE_ONE if live else NOTHING_LIVE)
    return Rollout(target=target, home=home)


@pytest.fixture
def world(tmp_path: Path) -> Rollout:
    """A local target where release one is live and release two is staged, and the operator's toolkit home."""
    return make_world(tmp_path, live=True)


@pytest.fixture
def fresh(tmp_path: Path) -> Rollout:
    """A new site: releases one and two are staged and nothing is live yet."""
    return make_world(tmp_path, live=False)


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
    assert execution.cause == (f'alarms went into ALARM while two had 10% of viewers: ["{ERROR_RATE}"] []; {BACK}')
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
        f"the step giving ghost 10% of viewers failed (States.TaskFailed); see the operator build log; {BACK}"
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


# The scenario matrix: first push, re-runs, a person taking over, and the worst days. Each checks the final
# routing, the history (automatic entries marked, with their reason) and what a viewer gets through the edge.


def cli(world: Rollout, *args: str) -> Any:
    result = CliRunner().invoke(app, ["--local", str(world.target), *args])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout) if "--json" in args else result.stdout


def history(world: Rollout) -> list[tuple[str, str | None, str | None, bool]]:
    """The switches, oldest first, as (action, from, to, automatic)."""
    entries = cli(world, "history", "--json", "--limit", "100")
    return [(e["action"], e["from"], e["to"], e["automatic"]) for e in reversed(entries)]


def automatic_reasons(world: Rollout) -> list[str]:
    return [e["reason"] for e in reversed(cli(world, "history", "--json")) if e["automatic"]]


def serve(world: Rollout, sandbox: FunctionSandbox) -> Edge:
    running = Edge(world.target.parent, HostingConfig(), sandbox)
    world.site_url = running.url
    return running


def viewer(edge: Edge, *, cohort: int) -> str:
    """The release a viewer of ``cohort`` gets for the home page, and its body."""
    status, headers, body = edge.get("/", {"cookie": f"{COHORT_COOKIE}={cohort}.{int(time.time())}"})
    return f"{status} {headers[RELEASE_HEADER]} {body.decode()[:8]}"


IN_CANARY, NEVER_CANARY = 0, COHORTS - 1
LINEAR = RolloutConfig(strategy="linear", percent=50, interval_minutes=2, bake_minutes=2)


@pytest.mark.parametrize("rollout", [ALL_AT_ONCE, CANARY, LINEAR], ids=lambda r: r.strategy)
def test_the_first_release_of_a_new_site_goes_live_with_every_strategy(
    fresh: Rollout, rollout: RolloutConfig, function_sandbox: FunctionSandbox
) -> None:
    edge = serve(fresh, function_sandbox)
    try:
        assert viewer(edge, cohort=NEVER_CANARY).startswith("503")

        execution = fresh.run(rollout)

        assert execution.status == "SUCCEEDED", execution.cause
        assert routing(fresh.target) == LIVE_TWO
        assert fresh.outcomes[0] == "live"
        assert set(fresh.outcomes[1:]) <= {"unchanged"}
        assert "nothing was live: two is live for every viewer" in fresh.logs[0]
        assert "the edge serves two (confirmed after" in fresh.logs[0]
        assert history(fresh) == [("activate", None, "two", True)]
        assert viewer(edge, cohort=NEVER_CANARY) == viewer(edge, cohort=IN_CANARY) == "200 two <h1>two<"
    finally:
        edge.close()


def test_an_alarm_after_a_first_release_keeps_it_live_there_being_nothing_to_go_back_to(fresh: Rollout) -> None:
    fresh.firing_from = {ERROR_RATE: 2}

    execution = fresh.run(CANARY)

    assert (execution.status, execution.error) == ("FAILED", "AlarmFired")
    assert routing(fresh.target) == LIVE_TWO
    assert "nothing was live before two, so it stays live" in fresh.logs[-1]


def test_the_second_release_by_canary_records_each_automatic_step(
    world: Rollout, function_sandbox: FunctionSandbox
) -> None:
    edge = serve(world, function_sandbox)
    try:
        world.meanwhile = {5: lambda: seen.append(viewer(edge, cohort=IN_CANARY) + viewer(edge, cohort=NEVER_CANARY))}
        seen: list[str] = []

        execution = world.run(CANARY)

        assert execution.status == "SUCCEEDED", execution.cause
        assert seen == ["200 two <h1>two<200 one <h1>one<"]
        assert viewer(edge, cohort=NEVER_CANARY) == "200 two <h1>two<"
    finally:
        edge.close()
    assert world.outcomes == ["shifted", "shifted"]
    assert history(world) == [
        ("activate", None, "one", False),
        ("canary", "one", "two", True),
        ("promote", "one", "two", True),
    ]
    entries = cli(world, "history", "--json")
    assert {e["rollout"] for e in entries if e["automatic"]} == {"rollout-docs-1"}
    assert automatic_reasons(world) == ["step 1: 10% of viewers", "step 2: 100% of viewers"]


@pytest.mark.parametrize("rollout", [ALL_AT_ONCE, CANARY], ids=lambda r: r.strategy)
def test_re_running_the_rollout_of_the_live_release_changes_nothing(world: Rollout, rollout: RolloutConfig) -> None:
    """A pipeline re-run, a rebuild of the same commit and an identical ZIP all roll out the live release again."""
    assert world.run(ALL_AT_ONCE, name="rollout-docs-1").status == "SUCCEEDED"
    switches = history(world)

    execution = world.run(rollout, name="rollout-docs-2")

    assert execution.status == "SUCCEEDED", execution.cause
    assert routing(world.target) == LIVE_TWO
    assert world.outcomes[1:] == ["unchanged"] * len(rollout.steps())
    assert history(world) == switches


def test_an_alarm_during_a_re_run_never_rolls_the_live_release_back(world: Rollout) -> None:
    assert world.run(ALL_AT_ONCE, name="rollout-docs-1").status == "SUCCEEDED"
    world.firing_from = {ERROR_RATE: 3}
    world.clock = VirtualClock()

    execution = world.run(CANARY, name="rollout-docs-2")

    assert (execution.status, execution.error) == ("FAILED", "AlarmFired")
    assert routing(world.target) == LIVE_TWO
    assert "two has no viewers the rollout gave it; nothing changed" in world.logs[-1]


def test_an_alarm_during_the_canary_is_an_automatic_rollback_in_the_history(world: Rollout) -> None:
    world.firing_from = {NAMED: 4}

    execution = world.run(CANARY)

    assert execution.error == "AlarmFired"
    assert history(world)[-2:] == [("canary", "one", "two", True), ("abort", "two", "one", True)]
    (reason,) = world.reasons
    assert reason.startswith("alarms went into ALARM while two had 10% of viewers")
    assert automatic_reasons(world)[-1] == reason


def test_an_alarm_during_the_bake_rolls_back_automatically_with_its_alarm_in_the_history(world: Rollout) -> None:
    world.firing_from = {ERROR_RATE: 12}

    execution = world.run(CANARY)

    assert execution.error == "AlarmFired"
    assert routing(world.target) == LIVE_ONE
    assert history(world)[-1] == ("rollback", "two", "one", True)
    assert ERROR_RATE in automatic_reasons(world)[-1]


def test_a_manual_abort_mid_rollout_stops_it_without_changing_anything_more(
    world: Rollout, function_sandbox: FunctionSandbox
) -> None:
    edge = serve(world, function_sandbox)
    try:
        world.meanwhile = {4: lambda: cli(world, "canary", "--abort", "--no-wait")}

        execution = world.run(CANARY)

        assert (execution.status, execution.error) == ("FAILED", "RolloutStopped")
        assert execution.cause == (
            "the rollout of two stopped at 100% of viewers: the routing was changed outside it, or it was stopped "
            "(hosting-toolkit rollout status tells which); the rollout changed nothing more"
        )
        assert world.outcomes == ["shifted", "stopped"]
        assert [step for step, _, _ in world.builds] == ["shift", "shift"]
        assert routing(world.target) == LIVE_ONE
        assert viewer(edge, cohort=IN_CANARY) == "200 one <h1>one<"
    finally:
        edge.close()
    assert history(world)[-2:] == [("canary", "one", "two", True), ("abort", "two", "one", False)]
    status = cli(world, "rollout", "status", "--json")
    assert status["status"] == "taken-over"
    assert "expected live one, canary two at 10%, found live one, no canary" in status["rollout"]["reason"]


def test_a_manual_activation_mid_rollout_is_kept(world: Rollout) -> None:
    world.meanwhile = {3: lambda: cli(world, "activate", "one", "--no-wait")}
    world.firing_from = {ERROR_RATE: 5}

    execution = world.run(CANARY)

    assert execution.error in {"RolloutStopped", "AlarmFired"}
    assert routing(world.target) == LIVE_ONE


def test_rollout_stop_aborts_the_canary_and_no_later_step_moves_a_viewer(world: Rollout) -> None:
    world.meanwhile = {6: lambda: cli(world, "rollout", "stop")}

    execution = world.run(CANARY)

    assert (execution.status, execution.error) == ("FAILED", "RolloutStopped")
    assert routing(world.target) == LIVE_ONE
    assert world.outcomes == ["shifted", "stopped"]
    status = cli(world, "rollout", "status", "--json")
    assert (status["status"], status["rollout"]["reason"]) == ("stopped", "stopped by a person")


def test_rollout_status_shows_the_step_the_share_the_time_left_and_the_alarms(world: Rollout) -> None:
    snapshots: list[Any] = []
    world.meanwhile = {3: lambda: snapshots.append(cli(world, "rollout", "status", "--json"))}

    world.run(CANARY)

    (during,) = snapshots
    assert (during["status"], during["step"], during["rollout"]["percent"]) == ("running", 1, 10)
    assert (during["steps"], during["rollout"]["watch_minutes"]) == (2, 10)
    assert 0 < during["minutes_left"] <= 10
    text = cli(world, "rollout", "status")
    assert "release: two" in text and "step:    2 of 2, 100% of viewers" in text


def test_notifications_announce_the_start_each_step_and_the_release_live(world: Rollout) -> None:
    execution = world.run(CANARY, notify=True)

    assert execution.status == "SUCCEEDED", execution.cause
    assert [subject for subject, _ in world.notifications] == [
        "Rollout of two started",
        "Rollout of two: 10% of viewers",
        "Rollout of two: 100% of viewers",
        "Release two is live",
    ]
    assert world.notifications[0][1] == (
        "The rollout rollout-docs-1 of release two started: steps 10% for 10 min, 100% for 5 min."
    )


def test_notifications_announce_an_automatic_rollback_with_its_alarm(world: Rollout) -> None:
    world.firing_from = {ERROR_RATE: 2}

    world.run(CANARY, notify=True)

    subject, message = world.notifications[-1]
    assert subject == "Rollout of two rolled back automatically"
    assert f'alarms went into ALARM while two had 10% of viewers: ["{ERROR_RATE}"]' in message


def test_a_failed_notification_never_stops_the_rollout(world: Rollout) -> None:
    def refuse(parameters: dict[str, Any]) -> Any:
        raise TaskFailure("SNS.AuthorizationErrorException", "not allowed")

    world.publish = refuse  # type: ignore[method-assign]

    execution = world.run(CANARY, notify=True)

    assert execution.status == "SUCCEEDED", execution.cause
    assert routing(world.target) == LIVE_TWO
