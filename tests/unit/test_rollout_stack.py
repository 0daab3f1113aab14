"""The pipeline's way from a staged release to its viewers, as synthesized: verify, approval, the rollout
state machine, the error-rate alarm, and what each may do."""

from __future__ import annotations

import json
import tomllib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint

from hosting_toolkit.config import HostingConfig, RolloutConfig, SiteConfig, ZipSource, parse_config
from hosting_toolkit.errors import ConfigError
from hosting_toolkit.pipeline.buildspec import ENV_REASON, ENV_RELEASE_ID, ENV_ROLLOUT, ENV_STEP
from hosting_toolkit.pipeline.rollout import DESCRIBE_ALARMS, PUBLISH, START_BUILD, rollout_definition
from tests.cdk_helpers import SynthesizedStack, synth_hosting_stack

pytestmark = pytest.mark.synth

CONFIGS = {
    "default": HostingConfig(site=SiteConfig(name="docs"), source=ZipSource()),
    "canary": HostingConfig(
        site=SiteConfig(name="docs"),
        source=ZipSource(),
        rollout=RolloutConfig(
            strategy="canary",
            percent=5,
            interval_minutes=15,
            bake_minutes=20,
            alarms=("checkout-errors",),
            approval=True,
        ),
    ),
    "linear-quiet": HostingConfig(
        site=SiteConfig(name="docs"),
        source=ZipSource(),
        rollout=RolloutConfig(strategy="linear", percent=25, interval_minutes=5, error_rate_percent=0),
    ),
}
CONFIGS["notify"] = HostingConfig(
    site=SiteConfig(name="docs"),
    source=ZipSource(),
    rollout=RolloutConfig(strategy="canary", approval=True, notify=("ops@example.com", "web@example.com")),
)
CONFIGS["notify-topic"] = HostingConfig(
    site=SiteConfig(name="docs"),
    source=ZipSource(),
    rollout=RolloutConfig(approval=True, notify_topic_arn="arn:aws:sns:us-east-1:111111111111:team-releases"),
)
OWN_ALARM = "hosting-docs-5xx-error-rate"


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SynthesizedStack]]:
    done: dict[tuple[str, str | None], SynthesizedStack] = {}

    def get(name: str, region: str | None = None) -> SynthesizedStack:
        if (name, region) not in done:
            env = cdk.Environment(account="111111111111", region=region) if region else None
            done[(name, region)] = synth_hosting_stack(CONFIGS[name], tmp_path_factory.mktemp(name), env=env)
        return done[(name, region)]

    yield get


def resources(stack: SynthesizedStack, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in stack.template_json["Resources"].items() if v["Type"] == kind}


def state_machine(stack: SynthesizedStack) -> dict[str, Any]:
    ((_, machine),) = resources(stack, "AWS::StepFunctions::StateMachine").items()
    return machine


def definition(stack: SynthesizedStack) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(state_machine(stack)["Properties"]["DefinitionString"])
    return parsed


def stages(stack: SynthesizedStack) -> dict[str, list[dict[str, Any]]]:
    ((_, pipeline),) = resources(stack, "AWS::CodePipeline::Pipeline").items()
    return {stage["Name"]: stage["Actions"] for stage in pipeline["Properties"]["Stages"]}


def statements_of(stack: SynthesizedStack, role_logical_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources(stack, "AWS::IAM::Policy").values()
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


# -- the state machine --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "watched", "named"),
    [
        ("default", [OWN_ALARM], []),
        ("canary", [OWN_ALARM, "checkout-errors"], ["checkout-errors"]),
        ("linear-quiet", [], []),
    ],
)
def test_deployed_definition_is_the_rollout_definition_of_the_configuration(
    name: str, watched: list[str], named: list[str], synth: Callable[..., SynthesizedStack]
) -> None:
    stack = synth(name)
    assert stack.stack.pipeline is not None

    assert definition(stack) == rollout_definition(CONFIGS[name].rollout, watched=watched, named=named)
    assert state_machine(stack)["Properties"]["DefinitionSubstitutions"] == {
        "OperateProject": {"Ref": stack.logical_id(stack.stack.pipeline.operate_project)}
    }


