"""The static site: a private bucket of releases behind a CloudFront distribution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from hosting_toolkit.config import HeadersConfig
from hosting_toolkit.contract import META_PREFIX, SERVER_ERROR_STATUSES, error_responses

#: Lifetime of replaced or deleted object versions: the window in which a mistaken delete can be undone.
NONCURRENT_VERSION_RETENTION = cdk.Duration.days(30)
#: Used only when an object carries no Cache-Control, which the release engine never uploads.
DEFAULT_TTL = cdk.Duration.days(1)
#: Long enough to honour ``max-age=31536000, immutable`` on hashed assets.
MAX_TTL = cdk.Duration.days(365)

#: How long CloudFront keeps answering a missing path with the not-found page before asking S3 again.
NOT_FOUND_ERROR_TTL = cdk.Duration.seconds(10)
#: Short, so a recovered origin serves again at once, yet not zero: a struggling origin (S3 answering
#: 503 Slow Down) is not sent every retried request.
SERVER_ERROR_TTL = cdk.Duration.seconds(5)

#: Storage details S3 adds to each response that viewers have no use for.
S3_DETAIL_HEADERS = ("x-amz-server-side-encryption", "x-amz-version-id")

_FRAME_OPTIONS = {"DENY": cloudfront.HeadersFrameOption.DENY, "SAMEORIGIN": cloudfront.HeadersFrameOption.SAMEORIGIN}


def custom_error_responses(not_found_status: int) -> list[cloudfront.ErrorResponse]:
    """Custom error responses serving the error pages the release engine publishes under ``errors/``.

    CloudFront fetches a page by its fixed path without running the viewer-request router, and the
    router never maps a viewer's path there, so these keys are reachable only as error pages.
    """
    return [
        cloudfront.ErrorResponse(
            http_status=status,
            response_http_status=viewer_status,
            response_page_path=f"/{page_key}",
            ttl=SERVER_ERROR_TTL if status in SERVER_ERROR_STATUSES else NOT_FOUND_ERROR_TTL,
        )
        for status, (page_key, viewer_status) in error_responses(not_found_status).items()
    ]


def security_headers(headers: HeadersConfig) -> cloudfront.ResponseSecurityHeadersBehavior:
    """The security headers CloudFront adds to every response, overriding any the origin sent.

    HSTS leaves out ``preload``: preloading commits a whole registrable domain to HTTPS in browsers,
    a decision for the domain's owner, not for one site's stack.
    """
    csp = (
        cloudfront.ResponseHeadersContentSecurityPolicy(
            content_security_policy=headers.content_security_policy, override=True
        )
        if headers.content_security_policy
        else None
    )
    return cloudfront.ResponseSecurityHeadersBehavior(
        strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
            access_control_max_age=cdk.Duration.seconds(headers.hsts_max_age),
            include_subdomains=True,
            override=True,
        ),
        content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
        frame_options=cloudfront.ResponseHeadersFrameOptions(
            frame_option=_FRAME_OPTIONS[headers.frame_options], override=True
        ),
        referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
            referrer_policy=cloudfront.HeadersReferrerPolicy[headers.referrer_policy.upper().replace("-", "_")],
            override=True,
        ),
        content_security_policy=csp,
    )


#: Settings every bucket of the product shares: private, encrypted at rest, TLS 1.2+ only.
PRIVATE_BUCKET: dict[str, Any] = {
    "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
    "encryption": s3.BucketEncryption.S3_MANAGED,
    "enforce_ssl": True,
    "minimum_tls_version": 1.2,
}


class StaticSite(Construct):
    """A private, versioned S3 bucket of releases served only through a CloudFront distribution.

    Props (keyword-only):

    headers: the security headers added to every response.
    function_associations: CloudFront Functions on the default behaviour (default none); the
      release router rewrites every request to a key under ``releases/<id>/``.
    not_found_status: the status of the not-found page ``errors/404.html`` served for a missing
      path (S3's 403 or 404) (default 404; a single-page app may answer 200). Origin failures
      (500, 502, 503, 504) get ``errors/5xx.html`` with their own status.
    comment: description of the distribution and its policies (default ``"Static site"``).
    price_class: edge locations serving the site (default ``PRICE_CLASS_100``: North America and
      Europe, the cheapest; viewers elsewhere are served from the nearest of those).
    certificate: ACM certificate in us-east-1 for ``domain_names`` (default none: the
      distribution's ``*.cloudfront.net`` name and certificate). With one, viewers need TLS 1.2.
    domain_names: custom domain names; need ``certificate`` (default none).
    web_acl_id: ARN of an AWS WAF web ACL (scope CLOUDFRONT) to attach (default none).
    log_bucket: bucket receiving CloudFront standard access logs, with ACLs enabled for the log
      delivery (default none: no access logs).
    log_file_prefix: key prefix of the log files in ``log_bucket`` (default none).
    versioned: keep replaced and deleted objects for ``NONCURRENT_VERSION_RETENTION`` (default
      True), so a mistaken prune or manual delete of a release can be undone.
    removal_policy: what happens to the bucket when it leaves the stack (default ``RETAIN``: the
      releases outlive the stack).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        headers: HeadersConfig,
        function_associations: Sequence[cloudfront.FunctionAssociation] = (),
        not_found_status: int = 404,
        comment: str = "Static site",
        price_class: cloudfront.PriceClass = cloudfront.PriceClass.PRICE_CLASS_100,
        certificate: acm.ICertificate | None = None,
        domain_names: Sequence[str] = (),
        web_acl_id: str | None = None,
        log_bucket: s3.IBucket | None = None,
        log_file_prefix: str | None = None,
        versioned: bool = True,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        problems = []
        if domain_names and certificate is None:
            problems.append("domain_names need a certificate (an ACM certificate in us-east-1)")
        if not_found_status not in (200, 404):
            problems.append(f"not_found_status must be 404 or 200, not {not_found_status}")
        if problems:
            raise ValueError(f"StaticSite: {'; '.join(problems)}")

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            **PRIVATE_BUCKET,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=versioned,
            lifecycle_rules=self._lifecycle_rules(versioned),
            removal_policy=removal_policy,
        )
        # Defense in depth: the router never maps a request under _meta/, and this holds even if it did.
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyCloudFrontReleaseRecords",
                effect=iam.Effect.DENY,
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{META_PREFIX}*")],
            )
        )

        self.cache_policy = cloudfront.CachePolicy(
            self,
            "CachePolicy",
            comment=f"{comment}: keyed on the rewritten release path only",
            header_behavior=cloudfront.CacheHeaderBehavior.none(),
            cookie_behavior=cloudfront.CacheCookieBehavior.none(),
            query_string_behavior=cloudfront.CacheQueryStringBehavior.none(),
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
            min_ttl=cdk.Duration.seconds(0),
            default_ttl=DEFAULT_TTL,
            max_ttl=MAX_TTL,
        )
        self.response_headers_policy = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment=f"{comment}: security headers",
            security_headers_behavior=security_headers(headers),
            remove_headers=list(S3_DETAIL_HEADERS),
        )

        # LIST lets S3 answer a missing key with 404 instead of 403. Listing itself is unreachable:
        # the router only requests keys under releases/<id>/ and the origin forwards no query string.
        origin = origins.S3BucketOrigin.with_origin_access_control(
            self.bucket,
            origin_access_levels=[cloudfront.AccessLevel.READ, cloudfront.AccessLevel.LIST],
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=comment,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD,
                compress=True,
                cache_policy=self.cache_policy,
                response_headers_policy=self.response_headers_policy,
                function_associations=list(function_associations),
            ),
            error_responses=custom_error_responses(not_found_status),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_ipv6=True,
            price_class=price_class,
            certificate=certificate,
            domain_names=list(domain_names) or None,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if certificate else None,
            web_acl_id=web_acl_id,
            enable_logging=log_bucket is not None,
            log_bucket=log_bucket,
            log_file_prefix=log_file_prefix if log_bucket is not None else None,
            # Cookies would put preview tokens and cohorts in the logs; nothing needs them there.
            log_includes_cookies=False if log_bucket is not None else None,
        )
        cdk.Validations.of(self.distribution).acknowledge(
            cdk.Acknowledgment(
                id="Annotation::@aws-cdk/aws-cloudfront-origins:listBucketSecurityRisk",
                reason=(
                    "No default root object on purpose: the viewer-request router maps '/' to the entry "
                    "page of a release and every other path to a key under releases/<id>/."
                ),
            )
        )
        self._acknowledge_findings(certificate=certificate, web_acl_id=web_acl_id, logged=log_bucket is not None)

    @staticmethod
    def _lifecycle_rules(versioned: bool) -> list[s3.LifecycleRule]:
        rules = [
            s3.LifecycleRule(
                id="AbortIncompleteUploads",
                abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
            )
        ]
        if versioned:
            rules.append(
                s3.LifecycleRule(
                    id="ExpireReplacedVersions",
                    noncurrent_version_expiration=NONCURRENT_VERSION_RETENTION,
                    expired_object_delete_marker=True,
                )
            )
        return rules

    def _acknowledge_findings(
        self, *, certificate: acm.ICertificate | None, web_acl_id: str | None, logged: bool
    ) -> None:
        cdk.Validations.of(self.bucket).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-S1",
                reason=(
                    "Private origin bucket: its only reader is this distribution through Origin Access "
                    "Control and its only writer the release engine. Server access logs would need a "
                    "second bucket per site and would record CloudFront's origin fetches rather than "
                    "viewers' requests."
                ),
            )
        )
        findings = [
            cdk.Acknowledgment(
                id="AwsSolutions-CFR1",
                reason="A public website meant for viewers in every country; no geographic restriction applies.",
            ),
        ]
        if not logged:
            findings.append(
                cdk.Acknowledgment(
                    id="AwsSolutions-CFR3",
                    reason=(
                        "Access logs are opt-in ([logs] enabled = true creates the log bucket and turns "
                        "standard logging on); without them, CloudFront's default CloudWatch metrics "
                        "(requests, bytes, 4xx and 5xx rates) are the record of traffic."
                    ),
                )
            )
        if web_acl_id is None:
            findings.append(
                cdk.Acknowledgment(
                    id="AwsSolutions-CFR2",
                    reason=(
                        "Static files only: no origin compute, no forms, no query strings or cookies "
                        "reach the origin. A WAF web ACL costs a monthly fee per site, so it is opt-in "
                        "([waf] web_acl_arn attaches one)."
                    ),
                )
            )
        if certificate is None:
            findings.append(
                cdk.Acknowledgment(
                    id="AwsSolutions-CFR4",
                    reason=(
                        "Without a custom domain the distribution uses the default *.cloudfront.net "
                        "certificate, whose minimum protocol CloudFront fixes and no setting can raise; "
                        "with a certificate the distribution requires TLSv1.2_2021."
                    ),
                )
            )
        cdk.Validations.of(self.distribution).acknowledge(*findings)
