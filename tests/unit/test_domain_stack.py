"""Custom domains in the stacks: the us-east-1 certificate, aliases, Route 53 records, TLS policy, the cross-region pair."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint

from hosting_toolkit.component import HostingStack, build_stacks
from hosting_toolkit.config import DomainConfig, HostingConfig, SiteConfig
from hosting_toolkit.contract import (
    OUTPUT_DISTRIBUTION_DOMAIN_NAME,
    OUTPUT_ROUTER_FUNCTION_NAME,
    OUTPUT_SITE_URL,
)
from hosting_toolkit.edge.code import render_router
from hosting_toolkit.errors import ConfigError
from hosting_toolkit.site.domain import CERTIFICATE_REGION, certificate_stack_name
from tests.cdk_helpers import APP_PY, ROOT, SynthesizedStack, cdk_context, subprocess_env, synth_hosting_stack
from tests.unit.test_hosting_stack import BUCKET_LOGICAL_ID, DISTRIBUTION_LOGICAL_ID, KVS_LOGICAL_ID
from tests.unit.test_nag import acknowledgements

pytestmark = pytest.mark.synth

ACCOUNT = "111111111111"
ZONE_ID = "Z0123456789ABCDEFGHIJ"
#: With a Route 53 zone and a www redirect, in us-east-1: one stack.
ZONED = HostingConfig(
    site=SiteConfig(name="docs"),
    domain=DomainConfig(
        names=("example.com", "docs.example.com"),
        www_redirect="www-to-apex",
        hosted_zone_id=ZONE_ID,
        hosted_zone_name="example.com",
    ),
)
#: DNS elsewhere, in eu-west-1: a certificate stack in us-east-1 and the hosting stack.
EXTERNAL = HostingConfig(site=SiteConfig(name="docs"), domain=DomainConfig(names=("www.example.org",)))
CLOUDFRONT_ZONE = {"Fn::FindInMap": ["AWSCloudFrontPartitionHostedZoneIdMap", {"Ref": "AWS::Partition"}, "zoneId"]}


@pytest.fixture(scope="module")
def zoned(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    env = cdk.Environment(account=ACCOUNT, region="us-east-1")
    return synth_hosting_stack(ZONED, tmp_path_factory.mktemp("zoned"), env=env)


@pytest.fixture(scope="module")
def external(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    env = cdk.Environment(account=ACCOUNT, region="eu-west-1")
    return synth_hosting_stack(EXTERNAL, tmp_path_factory.mktemp("external"), env=env)


def certificate_stack(site: SynthesizedStack) -> cdk.Stack:
    stack = site.app.node.find_child(certificate_stack_name(site.config))
    assert isinstance(stack, cdk.Stack)
    return stack


def distribution_config(template: Template) -> dict[str, Any]:
    (distribution,) = template.find_resources("AWS::CloudFront::Distribution").values()
    config: dict[str, Any] = distribution["Properties"]["DistributionConfig"]
    return config


def stacks_of(app: cdk.App) -> list[cdk.Stack]:
    return [child for child in app.node.children if isinstance(child, cdk.Stack)]


# One stack in us-east-1, DNS in Route 53.


def test_in_us_east_1_the_certificate_is_in_the_hosting_stack(zoned: SynthesizedStack) -> None:
    assert [stack.stack_name for stack in stacks_of(zoned.app)] == ["hosting-docs"]
    zoned.template.resource_count_is("AWS::CertificateManager::Certificate", 1)


def test_certificate_covers_every_name_and_is_validated_in_the_hosted_zone(zoned: SynthesizedStack) -> None:
    zoned.template.has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {
            "DomainName": "example.com",
            "SubjectAlternativeNames": ["docs.example.com", "www.example.com"],
            "ValidationMethod": "DNS",
            "DomainValidationOptions": [
                {"DomainName": name, "HostedZoneId": ZONE_ID}
                for name in ("example.com", "docs.example.com", "www.example.com")
            ],
        },
    )


def test_distribution_answers_on_every_name_with_the_certificate_and_tls_1_2(zoned: SynthesizedStack) -> None:
    config = distribution_config(zoned.template)
    certificate = zoned.logical_id(zoned.stack.certificate)  # type: ignore[arg-type]
    assert config["Aliases"] == ["example.com", "docs.example.com", "www.example.com"]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": {"Ref": certificate},
        "MinimumProtocolVersion": "TLSv1.2_2021",
        "SslSupportMethod": "sni-only",
    }


def test_each_name_has_an_a_and_an_aaaa_alias_record_to_the_distribution(zoned: SynthesizedStack) -> None:
    records = [r["Properties"] for r in zoned.template.find_resources("AWS::Route53::RecordSet").values()]
    assert sorted((r["Name"], r["Type"]) for r in records) == sorted(
        (f"{name}.", kind) for name in ("example.com", "docs.example.com", "www.example.com") for kind in ("A", "AAAA")
    )
    for record in records:
        assert record["HostedZoneId"] == ZONE_ID
        assert record["AliasTarget"] == {
            "DNSName": {"Fn::GetAtt": [DISTRIBUTION_LOGICAL_ID, "DomainName"]},
            "HostedZoneId": CLOUDFRONT_ZONE,
        }
        assert "TTL" not in record and "ResourceRecords" not in record


def test_site_url_is_the_first_name_and_the_distribution_name_is_published(zoned: SynthesizedStack) -> None:
    outputs = zoned.template.find_outputs("*")
    assert outputs[OUTPUT_SITE_URL]["Value"] == "https://example.com"
    assert outputs[OUTPUT_DISTRIBUTION_DOMAIN_NAME]["Value"] == {"Fn::GetAtt": [DISTRIBUTION_LOGICAL_ID, "DomainName"]}
    assert outputs[OUTPUT_ROUTER_FUNCTION_NAME]["Value"] == zoned.stack.resolve(
        zoned.stack.router.viewer_request.function_name
    )


def test_a_domain_leaves_the_stateful_logical_ids_alone(zoned: SynthesizedStack) -> None:
    resources = zoned.template_json["Resources"]
    assert resources[BUCKET_LOGICAL_ID]["Type"] == "AWS::S3::Bucket"
    assert resources[KVS_LOGICAL_ID]["Type"] == "AWS::CloudFront::KeyValueStore"
    assert resources[DISTRIBUTION_LOGICAL_ID]["Type"] == "AWS::CloudFront::Distribution"


def test_the_www_redirect_is_compiled_into_the_deployed_router_without_a_warning(zoned: SynthesizedStack) -> None:
    functions = zoned.template.find_resources("AWS::CloudFront::Function")
    codes = [function["Properties"]["FunctionCode"] for function in functions.values()]
    assert render_router(ZONED) in codes
    assert '"www":["www.example.com","example.com"]' in render_router(ZONED)
    Annotations.from_stack(zoned.stack).has_no_warning("*", Match.string_like_regexp("www_redirect"))


# A stack in another region, DNS elsewhere.


def test_elsewhere_the_certificate_is_in_a_us_east_1_stack_of_the_same_account(external: SynthesizedStack) -> None:
    certificates = certificate_stack(external)
    assert certificates.region == CERTIFICATE_REGION
    assert certificates.account == ACCOUNT
    assert certificates.stack_name == "hosting-docs-certificate"
    external.template.resource_count_is("AWS::CertificateManager::Certificate", 0)
    Template.from_stack(certificates).resource_count_is("AWS::CertificateManager::Certificate", 1)


def test_without_a_hosted_zone_the_certificate_waits_for_records_made_elsewhere(external: SynthesizedStack) -> None:
    (certificate,) = (
        Template.from_stack(certificate_stack(external)).find_resources("AWS::CertificateManager::Certificate").values()
    )
    properties = certificate["Properties"]
    assert properties["DomainName"] == "www.example.org"
    assert properties["ValidationMethod"] == "DNS"
    assert all("HostedZoneId" not in option for option in properties.get("DomainValidationOptions", []))
    external.template.resource_count_is("AWS::Route53::RecordSet", 0)


def test_the_hosting_stack_reads_the_certificate_across_regions(external: SynthesizedStack) -> None:
    arn = distribution_config(external.template)["ViewerCertificate"]["AcmCertificateArn"]
    assert set(arn) == {"Fn::GetStackOutput"}
    reference = arn["Fn::GetStackOutput"]
    assert reference["StackName"] == "hosting-docs-certificate"
    assert reference["Region"] == CERTIFICATE_REGION
    certificates = Template.from_stack(certificate_stack(external)).to_json()
    (certificate_id,) = certificates["Resources"]
    assert certificates["Outputs"][reference["OutputName"]]["Value"] == {"Ref": certificate_id}
    assert distribution_config(external.template)["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"


def test_the_certificate_stack_deploys_first(external: SynthesizedStack) -> None:
    assert [stack.stack_name for stack in external.stack.dependencies] == ["hosting-docs-certificate"]


def test_a_hosting_stack_elsewhere_cannot_make_its_own_certificate() -> None:
    app = cdk.App(context=cdk_context())
    with pytest.raises(ValueError, match="must come from a us-east-1 stack"):
        HostingStack(app, "hosting-docs", config=EXTERNAL, env=cdk.Environment(region="eu-west-1"))


def test_a_domain_needs_the_region_to_be_known() -> None:
    with pytest.raises(ConfigError, match="needs the stack's region"):
        build_stacks(cdk.App(context=cdk_context()), EXTERNAL, env=cdk.Environment(account=ACCOUNT))


# cdk-nag and cfn-lint with a domain.


@pytest.mark.parametrize("site", ["zoned", "external"])
def test_aws_solutions_checks_pass_with_a_domain(site: str, request: pytest.FixtureRequest) -> None:
    synthesized: SynthesizedStack = request.getfixturevalue(site)
    report = AwsSolutionsChecks().validate_scope(synthesized.app)
    assert report.success, [v.rule_name for v in report.violations]
    rules = acknowledgements(synthesized.stack)["Site/Distribution"]
    assert "AwsSolutions-CFR4" not in rules
    assert all(acknowledgements(stack) == {} for stack in stacks_of(synthesized.app) if stack is not synthesized.stack)


@pytest.mark.parametrize("site", ["zoned", "external"])
def test_templates_have_no_cfn_lint_errors_with_a_domain(site: str, request: pytest.FixtureRequest) -> None:
    synthesized: SynthesizedStack = request.getfixturevalue(site)
    for stack in stacks_of(synthesized.app):
        template = json.dumps(Template.from_stack(stack).to_json(), indent=1)
        matches = lint(template, config=ManualArgs(regions=[stack.region]))
        for match in matches:
            if match.rule.severity != "error":
                warnings.warn(f"cfn-lint {match.rule.id} in {stack.stack_name}: {match.message}", stacklevel=1)
        assert [f"{m.rule.id}: {m.message}" for m in matches if m.rule.severity == "error"] == []


# app.py builds the stacks through build_stacks, with the region the CDK CLI sets.


def run_app(tmp_path: Path, config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(APP_PY)],
        cwd=ROOT,
        env=subprocess_env(
            dict(os.environ), CDK_OUTDIR=str(tmp_path / "cdk.out"), HOSTING_TOOLKIT_CONFIG=str(config), **env
        ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_app_refuses_a_domain_without_a_region(tmp_path: Path) -> None:
    config = tmp_path / "hosting.toml"
    config.write_text('[domain]\nnames = ["www.example.org"]\n', encoding="utf-8")

    result = run_app(tmp_path, config)

    assert result.returncode == ConfigError.exit_code
    assert "needs the stack's region" in result.stderr
    assert "Traceback" not in result.stderr
