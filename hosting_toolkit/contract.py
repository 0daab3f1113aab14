"""Names and formats shared by the infrastructure, the release engine and the edge functions.

Every value here that the functions in ``functions/`` also use is checked against the
JavaScript source by ``tests/unit/test_contract.py``, so the two sides agree by test, not by
coincidence.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field

#: KVS key holding the whole routing state (one key: every edge sees a consistent state).
ROUTING_KEY = "routing"
#: KVS key holding the preview secret; read only by requests that ask for a preview.
PREVIEW_TOKEN_KEY = "preview-token"
#: KVS key prefix of a release's compiled ``_redirects``/``_headers`` rules: ``rules:<id>``; the router
#: reads it only for a chosen release the routing state marks in ``rules``.
RULES_KEY_PREFIX = "rules:"
#: Request header the router passes a release's matched header rules in, to the viewer-response function:
#: compact JSON ``[status or 0, {name: value or null}]`` (``null``: remove the header).
RELEASE_RULES_HEADER = "x-hosting-release-rules"
#: Bucket prefix of release files: ``releases/<id>/<path>``.
RELEASES_PREFIX = "releases/"
#: Bucket prefix of release records and history; never routable.
META_PREFIX = "_meta/"
#: Bucket prefix of the error pages CloudFront's custom error responses fetch by a fixed path
#: (no viewer-request function runs for that fetch); never routable: the router maps every path
#: into ``releases/<id>/``. The release engine publishes them from the live release.
ERROR_PAGES_PREFIX = "errors/"
#: The page for a missing path: the live release's not-found page, or its entry page in ``spa`` mode.
NOT_FOUND_PAGE_KEY = f"{ERROR_PAGES_PREFIX}404.html"
#: The page for a failing origin (5xx).
SERVER_ERROR_PAGE_KEY = f"{ERROR_PAGES_PREFIX}5xx.html"
#: Origin statuses answered with the not-found page: S3 answers 403 instead of 404 without list access.
NOT_FOUND_STATUSES = (403, 404)
#: Origin statuses answered with the server-error page, keeping their status.
SERVER_ERROR_STATUSES = (500, 502, 503, 504)
#: Response header naming the release that served a response.
RELEASE_HEADER = "x-release"
#: Request header ``hosting-toolkit check`` sends; the viewer-response function answers it with the
#: URI it was given (the viewer's or the router's rewrite) and ``tagged`` when the router's
#: ``x-release`` request header reached it.
CHECK_HEADER = "x-hosting-check"
#: S3 user metadata key carried by every release object (CloudFront returns ``x-amz-meta-release``).
RELEASE_METADATA_KEY = "release"
#: S3 user metadata on a static folder's own ``index.html``: asked for without its slash, it redirects there.
FOLDER_INDEX_METADATA_KEY = "folder-index"
#: Request header the router sets on a static folder asked for without its slash (the viewer's path).
FOLDER_HEADER = "x-hosting-folder"
#: Paths served as files in every site mode (RFC 8615), never mapped to the spa entry page.
WELL_KNOWN_PREFIX = "/.well-known/"
#: Cookie pinning a viewer to the release that served its page (stickiness, skew protection).
RELEASE_COOKIE = "__release"
#: Cookie keeping a viewer's canary cohort: ``<cohort>.<issued unix seconds>``.
COHORT_COOKIE = "__cohort"
#: Cohorts are 0 to ``COHORTS - 1``; a viewer is in the canary when its cohort < weight * COHORTS / 100.
COHORTS = 10000
#: Query parameters asking for a preview: ``?__preview=<id>&__token=<token>``.
PREVIEW_PARAM = "__preview"
PREVIEW_TOKEN_PARAM = "__token"
#: Cookie the preview redirect sets: ``<id>.<token>`` (a token never holds a dot).
PREVIEW_COOKIE = PREVIEW_PARAM
PREVIEW_COOKIE_MAX_AGE = 3600
PREVIEW_COOKIE_ATTRIBUTES = f"Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={PREVIEW_COOKIE_MAX_AGE}"
#: Request headers asking for a preview, for tools (``verify``, scripts).
PREVIEW_RELEASE_HEADER = "x-preview-release"
PREVIEW_TOKEN_HEADER = "x-preview-token"
#: KVS key prefix of named previews: ``preview:<name>`` holds a ``PreviewState``; read only by
#: preview requests (a preview host, or the preview parameter or cookie ``~<name>``).
PREVIEW_KEY_PREFIX = "preview:"
#: Marks a preview name, not a release id, in the preview parameter and cookie: ``__preview=~pr-42``.
PREVIEW_NAME_MARK = "~"
#: Request header the router sets on every preview request; the viewer-response function answers
#: it with ``ROBOTS_HEADER: noindex`` so no preview is indexed.
PREVIEW_MARK_HEADER = "x-hosting-preview"
ROBOTS_HEADER = "x-robots-tag"
#: Where the local edge serves previews: ``NAME.localhost`` (browsers resolve it to loopback).
LOCAL_PREVIEW_DOMAIN = "localhost"
#: A preview name is a DNS label and a valid release id: a-z 0-9 and ``-``, at most this long.
PREVIEW_NAME_MAX = 40
#: CloudFront KeyValueStore limits: the whole store (keys and values) and one key.
KVS_STORE_LIMIT = 5 * 1024 * 1024
KVS_KEY_LIMIT = 512
#: Release ids: lowercase, start with a letter or digit, at most 40 characters.
RELEASE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,39}$"
#: A CloudFront KeyValueStore value is at most 1 KB.
KVS_VALUE_LIMIT = 1024
#: Longest request URI the router accepts; longer ones answer 400.
MAX_URI_LENGTH = 1024

_RELEASE_ID_RE = re.compile(RELEASE_ID_PATTERN)


def is_release_id(value: str) -> bool:
    """Tell whether ``value`` is a valid release id."""
    return bool(_RELEASE_ID_RE.match(value)) and value not in (".", "..") and ".." not in value


def release_prefix(release_id: str) -> str:
    """Bucket prefix of one release's files."""
    return f"{RELEASES_PREFIX}{release_id}/"


