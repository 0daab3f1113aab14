"""Find where releases go: the deployed stack in AWS, or a local target folder."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from hosting_toolkit.config import HostingConfig
from hosting_toolkit.contract import (
    OUTPUT_BUCKET_NAME,
    OUTPUT_KVS_ARN,
    OUTPUT_PIPELINE_NAME,
    OUTPUT_ROLLOUT_STATE_MACHINE_ARN,
    OUTPUT_SITE_URL,
)
from hosting_toolkit.errors import BackendError, NotFoundError
from hosting_toolkit.release.kvs import AwsKeyValueStore, KeyValueStore, LocalKeyValueStore, kvs_client
from hosting_toolkit.release.s3 import S3ObjectStore, s3_client
from hosting_toolkit.release.storage import LocalObjectStore, ObjectStore

LOCAL_BUCKET_DIR = "bucket"
LOCAL_KVS_FILE = "kvs.json"


@dataclass(frozen=True)
class Target:
    """A bucket and a key-value store holding one site's releases and routing."""

    store: ObjectStore
    kvs: KeyValueStore
    site_url: str | None
    local_root: Path | None = None
    #: The stack's release pipeline, when it has one (found through the stack outputs).
    pipeline_name: str | None = None
    #: Its rollout state machine, whose running execution ``rollout stop`` stops.
    rollout_state_machine_arn: str | None = None

    @property
    def description(self) -> str:
        return f"{self.store.description} + {self.kvs.description}"


def local_target(
    root: Path, config: HostingConfig, *, bucket: str | None = None, site_url: str | None = None
) -> Target:
    """A local target: the KVS as ``<root>/kvs.json``; the bucket as files, or an S3 bucket at the
    endpoint given by the usual AWS settings (``AWS_ENDPOINT_URL_S3``) when ``bucket`` is named."""
    root.mkdir(parents=True, exist_ok=True)
    store: ObjectStore
    if bucket:
        concurrency = config.release.concurrency
        client = s3_client(concurrency=concurrency, path_style=True)
        store = S3ObjectStore(client, bucket, concurrency=concurrency, native=True)
    else:
        store = LocalObjectStore(root / LOCAL_BUCKET_DIR)
    return Target(store, LocalKeyValueStore(root / LOCAL_KVS_FILE), site_url, root)


def stack_outputs(stack_name: str, *, session: Any = None) -> dict[str, str]:
    """Outputs of the deployed hosting stack."""
    import boto3

    try:
        client = (session or boto3.Session()).client("cloudformation")
        stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            raise NotFoundError(
                f"stack {stack_name} is not deployed in this account and region; run 'hosting-toolkit deploy' "
                "or use --local DIR"
            ) from exc
        raise BackendError(f"reading stack {stack_name} failed: {exc}") from exc
    except (NoCredentialsError, NoRegionError) as exc:
        raise BackendError(f"no AWS credentials or region ({exc}); configure them, or use --local DIR") from exc
    except BotoCoreError as exc:
        raise BackendError(f"reading stack {stack_name} failed: {exc}") from exc
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def aws_target(config: HostingConfig, *, session: Any = None, kvs_endpoint: str | None = None) -> Target:
    """The deployed stack named after the site, found through its CloudFormation outputs."""
    outputs = stack_outputs(config.stack_name, session=session)
    missing = [k for k in (OUTPUT_BUCKET_NAME, OUTPUT_KVS_ARN) if k not in outputs]
    if missing:
        raise BackendError(f"stack {config.stack_name} has no output {', '.join(missing)}; redeploy it")
    target = named_aws_target(
        config,
        bucket=outputs[OUTPUT_BUCKET_NAME],
        kvs_arn=outputs[OUTPUT_KVS_ARN],
        site_url=outputs.get(OUTPUT_SITE_URL),
        session=session,
        kvs_endpoint=kvs_endpoint,
    )
    return replace(
        target,
        pipeline_name=outputs.get(OUTPUT_PIPELINE_NAME),
        rollout_state_machine_arn=outputs.get(OUTPUT_ROLLOUT_STATE_MACHINE_ARN),
    )


def named_aws_target(
    config: HostingConfig,
    *,
    bucket: str,
    kvs_arn: str,
    site_url: str | None = None,
    session: Any = None,
    kvs_endpoint: str | None = None,
) -> Target:
    """A bucket and a KeyValueStore named directly (the pipeline's build knows them; no stack lookup)."""
    concurrency = config.release.concurrency
    client = s3_client(concurrency=concurrency, session=session)
    store = S3ObjectStore(client, bucket, concurrency=concurrency, native=True)
    kvs = AwsKeyValueStore(kvs_client(endpoint_url=kvs_endpoint, session=session), kvs_arn)
    return Target(store, kvs, site_url)
