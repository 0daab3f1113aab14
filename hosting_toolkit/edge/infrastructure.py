"""The release router: the KeyValueStore holding the routing state and the two CloudFront Functions."""

from __future__ import annotations

from aws_cdk import aws_cloudfront as cloudfront
from constructs import Construct

from hosting_toolkit.config import HostingConfig
from hosting_toolkit.contract import RELEASE_HEADER, ROUTING_KEY
from hosting_toolkit.edge.code import render_router, render_viewer_response


class ReleaseRouter(Construct):
    """Routes every request to the folder of one release, as the routing state in its KeyValueStore says.

    Props (keyword-only):

    config: the site configuration; its mode and entry page are rendered into the router's code.

    Attributes: ``store`` (the KeyValueStore, empty until the first release is activated),
    ``viewer_request`` (the router, reading the store), ``viewer_response`` (names the release in
    the response, pins pages to it and keeps each viewer's canary cohort; no store read) and
    ``function_associations`` (both, for a distribution behaviour).
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: HostingConfig) -> None:
        super().__init__(scope, construct_id)
        name = config.site.name
        self.store = cloudfront.KeyValueStore(
            self,
            "ReleaseStore",
            comment=f"Routing state of the '{name}' site (key '{ROUTING_KEY}')",
        )
        self.viewer_request = cloudfront.Function(
            self,
            "ViewerRequestRouter",
            comment=f"Routes each request of the '{name}' site into the folder of one release",
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            code=cloudfront.FunctionCode.from_inline(render_router(config)),
            key_value_store=self.store,
            auto_publish=True,
        )
        self.viewer_response = cloudfront.Function(
            self,
            "ViewerResponseRelease",
            comment=f"Names the release serving the '{name}' site in {RELEASE_HEADER} and pins pages to it",
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            code=cloudfront.FunctionCode.from_inline(render_viewer_response(config)),
            auto_publish=True,
        )

    @property
    def function_associations(self) -> list[cloudfront.FunctionAssociation]:
        """The router on viewer-request and the release header on viewer-response."""
        return [
            cloudfront.FunctionAssociation(
                function=self.viewer_request, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
            ),
            cloudfront.FunctionAssociation(
                function=self.viewer_response, event_type=cloudfront.FunctionEventType.VIEWER_RESPONSE
            ),
        ]
