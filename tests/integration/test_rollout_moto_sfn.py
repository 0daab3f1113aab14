"""The rollout state machine on two interpreters: moto's own and the strict local one, against the same alarms.

The real ``rollout_definition`` is created in a ``moto_server`` (over HTTP, a process of this module only)
whose ``stepfunctions: execute_state_machine`` setting is on (``POST /moto-api/config``), so moto runs it
with its interpreter, derived from LocalStack's. The alarms are real CloudWatch alarms in that server;
moto's interpreter reads them with its ``aws-sdk:cloudwatch:describeAlarms`` integration and the local
interpreter (``tests/fakes/states.py``) with the same request through boto3, so both see the same
answers, and the two runs are compared: status, error, cause and the states entered in order.

What moto 5.2.5's interpreter runs, of what the rollout uses: ``Pass`` with ``States.Format``,
``States.MathAdd``, ``States.ArrayLength``, ``States.ArrayGetItem`` and ``States.JsonToString``,
``Choice`` (``IsPresent``, ``Or``, numeric comparisons), ``Fail`` with ``CausePath``/``ErrorPath``,
``Succeed``, ``Task`` with ``aws-sdk:cloudwatch:describeAlarms`` and ``ResultSelector``; it also runs
``arn:aws:states:::sns:publish`` (request-response) against moto's SNS, so notification tasks added
before the first step would run on both. It does not run ``arn:aws:states:::codebuild:startBuild.sync``:
the execution fails with ``States.Runtime`` before it enters the task, so the steps, the watching and
the retract are proven by the local interpreter only (tests/integration/test_rollout_state_machine.py).

Where moto differs from the service, each difference is pinned by a test here, so that a moto upgrade
that fixes it shows up: its CloudWatch ignores ``StateValue`` when ``AlarmNames`` are given and has no
``PutCompositeAlarm`` (the alarms here are metric alarms), and its ``States.Format`` mishandles the
escaped characters ``\\'``, ``\\{`` and ``\\}``.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

from hosting_toolkit.config import RolloutConfig
from hosting_toolkit.pipeline.buildspec import ENV_PERCENT
from hosting_toolkit.pipeline.rollout import (
    ALARMS_QUIET,
    DESCRIBE_ALARMS,
    NOT_FOUND,
    PROJECT_PLACEHOLDER,
    PUBLISH,
    SHIFT,
    START_BUILD,
    rollout_definition,
)
from tests.fakes.moto import MotoServer
from tests.fakes.moto_sfn import ROLE_ARN, MotoExecution, enable_execution, run_to_end
from tests.fakes.states import Execution, StateMachine, VirtualClock

pytestmark = pytest.mark.integration

OPERATE_PROJECT = "docs-operate"
ERROR_RATE = "docs-5xx-error-rate"
#: A named alarm whose name needs no escaping in a States.Format template (see the escaping tests).
NAMED = "checkout-errors"
#: A named alarm with the characters a States.Format template must escape.
ESCAPED = "team's {checkout} errors"
CANARY = RolloutConfig(strategy="canary", percent=10, interval_minutes=10, bake_minutes=5)
ALL_AT_ONCE = RolloutConfig(bake_minutes=5)
#: How moto's interpreter ends an execution at the operator build's task.
UNSUPPORTED_SYNC = f"RuntimeError(Unsupported sync callback procedure in resource {START_BUILD})"

_BOTOCORE = botocore.session.get_session()


def camel(value: Any) -> Any:
    """Step Functions' PascalCase parameters as the JSON protocol's camelCase (CodeBuild's API)."""
    if isinstance(value, list):
        return [camel(item) for item in value]
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: camel(item) for key, item in value.items()}
    return value


def as_task_result(response: dict[str, Any]) -> Any:
    """A boto3 response as an aws-sdk task's result: JSON, without the response metadata."""
    response = {key: value for key, value in response.items() if key != "ResponseMetadata"}
    return json.loads(json.dumps(response, default=lambda value: value.isoformat()))


