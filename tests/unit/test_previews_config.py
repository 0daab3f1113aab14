"""The ``[previews]`` table: defaults, every problem reported at once, and the names the stack serves."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from hosting_toolkit.config import PreviewsConfig, load_config, parse_config
from hosting_toolkit.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
DOMAIN = {"names": ["www.example.com"], "hosted_zone_id": "Z0123456789ABCDEFGHIJ", "hosted_zone_name": "example.com"}


def test_without_the_table_previews_are_off_and_the_table_turns_them_on() -> None:
    assert parse_config({}).previews == PreviewsConfig()
    assert not parse_config({}).previews.enabled
    on = parse_config({"previews": {}}).previews
    assert on == PreviewsConfig(enabled=True)
    assert (on.branches, on.pull_requests, on.public, on.domain) == (("*",), True, False, "")
    assert not parse_config({"previews": {"enabled": False}}).previews.enabled


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "domain": DOMAIN,
                "previews": {
                    "branches": ["ok/*", "bad branch", "!x/../y"],
                    "pull_requests": "yes",
                    "public": 1,
                    "retention_days": 0,
                    "domain": "preview.other.org",
                    "colour": "blue",
                },
            }
        )
    problems = caught.value.problems
    assert problems == [
        "previews.colour: unknown key (known: branches, domain, enabled, public, pull_requests, retention_days)",
        "previews.pull_requests: expected true or false, got 'yes'",
        "previews.public: expected true or false, got 1",
        "previews.branches[1]: 'bad branch' is not a branch pattern (e.g. 'feature/*', '!release/*')",
        "previews.branches[2]: '!x/../y' is not a branch pattern (e.g. 'feature/*', '!release/*')",
        "previews.retention_days: 0 is out of range; use 1 to 3650",
        "previews.domain: 'preview.other.org' is not in the hosted zone 'example.com'",
    ]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"domain": "preview.example.com"}, "needs domain.names"),
        ({"branches": ["!main"]}, "only excludes"),
        ({"branches": [f"b{i}/*" for i in range(9)]}, "at most 8"),
        ({"domain": "*.example.com"}, "wildcard names are not supported"),
    ],
)
def test_one_problem_each(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config({"previews": table})


def test_the_preview_domain_must_not_be_a_site_name() -> None:
    with pytest.raises(ConfigError, match=re.escape("is one of domain.names")):
        parse_config({"domain": DOMAIN, "previews": {"domain": "www.example.com"}})


def test_the_served_names_get_the_previews_wildcard_after_the_site_s() -> None:
    config = parse_config({"domain": DOMAIN, "previews": {"domain": "preview.example.com"}})
    assert config.served_domain.all_names == ("www.example.com", "*.preview.example.com")
    assert config.domain.all_names == ("www.example.com",)
    assert parse_config({"domain": DOMAIN}).served_domain == parse_config({"domain": DOMAIN}).domain


def test_the_example_s_previews_table_is_valid_once_uncommented(tmp_path: Path) -> None:
    text = (REPO_ROOT / "hosting.example.toml").read_text(encoding="utf-8")
    block = text[text.index("# [previews]\n") :]
    uncommented = "\n".join(line.removeprefix("# ") for line in block.splitlines() if not line.startswith("# #"))
    table = tomllib.loads(uncommented)["previews"]
    assert set(table) == {"branches", "pull_requests", "domain", "retention_days", "public"}
    (tmp_path / "hosting.toml").write_text('[domain]\nnames = ["www.example.com"]\n' + uncommented, encoding="utf-8")
    assert load_config(tmp_path / "hosting.toml").previews.domain == "preview.example.com"