def rules_key(release_id: str) -> str:
    """KVS key of one release's compiled rules."""
    return f"{RULES_KEY_PREFIX}{release_id}"


def preview_key(name: str) -> str:
    """KVS key of the preview ``name``."""
    return f"{PREVIEW_KEY_PREFIX}{name}"


def signed_preview_token(name: str, secret: str, expires: int) -> str:
    """A signed link's token for the preview ``name``, valid until ``expires`` (unix seconds):
    ``<expires>-<hex HMAC-SHA256 of "<name>.<expires>" keyed by the preview token>``."""
    digest = hmac.new(secret.encode(), f"{name}.{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}-{digest}"


def error_responses(not_found_status: int) -> dict[int, tuple[str, int]]:
    """The distribution's custom error responses: origin status -> (page key, status sent to the viewer)."""
    responses = {status: (NOT_FOUND_PAGE_KEY, not_found_status) for status in NOT_FOUND_STATUSES}
    responses.update({status: (SERVER_ERROR_PAGE_KEY, status) for status in SERVER_ERROR_STATUSES})
    return responses


@dataclass(frozen=True)
class RoutingState:
    """The routing state the router function reads from the ``routing`` KVS key.

    ``live`` serves everyone by default; ``canary`` serves ``weight`` percent of viewers by a
    stable cohort; ``pins`` are releases a viewer's ``__release`` cookie may keep serving
    (stickiness and skew protection); ``rules`` marks which of them have compiled rules under
    ``rules:<id>`` (kept right by ``release.routing.update_routing``), so the router reads that key
    only for them.
    """

    live: str | None = None
    canary: str | None = None
    weight: int = 0
    pins: tuple[str, ...] = field(default_factory=tuple)
    rules: tuple[str, ...] = field(default_factory=tuple)

    @property
    def serving(self) -> tuple[str, ...]:
        """The releases viewers can get: live, canary and pins, without repeats."""
        return tuple(dict.fromkeys(r for r in (self.live, self.canary, *self.pins) if r))

    def to_json(self) -> str:
        """Compact JSON as stored in the KVS; raises ``ValueError`` over the 1 KB value limit."""
        data: dict[str, object] = {}
        if self.live:
            data["live"] = self.live
        if self.canary:
            data["canary"] = self.canary
            data["weight"] = self.weight
        if self.pins:
            data["pins"] = list(self.pins)
        if self.rules:
            data["rules"] = list(self.rules)
        text = json.dumps(data, separators=(",", ":"))
        if len(text.encode()) > KVS_VALUE_LIMIT:
            raise ValueError(f"routing state is {len(text.encode())} bytes, over the KVS limit of {KVS_VALUE_LIMIT}")
        return text

    @classmethod
    def from_json(cls, text: str | None) -> RoutingState:
        """Parse the stored value; a missing or empty value is the empty state."""
        if not text:
            return cls()
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("routing state must be a JSON object")
        pins = data.get("pins") or []
        return cls(
            live=data.get("live") or None,
            canary=data.get("canary") or None,
            weight=int(data.get("weight") or 0),
            pins=tuple(str(p) for p in pins),
            rules=tuple(str(r) for r in data.get("rules") or []),
        )


@dataclass(frozen=True)
class PreviewState:
    """What a ``preview:<name>`` key holds: the release it serves, and what the router needs besides.

    ``live`` serves the preview's pages (the router reads it as it reads the routing state's, so a
    preview is routed by the same code); ``pins`` are the preview's earlier releases its open pages
    may still load assets from (skew protection); ``ref`` is what it previews (``pr:42``,
    ``branch:feature/x``); ``at`` is when it last moved (ISO 8601, UTC); ``rules`` marks the releases
    with per-release rules, so the router reads a rules key only for them.
    """

    live: str
    pins: tuple[str, ...] = ()
    ref: str = ""
    at: str = ""
    #: Which of ``live`` and ``pins`` have per-release rules (a ``rules:<id>`` key), as in ``RoutingState``.
    rules: tuple[str, ...] = ()
    #: The preview token when the preview was moved (``""``: none existed yet), so a private preview
    #: host checks it without reading ``PREVIEW_TOKEN_KEY``; rotating the token rewrites it.
    token: str = ""

    def to_json(self) -> str:
        """Compact JSON as stored; the oldest pins are dropped to stay within the 1 KB value limit."""
        pins = list(self.pins)
        while True:
            data: dict[str, object] = {"live": self.live, "pins": pins, "ref": self.ref, "at": self.at}
            marked = [r for r in self.rules if r == self.live or r in pins]
            if marked:
                data["rules"] = marked
            if self.token:
                data["t"] = self.token
            text = json.dumps(data, separators=(",", ":"))
            if len(text.encode()) <= KVS_VALUE_LIMIT:
                return text
            if not pins:
                raise ValueError(
                    f"preview state is {len(text.encode())} bytes, over the KVS limit of {KVS_VALUE_LIMIT}"
                )
            pins.pop()

    @classmethod
    def from_json(cls, text: str) -> PreviewState:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("live"), str):
            raise ValueError("preview state must be a JSON object with a 'live' release")
        return cls(
            live=data["live"],
            pins=tuple(str(p) for p in data.get("pins") or ()),
            ref=str(data.get("ref") or ""),
            at=str(data.get("at") or ""),
            rules=tuple(str(r) for r in data.get("rules") or ()),
            token=str(data.get("t") or ""),
        )


