"""The release pipeline's latest execution, as ``status`` shows it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from hosting_toolkit.errors import BackendError


@dataclass(frozen=True)
class PipelineRun:
    """One execution of the release pipeline.

    status: CodePipeline's status (``InProgress``, ``Succeeded``, ``Failed``, ``Superseded``...).
    revision: the source revision it built (a commit, or an uploaded object's version).
    summary: the revision's summary (a commit message's first line).
    trigger: what started it (``Webhook``, ``CloudWatchEvent``, ``StartPipelineExecution``...).
    stage: the stage it is in, or the one it stopped at (``Build``, ``Verify``, ``Approve``, ``Rollout``...).
    reason: why its failed action failed, as CodePipeline reports it (for a rollout: the state
      machine's error and cause, e.g. which alarm fired).
    """

    pipeline: str
    id: str
    status: str
    started: str
    revision: str = ""
    summary: str = ""
    trigger: str = ""
    stage: str = ""
    reason: str = ""


def _summary(text: str) -> str:
    """A revision's summary; CodeConnections sources give JSON holding the commit message."""
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("CommitMessage"), str):
            text = data["CommitMessage"]
    return text.strip().splitlines()[0] if text.strip() else ""


def _time(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value or "")


def latest_run(client: Any, pipeline: str) -> PipelineRun | None:
    """The newest execution of ``pipeline`` (a CodePipeline client), or ``None`` before the first one."""
    try:
        summaries = client.list_pipeline_executions(pipelineName=pipeline, maxResults=1)["pipelineExecutionSummaries"]
    except (BotoCoreError, ClientError) as exc:
        raise BackendError(f"reading the executions of pipeline {pipeline} failed: {exc}") from exc
    if not summaries:
        return None
    latest = summaries[0]
    revisions = latest.get("sourceRevisions") or [{}]
    run_id = str(latest["pipelineExecutionId"])
    try:
        stages = client.get_pipeline_state(name=pipeline).get("stageStates") or []
    except (BotoCoreError, ClientError) as exc:
        raise BackendError(f"reading the state of pipeline {pipeline} failed: {exc}") from exc
    stage, reason = _where(stages, run_id)
    return PipelineRun(
        pipeline=pipeline,
        id=run_id,
        status=str(latest["status"]),
        started=_time(latest.get("startTime")),
        revision=str(revisions[0].get("revisionId") or ""),
        summary=_summary(str(revisions[0].get("revisionSummary") or "")),
        trigger=str((latest.get("trigger") or {}).get("triggerType") or ""),
        stage=stage,
        reason=reason,
    )


def _where(stages: list[dict[str, Any]], run_id: str) -> tuple[str, str]:
    """The last stage execution ``run_id`` reached, and the error of its failed action, if any."""
    stage, reason = "", ""
    for state in stages:
        if (state.get("latestExecution") or {}).get("pipelineExecutionId") != run_id:
            continue
        stage = str(state.get("stageName") or "")
        for action in state.get("actionStates") or []:
            execution = action.get("latestExecution") or {}
            if execution.get("status") == "Failed":
                details = execution.get("errorDetails") or {}
                reason = str(details.get("message") or execution.get("summary") or "failed")
    return stage, reason


@dataclass(frozen=True)
class PullRequestEvent:
    """A pull request that started a preview pipeline run: its number, and whether it was closed or merged."""

    number: int
    closed: bool


def _fields(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) of nested JSON objects, keys lowercased."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key).lower(), item
            yield from _fields(item)
    elif isinstance(value, list):
        for item in value:
            yield from _fields(item)


def pull_request_of(trigger: dict[str, Any]) -> PullRequestEvent | None:
    """The pull request of a run's ``trigger`` (``GetPipelineExecution``), or ``None`` for a push.

    CodePipeline passes the event of a pull-request trigger in ``triggerDetail`` as JSON; its number
    and event are looked up by their key names (``...pullrequest...id``/``number``, ``...event``/
    ``action``), so the shape of the provider's payload may vary.
    """
    detail = trigger.get("triggerDetail")
    try:
        data = json.loads(detail) if isinstance(detail, str) else detail
    except ValueError:
        return None
    number: int | None = None
    closed = False
    for key, value in _fields(data):
        if number is None and "pullrequest" in key.replace("_", "") and ("id" in key or "number" in key):
            text = str(value).rsplit("/", 1)[-1]
            number = int(text) if text.isdigit() else None
        if key in ("event", "eventtype", "action", "pullrequestevent", "state", "status") and isinstance(value, str):
            closed = closed or value.upper() in ("CLOSED", "MERGED", "DECLINED")
    return PullRequestEvent(number, closed) if number else None
