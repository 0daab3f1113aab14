"""The hosting stack: wires the release router into the static site and publishes what the tools need."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from constructs import Construct

from hosting_toolkit.config import HostingConfig, ZipSource
from hosting_toolkit.contract import (
    META_PREFIX,
    OUTPUT_BUCKET_NAME,
    OUTPUT_CONNECTION_ARN,
    OUTPUT_DISTRIBUTION_DOMAIN_NAME,
    OUTPUT_DISTRIBUTION_ID,
    OUTPUT_KVS_ARN,
    OUTPUT_PIPELINE_NAME,
    OUTPUT_ROLLOUT_STATE_MACHINE_ARN,
    OUTPUT_ROUTER_FUNCTION_NAME,
    OUTPUT_SITE_URL,
    OUTPUT_UPLOAD_LOCATION,
    RELEASES_PREFIX,
)
from hosting_toolkit.edge.infrastructure import ReleaseRouter
from hosting_toolkit.errors import ConfigError
from hosting_toolkit.pipeline.infrastructure import ReleasePipeline
from hosting_toolkit.site.dns import certificate_stack
from hosting_toolkit.site.domain import (
    CERTIFICATE_REGION,
    CertificateStack,
    SiteAliasRecords,
    SiteCertificate,
)
from hosting_toolkit.site.infrastructure import StaticSite
from hosting_toolkit.site.logs import AccessLogBucket


class HostingStack(cdk.Stack):
    """One site's hosting: a private release bucket, its CloudFront distribution and the release router.

    Props (keyword-only):

    config: the validated site configuration; with a ``[source]``, the stack also has the release
      pipeline that builds and releases the site on every change.
    env: account and region (default none: an environment-agnostic stack).
    certificate: the certificate of ``config.domain`` when another stack holds it (default none:
      with a domain, the stack creates it, which needs the stack to be in us-east-1). Use
      ``build_stacks`` to get the right arrangement for any region.
    cross_region_references: whether values of stacks in other regions may be read (default
      false; needed with a ``certificate`` from us-east-1).
    wheelhouse: the release engine's wheels the pipeline ships (see ``ReleasePipeline``; default none).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: HostingConfig,
        env: cdk.Environment | None = None,
        certificate: acm.ICertificate | None = None,
        cross_region_references: bool = False,
        wheelhouse: Path | None = None,
    ) -> None:
        name = config.site.name
        super().__init__(
            scope,
            construct_id,
            env=env,
            cross_region_references=cross_region_references,
            description=(
                f"Versioned, atomic static hosting of the '{name}' site: releases in S3, served by "
                "CloudFront, routed by a CloudFront Function reading a KeyValueStore."
            ),
        )
        self.router = ReleaseRouter(self, "Router", config=config)
        # The site's names, and the previews' wildcard name with a preview domain.
        domain = config.served_domain
        if certificate is not None and not domain.enabled:
            raise ValueError("HostingStack: a certificate needs the domain names of [domain] to serve")
        if domain.enabled and certificate is None:
            if self.region != CERTIFICATE_REGION:
                where = "an environment-agnostic stack" if cdk.Token.is_unresolved(self.region) else self.region
                raise ValueError(
                    f"HostingStack: the certificate for {where} must come from a us-east-1 stack; "
                    "pass certificate=, or build the stacks with build_stacks()"
                )
            certificate = SiteCertificate(self, "Domain", domain=domain).certificate
        self.certificate = certificate
        self.access_logs = (
            AccessLogBucket(self, "AccessLogs", retention=cdk.Duration.days(config.logs.retention_days))
            if config.logs.enabled
            else None
        )
        self.site = StaticSite(
            self,
            "Site",
            headers=config.headers,
            function_associations=self.router.function_associations,
            not_found_status=config.errors.not_found_status(config.site.mode),
            comment=f"Releases of the '{name}' site",
            certificate=self.certificate,
            domain_names=domain.all_names,
            web_acl_id=config.waf.web_acl_arn or None,
            log_bucket=self.access_logs.bucket if self.access_logs else None,
            log_file_prefix=self.access_logs.prefix if self.access_logs else None,
        )
        self.domain_records = (
            SiteAliasRecords(self, "DomainRecords", domain=domain, distribution=self.site.distribution)
            if domain.enabled and domain.hosted_zone_id
            else None
        )
        distribution_domain = self.site.distribution.distribution_domain_name
        self.site_url = f"https://{domain.names[0]}" if domain.enabled else f"https://{distribution_domain}"

        cdk.CfnOutput(self, OUTPUT_SITE_URL, description="Address of the site", value=self.site_url)
        if domain.enabled:
            cdk.CfnOutput(
                self,
                OUTPUT_DISTRIBUTION_DOMAIN_NAME,
                description="The distribution's own domain name, which the site's DNS records point at",
                value=distribution_domain,
            )
        cdk.CfnOutput(
            self,
            OUTPUT_ROUTER_FUNCTION_NAME,
            description="Router function; 'hosting-toolkit function test --remote' tests code in its DEVELOPMENT stage",
            value=self.router.viewer_request.function_name,
        )
        cdk.CfnOutput(
            self,
            OUTPUT_DISTRIBUTION_ID,
            description="CloudFront distribution serving the site",
            value=self.site.distribution.distribution_id,
        )
        cdk.CfnOutput(
            self,
            OUTPUT_BUCKET_NAME,
            description=f"Bucket holding every release under {RELEASES_PREFIX}<id>/ and their records under {META_PREFIX}",
            value=self.site.bucket.bucket_name,
        )
        cdk.CfnOutput(
            self,
            OUTPUT_KVS_ARN,
            description="KeyValueStore holding the routing state the router function reads",
            value=self.router.store.key_value_store_arn,
        )

        self.pipeline: ReleasePipeline | None = None
        if config.source is not None:
            self._add_pipeline(config, wheelhouse)

    def _add_pipeline(self, config: HostingConfig, wheelhouse: Path | None) -> None:
        site_url = self.site_url
        pipeline = ReleasePipeline(
            self,
            "Pipeline",
            config=config,
            site_bucket=self.site.bucket,
            release_store=self.router.store,
            site_url=site_url,
            distribution=self.site.distribution,
            wheelhouse=wheelhouse,
        )
        self.pipeline = pipeline
        cdk.CfnOutput(
            self,
            OUTPUT_PIPELINE_NAME,
            description="Pipeline that builds and releases the site on every change of its source",
            value=pipeline.pipeline.pipeline_name,
        )
        cdk.CfnOutput(
            self,
            OUTPUT_ROLLOUT_STATE_MACHINE_ARN,
            description="State machine that rolls each release out; 'rollout stop' stops its running execution",
            value=pipeline.rollout.state_machine.state_machine_arn,
        )
        if pipeline.connection_arn is not None:
            cdk.CfnOutput(
                self,
                OUTPUT_CONNECTION_ARN,
                description="CodeConnections connection to the site's repository; it must be approved once",
                value=pipeline.connection_arn,
            )
        if pipeline.upload_bucket is not None and isinstance(config.source, ZipSource):
            cdk.CfnOutput(
                self,
                OUTPUT_UPLOAD_LOCATION,
                description="Where a ZIP of the site is uploaded to release it",
                value=f"s3://{pipeline.upload_bucket.bucket_name}/{config.source.object_key}",
            )


