"""The key-value store behind routing: CloudFront KeyValueStore, or a local file with the same semantics.

Both backends offer the store-wide ETag the CloudFront API uses: a read returns the value and the
ETag it was read at; a write names that ETag and fails with ``KvsConflict`` if anything changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from hosting_toolkit.errors import BackendError


class KvsConflict(Exception):
    """The store changed since it was read (ETag mismatch)."""


class KeyValueStore(Protocol):
    """Store-wide ETag reads and conditional writes of single keys."""

    def read(self, key: str) -> tuple[str | None, str]:
        """The key's value (``None`` when absent) and the store's ETag, read before the value."""
        ...

    def write(self, key: str, value: str, *, if_match: str) -> str:
        """Write ``value`` if the store's ETag is still ``if_match``; return the new ETag."""
        ...

    def delete(self, key: str, *, if_match: str) -> str:
        """Delete ``key`` if the store's ETag is still ``if_match``; return the new ETag."""
        ...

    def snapshot(self) -> tuple[dict[str, str], str]:
        """Every key and value, and the ETag they were read at."""
        ...

    @property
    def description(self) -> str: ...


class LocalKeyValueStore:
    """A KVS kept in one JSON file; writes are compare-and-swap under a lock, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def description(self) -> str:
        return f"local key-value store {self.path}"

    def snapshot(self) -> tuple[dict[str, str], str]:
        """Every key and the ETag, as one consistent read (what the local edge serves from)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}, "0"
        except (OSError, ValueError) as exc:
            raise BackendError(f"{self.path}: unreadable key-value store ({exc})") from exc
        return dict(data.get("items", {})), str(data.get("etag", "0"))

    def read(self, key: str) -> tuple[str | None, str]:
        items, etag = self.snapshot()
        return items.get(key), etag

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write(self, key: str, value: str, *, if_match: str) -> str:
        if len(value.encode()) > 1024:
            raise BackendError(f"value of {key!r} is over the 1 KB KeyValueStore limit")
        return self._change(key, value, if_match=if_match)

    def delete(self, key: str, *, if_match: str) -> str:
        return self._change(key, None, if_match=if_match)

    def _change(self, key: str, value: str | None, *, if_match: str) -> str:
        with self._locked():
            items, etag = self.snapshot()
            if etag != if_match:
                raise KvsConflict(f"store changed (ETag {etag}, expected {if_match})")
            if value is None:
                if key not in items:
                    return etag
                del items[key]
            else:
                items[key] = value
            new_etag = secrets.token_hex(8)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".kvs-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump({"etag": new_etag, "items": items}, handle)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return new_etag


def kvs_client(*, endpoint_url: str | None = None, session: Any = None) -> Any:
    """A ``cloudfront-keyvaluestore`` client (SigV4A: needs ``awscrt``)."""
    import boto3

    # The usual AWS setting of a service's endpoint, as AWS_ENDPOINT_URL_S3 is for S3 (a local store in tests).
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_CLOUDFRONT_KEYVALUESTORE") or None
    config = Config(retries={"mode": "standard", "max_attempts": 5}, inject_host_prefix=endpoint_url is None)
    client = (session or boto3.Session()).client("cloudfront-keyvaluestore", endpoint_url=endpoint_url, config=config)
    if endpoint_url is not None:
        # The service's endpoint rules put the ARN's account id in front of any endpoint's host
        # (``123456789012.127.0.0.1``), which a local endpoint cannot resolve: keep the host given.
        netloc = urlsplit(endpoint_url).netloc

        def keep_endpoint_host(params: dict[str, Any], **_: Any) -> None:
            params["url"] = urlsplit(params["url"])._replace(netloc=netloc).geturl()

        client.meta.events.register("before-call.cloudfront-keyvaluestore", keep_endpoint_host)
    return client


class AwsKeyValueStore:
    """A CloudFront KeyValueStore through its data-plane API."""

    def __init__(self, client: Any, arn: str) -> None:
        self.client = client
        self.arn = arn

    @property
    def description(self) -> str:
        return f"KeyValueStore {self.arn}"

    def read(self, key: str) -> tuple[str | None, str]:
        try:
            etag = self.client.describe_key_value_store(KvsARN=self.arn)["ETag"]
            try:
                value = self.client.get_key(KvsARN=self.arn, Key=key)["Value"]
            except self.client.exceptions.ResourceNotFoundException:
                value = None
        except (BotoCoreError, ClientError) as exc:
            raise BackendError(f"reading {key!r} from {self.arn} failed: {exc}") from exc
        return value, etag

    def snapshot(self) -> tuple[dict[str, str], str]:
        """Every key and value, and the ETag they were listed at (what a local edge serves from)."""
        try:
            etag = self.client.describe_key_value_store(KvsARN=self.arn)["ETag"]
            items: dict[str, str] = {}
            for page in self.client.get_paginator("list_keys").paginate(KvsARN=self.arn):
                items.update({item["Key"]: item["Value"] for item in page.get("Items", [])})
        except (BotoCoreError, ClientError) as exc:
            raise BackendError(f"listing the keys of {self.arn} failed: {exc}") from exc
        return items, str(etag)

    def write(self, key: str, value: str, *, if_match: str) -> str:
        try:
            return str(self.client.put_key(KvsARN=self.arn, Key=key, Value=value, IfMatch=if_match)["ETag"])
        except self.client.exceptions.ConflictException as exc:
            raise KvsConflict(str(exc)) from exc
        except (BotoCoreError, ClientError) as exc:
            raise BackendError(f"writing {key!r} to {self.arn} failed: {exc}") from exc

    def delete(self, key: str, *, if_match: str) -> str:
        try:
            return str(self.client.delete_key(KvsARN=self.arn, Key=key, IfMatch=if_match)["ETag"])
        except self.client.exceptions.ConflictException as exc:
            raise KvsConflict(str(exc)) from exc
        except self.client.exceptions.ResourceNotFoundException:
            return self.read(key)[1]
        except (BotoCoreError, ClientError) as exc:
            raise BackendError(f"deleting {key!r} from {self.arn} failed: {exc}") from exc