@pytest.mark.parametrize(
    ("name", "percents", "minutes"),
    [("default", [100], [10]), ("canary", [5, 100], [15, 20]), ("linear-quiet", [25, 50, 75, 100], [5, 5, 5, 10])],
)
def test_plan_holds_the_steps_of_the_strategy(
    name: str, percents: list[int], minutes: list[int], synth: Callable[..., SynthesizedStack]
) -> None:
    plan = definition(synth(name))["States"]["Plan"]["Parameters"]["plan"]

    assert plan == {"percents": percents, "minutes": minutes, "index": 0}


def test_every_step_and_the_rollback_run_the_operator_project(synth: Callable[..., SynthesizedStack]) -> None:
    states = definition(synth("canary"))["States"]
    builds = {name: state for name, state in states.items() if state.get("Resource") == START_BUILD}

    assert sorted(builds) == ["Retract", "Shift viewers"]
    for state in builds.values():
        assert state["Parameters"]["ProjectName"] == "${OperateProject}"
    # The shift's result (its exported outcome) decides whether the rollout goes on; the retract's is dropped.
    assert states["Shift viewers"]["ResultPath"] == "$.shifted"
    assert states["Retract"]["ResultPath"] is None
    steps = {
        name: {v["Name"]: v.get("Value", v.get("Value.$")) for v in s["Parameters"]["EnvironmentVariablesOverride"]}
        for name, s in builds.items()
    }
    assert steps["Shift viewers"][ENV_STEP] == "shift"
    assert steps["Retract"][ENV_STEP] == "retract"
    assert steps["Retract"][ENV_RELEASE_ID] == "$.release"
    # Both carry the rollout (the execution's name), the retract its reason.
    assert steps["Shift viewers"][ENV_ROLLOUT] == steps["Retract"][ENV_ROLLOUT] == "$.rollout"
    assert states["Plan"]["Parameters"]["rollout.$"] == "$$.Execution.Name"
    assert steps["Retract"][ENV_REASON] == "$.reason.cause"
    assert states["Shift viewers"]["Next"] == "Outcome exported?"
    assert states["Rollout stopped?"]["Choices"][0] == {
        "Variable": "$.shifted.Build.ExportedEnvironmentVariables[0].Value",
        "StringEquals": "stopped",
        "Next": "Stopped",
    }
    # A failed step and a fired alarm both end in the retract, then a failed execution.
    assert states["Shift viewers"]["Catch"][0]["Next"] == "Step failed"
    assert states["Step failed"]["Next"] == "Retract"
    assert states["Alarm fired"]["Next"] == "Retract"
    assert states["Retract"]["Next"] == "Rolled back"
    assert states["Rolled back"]["Type"] == "Fail"
    assert states["Retract"]["Catch"][0]["Next"] == "Rollback failed"


def test_alarms_are_read_before_the_first_shift_and_every_minute_after(synth: Callable[..., SynthesizedStack]) -> None:
    states = definition(synth("canary"))["States"]
    reads = {name: state for name, state in states.items() if state.get("Resource") == DESCRIBE_ALARMS}

    assert sorted(reads) == ["Check named alarms exist", "Read alarms", "Read alarms before"]
    assert reads["Check named alarms exist"]["Parameters"]["AlarmNames"] == ["checkout-errors"]
    assert "StateValue" not in reads["Check named alarms exist"]["Parameters"]
    for name in ("Read alarms", "Read alarms before"):
        assert reads[name]["Parameters"]["AlarmNames"] == [OWN_ALARM, "checkout-errors"]
        assert reads[name]["Parameters"]["StateValue"] == "ALARM"
    assert states["Wait a minute"] == {"Type": "Wait", "Seconds": 60, "Next": "Read alarms"}
    assert states["Plan"]["Next"] == "Check named alarms exist"


def test_without_alarms_the_steps_still_wait_but_read_nothing(synth: Callable[..., SynthesizedStack]) -> None:
    states = definition(synth("linear-quiet"))["States"]

    assert not [s for s in states.values() if s.get("Resource") == DESCRIBE_ALARMS]
    assert states["Wait a minute"]["Next"] == "Count down"
    assert states["Plan"]["Next"] == "Next step"


def test_state_machine_logs_every_event_traces_and_times_out(synth: Callable[..., SynthesizedStack]) -> None:
    stack = synth("canary")
    properties = state_machine(stack)["Properties"]
    rollout = CONFIGS["canary"].rollout

    assert properties["LoggingConfiguration"]["Level"] == "ALL"
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert definition(stack)["TimeoutSeconds"] >= rollout.total_minutes * 60 + 3600