@pytest.fixture(scope="module")
def sfn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A moto_server of this module only, executing state machines (the setting is process-wide)."""
    with pytest.MonkeyPatch.context() as patch:
        # moto's interpreter calls its own server's port, which it reads from MOTO_PORT when that is set.
        patch.delenv("MOTO_PORT", raising=False)
        server = MotoServer(tmp_path_factory.mktemp("moto-sfn") / "moto_server.log").start()
    try:
        enable_execution(server.endpoint)
        yield server
    finally:
        server.stop()


@dataclass
class Account:
    """moto_server's CloudWatch, CodeBuild, SNS and Step Functions, with the operator project created."""

    endpoint: str
    cloudwatch: Any
    codebuild: Any
    sns: Any
    stepfunctions: Any
    #: The operator builds the local interpreter was asked to start, as their parameters.
    local_builds: list[dict[str, Any]] = field(default_factory=list)

    def metric_alarm(self, name: str, state: str = "OK") -> None:
        self.cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/CloudFront",
            MetricName="5xxErrorRate",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=3,
            Threshold=5,
            ComparisonOperator="GreaterThanThreshold",
        )
        if state != "OK":
            self.cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="set by the test")

    def builds(self) -> list[str]:
        """The builds of the operator project that CodeBuild (moto's) was asked to start."""
        return list(self.codebuild.list_builds_for_project(projectName=OPERATE_PROJECT)["ids"])

    def deployed(self, definition: dict[str, Any]) -> str:
        """The definition as the stack deploys it: placeholders substituted (an SNS topic for each topic's)."""
        text = json.dumps(definition).replace(PROJECT_PLACEHOLDER, OPERATE_PROJECT)
        for name in sorted(set(re.findall(r'"TopicArn": "\$\{(\w+)\}"', text))):
            topic = self.sns.create_topic(Name=name)["TopicArn"]
            text = text.replace("${" + name + "}", topic)
        unknown = re.findall(r"\$\{\w+\}", text)
        assert not unknown, f"the definition has placeholders this test cannot deploy: {unknown}"
        return text

    def run_on_moto(self, definition: dict[str, Any], data: Any) -> MotoExecution:
        name = f"rollout-{secrets.token_hex(4)}"
        arn = self.stepfunctions.create_state_machine(
            name=name, definition=self.deployed(definition), roleArn=ROLE_ARN
        )["stateMachineArn"]
        return run_to_end(self.stepfunctions, arn, name, data)

    def run_locally(self, definition: dict[str, Any], data: Any) -> Execution:
        handlers = {
            DESCRIBE_ALARMS: lambda p: as_task_result(self.cloudwatch.describe_alarms(**p)),
            PUBLISH: lambda p: as_task_result(self.sns.publish(**p)),
            START_BUILD: self._start_build,
        }
        return StateMachine(json.loads(self.deployed(definition))).execute(data, handlers, VirtualClock())

    def _start_build(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """The operator build, recorded: what it runs is tested in test_rollout_state_machine.py."""
        shape = _BOTOCORE.get_service_model("codebuild").operation_model("StartBuild").input_shape
        validate_parameters(camel(parameters), shape)
        self.local_builds.append(parameters)
        return {"Build": {"ProjectName": parameters["ProjectName"], "BuildStatus": "SUCCEEDED"}}


@pytest.fixture
def account(sfn_server: MotoServer, aws_env: None) -> Account:
    """A freshly reset moto_server holding the operator project and no alarms."""
    sfn_server.reset()
    # One attempt: a 5xx from moto (an operation it lacks) fails at once instead of being retried.
    clients = {
        service: boto3.client(
            service, endpoint_url=sfn_server.endpoint, config=Config(retries={"total_max_attempts": 1})
        )
        for service in ("cloudwatch", "codebuild", "sns", "stepfunctions")
    }
    clients["codebuild"].create_project(
        name=OPERATE_PROJECT,
        source={"type": "S3", "location": "pipeline-artifacts/operate.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole="arn:aws:iam::123456789012:role/operate",
    )
    return Account(sfn_server.endpoint, **clients)


def scheduled_tasks(execution: MotoExecution) -> list[str]:
    """The integrations moto's interpreter scheduled, as ``type:resource`` (``aws-sdk:cloudwatch:describeAlarms``)."""
    return [
        f"{event['taskScheduledEventDetails']['resourceType']}:{event['taskScheduledEventDetails']['resource']}"
        for event in execution.events_of("TaskScheduled")
    ]


def operator_builds(execution: MotoExecution) -> list[str]:
    """The CodeBuild tasks moto's interpreter scheduled."""
    return [task for task in scheduled_tasks(execution) if task.startswith("codebuild")]


def assert_agree(on_moto: MotoExecution, local: Execution) -> None:
    assert (on_moto.status, on_moto.error, on_moto.cause) == (local.status, local.error, local.cause)
    assert on_moto.visited == local.visited


def test_a_missing_named_alarm_fails_alike_on_both_interpreters(account: Account) -> None:
    account.metric_alarm(ERROR_RATE)
    definition = rollout_definition(CANARY, watched=(ERROR_RATE, NAMED), named=(NAMED,))

    on_moto = account.run_on_moto(definition, {"release": "two"})
    local = account.run_locally(definition, {"release": "two"})

    assert_agree(on_moto, local)
    assert (local.status, local.error) == ("FAILED", "AlarmNotFound")
    assert local.cause == f"rollout.alarms names 1 alarms but only 0 exist in this region: {NAMED}; nothing was changed"
    assert local.visited[-1] == NOT_FOUND
    # Nothing changed: the alarms were read, and no build was asked for.
    assert "aws-sdk:cloudwatch:describeAlarms" in scheduled_tasks(on_moto)
    assert operator_builds(on_moto) == []
    assert START_BUILD not in local.calls
    assert account.builds() == []
    assert account.local_builds == []


@pytest.mark.parametrize(
    ("watched", "named"),
    [((ERROR_RATE,), ()), ((ERROR_RATE, NAMED), (NAMED,))],
    ids=["error-rate-alarm", "error-rate-and-named-alarm"],
)
def test_an_alarm_already_firing_fails_alike_on_both_interpreters(
    account: Account, watched: tuple[str, ...], named: tuple[str, ...]
) -> None:
    # Every watched alarm is in ALARM, created in name order: moto lists every named alarm whatever its
    # state (see test_moto_cloudwatch_ignores_the_state_asked_for_when_alarms_are_named).
    for name in sorted(watched):
        account.metric_alarm(name, "ALARM")
    definition = rollout_definition(CANARY, watched=watched, named=named)

    on_moto = account.run_on_moto(definition, {"release": "two"})
    local = account.run_locally(definition, {"release": "two"})

    assert_agree(on_moto, local)
    assert (local.status, local.error) == ("FAILED", "AlarmAlreadyFiring")
    firing = json.dumps(sorted(watched), separators=(",", ":"))
    assert local.cause == (
        f"the rollout of two did not start because alarms are in ALARM: {firing} []; "
        "nothing was changed (to release anyway: hosting-toolkit activate two)"
    )
    assert ALARMS_QUIET in local.visited
    assert operator_builds(on_moto) == []
    assert START_BUILD not in local.calls
    assert account.builds() == []


@pytest.mark.parametrize("rollout", [ALL_AT_ONCE, CANARY], ids=["all-at-once", "canary"])
def test_moto_stops_at_the_operator_build_that_the_local_interpreter_runs(
    account: Account, rollout: RolloutConfig
) -> None:
    # No alarms watched: the only quiet alarms moto can answer for (see the CloudWatch test below).
    definition = rollout_definition(rollout, watched=(), named=())
    builds = [name for name, state in definition["States"].items() if state.get("Resource") == START_BUILD]

    on_moto = account.run_on_moto(definition, {"release": "two"})
    local = account.run_locally(definition, {"release": "two"})

    # Both take the same path up to the first operator build, the shift of the first step.
    first_build = next(at for at, name in enumerate(local.visited) if name in builds)
    assert SHIFT in local.visited[first_build:]
    assert on_moto.visited == local.visited[:first_build]
    # moto's interpreter does not run CodeBuild's .sync integration: the execution fails before the task is
    # entered or scheduled, with an error no Catch handles, so the step's failure path (the retract) never
    # runs, and no build is started. The service would start the build and wait for it to end.
    assert (on_moto.status, on_moto.error, on_moto.cause) == ("FAILED", "States.Runtime", UNSUPPORTED_SYNC)
    assert operator_builds(on_moto) == []
    assert account.builds() == []
    # The local interpreter goes on through every step (each build recorded, the watch on its virtual clock).
    assert local.status == "SUCCEEDED", local.cause
    shifts = [{v["Name"]: v["Value"] for v in build["EnvironmentVariablesOverride"]} for build in account.local_builds]
    assert [variables[ENV_PERCENT] for variables in shifts] == [str(percent) for percent, _ in rollout.steps()]


def test_moto_cloudwatch_ignores_the_state_asked_for_when_alarms_are_named(account: Account) -> None:
    """The service answers ``StateValue=ALARM`` with the alarms in ALARM only; moto 5.2.5 with every named alarm."""
    account.metric_alarm(ERROR_RATE)

    answer = account.cloudwatch.describe_alarms(AlarmNames=[ERROR_RATE], StateValue="ALARM")

    assert [(a["AlarmName"], a["StateValue"]) for a in answer["MetricAlarms"]] == [(ERROR_RATE, "OK")]
    # So on moto, quiet alarms read as firing, and both interpreters (reading the same answers) refuse to start.
    definition = rollout_definition(ALL_AT_ONCE, watched=(ERROR_RATE,), named=())
    on_moto = account.run_on_moto(definition, {"release": "two"})
    local = account.run_locally(definition, {"release": "two"})
    assert_agree(on_moto, local)
    assert on_moto.error == "AlarmAlreadyFiring"


def test_moto_cloudwatch_has_no_composite_alarms(account: Account) -> None:
    """``PutCompositeAlarm`` is not implemented in moto 5.2.5 (a 500), so the named alarms here are metric alarms."""
    account.metric_alarm(ERROR_RATE)

    with pytest.raises(ClientError) as raised:
        account.cloudwatch.put_composite_alarm(AlarmName=NAMED, AlarmRule=f'ALARM("{ERROR_RATE}")')

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_moto_fails_the_escaped_cause_that_the_local_interpreter_formats(account: Account) -> None:
    """A named alarm whose name has ``'`` and ``{}``: escaped in the cause's States.Format template as the
    service documents, which the local interpreter reads back; moto's interpreter fails the Fail state."""
    account.metric_alarm(ERROR_RATE)
    definition = rollout_definition(CANARY, watched=(ERROR_RATE, ESCAPED), named=(ESCAPED,))

    on_moto = account.run_on_moto(definition, {"release": "two"})
    local = account.run_locally(definition, {"release": "two"})

    assert on_moto.visited == local.visited
    assert (local.error, local.cause) == (
        "AlarmNotFound",
        f"rollout.alarms names 1 alarms but only 0 exist in this region: {ESCAPED}; nothing was changed",
    )
    assert (on_moto.status, on_moto.error) == ("FAILED", "States.Runtime")
    assert on_moto.cause == "IndexError(Replacement index 0 out of range for positional args tuple)"


#: Templates with each escape the service documents (``\'``, ``\{``, ``\}``, ``\\``), the text the local
#: interpreter formats, and how moto 5.2.5's interpreter ends: (status, error, value, cause).
ESCAPES = [
    (r"States.Format('team\'s {}', $.n)", "team's 7", ("SUCCEEDED", None, "team" + "\\" * 2, None)),
    (
        r"States.Format('\{checkout\} {}', $.n)",
        "{checkout} 7",
        ("FAILED", "States.Runtime", None, r"KeyError('checkout\\\\')"),
    ),
    (r"States.Format('a\\b {}', $.n)", "a\\b 7", ("SUCCEEDED", None, "a" + "\\" * 4 + "b 7", None)),
]


@pytest.mark.parametrize(("template", "formatted", "on_moto_ends"), ESCAPES, ids=["quote", "braces", "backslash"])
def test_moto_reads_escapes_in_a_format_template_otherwise(
    account: Account, template: str, formatted: str, on_moto_ends: tuple[str, str | None, str | None, str | None]
) -> None:
    definition = {
        "StartAt": "Format",
        "States": {"Format": {"Type": "Pass", "Parameters": {"v.$": template}, "End": True}},
    }

    on_moto = account.run_on_moto(definition, {"n": 7})
    local = account.run_locally(definition, {"n": 7})

    assert (local.status, local.output) == ("SUCCEEDED", {"v": formatted})
    succeeded = on_moto.events_of("ExecutionSucceeded")
    value = json.loads(succeeded[0]["executionSucceededEventDetails"]["output"])["v"] if succeeded else None
    assert (on_moto.status, on_moto.error, value, on_moto.cause) == on_moto_ends
