"""The pull request behind a preview pipeline run, read from its execution's trigger."""

from __future__ import annotations

import json

import pytest

from hosting_toolkit.pipeline.executions import PullRequestEvent, pull_request_of


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ({"pullRequestId": "42", "pullRequestEvent": "OPEN"}, PullRequestEvent(42, False)),
        ({"PullRequest": {"PullRequestNumber": 7, "Event": "UPDATED"}}, PullRequestEvent(7, False)),
        ({"pull_request_id": "https://github.com/acme/site/pull/9", "action": "closed"}, PullRequestEvent(9, True)),
        ({"pullRequestId": 3, "state": "MERGED"}, PullRequestEvent(3, True)),
        ({"branch": "feature/x", "commit": "abc"}, None),
    ],
)
def test_pull_request_number_and_closing_from_the_trigger_detail(
    detail: dict[str, object], expected: PullRequestEvent | None
) -> None:
    trigger = {"triggerType": "WebhookV2", "triggerDetail": json.dumps(detail)}
    assert pull_request_of(trigger) == expected


@pytest.mark.parametrize("trigger", [{}, {"triggerDetail": "not json"}, {"triggerDetail": "arn:aws:iam::1:user/x"}])
def test_a_trigger_without_a_pull_request_is_a_push(trigger: dict[str, str]) -> None:
    assert pull_request_of(trigger) is None