def test_state_machine_role_may_run_the_operator_and_read_alarms(
    synth: Callable[..., SynthesizedStack],
) -> None:
    stack = synth("canary", "us-east-1")
    role = state_machine(stack)["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    assert stack.stack.pipeline is not None
    operate = stack.logical_id(stack.stack.pipeline.operate_project)
    by_sid = {s.get("Sid"): s for s in statements_of(stack, role)}

    assert by_sid["RunOperatorBuilds"]["Resource"] == {"Fn::GetAtt": [operate, "Arn"]}
    assert sorted(by_sid["RunOperatorBuilds"]["Action"]) == [
        "codebuild:BatchGetBuilds",
        "codebuild:StartBuild",
        "codebuild:StopBuild",
    ]
    assert by_sid["WaitForOperatorBuilds"]["Resource"] == (
        "arn:aws:events:us-east-1:111111111111:rule/StepFunctionsGetEventForCodeBuildStartBuildRule"
    )
    # CloudWatch answers with composite alarms only to a grant on every resource.
    assert (by_sid["ReadAlarms"]["Action"], by_sid["ReadAlarms"]["Resource"]) == ("cloudwatch:DescribeAlarms", "*")
    for statement in statements_of(stack, role):
        if statement["Resource"] == "*":
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all(a.startswith(("logs:", "xray:")) or a == "cloudwatch:DescribeAlarms" for a in actions)


# -- the alarm ----------------------------------------------------------------------------------


def test_error_rate_alarm_watches_the_distributions_5xx_rate(synth: Callable[..., SynthesizedStack]) -> None:
    stack = synth("default", "us-east-1")
    ((_, alarm),) = resources(stack, "AWS::CloudWatch::Alarm").items()

    assert alarm["Properties"] == {
        "AlarmName": OWN_ALARM,
        "AlarmDescription": alarm["Properties"]["AlarmDescription"],
        "Namespace": "AWS/CloudFront",
        "MetricName": "5xxErrorRate",
        "Dimensions": [
            {"Name": "DistributionId", "Value": {"Ref": stack.logical_id(stack.stack.site.distribution)}},
            {"Name": "Region", "Value": "Global"},
        ],
        "Statistic": "Average",
        "Period": 60,
        "Threshold": 5,
        "ComparisonOperator": "GreaterThanThreshold",
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2,
        "TreatMissingData": "notBreaching",
    }
    assert "Condition" not in alarm


def test_alarm_of_a_stack_without_a_known_region_exists_only_in_us_east_1(
    synth: Callable[..., SynthesizedStack],
) -> None:
    stack = synth("default")
    ((_, alarm),) = resources(stack, "AWS::CloudWatch::Alarm").items()

    condition = stack.template_json["Conditions"][alarm["Condition"]]
    assert condition == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}


def test_stack_outside_us_east_1_has_no_error_rate_alarm_and_says_so(synth: Callable[..., SynthesizedStack]) -> None:
    stack = synth("canary", "eu-west-1")
    messages = [
        str(m.entry.data)
        for m in stack.app.synth().get_stack_by_name(stack.stack.stack_name).messages
        if m.entry.type == "aws:cdk:warning"
    ]

    assert resources(stack, "AWS::CloudWatch::Alarm") == {}
    assert any("errorRateAlarmRegion" in m and "us-east-1 only" in m for m in messages)
    reads = [s for s in definition(stack)["States"].values() if s.get("Resource") == DESCRIBE_ALARMS]
    assert all(OWN_ALARM not in s["Parameters"]["AlarmNames"] for s in reads)


def test_error_rate_alarm_can_be_turned_off(synth: Callable[..., SynthesizedStack]) -> None:
    assert resources(synth("linear-quiet"), "AWS::CloudWatch::Alarm") == {}


# -- the pipeline -------------------------------------------------------------------------------


def test_verify_runs_on_the_staged_release_before_the_rollout(synth: Callable[..., SynthesizedStack]) -> None:
    found = stages(synth("default"))

    assert list(found) == ["Source", "Build", "Verify", "Rollout"]
    variables = json.loads(found["Verify"][0]["Configuration"]["EnvironmentVariables"])
    assert {v["name"]: v["value"] for v in variables} == {
        ENV_STEP: "verify",
        ENV_RELEASE_ID: f"#{{Build.{ENV_RELEASE_ID}}}",
    }
    assert found["Build"][0]["Namespace"] == "Build"
    rollout = found["Rollout"][0]["Configuration"]
    assert json.loads(rollout["Input"]) == {"release": f"#{{Build.{ENV_RELEASE_ID}}}"}
    assert rollout["InputType"] == "Literal"
    assert rollout["ExecutionNamePrefix"] == "rollout-docs"


