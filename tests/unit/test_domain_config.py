"""``[domain]``, ``[logs]`` and ``[waf]`` in hosting.toml: what is accepted, what is refused and how it reads back."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from hosting_toolkit.config import DomainConfig, HostingConfig, LogsConfig, WafConfig, parse_config
from hosting_toolkit.errors import ConfigError
from hosting_toolkit.pipeline.config_file import render_config

ZONE = {"hosted_zone_id": "Z0123456789ABCDEFGHIJ", "hosted_zone_name": "example.com"}
WEB_ACL = "arn:aws:wafv2:us-east-1:111111111111:global/webacl/site/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


def test_without_a_domain_section_the_site_has_no_domain() -> None:
    config = parse_config({})
    assert config.domain == DomainConfig()
    assert not config.domain.enabled
    assert config.domain.all_names == ()
    assert config.domain.redirect is None


def test_names_become_the_served_names_in_order() -> None:
    domain = parse_config({"domain": {"names": ["docs.example.com", "help.example.com"], **ZONE}}).domain
    assert domain.enabled
    assert domain.names == ("docs.example.com", "help.example.com")
    assert domain.all_names == domain.names
    assert domain.hosted_zone_id == ZONE["hosted_zone_id"]


@pytest.mark.parametrize(
    ("names", "redirect", "expected"),
    [
        (["example.com"], "www-to-apex", ("www.example.com", "example.com")),
        (["www.example.com"], "apex-to-www", ("example.com", "www.example.com")),
        (["docs.example.com", "help.example.com"], "www-to-apex", ("www.docs.example.com", "docs.example.com")),
    ],
)
def test_www_redirect_adds_the_redirecting_name_for_the_first_name(
    names: list[str], redirect: str, expected: tuple[str, str]
) -> None:
    domain = parse_config({"domain": {"names": names, "www_redirect": redirect}}).domain
    assert domain.redirect == expected
    assert domain.all_names == (*names, expected[0])


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ({"names": ["Example.com"]}, "'Example.com' is not a domain name (use lowercase)"),
        ({"names": ["*.example.com"]}, "wildcard names are not supported"),
        ({"names": ["localhost"]}, "'localhost' is not a domain name"),
        ({"names": ["-bad.example.com"]}, "is not a domain name"),
        ({"names": "example.com"}, "domain.names: expected a list of domain names"),
        ({"names": ["example.com", "example.com"]}, "domain.names: lists a name more than once"),
        ({"names": ["example.com"], "www_redirect": "to-www"}, "is not a redirect"),
        ({"www_redirect": "www-to-apex"}, "needs domain.names"),
        ({"names": ["www.example.com"], "www_redirect": "www-to-apex"}, "list the name without 'www.' first"),
        ({"names": ["example.com"], "www_redirect": "apex-to-www"}, "must start with 'www.'"),
        (
            {"names": ["example.com", "www.example.com"], "www_redirect": "www-to-apex"},
            "'www.example.com' is redirected by domain.www_redirect",
        ),
        ({"names": [f"n{i}.example.com" for i in range(10)], "www_redirect": "www-to-apex"}, "at most 10"),
        ({"names": ["example.com"], "hosted_zone_id": "/hostedzone/Z0123"}, "without the '/hostedzone/' prefix"),
        ({"names": ["example.com"], "hosted_zone_id": "Z0123"}, "give both hosted_zone_id and hosted_zone_name"),
        (
            {"names": ["example.com"], "hosted_zone_name": "example.com"},
            "give both hosted_zone_id and hosted_zone_name",
        ),
        ({**ZONE}, "needs domain.names"),
        ({"names": ["example.org"], **ZONE}, "'example.org' is not in the hosted zone 'example.com'"),
        (
            {"names": ["example.com"], "www_redirect": "www-to-apex", **ZONE, "hosted_zone_name": "www.example.com"},
            "'example.com' is not in the hosted zone 'www.example.com'",
        ),
        ({"names": ["example.com"], "zone": "x"}, "domain.zone: unknown key"),
    ],
)
def test_invalid_domain_settings_are_reported_with_their_key(domain: dict[str, Any], message: str) -> None:
    found = problems({"domain": domain})
    assert any(message in p for p in found), found


def test_every_problem_of_the_new_sections_is_reported_at_once() -> None:
    found = problems(
        {
            "domain": {"names": ["EXAMPLE.com"], "hosted_zone_id": "zone"},
            "logs": {"enabled": "yes", "retention_days": 0},
            "waf": {"web_acl_arn": "arn:aws:wafv2:eu-west-1:111111111111:regional/webacl/site/0a1b"},
        }
    )
    assert [p.split(":")[0] for p in found] == [
        "domain.names[0]",
        "domain.hosted_zone_id",
        "logs.enabled",
        "logs.retention_days",
        "waf.web_acl_arn",
    ]


def test_logs_default_to_off_and_ninety_days() -> None:
    assert parse_config({}).logs == LogsConfig(enabled=False, retention_days=90)
    assert parse_config({"logs": {"enabled": True, "retention_days": 400}}).logs == LogsConfig(True, 400)


@pytest.mark.parametrize("days", [0, 3651, 1.5, True])
def test_log_retention_must_be_whole_days_within_ten_years(days: Any) -> None:
    assert any(p.startswith("logs.retention_days") for p in problems({"logs": {"retention_days": days}}))


def test_web_acl_must_be_a_cloudfront_scoped_wafv2_acl() -> None:
    assert parse_config({"waf": {"web_acl_arn": WEB_ACL}}).waf == WafConfig(web_acl_arn=WEB_ACL)
    regional = WEB_ACL.replace("us-east-1", "eu-west-1").replace("global", "regional")
    assert "scope CLOUDFRONT" in problems({"waf": {"web_acl_arn": regional}})[0]


def test_the_new_sections_survive_the_round_trip_to_the_build() -> None:
    config = parse_config(
        {
            "domain": {"names": ["example.com", "docs.example.com"], "www_redirect": "www-to-apex", **ZONE},
            "logs": {"enabled": True, "retention_days": 30},
            "waf": {"web_acl_arn": WEB_ACL},
        }
    )
    text = render_config(config)
    assert parse_config(tomllib.loads(text)) == config
    assert render_config(HostingConfig()).strip() == ""
