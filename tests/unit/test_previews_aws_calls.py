"""The AWS calls of previews, in the shapes botocore's models check: promoting a preview starts the
production pipeline on its commit, and a preview build reads the pull request from its run's trigger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from hosting_toolkit.cli import previews
from hosting_toolkit.cli.previews import start_production_run
from hosting_toolkit.contract import SOURCE_ACTION_NAME
from hosting_toolkit.errors import BackendError
from hosting_toolkit.pipeline.executions import PullRequestEvent

COMMIT = "4f9c2a7be01d5c3f8a6b9e0d1c2b3a4f5e6d7c8b"


@pytest.fixture
def codepipeline() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("codepipeline", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_promotion_starts_the_production_pipeline_on_the_preview_s_commit(codepipeline: tuple[Any, Stubber]) -> None:
    client, stubber = codepipeline
    stubber.add_response(
        "start_pipeline_execution",
        {"pipelineExecutionId": "0e1f2a3b-4c5d-6e7f-8a9b-0c1d2e3f4a5b"},
        {
            "name": "hosting-docs-pipeline",
            "sourceRevisions": [
                {"actionName": SOURCE_ACTION_NAME, "revisionType": "COMMIT_ID", "revisionValue": COMMIT}
            ],
        },
    )
    assert start_production_run(client, "hosting-docs-pipeline", COMMIT) == "0e1f2a3b-4c5d-6e7f-8a9b-0c1d2e3f4a5b"


def test_a_refused_start_is_one_backend_error(codepipeline: tuple[Any, Stubber]) -> None:
    client, stubber = codepipeline
    stubber.add_client_error("start_pipeline_execution", "PipelineNotFoundException", "no such pipeline")
    with pytest.raises(BackendError, match="starting gone on 4f9c2a7be01d failed"):
        start_production_run(client, "gone", COMMIT)


def test_the_preview_build_reads_the_pull_request_from_its_run(
    codepipeline: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, stubber = codepipeline

    class Session:
        def client(self, service: str) -> Any:
            assert service == "codepipeline"
            return client

    monkeypatch.setattr("hosting_toolkit.cli.project.session_factory", Session)
    detail = json.dumps({"pullRequestId": "42", "pullRequestEvent": "CLOSED"})
    stubber.add_response(
        "get_pipeline_execution",
        {
            "pipelineExecution": {
                "pipelineExecutionId": "e-1",
                "trigger": {"triggerType": "WebhookV2", "triggerDetail": detail},
            }
        },
        {"pipelineName": "previews", "pipelineExecutionId": "e-1"},
    )
    assert previews._pull_request_event("previews", "e-1") == PullRequestEvent(42, True)
