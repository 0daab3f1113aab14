"""A protocol-level fake of the CloudFront KeyValueStore data-plane API, served over HTTP.

moto implements only the KeyValueStore control plane, so the release engine's data-plane calls
(``DescribeKeyValueStore``, ``GetKey``, ``PutKey``...) go to this server instead: real boto3
clients send it real REST-JSON requests (SigV4A-signed; the signatures are not checked) and get
the status codes, headers and error shapes of botocore's ``cloudfront-keyvaluestore`` model.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from hosting_toolkit.contract import KVS_VALUE_LIMIT

#: CloudFront KeyValueStore quotas: a key is at most 512 bytes, the whole store at most 5 MB.
KEY_LIMIT = 512
STORE_LIMIT = 5 * 1024 * 1024
#: ListKeys answers at most this many items per page (the model's MaxResults maximum).
LIST_PAGE_LIMIT = 50

_ETAG_CHARS = string.ascii_uppercase + string.digits


class KvsApiError(Exception):
    """An error answer in the REST-JSON form botocore parses: status, ``x-amzn-ErrorType``, message."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


@dataclass
class FakeStore:
    """One key-value store: its items and the store-wide ETag that every change replaces."""

    arn: str
    items: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    created: float = field(default_factory=time.time)
    last_modified: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.etag = self.etag or _new_etag()

    @property
    def size(self) -> int:
        return sum(len(k.encode()) + len(v.encode()) for k, v in self.items.items())

    def counts(self) -> dict[str, int]:
        return {"ItemCount": len(self.items), "TotalSizeInBytes": self.size}


def _new_etag() -> str:
    return "KV" + "".join(secrets.choice(_ETAG_CHARS) for _ in range(12))