def test_approval_waits_between_verify_and_rollout_when_asked(synth: Callable[..., SynthesizedStack]) -> None:
    found = stages(synth("canary"))

    assert list(found) == ["Source", "Build", "Verify", "Approve", "Rollout"]
    (approve,) = found["Approve"]
    assert approve["ActionTypeId"]["Category"] == "Approval"
    assert f"hosting-toolkit preview #{{Build.{ENV_RELEASE_ID}}}" in approve["Configuration"]["CustomData"]


def test_operator_projects_verify_through_the_distribution_and_may_switch_traffic_but_not_upload(
    synth: Callable[..., SynthesizedStack],
) -> None:
    stack = synth("default")
    pipeline = stack.stack.pipeline
    assert pipeline is not None
    for project in (pipeline.verify_project, pipeline.operate_project):
        assert project.role is not None
        statements = statements_of(stack, stack.logical_id(project.role))
        actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
        assert "cloudfront-keyvaluestore:PutKey" in actions
        assert "s3:DeleteObject" not in actions
        assert "s3:AbortMultipartUpload" not in actions
        if project is pipeline.verify_project:
            # verify reads a record and the preview token; it writes nothing to the bucket.
            assert not {a for a in actions if a.startswith("s3:Put")}
        variables = {
            v["Name"]: v["Value"]
            for v in stack.template_json["Resources"][stack.logical_id(project)]["Properties"]["Environment"][
                "EnvironmentVariables"
            ]
        }
        distribution = stack.logical_id(stack.stack.site.distribution)
        assert variables["HOSTING_TOOLKIT_SITE_URL"] == {
            "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}]]
        }
        puts = [s for s in statements if s["Action"] == "s3:PutObject"]
        # The operator writes by server-side copies under releases/ (skew protection), history and error pages.
        expected = ["/releases/*", "/_meta/*", "/errors/*"] if project is pipeline.operate_project else []
        assert [s["Resource"] for s in puts] == [
            {"Fn::Join": ["", [{"Fn::GetAtt": ["SiteBucket978D4AEB", "Arn"]}, suffix]]} for suffix in expected
        ]


# -- notifications ------------------------------------------------------------------------------


def test_notify_creates_an_encrypted_tls_only_topic_with_an_email_subscription_each(
    synth: Callable[..., SynthesizedStack],
) -> None:
    stack = synth("notify")
    ((topic_id, topic),) = resources(stack, "AWS::SNS::Topic").items()
    subscriptions = resources(stack, "AWS::SNS::Subscription").values()

    assert topic["Properties"]["KmsMasterKeyId"] == "alias/aws/sns"
    assert sorted((s["Properties"]["Protocol"], s["Properties"]["Endpoint"]) for s in subscriptions) == [
        ("email", "ops@example.com"),
        ("email", "web@example.com"),
    ]
    (policy,) = resources(stack, "AWS::SNS::TopicPolicy").values()
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    machine = state_machine(stack)
    assert machine["Properties"]["DefinitionSubstitutions"]["NotifyTopic"] == {"Ref": topic_id}
    publishing = [
        s
        for s in statements_of(stack, machine["Properties"]["RoleArn"]["Fn::GetAtt"][0])
        if "sns:Publish" in s["Action"]
    ]
    assert [s["Resource"] for s in publishing] == [{"Ref": topic_id}]


def test_notify_publishes_the_start_each_step_a_stop_a_rollback_and_the_release_live(
    synth: Callable[..., SynthesizedStack],
) -> None:
    states = definition(synth("notify"))["States"]
    published = {name: state for name, state in states.items() if state.get("Resource") == PUBLISH}

    assert sorted(published) == [
        "Notify release live",
        "Notify rolled back",
        "Notify rollout started",
        "Notify rollout stopped",
        "Notify step done",
    ]
    for state in published.values():
        assert state["Parameters"]["TopicArn"] == "${NotifyTopic}"
        # A failed notification goes on where a delivered one would.
        assert state["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.notifyFailure", "Next": state["Next"]}
        ]
    assert "Notify step done" not in definition(synth("default"))["States"]


