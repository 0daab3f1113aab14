"""The hosting stack's template: every security, caching and routing property, and the stable logical ids."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk.assertions import Capture, Match, Template
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from hosting_toolkit.config import HeadersConfig, HostingConfig, SiteConfig
from hosting_toolkit.contract import (
    META_PREFIX,
    OUTPUT_BUCKET_NAME,
    OUTPUT_DISTRIBUTION_ID,
    OUTPUT_KVS_ARN,
    OUTPUT_ROUTER_FUNCTION_NAME,
    OUTPUT_SITE_URL,
)
from hosting_toolkit.edge.code import CLOUDFRONT_FUNCTION_LIMIT, render_router, render_viewer_response
from hosting_toolkit.site.infrastructure import StaticSite
from tests.cdk_helpers import SynthesizedStack, cdk_context, normalized_template, synth_hosting_stack

pytestmark = pytest.mark.synth

#: Logical ids of the stateful resources. Changing one replaces the resource on the next deploy
#: (a new, empty bucket; a new, empty store), so a refactor that moves them must fail here.
BUCKET_LOGICAL_ID = "SiteBucket978D4AEB"
KVS_LOGICAL_ID = "RouterReleaseStore90AC4A9C"
DISTRIBUTION_LOGICAL_ID = "SiteDistribution390DED28"

CSP = "default-src 'self'; img-src 'self' data:"


@pytest.fixture(scope="module")
def default_site(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return synth_hosting_stack(HostingConfig(), tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def custom_site(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    config = HostingConfig(
        site=SiteConfig(name="docs", mode="static", entry="home.html"),
        headers=HeadersConfig(
            content_security_policy=CSP,
            hsts_max_age=31536000,
            frame_options="SAMEORIGIN",
            referrer_policy="no-referrer",
        ),
    )
    return synth_hosting_stack(config, tmp_path_factory.mktemp("custom"))


def _the_one(template: Template, resource_type: str) -> dict[str, Any]:
    resources = template.find_resources(resource_type)
    assert len(resources) == 1, f"expected one {resource_type}, found {sorted(resources)}"
    return dict(next(iter(resources.values())))


def _statements(template: Template) -> list[dict[str, Any]]:
    policy = _the_one(template, "AWS::S3::BucketPolicy")
    statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _distribution_config(template: Template) -> dict[str, Any]:
    config: dict[str, Any] = _the_one(template, "AWS::CloudFront::Distribution")["Properties"]["DistributionConfig"]
    return config


def _functions_by_event(template: Template) -> dict[str, dict[str, Any]]:
    """The CloudFront Function resources keyed by the event type the distribution runs them on."""
    functions = template.find_resources("AWS::CloudFront::Function")
    associations = _distribution_config(template)["DefaultCacheBehavior"]["FunctionAssociations"]
    return {a["EventType"]: dict(functions[a["FunctionARN"]["Fn::GetAtt"][0]]) for a in associations}


# Stateful resources keep their logical ids.


def test_bucket_logical_id_is_pinned(default_site: SynthesizedStack) -> None:
    assert default_site.logical_id(default_site.stack.site.bucket) == BUCKET_LOGICAL_ID
    assert default_site.template_json["Resources"][BUCKET_LOGICAL_ID]["Type"] == "AWS::S3::Bucket"


def test_key_value_store_logical_id_is_pinned(default_site: SynthesizedStack) -> None:
    assert default_site.logical_id(default_site.stack.router.store) == KVS_LOGICAL_ID
    assert default_site.template_json["Resources"][KVS_LOGICAL_ID]["Type"] == "AWS::CloudFront::KeyValueStore"


def test_logical_ids_do_not_depend_on_the_site_name(custom_site: SynthesizedStack) -> None:
    resources = custom_site.template_json["Resources"]
    assert resources[BUCKET_LOGICAL_ID]["Type"] == "AWS::S3::Bucket"
    assert resources[KVS_LOGICAL_ID]["Type"] == "AWS::CloudFront::KeyValueStore"
    assert resources[DISTRIBUTION_LOGICAL_ID]["Type"] == "AWS::CloudFront::Distribution"


# The release bucket.


def test_bucket_blocks_all_public_access(default_site: SynthesizedStack) -> None:
    default_site.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            }
        },
    )


def test_bucket_encrypts_with_s3_managed_keys(default_site: SynthesizedStack) -> None:
    default_site.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            }
        },
    )


def test_bucket_disables_acls(default_site: SynthesizedStack) -> None:
    default_site.template.has_resource_properties(
        "AWS::S3::Bucket", {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}}
    )


def test_bucket_is_retained_when_it_leaves_the_stack(default_site: SynthesizedStack) -> None:
    default_site.template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})


def test_bucket_keeps_replaced_versions_for_thirty_days(default_site: SynthesizedStack) -> None:
    default_site.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        {
                            "Id": "ExpireReplacedVersions",
                            "Status": "Enabled",
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                            "ExpiredObjectDeleteMarker": True,
                        }
                    ]
                )
            },
        },
    )


def test_bucket_aborts_incomplete_uploads(default_site: SynthesizedStack) -> None:
    default_site.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        {
                            "Id": "AbortIncompleteUploads",
                            "Status": "Enabled",
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                        }
                    ]
                )
            }
        },
    )


def test_bucket_is_not_a_website(default_site: SynthesizedStack) -> None:
    default_site.template.has_resource_properties("AWS::S3::Bucket", {"WebsiteConfiguration": Match.absent()})


# The bucket policy.


def test_bucket_policy_denies_requests_without_tls(default_site: SynthesizedStack) -> None:
    statements = _statements(default_site.template)
    denials = [
        s
        for s in statements
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denials) == 1
    assert denials[0]["Action"] == "s3:*"
    assert denials[0]["Principal"] == {"AWS": "*"}
    assert len(denials[0]["Resource"]) == 2  # the bucket and its objects


def test_bucket_policy_denies_tls_older_than_1_2(default_site: SynthesizedStack) -> None:
    statements = _statements(default_site.template)
    assert any(
        s["Effect"] == "Deny"
        and s["Action"] == "s3:*"
        and s.get("Condition") == {"NumericLessThan": {"s3:TlsVersion": 1.2}}
        for s in statements
    )


def test_bucket_policy_lets_only_this_distribution_get_and_list(default_site: SynthesizedStack) -> None:
    allows = [s for s in _statements(default_site.template) if s["Effect"] == "Allow"]
    assert len(allows) == 1
    allow = allows[0]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert sorted(allow["Action"]) == ["s3:GetObject", "s3:ListBucket"]
    source_arn = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Join"][1]
    assert ":distribution/" in source_arn
    assert {"Ref": DISTRIBUTION_LOGICAL_ID} in source_arn


def test_bucket_policy_denies_cloudfront_the_release_records(default_site: SynthesizedStack) -> None:
    denials = [s for s in _statements(default_site.template) if s.get("Sid") == "DenyCloudFrontReleaseRecords"]
    assert len(denials) == 1
    deny = denials[0]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert deny["Action"] == "s3:GetObject"
    assert "Condition" not in deny
    assert deny["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [BUCKET_LOGICAL_ID, "Arn"]}, f"/{META_PREFIX}*"]]}


# Origin access.


def test_origin_access_control_signs_every_s3_request(default_site: SynthesizedStack) -> None:
    default_site.template.has_resource_properties(
        "AWS::CloudFront::OriginAccessControl",
        {
            "OriginAccessControlConfig": {
                "OriginAccessControlOriginType": "s3",
                "SigningBehavior": "always",
                "SigningProtocol": "sigv4",
            }
        },
    )


def test_distribution_reads_the_bucket_through_origin_access_control(default_site: SynthesizedStack) -> None:
    oac_id = next(iter(default_site.template.find_resources("AWS::CloudFront::OriginAccessControl")))
    origins = _distribution_config(default_site.template)["Origins"]
    assert len(origins) == 1
    origin = origins[0]
    assert origin["DomainName"] == {"Fn::GetAtt": [BUCKET_LOGICAL_ID, "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}


# The distribution and its default behaviour.


def test_default_behaviour_redirects_http_to_https(default_site: SynthesizedStack) -> None:
    behaviour = _distribution_config(default_site.template)["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"


def test_default_behaviour_compresses_and_serves_only_get_and_head(default_site: SynthesizedStack) -> None:
    behaviour = _distribution_config(default_site.template)["DefaultCacheBehavior"]
    assert behaviour["Compress"] is True
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    assert behaviour["CachedMethods"] == ["GET", "HEAD"]


def test_distribution_serves_http2_and_http3_over_ipv4_and_ipv6(default_site: SynthesizedStack) -> None:
    config = _distribution_config(default_site.template)
    assert config["HttpVersion"] == "http2and3"
    assert config["IPV6Enabled"] is True
    assert config["Enabled"] is True


def test_distribution_uses_the_cheapest_price_class_by_default(default_site: SynthesizedStack) -> None:
    assert _distribution_config(default_site.template)["PriceClass"] == "PriceClass_100"


def test_router_owns_the_root_and_every_path(default_site: SynthesizedStack) -> None:
    config = _distribution_config(default_site.template)
    assert "DefaultRootObject" not in config
    assert "CacheBehaviors" not in config


def test_default_behaviour_uses_the_stack_policies(default_site: SynthesizedStack) -> None:
    behaviour = _distribution_config(default_site.template)["DefaultCacheBehavior"]
    cache_policy = next(iter(default_site.template.find_resources("AWS::CloudFront::CachePolicy")))
    headers_policy = next(iter(default_site.template.find_resources("AWS::CloudFront::ResponseHeadersPolicy")))
    assert behaviour["CachePolicyId"] == {"Ref": cache_policy}
    assert behaviour["ResponseHeadersPolicyId"] == {"Ref": headers_policy}
    assert "OriginRequestPolicyId" not in behaviour


# Caching: the rewritten URI is the whole cache key.


def test_cache_key_is_the_rewritten_path_only(default_site: SynthesizedStack) -> None:
    default_site.template.has_resource_properties(
        "AWS::CloudFront::CachePolicy",
        {
            "CachePolicyConfig": {
                "ParametersInCacheKeyAndForwardedToOrigin": {
                    "HeadersConfig": {"HeaderBehavior": "none", "Headers": Match.absent()},
                    "CookiesConfig": {"CookieBehavior": "none", "Cookies": Match.absent()},
                    "QueryStringsConfig": {"QueryStringBehavior": "none", "QueryStrings": Match.absent()},
                    "EnableAcceptEncodingGzip": True,
                    "EnableAcceptEncodingBrotli": True,
                }
            }
        },
    )


def test_cache_ttls_honour_the_objects_cache_control(default_site: SynthesizedStack) -> None:
    # MinTTL 0 lets HTML revalidate (max-age=0); MaxTTL one year keeps immutable assets a year.
    default_site.template.has_resource_properties(
        "AWS::CloudFront::CachePolicy",
        {"CachePolicyConfig": {"MinTTL": 0, "DefaultTTL": 86400, "MaxTTL": 31536000}},
    )


# Security headers.


def test_security_headers_follow_the_default_config(default_site: SynthesizedStack) -> None:
    policy = _the_one(default_site.template, "AWS::CloudFront::ResponseHeadersPolicy")
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers == {
        "StrictTransportSecurity": {"AccessControlMaxAgeSec": 63072000, "IncludeSubdomains": True, "Override": True},
        "ContentTypeOptions": {"Override": True},
        "FrameOptions": {"FrameOption": "DENY", "Override": True},
        "ReferrerPolicy": {"ReferrerPolicy": "strict-origin-when-cross-origin", "Override": True},
    }


def test_s3_storage_details_are_removed_from_responses(default_site: SynthesizedStack) -> None:
    default_site.template.has_resource_properties(
        "AWS::CloudFront::ResponseHeadersPolicy",
        {
            "ResponseHeadersPolicyConfig": {
                "RemoveHeadersConfig": {
                    "Items": [{"Header": "x-amz-server-side-encryption"}, {"Header": "x-amz-version-id"}]
                }
            }
        },
    )


def test_content_security_policy_is_absent_unless_configured(default_site: SynthesizedStack) -> None:
    default_site.template.has_resource_properties(
        "AWS::CloudFront::ResponseHeadersPolicy",
        {"ResponseHeadersPolicyConfig": {"SecurityHeadersConfig": {"ContentSecurityPolicy": Match.absent()}}},
    )


def test_security_headers_follow_a_custom_config(custom_site: SynthesizedStack) -> None:
    policy = _the_one(custom_site.template, "AWS::CloudFront::ResponseHeadersPolicy")
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers == {
        "StrictTransportSecurity": {"AccessControlMaxAgeSec": 31536000, "IncludeSubdomains": True, "Override": True},
        "ContentTypeOptions": {"Override": True},
        "FrameOptions": {"FrameOption": "SAMEORIGIN", "Override": True},
        "ReferrerPolicy": {"ReferrerPolicy": "no-referrer", "Override": True},
        "ContentSecurityPolicy": {"ContentSecurityPolicy": CSP, "Override": True},
    }


# The release router.


def test_router_runs_on_js_2_0_and_reads_the_key_value_store(default_site: SynthesizedStack) -> None:
    router = _functions_by_event(default_site.template)["viewer-request"]
    assert router["Properties"]["AutoPublish"] is True
    assert router["Properties"]["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert router["Properties"]["FunctionConfig"]["KeyValueStoreAssociations"] == [
        {"KeyValueStoreARN": {"Fn::GetAtt": [KVS_LOGICAL_ID, "Arn"]}}
    ]


def test_viewer_response_function_runs_on_js_2_0_without_the_store(default_site: SynthesizedStack) -> None:
    function = _functions_by_event(default_site.template)["viewer-response"]
    assert function["Properties"]["AutoPublish"] is True
    assert function["Properties"]["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert "KeyValueStoreAssociations" not in function["Properties"]["FunctionConfig"]


def test_default_behaviour_runs_the_router_and_the_viewer_response_function(default_site: SynthesizedStack) -> None:
    associations = _distribution_config(default_site.template)["DefaultCacheBehavior"]["FunctionAssociations"]
    assert sorted(a["EventType"] for a in associations) == ["viewer-request", "viewer-response"]
    stack = default_site.stack
    expected = {
        "viewer-request": default_site.logical_id(stack.router.viewer_request),
        "viewer-response": default_site.logical_id(stack.router.viewer_response),
    }
    assert {a["EventType"]: a["FunctionARN"] for a in associations} == {
        event: {"Fn::GetAtt": [logical_id, "FunctionARN"]} for event, logical_id in expected.items()
    }


@pytest.mark.parametrize("site", ["default_site", "custom_site"])
def test_deployed_router_code_is_the_rendered_router(site: str, request: pytest.FixtureRequest) -> None:
    synthesized: SynthesizedStack = request.getfixturevalue(site)
    router = _functions_by_event(synthesized.template)["viewer-request"]
    assert router["Properties"]["FunctionCode"] == render_router(synthesized.config)


def test_rendered_router_carries_the_site_mode(custom_site: SynthesizedStack) -> None:
    code = _functions_by_event(custom_site.template)["viewer-request"]["Properties"]["FunctionCode"]
    assert 'const SITE={"cohortIdle":3600,"cohortMax":86400,"entry":"home.html","mode":"static"};' in code


@pytest.mark.parametrize("site", ["default_site", "custom_site"])
def test_deployed_viewer_response_code_is_the_rendered_function(site: str, request: pytest.FixtureRequest) -> None:
    synthesized: SynthesizedStack = request.getfixturevalue(site)
    function = _functions_by_event(synthesized.template)["viewer-response"]
    assert function["Properties"]["FunctionCode"] == render_viewer_response(synthesized.config)


def test_deployed_functions_fit_cloudfronts_size_limit(default_site: SynthesizedStack) -> None:
    for function in default_site.template.find_resources("AWS::CloudFront::Function").values():
        assert len(function["Properties"]["FunctionCode"].encode()) < CLOUDFRONT_FUNCTION_LIMIT


def test_key_value_store_starts_empty(default_site: SynthesizedStack) -> None:
    store = default_site.template_json["Resources"][KVS_LOGICAL_ID]
    assert "ImportSource" not in store["Properties"]


# Outputs.


def test_outputs_name_what_the_release_tools_need(default_site: SynthesizedStack) -> None:
    outputs = default_site.template.find_outputs("*")
    assert sorted(outputs) == sorted(
        [OUTPUT_SITE_URL, OUTPUT_DISTRIBUTION_ID, OUTPUT_BUCKET_NAME, OUTPUT_KVS_ARN, OUTPUT_ROUTER_FUNCTION_NAME]
    )
    assert all(output.get("Description") for output in outputs.values())
    assert outputs[OUTPUT_BUCKET_NAME]["Value"] == {"Ref": BUCKET_LOGICAL_ID}
    assert outputs[OUTPUT_KVS_ARN]["Value"] == {"Fn::GetAtt": [KVS_LOGICAL_ID, "Arn"]}
    assert outputs[OUTPUT_DISTRIBUTION_ID]["Value"] == {"Ref": DISTRIBUTION_LOGICAL_ID}
    assert outputs[OUTPUT_SITE_URL]["Value"] == {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [DISTRIBUTION_LOGICAL_ID, "DomainName"]}]]
    }
    router = _functions_by_event(default_site.template)["viewer-request"]
    assert outputs[OUTPUT_ROUTER_FUNCTION_NAME]["Value"] == router["Properties"]["Name"]


def test_stack_is_named_and_described_after_the_site(custom_site: SynthesizedStack) -> None:
    assert custom_site.stack.stack_name == "hosting-docs"
    assert "'docs' site" in custom_site.template_json["Description"]


def test_template_matches_snapshot(default_site: SynthesizedStack, snapshot: SnapshotAssertion) -> None:
    assert normalized_template(default_site.template_json) == snapshot.use_extension(JSONSnapshotExtension)


# StaticSite props beyond what the configuration sets today.


def _site_stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(context=cdk_context()), "SiteOnly")


def _site_template(stack: cdk.Stack | None = None, **props: Any) -> Template:
    stack = stack or _site_stack()
    StaticSite(stack, "Site", headers=HeadersConfig(), **props)
    return Template.from_stack(stack)


def test_custom_domain_requires_tls_1_2() -> None:
    stack = _site_stack()
    certificate = acm.Certificate.from_certificate_arn(
        stack, "Certificate", "arn:aws:acm:us-east-1:111111111111:certificate/00000000-0000-0000-0000-000000000000"
    )
    template = _site_template(stack, certificate=certificate, domain_names=["www.example.com"])
    viewer_certificate = Capture()
    template.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {"DistributionConfig": {"Aliases": ["www.example.com"], "ViewerCertificate": viewer_certificate}},
    )
    assert viewer_certificate.as_object()["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert viewer_certificate.as_object()["SslSupportMethod"] == "sni-only"


def test_domain_names_without_a_certificate_are_refused() -> None:
    with pytest.raises(ValueError, match="need a certificate"):
        _site_template(domain_names=["www.example.com"])


def test_web_acl_and_price_class_props_reach_the_distribution() -> None:
    acl = "arn:aws:wafv2:us-east-1:111111111111:global/webacl/site/00000000-0000-0000-0000-000000000000"
    template = _site_template(web_acl_id=acl, price_class=cloudfront.PriceClass.PRICE_CLASS_ALL)
    template.has_resource_properties(
        "AWS::CloudFront::Distribution", {"DistributionConfig": {"WebACLId": acl, "PriceClass": "PriceClass_All"}}
    )


def test_unversioned_bucket_has_no_version_expiry() -> None:
    template = _site_template(versioned=False)
    bucket = _the_one(template, "AWS::S3::Bucket")["Properties"]
    assert "VersioningConfiguration" not in bucket
    assert [rule["Id"] for rule in bucket["LifecycleConfiguration"]["Rules"]] == ["AbortIncompleteUploads"]