class FakeKeyValueStoreServer:
    """CloudFront KeyValueStore data plane on ``127.0.0.1``; counts requests per operation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: dict[str, FakeStore] = {}
        self.requests: Counter[str] = Counter()
        self.raw_paths: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeKeyValueStoreServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-kvs", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "the server is not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        """Forget every store and every counted request."""
        with self._lock:
            self._stores.clear()
            self.requests.clear()
            self.raw_paths.clear()

    # -- test-side access --------------------------------------------------------------------

    def create_store(self, arn: str | None = None, items: dict[str, str] | None = None) -> str:
        """Create a store (as CreateKeyValueStore in the control plane would) and return its ARN."""
        arn = arn or f"arn:aws:cloudfront::123456789012:key-value-store/{secrets.token_hex(16)}"
        with self._lock:
            self._stores[arn] = FakeStore(arn, dict(items or {}))
        return arn

    def items(self, arn: str) -> dict[str, str]:
        with self._lock:
            return dict(self._stores[arn].items)

    def etag(self, arn: str) -> str:
        with self._lock:
            return self._stores[arn].etag

    def count(self, operation: str) -> int:
        with self._lock:
            return self.requests[operation]

    def writes(self) -> int:
        """Requests that change a store: PutKey, DeleteKey and UpdateKeys."""
        with self._lock:
            return sum(self.requests[op] for op in ("PutKey", "DeleteKey", "UpdateKeys"))

    # -- the API -----------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Answer one request: status, response headers and the JSON body."""
        split = urlsplit(raw_path)
        segments = [unquote(s) for s in split.path.split("/")[1:]]
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        operation, arn, key = _route(method, segments)
        with self._lock:
            self.requests[operation] += 1
            self.raw_paths.append(raw_path)
            if operation == "Unknown":
                raise KvsApiError(404, "UnknownOperationException", f"no operation for {method} {split.path}")
            store = self._stores.get(arn)
            if store is None:
                raise KvsApiError(404, "ResourceNotFoundException", f"Key value store {arn} not found")
            payload = json.loads(body) if body else {}
            if_match = headers.get("if-match")
            return getattr(self, f"_{operation}")(store, key, payload, query, if_match)

    def _DescribeKeyValueStore(self, store: FakeStore, *_: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
        body = {
            "KvsARN": store.arn,
            "Status": "READY",
            "Created": store.created,
            "LastModified": store.last_modified,
            **store.counts(),
        }
        return 200, {"ETag": store.etag}, body

    def _GetKey(self, store: FakeStore, key: str, *_: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
        if key not in store.items:
            raise KvsApiError(404, "ResourceNotFoundException", f"Key {key} not found")
        return 200, {}, {"Key": key, "Value": store.items[key], **store.counts()}

    def _ListKeys(
        self, store: FakeStore, _key: str, _payload: dict[str, Any], query: dict[str, str], *_: Any
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        try:
            limit = int(query.get("MaxResults", LIST_PAGE_LIMIT))
            start = int(query.get("NextToken", "0"))
        except ValueError as exc:
            raise KvsApiError(400, "ValidationException", f"invalid paging parameter: {exc}") from exc
        if not 1 <= limit <= LIST_PAGE_LIMIT:
            raise KvsApiError(400, "ValidationException", f"MaxResults must be 1 to {LIST_PAGE_LIMIT}")
        keys = sorted(store.items)
        page = keys[start : start + limit]
        body: dict[str, Any] = {"Items": [{"Key": k, "Value": store.items[k]} for k in page]}
        if start + limit < len(keys):
            body["NextToken"] = str(start + limit)
        return 200, {}, body

    def _PutKey(
        self, store: FakeStore, key: str, payload: dict[str, Any], _query: dict[str, str], if_match: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        value = payload.get("Value")
        if not isinstance(value, str):
            raise KvsApiError(400, "ValidationException", "Value is required")
        return self._change(store, if_match, puts={key: value}, deletes=[])

    def _DeleteKey(
        self, store: FakeStore, key: str, _payload: dict[str, Any], _query: dict[str, str], if_match: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        self._check_etag(store, if_match)
        if key not in store.items:
            raise KvsApiError(404, "ResourceNotFoundException", f"Key {key} not found")
        return self._change(store, if_match, puts={}, deletes=[key])

    def _UpdateKeys(
        self, store: FakeStore, _key: str, payload: dict[str, Any], _query: dict[str, str], if_match: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        puts = {str(p.get("Key")): p.get("Value") for p in payload.get("Puts") or []}
        deletes = [str(d.get("Key")) for d in payload.get("Deletes") or []]
        if any(not isinstance(v, str) for v in puts.values()):
            raise KvsApiError(400, "ValidationException", "every put needs a Key and a Value")
        if set(puts) & set(deletes):
            raise KvsApiError(400, "ValidationException", "a key cannot be put and deleted in one request")
        return self._change(store, if_match, puts=puts, deletes=deletes)

    @staticmethod
    def _check_etag(store: FakeStore, if_match: str | None) -> None:
        if not if_match:
            raise KvsApiError(400, "ValidationException", "If-Match is required")
        if if_match != store.etag:
            raise KvsApiError(409, "ConflictException", "Pre-condition failed: ETag mismatch")

    def _change(
        self, store: FakeStore, if_match: str | None, *, puts: dict[str, str], deletes: list[str]
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        self._check_etag(store, if_match)
        for key, value in puts.items():
            if not 1 <= len(key.encode()) <= KEY_LIMIT:
                raise KvsApiError(400, "ValidationException", f"Key must be 1 to {KEY_LIMIT} bytes")
            if len(value.encode()) > KVS_VALUE_LIMIT:
                raise KvsApiError(400, "ValidationException", f"Value must be at most {KVS_VALUE_LIMIT} bytes")
        items = {k: v for k, v in store.items.items() if k not in deletes} | puts
        if sum(len(k.encode()) + len(v.encode()) for k, v in items.items()) > STORE_LIMIT:
            raise KvsApiError(402, "ServiceQuotaExceededException", "the store would exceed 5 MB")
        store.items = items
        store.etag = _new_etag()
        store.last_modified = time.time()
        return 200, {"ETag": store.etag}, store.counts()


def _route(method: str, segments: list[str]) -> tuple[str, str, str]:
    """Operation name, store ARN and key of a request path (each segment already URL-decoded)."""
    if len(segments) < 2 or segments[0] != "key-value-stores":
        return "Unknown", "", ""
    arn = segments[1]
    rest = segments[2:]
    if not rest and method == "GET":
        return "DescribeKeyValueStore", arn, ""
    if rest == ["keys"]:
        return {"GET": "ListKeys", "POST": "UpdateKeys"}.get(method, "Unknown"), arn, ""
    if len(rest) == 2 and rest[0] == "keys":
        operation = {"GET": "GetKey", "PUT": "PutKey", "DELETE": "DeleteKey"}.get(method, "Unknown")
        return operation, arn, rest[1]
    return "Unknown", arn, ""


def _handler_for(server: FakeKeyValueStoreServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                status, extra, payload = server.handle(self.command, self.path, headers, body)
            except KvsApiError as exc:
                status, extra, payload = exc.status, {"x-amzn-ErrorType": exc.error_type}, {"message": exc.message}
            except (ValueError, TypeError, AttributeError) as exc:
                status, extra = 400, {"x-amzn-ErrorType": "ValidationException"}
                payload = {"message": f"malformed request: {exc}"}
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", secrets.token_hex(8))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_kvs_server() -> Iterator[FakeKeyValueStoreServer]:
    """A started server, stopped on exit."""
    server = FakeKeyValueStoreServer().start()
    try:
        yield server
    finally:
        server.stop()
