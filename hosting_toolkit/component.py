"""The hosting stack: wires the release router into the static site and publishes what the tools need."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from hosting_toolkit.config import HostingConfig, ZipSource
from hosting_toolkit.contract import (
    META_PREFIX,
    OUTPUT_BUCKET_NAME,
    OUTPUT_CONNECTION_ARN,
    OUTPUT_DISTRIBUTION_ID,
    OUTPUT_KVS_ARN,
    OUTPUT_PIPELINE_NAME,
    OUTPUT_SITE_URL,
    OUTPUT_UPLOAD_LOCATION,
    RELEASES_PREFIX,
)
from hosting_toolkit.edge.infrastructure import ReleaseRouter
from hosting_toolkit.pipeline.infrastructure import ReleasePipeline
from hosting_toolkit.site.infrastructure import StaticSite


class HostingStack(cdk.Stack):
    """One site's hosting: a private release bucket, its CloudFront distribution and the release router.

    Props (keyword-only):

    config: the validated site configuration; with a ``[source]``, the stack also has the release
      pipeline that builds and releases the site on every change.
    env: account and region (default none: an environment-agnostic stack).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: HostingConfig,
        env: cdk.Environment | None = None,
    ) -> None:
        name = config.site.name
        super().__init__(
            scope,
            construct_id,
            env=env,
            description=(
                f"Versioned, atomic static hosting of the '{name}' site: releases in S3, served by "
                "CloudFront, routed by a CloudFront Function reading a KeyValueStore."
            ),
        )
        self.router = ReleaseRouter(self, "Router", config=config)
        self.site = StaticSite(
            self,
            "Site",
            headers=config.headers,
            function_associations=self.router.function_associations,
            comment=f"Releases of the '{name}' site",
        )

        cdk.CfnOutput(
            self,
            OUTPUT_SITE_URL,
            description="Address of the site",
            value=f"https://{self.site.distribution.distribution_domain_name}",
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
            self._add_pipeline(config)

    def _add_pipeline(self, config: HostingConfig) -> None:
        site_url = f"https://{self.site.distribution.distribution_domain_name}"
        pipeline = ReleasePipeline(
            self,
            "Pipeline",
            config=config,
            site_bucket=self.site.bucket,
            release_store=self.router.store,
            site_url=site_url,
        )
        self.pipeline = pipeline
        cdk.CfnOutput(
            self,
            OUTPUT_PIPELINE_NAME,
            description="Pipeline that builds and releases the site on every change of its source",
            value=pipeline.pipeline.pipeline_name,
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