#: CloudFormation output keys of the hosting stack that the CLI reads to find its target.
OUTPUT_SITE_URL = "SiteUrl"
OUTPUT_DISTRIBUTION_ID = "DistributionId"
OUTPUT_BUCKET_NAME = "BucketName"
OUTPUT_KVS_ARN = "KeyValueStoreArn"
#: Outputs of a stack with a release pipeline (a ``[source]``): the pipeline ``status`` reports on,
#: the CodeConnections connection ``deploy`` checks for approval, and where ZIP uploads go.
OUTPUT_PIPELINE_NAME = "PipelineName"
OUTPUT_CONNECTION_ARN = "ConnectionArn"
OUTPUT_UPLOAD_LOCATION = "UploadLocation"
#: The production pipeline's source action: ``promote-preview`` starts the pipeline on a preview's commit.
SOURCE_ACTION_NAME = "Checkout"
#: The pipeline's rollout state machine: ``rollout stop`` stops its running execution.
OUTPUT_ROLLOUT_STATE_MACHINE_ARN = "RolloutStateMachineArn"
#: The router function's name: ``function test --remote`` stages the current code under it and tests it.
OUTPUT_ROUTER_FUNCTION_NAME = "RouterFunctionName"
#: With a custom domain: the distribution's own domain name, which the site's DNS records point at.
OUTPUT_DISTRIBUTION_DOMAIN_NAME = "DistributionDomainName"
