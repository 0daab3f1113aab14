"""The rollout: how a verified release takes the viewers, step by step, in AWS, and how it is undone.

A Step Functions state machine (Amazon States Language, JSONPath) runs the steps of ``[rollout]``:
each step is one run of the operator CodeBuild project (``OPERATE_COMMAND``: ``canary ID --percent
N`` below 100%, ``activate ID`` at 100%), then a watch of the step's minutes, one ``Wait`` of a
minute at a time, reading the alarms after each. When an alarm is in ALARM, or a step fails, the
state machine runs the ``retract`` step (``rollback --from ID``: the canary is aborted, or the live
release rolled back to the one before) and fails with the reason, which fails the pipeline run.

Before the first step, the alarms named in ``[rollout] alarms`` must all exist, and none of the
watched alarms may be in ALARM: a rollout never starts on a site that is already failing, and
nothing changes in that case.

The definition is plain data (``rollout_definition``), so tests run it with a local interpreter of
the States Language against the release engine.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from hosting_toolkit.config import RolloutConfig
from hosting_toolkit.pipeline.buildspec import (
    ENV_PERCENT,
    ENV_REASON,
    ENV_RELEASE_ID,
    ENV_ROLLOUT,
    ENV_STEP,
    ENV_STEP_INDEX,
    ENV_STEPS,
    ENV_WATCH_MINUTES,
)

#: The Step Functions integrations the rollout uses.
START_BUILD = "arn:aws:states:::codebuild:startBuild.sync"
DESCRIBE_ALARMS = "arn:aws:states:::aws-sdk:cloudwatch:describeAlarms"
PUBLISH = "arn:aws:states:::sns:publish"
#: Placeholder for the operator project's name, substituted at deploy time.
PROJECT_PLACEHOLDER = "${OperateProject}"
#: Placeholder for the notification topic's ARN, substituted at deploy time.
TOPIC_PLACEHOLDER = "${NotifyTopic}"
#: What a shift exports when the rollout must stop (``ENV_OUTCOME``): a person changed the routing or stopped it.
STOPPED_OUTCOME = "stopped"
#: Seconds between two readings of the alarms while a step is watched.
WATCH_SECONDS = 60
#: Time allowed for one run of the operator project (it installs the release engine first).
STEP_ALLOWANCE_MINUTES = 30
#: CloudFront publishes its metrics in this region only.
METRICS_REGION = "us-east-1"
#: Step Functions' managed rule for ``startBuild.sync``.
SYNC_RULE = "StepFunctionsGetEventForCodeBuildStartBuildRule"

# State names (they show in the console and in the execution history).
PLAN = "Plan"
ALARMS_EXIST = "Check named alarms exist"
ALARMS_COUNTED = "Count named alarms"
ALL_FOUND = "All named alarms found?"
ALARMS_QUIET = "Read alarms before"
QUIET = "All alarms quiet?"
STEP = "Next step"
SHIFT = "Shift viewers"
WATCHING = "Watch time left?"
WAIT = "Wait a minute"
CHECK = "Read alarms"
FIRING = "Alarm firing?"
COUNT_DOWN = "Count down"
ADVANCE = "Advance"
MORE = "More steps?"
DONE = "Rolled out"
ALARM_FIRED = "Alarm fired"
STEP_FAILED = "Step failed"
UNWATCHED = "Alarms unreadable"
RETRACT = "Retract"
ROLLED_BACK = "Rolled back"
RETRACT_FAILED = "Rollback failed"
NOT_FOUND = "Named alarm missing"
ALREADY_FIRING = "Alarm already firing"
OUTCOME_KNOWN = "Outcome exported?"
STOPPED_CHOICE = "Rollout stopped?"
STOPPED = "Stopped"
NOTIFY_STARTED = "Notify rollout started"
NOTIFY_STEP = "Notify step done"
NOTIFY_ROLLED_BACK = "Notify rolled back"
NOTIFY_LIVE = "Notify release live"
NOTIFY_STOPPED = "Notify rollout stopped"
#: Where a shift's exported outcome is in its ``startBuild.sync`` result (the operator exports one variable).
OUTCOME_PATH = "$.shifted.Build.ExportedEnvironmentVariables[0].Value"

_FIRING_NAMES = "States.JsonToString($.alarms.metric), States.JsonToString($.alarms.composite)"


def _variable(name: str, value: str | None = None, path: str | None = None) -> dict[str, str]:
    item = {"Name": name, "Type": "PLAINTEXT"}
    if path is not None:
        item["Value.$"] = path
    else:
        item["Value"] = value or ""
    return item


def _publish(subject: str, message: str, following: str) -> dict[str, Any]:
    """Publish to the notification topic; a failed notification never stops or fails the rollout."""
    return {
        "Type": "Task",
        "Resource": PUBLISH,
        "Parameters": {"TopicArn": TOPIC_PLACEHOLDER, "Subject.$": subject, "Message.$": message},
        "ResultPath": None,
        "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 5, "MaxAttempts": 2, "BackoffRate": 2}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.notifyFailure", "Next": following}],
        "Next": following,
    }


def _start_build(step: str, extra: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": START_BUILD,
        "Parameters": {
            "ProjectName": PROJECT_PLACEHOLDER,
            "EnvironmentVariablesOverride": [
                _variable(ENV_STEP, step),
                _variable(ENV_RELEASE_ID, path="$.release"),
                *extra,
            ],
        },
        "ResultPath": None,
        "Retry": [
            {
                "ErrorEquals": ["CodeBuild.CodeBuildException", "CodeBuild.AccountLimitExceededException"],
                "IntervalSeconds": 30,
                "MaxAttempts": 3,
                "BackoffRate": 2,
            }
        ],
    }


def _describe(names: Sequence[str], *, firing: bool) -> dict[str, Any]:
    # One page holds them all: at most MAX_ROLLOUT_ALARMS names are watched, and a page holds 100.
    parameters: dict[str, Any] = {
        "AlarmNames": list(names),
        "AlarmTypes": ["MetricAlarm", "CompositeAlarm"],
        "MaxRecords": 100,
    }
    if firing:
        parameters["StateValue"] = "ALARM"
    return {
        "Type": "Task",
        "Resource": DESCRIBE_ALARMS,
        "Parameters": parameters,
        "ResultSelector": {
            "metric.$": "$.MetricAlarms[*].AlarmName",
            "composite.$": "$.CompositeAlarms[*].AlarmName",
        },
        "ResultPath": "$.alarms",
        "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 5, "MaxAttempts": 3, "BackoffRate": 2}],
    }


_ANY_FIRING = {
    "Or": [
        {"Variable": "$.alarms.metric[0]", "IsPresent": True},
        {"Variable": "$.alarms.composite[0]", "IsPresent": True},
    ]
}


def rollout_definition(
    rollout: RolloutConfig,
    *,
    watched: Sequence[str],
    named: Sequence[str],
    timeout_seconds: int | None = None,
    notify: bool = False,
) -> dict[str, Any]:
    """The rollout state machine for ``rollout``: its steps, watching the ``watched`` alarms.

    ``named`` are the alarms of ``[rollout] alarms``, which must exist; ``watched`` holds them and
    the pipeline's own error-rate alarm (which exists only where CloudFront publishes metrics).
    With ``notify``, the rollout's start, each step, an automatic rollback, a stop and the release
    going live are published to the notification topic. Input: ``{"release": "<id>"}``; the
    execution's name is the rollout's id, which every step and the undo carry.
    """
    steps = rollout.steps()
    percents = [percent for percent, _ in steps]
    minutes = [watch for _, watch in steps]
    states: dict[str, Any] = {}
    begin = NOTIFY_STARTED if notify else STEP
    first_step = begin
    if watched:
        first_step = ALARMS_QUIET
        if named:
            first_step = ALARMS_EXIST
            states[ALARMS_EXIST] = {**_describe(named, firing=False), "Next": ALARMS_COUNTED}
            states[ALARMS_COUNTED] = {
                "Type": "Pass",
                "Parameters": {
                    "found.$": "States.MathAdd(States.ArrayLength($.alarms.metric), "
                    "States.ArrayLength($.alarms.composite))"
                },
                "ResultPath": "$.named",
                "Next": ALL_FOUND,
            }
            states[ALL_FOUND] = {
                "Type": "Choice",
                "Choices": [{"Variable": "$.named.found", "NumericEquals": len(named), "Next": ALARMS_QUIET}],
                "Default": NOT_FOUND,
            }
            states[NOT_FOUND] = {
                "Type": "Fail",
                "Error": "AlarmNotFound",
                "CausePath": "States.Format('rollout.alarms names {} alarms but only {} exist in this region: "
                + _escape(", ".join(named))
                + f"; nothing was changed', {len(named)}, $.named.found)",
            }
        states[ALARMS_QUIET] = {**_describe(watched, firing=True), "Next": QUIET}
        states[QUIET] = {
            "Type": "Choice",
            "Choices": [{**_ANY_FIRING, "Next": ALREADY_FIRING}],
            "Default": begin,
        }
        states[ALREADY_FIRING] = {
            "Type": "Fail",
            "Error": "AlarmAlreadyFiring",
            "CausePath": "States.Format('the rollout of {} did not start because alarms are in ALARM: {} {}; "
            "nothing was changed (to release anyway: hosting-toolkit activate {})', $.release, "
            + _FIRING_NAMES
            + ", $.release)",
        }
    if notify:
        states[NOTIFY_STARTED] = _publish(
            "States.Format('Rollout of {} started', $.release)",
            "States.Format('The rollout {} of release {} started: steps "
            + _escape(", ".join(f"{p}% for {m} min" for p, m in steps))
            + ".', $.rollout, $.release)",
            STEP,
        )
    states[STEP] = {
        "Type": "Pass",
        "Parameters": {
            "percent.$": "States.ArrayGetItem($.plan.percents, $.plan.index)",
            "remaining.$": "States.ArrayGetItem($.plan.minutes, $.plan.index)",
        },
        "ResultPath": "$.step",
        "Next": SHIFT,
    }
    shift = _start_build(
        "shift",
        [
            _variable(ENV_PERCENT, path="States.Format('{}', $.step.percent)"),
            _variable(ENV_STEP_INDEX, path="States.Format('{}', $.plan.index)"),
            _variable(ENV_STEPS, str(len(steps))),
            _variable(ENV_WATCH_MINUTES, path="States.Format('{}', $.step.remaining)"),
            _variable(ENV_ROLLOUT, path="$.rollout"),
        ],
    )
    states[SHIFT] = {
        **shift,
        "ResultPath": "$.shifted",
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": STEP_FAILED}],
        "Next": OUTCOME_KNOWN,
    }
    step_done = NOTIFY_STEP if notify else WATCHING
    # Two choices: a condition on a path that is absent fails the execution, unless IsPresent tests it first.
    states[OUTCOME_KNOWN] = {
        "Type": "Choice",
        "Choices": [{"Variable": OUTCOME_PATH, "IsPresent": True, "Next": STOPPED_CHOICE}],
        "Default": step_done,
    }
    states[STOPPED_CHOICE] = {
        "Type": "Choice",
        "Choices": [
            {"Variable": OUTCOME_PATH, "StringEquals": STOPPED_OUTCOME, "Next": NOTIFY_STOPPED if notify else STOPPED}
        ],
        "Default": step_done,
    }
    states[STOPPED] = {
        "Type": "Fail",
        "Error": "RolloutStopped",
        "CausePath": "States.Format('the rollout of {} stopped at {}% of viewers: the routing was changed outside it, "
        "or it was stopped (hosting-toolkit rollout status tells which); the rollout changed nothing more', "
        "$.release, $.step.percent)",
    }
    if notify:
        states[NOTIFY_STOPPED] = _publish(
            "States.Format('Rollout of {} stopped', $.release)",
            "States.Format('The rollout {} of {} stopped at {}% of viewers: the routing was changed outside it, or "
            "it was stopped. It changed nothing more; see: hosting-toolkit rollout status', $.rollout, $.release, "
            "$.step.percent)",
            STOPPED,
        )
        states[NOTIFY_STEP] = _publish(
            "States.Format('Rollout of {}: {}% of viewers', $.release, $.step.percent)",
            "States.Format('Release {} has {}% of viewers; the alarms are watched for {} minutes.', $.release, "
            "$.step.percent, $.step.remaining)",
            WATCHING,
        )
    states[WATCHING] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.step.remaining", "NumericGreaterThan": 0, "Next": WAIT}],
        "Default": ADVANCE,
    }
    states[WAIT] = {"Type": "Wait", "Seconds": WATCH_SECONDS, "Next": CHECK if watched else COUNT_DOWN}
    if watched:
        states[CHECK] = {
            **_describe(watched, firing=True),
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": UNWATCHED}],
            "Next": FIRING,
        }
        states[FIRING] = {"Type": "Choice", "Choices": [{**_ANY_FIRING, "Next": ALARM_FIRED}], "Default": COUNT_DOWN}
        states[ALARM_FIRED] = {
            "Type": "Pass",
            "Parameters": {
                "error": "AlarmFired",
                "cause.$": "States.Format('alarms went into ALARM while {} had {}% of viewers: {} {}', $.release, "
                "$.step.percent, " + _FIRING_NAMES + ")",
            },
            "ResultPath": "$.reason",
            "Next": RETRACT,
        }
        states[UNWATCHED] = {
            "Type": "Pass",
            "Parameters": {
                "error": "AlarmsUnreadable",
                "cause.$": "States.Format('the alarms could not be read while {} had {}% of viewers ({})', "
                "$.release, $.step.percent, $.failure.Error)",
            },
            "ResultPath": "$.reason",
            "Next": RETRACT,
        }
    states[COUNT_DOWN] = {
        "Type": "Pass",
        "Parameters": {"percent.$": "$.step.percent", "remaining.$": "States.MathAdd($.step.remaining, -1)"},
        "ResultPath": "$.step",
        "Next": WATCHING,
    }
    states[ADVANCE] = {
        "Type": "Pass",
        "Parameters": {
            "percents.$": "$.plan.percents",
            "minutes.$": "$.plan.minutes",
            "index.$": "States.MathAdd($.plan.index, 1)",
        },
        "ResultPath": "$.plan",
        "Next": MORE,
    }
    states[MORE] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.plan.index", "NumericLessThan": len(steps), "Next": STEP}],
        "Default": NOTIFY_LIVE if notify else DONE,
    }
    if notify:
        states[NOTIFY_LIVE] = _publish(
            "States.Format('Release {} is live', $.release)",
            "States.Format('Release {} is live for every viewer, and the alarms stayed quiet through its rollout {}.', "
            "$.release, $.rollout)",
            DONE,
        )
    states[DONE] = {"Type": "Succeed"}
    states[STEP_FAILED] = {
        "Type": "Pass",
        "Parameters": {
            "error": "StepFailed",
            "cause.$": "States.Format('the step giving {} {}% of viewers failed ({}); see the operator build log', "
            "$.release, $.step.percent, $.failure.Error)",
        },
        "ResultPath": "$.reason",
        "Next": RETRACT,
    }
    states[RETRACT] = {
        **_start_build(
            "retract", [_variable(ENV_ROLLOUT, path="$.rollout"), _variable(ENV_REASON, path="$.reason.cause")]
        ),
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": RETRACT_FAILED}],
        "Next": NOTIFY_ROLLED_BACK if notify else ROLLED_BACK,
    }
    if notify:
        states[NOTIFY_ROLLED_BACK] = _publish(
            "States.Format('Rollout of {} rolled back automatically', $.release)",
            "States.Format('The rollout {} of {} was rolled back automatically: {}. The viewers it had went back to "
            "the release before it, unless a person had changed the routing (see: hosting-toolkit history).', "
            "$.rollout, $.release, $.reason.cause)",
            ROLLED_BACK,
        )
    states[ROLLED_BACK] = {
        "Type": "Fail",
        "ErrorPath": "$.reason.error",
        "CausePath": "States.Format('{}; the viewers the rollout gave it went back to the release before it, unless "
        "a person had changed the routing (hosting-toolkit history tells)', $.reason.cause)",
    }
    states[RETRACT_FAILED] = {
        "Type": "Fail",
        "Error": "RollbackFailed",
        "CausePath": "States.Format('{}, and taking its viewers back failed too ({}): run hosting-toolkit "
        "rollback --from {}', $.reason.cause, $.failure.Error, $.release)",
    }
    plan = {
        "Type": "Pass",
        "Parameters": {
            "release.$": "$.release",
            "rollout.$": "$$.Execution.Name",
            "plan": {"percents": percents, "minutes": minutes, "index": 0},
        },
        "Next": first_step,
    }
    definition: dict[str, Any] = {
        "Comment": f"{rollout.strategy} rollout of a release: steps {percents} (%), watched {minutes} (minutes)",
        "StartAt": PLAN,
        "States": {PLAN: plan, **states},
    }
    definition["TimeoutSeconds"] = timeout_seconds or default_timeout_seconds(rollout)
    return definition


def _escape(text: str) -> str:
    """``text`` inside a ``States.Format`` string literal."""
    out = text
    for char in "\\'{}":
        out = out.replace(char, "\\" + char)
    return out


def default_timeout_seconds(rollout: RolloutConfig) -> int:
    """Every watched minute, plus time for each step's build, the retract's build and an hour."""
    steps = len(rollout.steps())
    return (rollout.total_minutes + STEP_ALLOWANCE_MINUTES * (steps + 1) + 60) * 60


class ErrorRateAlarm(Construct):
    """The distribution's 5xx error rate above ``percent`` for 2 of 3 minutes.

    CloudFront publishes the metric in us-east-1 only: in a stack of another region no alarm is
    made (with a synth warning); in a stack whose region is known only at deploy time, the alarm
    is made on the condition that the region is us-east-1.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, distribution: cloudfront.IDistribution, percent: float
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.alarm_name = f"{stack.stack_name}-5xx-error-rate"
        self.alarm: cloudwatch.Alarm | None = None
        region = stack.region
        if not cdk.Token.is_unresolved(region) and region != METRICS_REGION:
            cdk.Annotations.of(self).add_warning_v2(
                "hosting-toolkit:errorRateAlarmRegion",
                f"rollout.error_rate_percent: CloudFront publishes its 5xx error rate in {METRICS_REGION} only, so "
                f"no error-rate alarm watches rollouts of this stack in {region}; name alarms of {region} in "
                "rollout.alarms, or deploy the stack in us-east-1.",
            )
            return
        self.alarm = cloudwatch.Alarm(
            self,
            "Alarm",
            alarm_name=self.alarm_name,
            alarm_description=(
                f"The site's 5xx error rate is above {percent}%: a rollout watching it rolls its release back."
            ),
            metric=cloudwatch.Metric(
                namespace="AWS/CloudFront",
                metric_name="5xxErrorRate",
                dimensions_map={"DistributionId": distribution.distribution_id, "Region": "Global"},
                statistic="Average",
                period=cdk.Duration.minutes(1),
            ),
            threshold=percent,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if cdk.Token.is_unresolved(region):
            condition = cdk.CfnCondition(
                self, "InMetricsRegion", expression=cdk.Fn.condition_equals(cdk.Aws.REGION, METRICS_REGION)
            )
            resource = self.alarm.node.default_child
            assert isinstance(resource, cdk.CfnResource)
            resource.cfn_options.condition = condition


class RolloutStateMachine(Construct):
    """The state machine of ``rollout_definition``, with its log group and a role limited to what it calls."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rollout: RolloutConfig,
        project: codebuild.IProject,
        watched: Sequence[str],
        named: Sequence[str],
        topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.definition = rollout_definition(rollout, watched=watched, named=named, notify=topic is not None)
        substitutions = {"OperateProject": project.project_name}
        if topic is not None:
            substitutions["NotifyTopic"] = topic.topic_arn
        self.log_group = logs.LogGroup(
            self, "Logs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment=self.definition["Comment"],
            definition_body=sfn.DefinitionBody.from_string(json.dumps(self.definition, indent=1)),
            definition_substitutions=substitutions,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        role = self.state_machine.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RunOperatorBuilds",
                actions=["codebuild:StartBuild", "codebuild:StopBuild", "codebuild:BatchGetBuilds"],
                resources=[project.project_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WaitForOperatorBuilds",
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[stack.format_arn(service="events", resource="rule", resource_name=SYNC_RULE)],
            )
        )
        if topic is not None:
            topic.grant_publish(role)
        if watched:
            # CloudWatch returns composite alarms only to a DescribeAlarms permission on every
            # resource ("*"); the call reads alarm states and names, nothing else.
            role.add_to_principal_policy(
                iam.PolicyStatement(sid="ReadAlarms", actions=["cloudwatch:DescribeAlarms"], resources=["*"])
            )
        cdk.Validations.of(role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=(
                    "Step Functions' own grants for execution logs (logs:*LogDelivery, which take no resource) "
                    "and X-Ray traces (xray:Put*, which take no resource), and cloudwatch:DescribeAlarms, which "
                    "returns composite alarms only when granted on every resource; it reads alarm states, and the "
                    "rollout's builds are limited to the operator project and the sync rule."
                ),
            )
        )
