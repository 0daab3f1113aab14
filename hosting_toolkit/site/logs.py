"""Access logs: the bucket CloudFront standard logging (legacy) delivers the distribution's logs to.

Standard logging (legacy) rather than the CloudWatch-Logs-based delivery (v2): v2's delivery
source for a distribution can only be created in us-east-1, so a stack in any other region could
not declare it, and cdk-nag's AwsSolutions-CFR3 (like AWS Config's cloudfront-accesslogs-enabled)
checks the distribution's own ``Logging`` setting, which only the legacy delivery sets. Legacy
delivery writes with an ACL grant to CloudFront's log delivery account, so the bucket keeps ACLs
enabled (object ownership ``BucketOwnerPreferred``; ``BucketOwnerEnforced`` turns ACLs off) and
S3-managed encryption, the one server-side encryption that delivery accepts without a key policy.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from hosting_toolkit.site.infrastructure import PRIVATE_BUCKET

#: Key prefix of the log files (``<prefix><distribution id>.<date>.<id>.gz``).
ACCESS_LOG_PREFIX = "cloudfront/"
#: How long a log file is kept unless the configuration says otherwise.
DEFAULT_LOG_RETENTION = cdk.Duration.days(90)


class AccessLogBucket(Construct):
    """A private bucket receiving the distribution's access logs and expiring them after ``retention``.

    Props (keyword-only):

    retention: how long a log file is kept (default 90 days).
    removal_policy: what happens to the bucket when it leaves the stack (default ``DESTROY``:
      ``hosting-toolkit destroy`` empties it first, as it does every bucket but the site's).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        retention: cdk.Duration = DEFAULT_LOG_RETENTION,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, construct_id)
        self.prefix = ACCESS_LOG_PREFIX
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            **PRIVATE_BUCKET,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[
                s3.LifecycleRule(id="ExpireAccessLogs", expiration=retention),
                s3.LifecycleRule(
                    id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=cdk.Duration.days(1)
                ),
            ],
            removal_policy=removal_policy,
        )
        cdk.Validations.of(self.bucket).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-S1",
                reason=(
                    "This bucket holds the distribution's access logs. Logging access to it into itself "
                    "would log its own log writes without end, and a second bucket would only move the "
                    "question. Who reads or deletes these logs is for CloudTrail's S3 data events to record "
                    "where the account turns them on."
                ),
            )
        )
