"""The S3 backend of the release engine (AWS, or any S3 endpoint given by the usual AWS settings)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from hosting_toolkit.errors import BackendError
from hosting_toolkit.release.storage import StoredObject

#: Files up to this size go up in one PutObject read into memory; larger ones use multipart.
_SINGLE_PUT_LIMIT = 16 * 1024 * 1024
_DELETE_BATCH = 1000


#: The usual AWS setting naming another S3 endpoint (a local S3 server, an S3-compatible store).
S3_ENDPOINT_SETTING = "AWS_ENDPOINT_URL_S3"


def s3_client(
    *,
    concurrency: int,
    endpoint_url: str | None = None,
    path_style: bool = False,
    session: boto3.Session | None = None,
) -> Any:
    """An S3 client tuned for many small uploads: a connection per worker, no optional checksums."""
    config = Config(
        max_pool_connections=concurrency + 4,
        retries={"mode": "standard", "max_attempts": 5},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        tcp_keepalive=True,
        # A custom endpoint (given, or the usual AWS_ENDPOINT_URL_S3 setting) takes path-style addresses.
        s3={"addressing_style": "path"} if (path_style or endpoint_url or os.environ.get(S3_ENDPOINT_SETTING)) else {},
    )
    return (session or boto3.Session()).client("s3", endpoint_url=endpoint_url, config=config)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class NativeUploader:
    """Uploads files through the AWS Common Runtime's S3 client.

    The CRT reads, signs and sends each file in native code, so a file costs about a third of the
    client CPU of a botocore ``PutObject``: with thousands of small files on two cores, client CPU
    is what limits a release. Large files go up in parallel parts on their own.
    """

    def __init__(self, client: Any, bucket: str, *, concurrency: int) -> None:
        from awscrt import auth, s3

        credentials = client._request_signer._credentials
        if credentials is None:
            raise BackendError("no AWS credentials found; configure them (e.g. AWS_PROFILE) or use --local DIR")

        def current() -> Any:
            frozen = credentials.get_frozen_credentials()
            return auth.AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token)

        endpoint = urlsplit(client.meta.endpoint_url)
        region = client.meta.region_name or "us-east-1"
        path_style = client.meta.config.s3.get("addressing_style") == "path" if client.meta.config.s3 else False
        if path_style or "." in bucket:
            self._host, self._prefix = endpoint.netloc, f"/{bucket}/"
        else:
            self._host, self._prefix = f"{bucket}.{endpoint.netloc}", "/"
        signing = auth.AwsSigningConfig(
            algorithm=auth.AwsSigningAlgorithm.V4,
            signature_type=auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
            service="s3",
            region=region,
            credentials_provider=auth.AwsCredentialsProvider.new_delegate(current),
            signed_body_value=auth.AwsSignedBodyValue.UNSIGNED_PAYLOAD,
            use_double_uri_encode=False,
            should_normalize_uri_path=False,
        )
        tls = s3.S3RequestTlsMode.ENABLED if endpoint.scheme == "https" else s3.S3RequestTlsMode.DISABLED
        self._client = s3.S3Client(
            region=region, tls_mode=tls, signing_config=signing, max_active_connections_override=concurrency
        )

    def put_file(self, key: str, source: Path, headers: dict[str, str]) -> None:
        from awscrt import http, s3

        request = http.HttpRequest(
            "PUT",
            self._prefix + quote(key, safe="/~"),
            http.HttpHeaders([("Host", self._host), *headers.items()]),
        )
        meta = self._client.make_request(type=s3.S3RequestType.PUT_OBJECT, request=request, send_filepath=str(source))
        try:
            meta.finished_future.result()
        except s3.S3ResponseError as exc:
            detail = exc.body.decode(errors="replace")[:300] if exc.body else ""
            raise BackendError(f"upload of {key} failed with HTTP {exc.status_code}: {detail}") from exc
        except Exception as exc:
            raise BackendError(f"upload of {key} failed: {exc}") from exc


def native_uploads_available() -> bool:
    try:
        import awscrt.s3  # noqa: F401
    except ImportError:
        return False
    return True


class S3ObjectStore:
    """Release objects in one S3 bucket.

    ``native`` sends file uploads through the CRT (``NativeUploader``); everything else, and every
    upload when ``native`` is off or ``awscrt`` is missing, goes through botocore.
    """

    def __init__(self, client: Any, bucket: str, *, concurrency: int = 16, native: bool = False) -> None:
        self.client = client
        self.bucket = bucket
        self._transfer = TransferConfig(max_concurrency=4, multipart_threshold=_SINGLE_PUT_LIMIT)
        self._native = (
            NativeUploader(client, bucket, concurrency=concurrency) if native and native_uploads_available() else None
        )

    @property
    def description(self) -> str:
        return f"s3://{self.bucket}"

    def _fail(self, action: str, key: str, exc: Exception) -> BackendError:
        return BackendError(f"{action} s3://{self.bucket}/{key} failed: {exc}")

    @staticmethod
    def _headers(content_type: str, cache_control: str | None, metadata: dict[str, str] | None) -> dict[str, Any]:
        args: dict[str, Any] = {"ContentType": content_type}
        if cache_control:
            args["CacheControl"] = cache_control
        if metadata:
            args["Metadata"] = metadata
        return args

    def put_file(
        self, key: str, source: Path, *, content_type: str, cache_control: str, metadata: dict[str, str]
    ) -> None:
        if self._native is not None:
            headers = {"Content-Type": content_type, "Cache-Control": cache_control}
            headers.update({f"x-amz-meta-{k}": v for k, v in metadata.items()})
            self._native.put_file(key, source, headers)
            return
        args = self._headers(content_type, cache_control, metadata)
        try:
            if source.stat().st_size <= _SINGLE_PUT_LIMIT:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=source.read_bytes(), **args)
            else:
                self.client.upload_file(str(source), self.bucket, key, ExtraArgs=args, Config=self._transfer)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise self._fail("upload to", key, exc) from exc

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> bool:
        args = self._headers(content_type, cache_control, metadata)
        if if_absent:
            args["IfNoneMatch"] = "*"
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **args)
        except ClientError as exc:
            if if_absent and _error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise self._fail("write to", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("write to", key, exc) from exc
        return True

    def copy(
        self, source_key: str, key: str, *, content_type: str, cache_control: str, metadata: dict[str, str]
    ) -> None:
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": source_key},
                MetadataDirective="REPLACE",
                **self._headers(content_type, cache_control, metadata),
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._fail(f"copy s3://{self.bucket}/{source_key} to", key, exc) from exc

    def _get(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.get_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self._fail("read", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("read", key, exc) from exc

    def get(self, key: str) -> bytes | None:
        response = self._get(key)
        return None if response is None else response["Body"].read()

    def get_object(self, key: str) -> StoredObject | None:
        response = self._get(key)
        if response is None:
            return None
        return StoredObject(
            response["Body"].read(),
            response.get("ContentType", "application/octet-stream"),
            response.get("CacheControl"),
            response.get("ETag", ""),
            dict(response.get("Metadata") or {}),
        )

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"], int(item["Size"])
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("list", prefix, exc) from exc

    def list_folders(self, prefix: str) -> Iterator[str]:
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                for item in page.get("CommonPrefixes", []):
                    yield item["Prefix"][len(prefix) :].rstrip("/")
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("list", prefix, exc) from exc

    def delete(self, keys: Iterable[str]) -> int:
        count = 0
        batch: list[str] = []

        def flush() -> None:
            nonlocal count
            if not batch:
                return
            try:
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            except (BotoCoreError, ClientError) as exc:
                raise self._fail("delete from", batch[0], exc) from exc
            errors = response.get("Errors") or []
            if errors:
                raise BackendError(
                    f"could not delete {len(errors)} objects, e.g. {errors[0].get('Key')}: {errors[0].get('Message')}"
                )
            count += len(batch)
            batch.clear()

        for key in keys:
            batch.append(key)
            if len(batch) == _DELETE_BATCH:
                flush()
        flush()
        return count
