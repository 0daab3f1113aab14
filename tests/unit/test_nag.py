"""cdk-nag (AWS Solutions checks): no unacknowledged finding, and every acknowledgement is deliberate."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from hosting_toolkit.config import HeadersConfig, HostingConfig
from hosting_toolkit.site.infrastructure import StaticSite
from tests.cdk_helpers import SynthesizedStack, cdk_context, synth_hosting_stack

pytestmark = pytest.mark.synth

#: Every acknowledged rule, by construct path inside the stack. Adding one is a visible change here.
ACKNOWLEDGED = {
    "Site/Bucket": ["AwsSolutions-S1"],
    "Site/Distribution": [
        "@aws-cdk/aws-cloudfront-origins:listBucketSecurityRisk",
        "AwsSolutions-CFR1",
        "AwsSolutions-CFR2",
        "AwsSolutions-CFR3",
        "AwsSolutions-CFR4",
    ],
}

_ANNOTATION_PREFIX = "Annotation::"


@pytest.fixture(scope="module")
def default_site(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return synth_hosting_stack(HostingConfig(), tmp_path_factory.mktemp("nag"))


def acknowledgements(scope: IConstruct) -> dict[str, dict[str, str]]:
    """Acknowledged rule ids and their reasons, by construct path relative to ``scope``."""
    found: dict[str, dict[str, str]] = {}
    prefix = f"{scope.node.path}/" if scope.node.path else ""
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            path = construct.node.path.removeprefix(prefix)
            for rule_id, reason in dict(entry.data).items():
                found.setdefault(path, {})[rule_id.removeprefix(_ANNOTATION_PREFIX)] = reason
    return found


def _describe(violations: Any) -> str:
    lines = []
    for violation in violations:
        paths = ", ".join(r.construct_path or "?" for r in violation.violating_resources)
        lines.append(f"{violation.rule_name}: {violation.description} ({paths})")
    return "\n".join(lines)


def test_aws_solutions_checks_find_nothing_unacknowledged(default_site: SynthesizedStack) -> None:
    report = AwsSolutionsChecks().validate_scope(default_site.app)
    assert report.success, _describe(report.violations)
    assert list(report.violations) == []


def test_acknowledged_rules_are_exactly_the_reviewed_ones(default_site: SynthesizedStack) -> None:
    found = acknowledgements(default_site.stack)
    assert {path: sorted(rules) for path, rules in found.items()} == ACKNOWLEDGED


def test_every_acknowledgement_gives_a_specific_reason(default_site: SynthesizedStack) -> None:
    reasons = [reason for rules in acknowledgements(default_site.stack).values() for reason in rules.values()]
    assert reasons
    for reason in reasons:
        assert len(reason) >= 80, reason
        assert not any(word in reason.lower() for word in ("todo", "tbd", "placeholder", "suppress")), reason
    assert len(set(reasons)) == len(reasons), "each rule needs its own reason"


def test_checks_report_an_unprotected_bucket() -> None:
    stack = cdk.Stack(cdk.App(context=cdk_context()), "Unprotected")
    s3.Bucket(stack, "Bucket")
    report = AwsSolutionsChecks().validate_scope(stack)
    assert not report.success
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= {v.rule_name for v in report.violations}


def test_custom_domain_and_web_acl_leave_nothing_to_acknowledge_about_tls_or_waf() -> None:
    stack = cdk.Stack(cdk.App(context=cdk_context()), "CustomDomain")
    certificate = acm.Certificate.from_certificate_arn(
        stack, "Certificate", "arn:aws:acm:us-east-1:111111111111:certificate/00000000-0000-0000-0000-000000000000"
    )
    StaticSite(
        stack,
        "Site",
        headers=HeadersConfig(),
        certificate=certificate,
        domain_names=["www.example.com"],
        web_acl_id="arn:aws:wafv2:us-east-1:111111111111:global/webacl/site/00000000-0000-0000-0000-000000000000",
    )
    report = AwsSolutionsChecks().validate_scope(stack)
    assert report.success, _describe(report.violations)
    distribution_rules = acknowledgements(stack)["Site/Distribution"]
    assert "AwsSolutions-CFR2" not in distribution_rules
    assert "AwsSolutions-CFR4" not in distribution_rules