def build_stacks(
    app: cdk.App, config: HostingConfig, *, env: cdk.Environment | None = None, wheelhouse: Path | None = None
) -> HostingStack:
    """The hosting stack for ``config``, with a us-east-1 certificate stack when it has a domain and runs elsewhere.

    A custom domain needs the region to be known (CloudFront reads certificates from us-east-1 only):
    ``cdk deploy`` sets it from the AWS profile; raises ``ConfigError`` when it is not set.
    """
    region = env.region if env is not None else None
    certificate_stack_id = certificate_stack(config, region)
    if certificate_stack_id is None:
        return HostingStack(app, config.stack_name, config=config, env=env, wheelhouse=wheelhouse)
    if not region:
        raise ConfigError(
            [
                "domain: a custom domain needs the stack's region, to place its certificate in us-east-1; "
                "deploy with 'hosting-toolkit deploy', or set CDK_DEFAULT_REGION"
            ],
            str(config.path) if config.path else None,
        )
    account = env.account if env is not None else None
    certificates = CertificateStack(app, certificate_stack_id, domain=config.served_domain, account=account)
    return HostingStack(
        app,
        config.stack_name,
        config=config,
        env=env,
        certificate=certificates.certificate,
        cross_region_references=True,
        wheelhouse=wheelhouse,
    )
