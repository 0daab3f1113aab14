"""The local edge: what CloudFront does for one request, with the very same function code.

Viewer-request router -> (the response it generated) or the object from the local target's bucket
-> viewer-response function -> the response headers policy's security headers. An origin error the
distribution has a custom error response for is answered with its error page instead.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import unquote

from hosting_toolkit.config import HeadersConfig, HostingConfig
from hosting_toolkit.contract import LOCAL_PREVIEW_DOMAIN, RELEASE_HEADER, RELEASE_METADATA_KEY, error_responses
from hosting_toolkit.edge.code import render_router, render_viewer_response
from hosting_toolkit.edge.events import (
    http_response,
    is_response,
    viewer_request_event,
    viewer_response_event,
)
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.errors import BackendError
from hosting_toolkit.release.kvs import AwsKeyValueStore, LocalKeyValueStore
from hosting_toolkit.release.storage import ObjectStore, StoredObject

ROUTER = "router"
VIEWER_RESPONSE = "viewer-response"
_ALLOWED_METHODS = ("GET", "HEAD", "OPTIONS")


def security_headers(headers: HeadersConfig) -> list[tuple[str, str]]:
    """The headers the distribution's response headers policy adds (and overrides) on every response."""
    values = [
        ("strict-transport-security", f"max-age={headers.hsts_max_age}; includeSubDomains"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", headers.frame_options),
        ("referrer-policy", headers.referrer_policy),
    ]
    if headers.content_security_policy:
        values.append(("content-security-policy", headers.content_security_policy))
    return values


@dataclass(frozen=True)
class EdgeResponse:
    """A response as the local edge sends it, with what decided it."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    release: str | None
    kvs_reads: int
    duration_ms: float

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


def new_request_id() -> str:
    """A request id shaped like CloudFront's (56 URL-safe characters)."""
    return secrets.token_urlsafe(42)


#: A response before the edge's own headers: status, reason, headers, body.
_Answer = tuple[int, str, list[tuple[str, str]], bytes]


def _text(status: int, reason: str, message: str) -> _Answer:
    return status, reason, [("content-type", "text/plain; charset=utf-8")], message.encode()


def _object_headers(obj: StoredObject) -> list[tuple[str, str]]:
    """The headers S3 sends with an object: its stored type, ETag, Cache-Control and user metadata."""
    headers = [("content-type", obj.content_type), ("etag", obj.etag)]
    if obj.cache_control:
        headers.append(("cache-control", obj.cache_control))
    headers.extend((f"x-amz-meta-{k}", v) for k, v in obj.metadata.items())
    return headers


class LocalEdge:
    """Serves a local target through the rendered router and viewer-response functions.

    ``request_ids`` makes the id of each request (both functions of one request see the same
    one, as on CloudFront); tests pass a seeded one. ``viewer_response_uri`` is the URI the
    viewer-response function is given: the router's ``rewritten`` one (default) or the viewer's
    ``original`` one, the other reading CloudFront's documentation allows (``check`` tells which).
    """

    def __init__(
        self,
        *,
        store: ObjectStore,
        kvs: LocalKeyValueStore | AwsKeyValueStore,
        config: HostingConfig,
        sandbox: FunctionSandbox,
        request_ids: Callable[[], str] = new_request_id,
        viewer_response_uri: Literal["rewritten", "original"] = "rewritten",
    ) -> None:
        self.store = store
        self.viewer_response_uri = viewer_response_uri
        self.kvs = kvs
        self.config = config
        self.sandbox = sandbox
        self.request_ids = request_ids
        self._policy_headers = security_headers(config.headers)
        self._error_responses = error_responses(config.errors.not_found_status(config.site.mode))
        self._preview_domain = config.previews.domain or LOCAL_PREVIEW_DOMAIN
        sandbox.load(ROUTER, render_router(config, preview_domain=self._preview_domain))
        sandbox.load(VIEWER_RESPONSE, render_viewer_response(config))

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], client_ip: str = "127.0.0.1"
    ) -> EdgeResponse:
        """Answer one viewer request."""
        started = time.perf_counter()
        items, _ = self.kvs.snapshot()
        request_id = self.request_ids()
        if self.config.previews.enabled:
            headers = [(k, self._viewer_host(v) if k.lower() == "host" else v) for k, v in headers]
        event = viewer_request_event(method, target, headers, client_ip, request_id=request_id)
        routed = self.sandbox.invoke(ROUTER, event, items)
        if not routed.ok or routed.result is None:
            status, reason, out_headers, body = _text(
                503, "Service Unavailable", f"router function failed: {routed.error}\n"
            )
            return self._finish(status, reason, out_headers, body, None, routed.kvs_reads, started, method)
        if is_response(routed.result):
            generated = http_response(routed.result)
            release = next((v for k, v in generated.headers if k.lower() == RELEASE_HEADER), None)
            return self._finish(
                generated.status,
                generated.reason,
                generated.headers,
                generated.body or b"",
                release,
                routed.kvs_reads,
                started,
                method,
            )
        request: dict[str, Any] = routed.result
        answer = self._origin(method, request, headers)
        origin_status = answer[0]
        if origin_status in self._error_responses:
            answer = self._custom_error(answer)
        status, reason, origin_headers, body = answer
        if origin_status >= 400:
            # As CloudFront: no viewer-response function once the origin answered 400 or more, error
            # pages included, so no x-release and no cookies; the object's own release metadata passes.
            meta = next((v for k, v in origin_headers if k.lower() == f"x-amz-meta-{RELEASE_METADATA_KEY}"), None)
            return self._finish(status, reason, origin_headers, body, meta, routed.kvs_reads, started, method)
        seen = request if self.viewer_response_uri == "rewritten" else {**request, "uri": event["request"]["uri"]}
        response_event = viewer_response_event(seen, status, origin_headers, client_ip=client_ip, request_id=request_id)
        finished = self.sandbox.invoke(VIEWER_RESPONSE, response_event, {})
        if not finished.ok or finished.result is None:
            status, reason, out_headers, body = _text(
                503, "Service Unavailable", f"viewer-response function failed: {finished.error}\n"
            )
            return self._finish(status, reason, out_headers, body, None, routed.kvs_reads, started, method)
        final = http_response(finished.result)
        release = next((v for k, v in final.headers if k.lower() == RELEASE_HEADER), None)
        return self._finish(final.status, final.reason, final.headers, body, release, routed.kvs_reads, started, method)

    def _viewer_host(self, host: str) -> str:
        """The Host CloudFront would see: ``NAME.localhost[:port]`` is the preview host ``NAME.<domain>``."""
        name = host.rsplit(":", 1)[0] if host.rsplit(":", 1)[-1].isdigit() else host
        if name.lower().endswith(f".{LOCAL_PREVIEW_DOMAIN}"):
            return name[: -len(LOCAL_PREVIEW_DOMAIN)] + self._preview_domain
        return host

    def _origin(self, method: str, request: dict[str, Any], viewer_headers: list[tuple[str, str]]) -> _Answer:
        """What S3 answers through Origin Access Control with read and list access."""
        if method not in _ALLOWED_METHODS:
            return _text(403, "Forbidden", "method not allowed by this distribution\n")
        key = unquote(str(request.get("uri", "/")))[1:]
        try:
            obj = self.store.get_object(key) if key else None
        except BackendError as exc:
            return _text(502, "Bad Gateway", f"the origin failed: {exc}\n")
        if obj is None:
            return _text(404, "Not Found", "not found\n")
        headers = _object_headers(obj)
        if_none_match = next((v for k, v in viewer_headers if k.lower() == "if-none-match"), None)
        if if_none_match and obj.etag in [t.strip() for t in if_none_match.split(",")]:
            return 304, "Not Modified", headers, b""
        return 200, "OK", headers, obj.body

    def _custom_error(self, origin: _Answer) -> _Answer:
        """The distribution's custom error response to an origin error: its page, with its status.

        Without the page, CloudFront answers with what fetching the page got: S3's 404 for a missing
        key, or an error when the bucket itself fails.
        """
        key, status = self._error_responses[origin[0]]
        try:
            page = self.store.get_object(key)
        except BackendError:
            return origin
        if page is None:
            return _text(404, "Not Found", "not found\n")
        return status, HTTPStatus(status).phrase, _object_headers(page), page.body

    def _finish(
        self,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        body: bytes,
        release: str | None,
        kvs_reads: int,
        started: float,
        method: str,
    ) -> EdgeResponse:
        policy_names = {name for name, _ in self._policy_headers}
        merged = [(k, v) for k, v in headers if k.lower() not in policy_names and k.lower() != "content-length"]
        merged.extend(self._policy_headers)
        merged.append(("content-length", str(len(body))))
        if method == "HEAD" or status == 304:
            body = b""
        return EdgeResponse(status, reason, merged, body, release, kvs_reads, (time.perf_counter() - started) * 1000)
