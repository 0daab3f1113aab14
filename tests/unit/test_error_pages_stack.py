"""The distribution's custom error responses: the published error pages, per site mode, with short error caching."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from hosting_toolkit.config import ErrorsConfig, HeadersConfig, HostingConfig, SiteConfig
from hosting_toolkit.contract import ERROR_PAGES_PREFIX, META_PREFIX, NOT_FOUND_PAGE_KEY, SERVER_ERROR_PAGE_KEY
from hosting_toolkit.site.infrastructure import NOT_FOUND_ERROR_TTL, SERVER_ERROR_TTL, StaticSite
from tests.cdk_helpers import SynthesizedStack, cdk_context, synth_hosting_stack
from tests.unit.test_hosting_stack import BUCKET_LOGICAL_ID

pytestmark = pytest.mark.synth

SPA_FALLBACK_200 = ErrorsConfig(spa_status=200)


@pytest.fixture(scope="module")
def default_site(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return synth_hosting_stack(HostingConfig(), tmp_path_factory.mktemp("errors-default"))


@pytest.fixture(scope="module")
def spa_answering_200(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return synth_hosting_stack(HostingConfig(errors=SPA_FALLBACK_200), tmp_path_factory.mktemp("errors-spa-200"))


@pytest.fixture(scope="module")
def static_site(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    config = HostingConfig(site=SiteConfig(mode="static"), errors=SPA_FALLBACK_200)
    return synth_hosting_stack(config, tmp_path_factory.mktemp("errors-static"))


def error_responses(site: SynthesizedStack) -> dict[int, dict[str, Any]]:
    distributions = site.template.find_resources("AWS::CloudFront::Distribution")
    [distribution] = distributions.values()
    responses = distribution["Properties"]["DistributionConfig"]["CustomErrorResponses"]
    return {r["ErrorCode"]: {k: v for k, v in r.items() if k != "ErrorCode"} for r in responses}


def expected(not_found_status: int) -> dict[int, dict[str, Any]]:
    not_found_ttl, server_error_ttl = NOT_FOUND_ERROR_TTL.to_seconds(), SERVER_ERROR_TTL.to_seconds()
    responses = {
        code: {"ResponseCode": not_found_status, "ResponsePagePath": f"/{NOT_FOUND_PAGE_KEY}"}
        | {"ErrorCachingMinTTL": not_found_ttl}
        for code in (403, 404)
    }
    for code in (500, 502, 503, 504):
        responses[code] = {
            "ResponseCode": code,
            "ResponsePagePath": f"/{SERVER_ERROR_PAGE_KEY}",
            "ErrorCachingMinTTL": server_error_ttl,
        }
    return responses


def test_missing_paths_get_the_not_found_page_with_404_and_failures_the_5xx_page(
    default_site: SynthesizedStack,
) -> None:
    assert error_responses(default_site) == expected(404)


def test_error_caching_is_seconds_short(default_site: SynthesizedStack) -> None:
    assert NOT_FOUND_ERROR_TTL.to_seconds() == 10
    assert 0 < SERVER_ERROR_TTL.to_seconds() <= 5


def test_a_spa_may_answer_missing_paths_with_its_entry_page_and_200(spa_answering_200: SynthesizedStack) -> None:
    assert error_responses(spa_answering_200) == expected(200)


def test_a_static_site_always_answers_missing_paths_with_404(static_site: SynthesizedStack) -> None:
    assert error_responses(static_site) == expected(404)


def test_cloudfront_may_read_the_error_pages_but_not_the_release_records(default_site: SynthesizedStack) -> None:
    [policy] = default_site.template.find_resources("AWS::S3::BucketPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    cloudfront = [s for s in statements if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
    bucket_arn = {"Fn::GetAtt": [BUCKET_LOGICAL_ID, "Arn"]}
    [deny] = [s for s in cloudfront if s["Effect"] == "Deny"]
    assert deny["Resource"] == {"Fn::Join": ["", [bucket_arn, f"/{META_PREFIX}*"]]}
    assert not ERROR_PAGES_PREFIX.startswith(META_PREFIX)
    [allow] = [s for s in cloudfront if s["Effect"] == "Allow"]
    assert "s3:GetObject" in allow["Action"]
    assert {"Fn::Join": ["", [bucket_arn, "/*"]]} in allow["Resource"]


def test_static_site_refuses_a_not_found_status_other_than_404_or_200() -> None:
    stack = cdk.Stack(cdk.App(context=cdk_context()), "Refused")
    with pytest.raises(ValueError, match="not_found_status must be 404 or 200, not 302"):
        StaticSite(stack, "Site", headers=HeadersConfig(), not_found_status=302)


def test_static_site_defaults_to_404(tmp_path: Any) -> None:
    stack = cdk.Stack(cdk.App(context=cdk_context(), outdir=str(tmp_path)), "Defaults")
    StaticSite(stack, "Site", headers=HeadersConfig())
    [distribution] = Template.from_stack(stack).find_resources("AWS::CloudFront::Distribution").values()
    responses = distribution["Properties"]["DistributionConfig"]["CustomErrorResponses"]
    assert {r["ErrorCode"]: r["ResponseCode"] for r in responses}[404] == 404