def test_the_approval_waiting_is_announced_on_the_topic(synth: Callable[..., SynthesizedStack]) -> None:
    stack = synth("notify")
    ((topic_id, _),) = resources(stack, "AWS::SNS::Topic").items()
    (approve,) = stages(stack)["Approve"]

    assert approve["Configuration"]["NotificationArn"] == {"Ref": topic_id}


def test_an_existing_topic_is_used_as_it_is(synth: Callable[..., SynthesizedStack]) -> None:
    stack = synth("notify-topic")
    arn = "arn:aws:sns:us-east-1:111111111111:team-releases"

    assert resources(stack, "AWS::SNS::Topic") == {}
    assert state_machine(stack)["Properties"]["DefinitionSubstitutions"]["NotifyTopic"] == arn
    (approve,) = stages(stack)["Approve"]
    assert approve["Configuration"]["NotificationArn"] == arn


def test_notify_options_are_checked_all_at_once() -> None:
    text = '[rollout]\nnotify = ["ops", "ops"]\nnotify_topic_arn = "arn:aws:sns:us-east-1:1:t"\n'

    with pytest.raises(ConfigError) as raised:
        parse_config(tomllib.loads(text))

    assert raised.value.problems == [
        "rollout.notify[0]: 'ops' is not an e-mail address",
        "rollout.notify[1]: 'ops' is not an e-mail address",
        "rollout.notify: lists an address more than once",
        "rollout.notify_topic_arn: 'arn:aws:sns:us-east-1:1:t' is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
        "rollout.notify: give either e-mail addresses (the stack creates the topic) or rollout.notify_topic_arn "
        "(subscribe them to that topic yourself), not both",
    ]


# -- checks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "region"),
    [
        ("canary", None),
        ("canary", "us-east-1"),
        ("linear-quiet", "eu-west-1"),
        ("notify", None),
        ("notify-topic", None),
    ],
)
def test_aws_solutions_checks_find_nothing_unacknowledged(
    name: str, region: str | None, synth: Callable[..., SynthesizedStack]
) -> None:
    report = AwsSolutionsChecks().validate_scope(synth(name, region).app)

    assert [v.rule_name for v in report.violations] == []


@pytest.mark.parametrize("name", ["canary", "linear-quiet", "notify"])
def test_template_has_no_cfn_lint_errors(name: str, synth: Callable[..., SynthesizedStack]) -> None:
    template = json.dumps(synth(name).template_json, indent=1)
    matches = lint(template, config=ManualArgs(regions=["us-east-1", "eu-west-1", "ap-southeast-2"]))

    for match in matches:
        if match.rule.severity != "error":
            warnings.warn(f"cfn-lint {match.rule.id}: {match.message}", stacklevel=1)
    assert [f"{m.rule.id}: {m.message}" for m in matches if m.rule.severity == "error"] == []


# -- configuration ------------------------------------------------------------------------------


def test_rollout_options_are_read_and_checked() -> None:
    config = parse_config(tomllib.loads("[rollout]\napproval = true\nerror_rate_percent = 2.5\n"))
    assert (config.rollout.approval, config.rollout.error_rate_percent) == (True, 2.5)

    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads('[rollout]\napproval = "yes"\nerror_rate_percent = 101\n'))
    assert any(p.startswith("rollout.approval:") for p in caught.value.problems)
    assert any(p.startswith("rollout.error_rate_percent:") for p in caught.value.problems)


def test_a_rollout_longer_than_a_day_is_refused_with_the_way_out() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads('[rollout]\nstrategy = "linear"\npercent = 1\ninterval_minutes = 30\n'))

    (problem,) = caught.value.problems
    assert "2980 minutes (100 steps)" in problem
    assert "raise rollout.percent" in problem


def test_steps_of_each_strategy() -> None:
    assert RolloutConfig().steps() == ((100, 10),)
    assert RolloutConfig(strategy="canary", percent=100).steps() == ((100, 10),)
    assert RolloutConfig(strategy="linear", percent=30, interval_minutes=2, bake_minutes=0).steps() == (
        (30, 2),
        (60, 2),
        (90, 2),
        (100, 0),
    )


def test_more_alarms_than_one_page_of_describe_alarms_are_refused() -> None:
    names = ", ".join(f'"alarm-{i}"' for i in range(51))
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(f"[rollout]\nalarms = [{names}]\n"))

    assert caught.value.problems == [
        "rollout.alarms: 51 alarms; a rollout watches at most 50 (combine them in a composite alarm)"
    ]
