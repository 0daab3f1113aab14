"""Step Functions executions in ``moto_server`` with moto's own interpreter of the States Language."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

#: moto_server's setting that runs executions with its interpreter instead of only recording them.
EXECUTE_STATE_MACHINES = {"stepfunctions": {"execute_state_machine": True}}
#: A role in moto's default account; moto checks the ARN's form, nothing else.
ROLE_ARN = "arn:aws:iam::123456789012:role/rollout"


def enable_execution(endpoint: str) -> None:
    """Make the moto_server at ``endpoint`` execute state machines (a process-wide setting, kept across resets)."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/config",
        data=json.dumps(EXECUTE_STATE_MACHINES).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@dataclass
class MotoExecution:
    """How an execution in moto ended, and the states it entered in order (from its history)."""

    status: str
    error: str | None
    cause: str | None
    visited: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == kind]


def run_to_end(client: Any, state_machine_arn: str, name: str, data: Any, *, timeout: float = 20.0) -> MotoExecution:
    """Start an execution and poll it until it ends; moto runs it in a thread, so this is bounded by ``timeout``."""
    arn = client.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(data))["executionArn"]
    deadline = time.monotonic() + timeout
    while (described := client.describe_execution(executionArn=arn))["status"] == "RUNNING":
        if time.monotonic() > deadline:
            client.stop_execution(executionArn=arn)
            raise AssertionError(f"execution {name} still running after {timeout} s")
        time.sleep(0.1)
    events = [
        event
        for page in client.get_paginator("get_execution_history").paginate(executionArn=arn)
        for event in page["events"]
    ]
    return MotoExecution(
        status=described["status"],
        error=described.get("error"),
        cause=described.get("cause"),
        visited=[
            event["stateEnteredEventDetails"]["name"] for event in events if event["type"].endswith("StateEntered")
        ],
        events=events,
    )
