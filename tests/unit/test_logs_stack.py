"""Access logs and WAF in the stack: the log bucket, the distribution's logging and web ACL, cdk-nag and cfn-lint."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint

from hosting_toolkit.config import HostingConfig, LogsConfig, WafConfig
from hosting_toolkit.site.logs import ACCESS_LOG_PREFIX
from tests.cdk_helpers import SynthesizedStack, synth_hosting_stack
from tests.unit.test_cfn_lint import REGIONS
from tests.unit.test_hosting_stack import BUCKET_LOGICAL_ID
from tests.unit.test_nag import acknowledgements

pytestmark = pytest.mark.synth

WEB_ACL = "arn:aws:wafv2:us-east-1:111111111111:global/webacl/site/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
#: The log bucket keeps its logs under this id; a new id would mean a new, empty bucket.
LOG_BUCKET_LOGICAL_ID = "AccessLogsBucketCD784A59"
LOGGED = HostingConfig(logs=LogsConfig(enabled=True, retention_days=30), waf=WafConfig(web_acl_arn=WEB_ACL))


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return synth_hosting_stack(LOGGED, tmp_path_factory.mktemp("logged"))


@pytest.fixture(scope="module")
def unlogged(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return synth_hosting_stack(HostingConfig(), tmp_path_factory.mktemp("unlogged"))


def log_bucket(site: SynthesizedStack) -> dict[str, Any]:
    resource: dict[str, Any] = site.template_json["Resources"][LOG_BUCKET_LOGICAL_ID]
    assert resource["Type"] == "AWS::S3::Bucket"
    return resource


def distribution_config(site: SynthesizedStack) -> dict[str, Any]:
    (distribution,) = site.template.find_resources("AWS::CloudFront::Distribution").values()
    config: dict[str, Any] = distribution["Properties"]["DistributionConfig"]
    return config


def log_bucket_policy(site: SynthesizedStack) -> list[dict[str, Any]]:
    policies = site.template.find_resources(
        "AWS::S3::BucketPolicy", {"Properties": {"Bucket": {"Ref": LOG_BUCKET_LOGICAL_ID}}}
    )
    (policy,) = policies.values()
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


# The log bucket.


def test_log_bucket_is_pinned_to_its_logical_id(logged: SynthesizedStack) -> None:
    assert logged.logical_id(logged.stack.access_logs.bucket) == LOG_BUCKET_LOGICAL_ID  # type: ignore[union-attr]


def test_log_bucket_keeps_acls_for_cloudfront_log_delivery_but_owns_its_objects(logged: SynthesizedStack) -> None:
    properties = log_bucket(logged)["Properties"]
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]}


def test_log_bucket_is_private_and_encrypted(logged: SynthesizedStack) -> None:
    properties = log_bucket(logged)["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }


def test_log_bucket_accepts_only_tls_1_2_or_later(logged: SynthesizedStack) -> None:
    denials = [s for s in log_bucket_policy(logged) if s["Effect"] == "Deny"]
    conditions = [s["Condition"] for s in denials]
    assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
    assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions
    assert all(s["Action"] == "s3:*" and s["Principal"] == {"AWS": "*"} for s in denials)
    assert [s for s in log_bucket_policy(logged) if s["Effect"] == "Allow"] == []


def test_logs_expire_after_the_configured_retention(logged: SynthesizedStack) -> None:
    rules = log_bucket(logged)["Properties"]["LifecycleConfiguration"]["Rules"]
    assert {"Id": "ExpireAccessLogs", "Status": "Enabled", "ExpirationInDays": 30} in rules


def test_log_bucket_goes_with_the_stack(logged: SynthesizedStack) -> None:
    assert log_bucket(logged)["DeletionPolicy"] == "Delete"
    assert log_bucket(logged)["UpdateReplacePolicy"] == "Delete"


def test_the_site_bucket_still_disables_acls(logged: SynthesizedStack) -> None:
    site_bucket = logged.template_json["Resources"][BUCKET_LOGICAL_ID]["Properties"]
    assert site_bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


# The distribution.


def test_distribution_logs_to_the_log_bucket_without_cookies(logged: SynthesizedStack) -> None:
    assert distribution_config(logged)["Logging"] == {
        "Bucket": {"Fn::GetAtt": [LOG_BUCKET_LOGICAL_ID, "RegionalDomainName"]},
        "Prefix": ACCESS_LOG_PREFIX,
        "IncludeCookies": False,
    }


def test_distribution_is_behind_the_web_acl(logged: SynthesizedStack) -> None:
    assert distribution_config(logged)["WebACLId"] == WEB_ACL


def test_without_logs_or_waf_there_is_no_log_bucket_logging_or_web_acl(unlogged: SynthesizedStack) -> None:
    unlogged.template.resource_count_is("AWS::S3::Bucket", 1)
    config = distribution_config(unlogged)
    assert "Logging" not in config
    assert "WebACLId" not in config
    assert unlogged.stack.access_logs is None


def test_logs_and_waf_add_no_outputs(logged: SynthesizedStack, unlogged: SynthesizedStack) -> None:
    assert sorted(logged.template.find_outputs("*")) == sorted(unlogged.template.find_outputs("*"))


# cdk-nag and cfn-lint.


def test_aws_solutions_checks_pass_with_logs_and_waf(logged: SynthesizedStack) -> None:
    report = AwsSolutionsChecks().validate_scope(logged.app)
    assert report.success, [v.rule_name for v in report.violations]


def test_logging_and_the_web_acl_retire_their_acknowledgements(logged: SynthesizedStack) -> None:
    found = acknowledgements(logged.stack)
    assert {path: sorted(rules) for path, rules in found.items()} == {
        "AccessLogs/Bucket": ["AwsSolutions-S1"],
        "Site/Bucket": ["AwsSolutions-S1"],
        "Site/Distribution": [
            "@aws-cdk/aws-cloudfront-origins:listBucketSecurityRisk",
            "AwsSolutions-CFR1",
            "AwsSolutions-CFR4",
        ],
    }
    assert "into itself" in found["AccessLogs/Bucket"]["AwsSolutions-S1"]


def test_without_logs_standard_logging_stays_acknowledged(unlogged: SynthesizedStack) -> None:
    rules = acknowledgements(unlogged.stack)["Site/Distribution"]
    assert "[logs] enabled = true" in rules["AwsSolutions-CFR3"]
    assert "[waf] web_acl_arn" in rules["AwsSolutions-CFR2"]


def test_template_with_logs_and_waf_has_no_cfn_lint_errors(logged: SynthesizedStack) -> None:
    matches = lint(json.dumps(logged.template_json, indent=1), config=ManualArgs(regions=REGIONS))
    for match in matches:
        if match.rule.severity != "error":
            warnings.warn(f"cfn-lint {match.rule.id}: {match.message}", stacklevel=1)
    assert [f"{m.rule.id}: {m.message}" for m in matches if m.rule.severity == "error"] == []
