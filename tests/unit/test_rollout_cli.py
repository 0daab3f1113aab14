"""``rollout stop`` in AWS: the running execution of the deployed state machine is stopped by name."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from hosting_toolkit.cli import rollouts
from hosting_toolkit.errors import BackendError

MACHINE = "arn:aws:states:us-east-1:111111111111:stateMachine:PipelineRolloutStateMachine-abc"
EXECUTION = "arn:aws:states:us-east-1:111111111111:execution:PipelineRolloutStateMachine-abc:rollout-docs-7"


class Target:
    rollout_state_machine_arn = MACHINE


class Session:
    local = None
    target = Target()


@pytest.fixture
def stepfunctions(monkeypatch: pytest.MonkeyPatch) -> Any:
    client = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    monkeypatch.setattr(boto3, "client", lambda service, **_: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_a_running_execution_is_stopped_by_its_name(stepfunctions: Stubber) -> None:
    stepfunctions.add_response(
        "describe_execution",
        {"executionArn": EXECUTION, "stateMachineArn": MACHINE, "status": "RUNNING", "startDate": "2026-12-02"},
        {"executionArn": EXECUTION},
    )
    stepfunctions.add_response(
        "stop_execution",
        {"stopDate": "2026-12-02"},
        {"executionArn": EXECUTION, "error": "RolloutStopped", "cause": "stopped with: rollout stop"},
    )

    assert rollouts._stop_execution(Session(), "rollout-docs-7") == EXECUTION  # type: ignore[arg-type]


def test_an_execution_that_ended_is_left_alone(stepfunctions: Stubber) -> None:
    stepfunctions.add_response(
        "describe_execution",
        {"executionArn": EXECUTION, "stateMachineArn": MACHINE, "status": "FAILED", "startDate": "2026-12-02"},
        {"executionArn": EXECUTION},
    )

    assert rollouts._stop_execution(Session(), "rollout-docs-7") is None  # type: ignore[arg-type]


def test_a_refused_stop_is_a_backend_error(stepfunctions: Stubber) -> None:
    stepfunctions.add_client_error("describe_execution", "AccessDeniedException", "not allowed")

    with pytest.raises(BackendError, match="could not stop the rollout execution rollout-docs-7"):
        rollouts._stop_execution(Session(), "rollout-docs-7")  # type: ignore[arg-type]
