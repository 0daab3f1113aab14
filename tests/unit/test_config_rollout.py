"""The ``[rollout]`` and ``[verify]`` sections of ``hosting.toml``."""

from __future__ import annotations

import tomllib

import pytest

from hosting_toolkit.config import RolloutConfig, VerifyCheck, VerifyConfig, parse_config
from hosting_toolkit.errors import ConfigError


def problems_of(document: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(document))
    return caught.value.problems


def test_defaults_switch_all_at_once_and_verify_the_home_page() -> None:
    config = parse_config({})
    assert config.rollout == RolloutConfig()
    assert config.rollout.strategy == "all-at-once"
    assert (config.rollout.cohort_idle_seconds, config.rollout.cohort_max_seconds) == (3600, 86400)
    assert config.verify.checks == (VerifyCheck(path="/", status=200),)
    assert config.verify.assets is True


def test_rollout_and_verify_sections_are_loaded() -> None:
    config = parse_config(
        tomllib.loads(
            """
            [rollout]
            strategy = "linear"
            percent = 20
            interval_minutes = 5
            bake_minutes = 15
            cohort_idle_seconds = 900
            cohort_max_seconds = 3600
            alarms = ["site-5xx", "checkout-errors"]

            [verify]
            assets = false
            timeout_seconds = 5
            wait_seconds = 0

            [[verify.checks]]
            path = "/"
            text = "Welcome"
            content_type = "text/html"

            [[verify.checks]]
            path = "/missing"
            status = 404
            """
        )
    )
    assert config.rollout == RolloutConfig(
        strategy="linear",
        percent=20,
        interval_minutes=5,
        bake_minutes=15,
        cohort_idle_seconds=900,
        cohort_max_seconds=3600,
        alarms=("site-5xx", "checkout-errors"),
    )
    assert config.verify == VerifyConfig(
        checks=(VerifyCheck(path="/", text="Welcome", content_type="text/html"), VerifyCheck("/missing", 404)),
        assets=False,
        timeout_seconds=5,
        wait_seconds=0,
    )


def test_every_rollout_problem_is_reported_at_once_with_hints() -> None:
    problems = problems_of(
        """
        [rollout]
        strategy = "canery"
        percent = 0
        interval_minutes = 0
        bake_minutes = -1
        cohort_idle_seconds = 7200
        cohort_max_seconds = 3600
        alarms = ["ok", "", "ok"]
        weight = 10
        """
    )
    assert problems == [
        "rollout.weight: unknown key (known: alarms, approval, bake_minutes, cohort_idle_seconds, "
        "cohort_max_seconds, error_rate_percent, interval_minutes, notify, notify_topic_arn, percent, strategy)",
        "rollout.strategy: 'canery' is not a strategy (did you mean 'canary'?)",
        "rollout.percent: 0 is out of range; use 1 to 100",
        "rollout.interval_minutes: 0 is out of range; use 1 to 1440",
        "rollout.bake_minutes: -1 is out of range; use 0 to 1440",
        "rollout.cohort_max_seconds: 3600 is shorter than rollout.cohort_idle_seconds (7200); "
        "the maximum lifetime must be at least the idle one",
        "rollout.alarms[1]: '' is not an alarm name (1-255 characters)",
        "rollout.alarms: lists an alarm more than once",
    ]


def test_alarms_must_be_a_list() -> None:
    assert problems_of('[rollout]\nalarms = "site-5xx"\n') == [
        "rollout.alarms: expected a list of CloudWatch alarm names, got 'site-5xx'"
    ]


def test_every_verify_problem_is_reported_with_the_check_it_belongs_to() -> None:
    problems = problems_of(
        """
        [verify]
        assets = "yes"
        timeout_seconds = 0

        [[verify.checks]]
        path = "about"
        status = 700
        txt = "hello"

        [[verify.checks]]
        path = "/ok"
        content_type = "text/html\\nx"
        """
    )
    assert problems == [
        "verify.checks[0].txt: unknown key (did you mean 'text'?)",
        "verify.checks[0].path: 'about' must be a path starting with '/' (e.g. '/about')",
        "verify.checks[0].status: 700 is out of range; use 100 to 599",
        "verify.checks[1].content_type: must be one line of text",
        "verify.assets: expected true or false, got 'yes'",
        "verify.timeout_seconds: 0 is out of range; use 1 to 300",
    ]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("[verify]\nchecks = []\n", 'verify.checks: give at least one check (e.g. path = "/")'),
        ('[verify]\nchecks = "/"\n', "verify.checks: expected [[verify.checks]] tables, got '/'"),
        ('[verify]\nchecks = ["/"]\n', "verify.checks[0]: expected a table with path, status, text, content_type"),
    ],
)
def test_verify_checks_must_be_tables(document: str, problem: str) -> None:
    assert problem in problems_of(document)
