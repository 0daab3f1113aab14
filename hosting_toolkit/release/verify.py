"""Verify a staged release before it takes traffic: the configured checks, through the preview path.

Every request carries the preview headers, so the site serves the staged release to this client
only; a response the staged release did not serve (its ``x-release`` names another) fails.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from hosting_toolkit import __version__
from hosting_toolkit.config import VerifyCheck, VerifyConfig
from hosting_toolkit.contract import PREVIEW_RELEASE_HEADER, PREVIEW_TOKEN_HEADER, RELEASE_HEADER
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.preview import preview_token

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: Pause between two looks for the preview token at the edge (it reaches every location in seconds).
PREVIEW_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Fetched:
    """One response: status, headers (lowercase names) and body; ``error`` when nothing came back."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None


Fetch = Callable[[str, dict[str, str], float], Fetched]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to check, not to follow."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def http_fetch(url: str, headers: dict[str, str], timeout: float) -> Fetched:
    """GET ``url`` without following redirects; a loopback address never goes through a proxy."""
    handlers: list[Any] = [_NoRedirect()]
    if urlsplit(url).hostname in _LOOPBACK:
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers=headers)
    try:
        with opener.open(request, timeout=timeout) as response:
            return Fetched(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as exc:
        return Fetched(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Fetched(0, error=f"no response from {url}: {reason}")


@dataclass(frozen=True)
class CheckResult:
    """One check: what it looked at, whether it passed, and what was seen."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    """Every check run against one staged release."""

    release: str
    base_url: str
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.ok]


class _References(HTMLParser):
    """The ``script src``, ``link href`` and ``img src`` values of a page, in order."""

    _ATTRIBUTE = {"script": "src", "link": "href", "img": "src"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = self._ATTRIBUTE.get(tag)
        for name, value in attrs:
            if name == wanted and value and value.strip():
                self.found.append(value.strip())


def asset_paths(page: str, page_url: str) -> list[str]:
    """Paths (with query) of the same-origin assets a page references, each once."""
    parser = _References()
    parser.feed(page)
    parser.close()
    origin = urlsplit(page_url)
    paths: list[str] = []
    for reference in parser.found:
        url = urlsplit(urljoin(page_url, reference))
        if (url.scheme, url.netloc) != (origin.scheme, origin.netloc):
            continue
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        if path not in paths:
            paths.append(path)
    return paths


class _Verifier:
    def __init__(self, release_id: str, token: str, base_url: str, config: VerifyConfig, fetch: Fetch) -> None:
        self.release_id = release_id
        self.base_url = base_url.rstrip("/")
        self.config = config
        self.fetch_url = fetch
        self.headers = {
            PREVIEW_RELEASE_HEADER: release_id,
            PREVIEW_TOKEN_HEADER: token,
            "user-agent": f"hosting-toolkit-verify/{__version__}",
        }

    def get(self, path: str) -> Fetched:
        return self.fetch_url(self.base_url + path, self.headers, float(self.config.timeout_seconds))

    def problem(self, response: Fetched) -> str | None:
        """Why a response cannot count for the staged release, if it cannot."""
        if response.error:
            return response.error
        if response.status >= 400:
            # CloudFront runs no viewer-response function on an origin error, so no x-release names
            # the release; the router chose it as for any request, and the preview check showed that
            # it honours the token.
            return None
        served = response.headers.get(RELEASE_HEADER)
        if served != self.release_id:
            return f"served by release {served or '(unknown)'}, not {self.release_id}: the preview was not honoured"
        return None

    def wait_for_preview(
        self, path: str, sleep: Callable[[float], None], clock: Callable[[], float]
    ) -> tuple[CheckResult, Fetched]:
        """The site may take a few seconds to see a token created just now: look until ``wait_seconds``."""
        deadline = clock() + self.config.wait_seconds
        while True:
            response = self.get(path)
            problem = self.problem(response)
            if problem is None or clock() + PREVIEW_POLL_SECONDS > deadline:
                break
            sleep(PREVIEW_POLL_SECONDS)
        name = f"preview of {self.release_id}"
        if problem is not None:
            return CheckResult(name, False, problem), response
        return CheckResult(name, True, f"{self.base_url}{path} is served by {self.release_id}"), response

    def check(self, check: VerifyCheck) -> CheckResult:
        expected = [f"status {check.status}"]
        if check.content_type:
            expected.append(f"type {check.content_type}")
        if check.text:
            expected.append(f"text {check.text!r}")
        name = f"GET {check.path} ({', '.join(expected)})"
        response = self.get(check.path)
        problem = self.problem(response)
        if problem is not None:
            return CheckResult(name, False, problem)
        if response.status != check.status:
            return CheckResult(name, False, f"status {response.status}, expected {check.status}")
        content_type = response.headers.get("content-type", "")
        if check.content_type and not content_type.lower().startswith(check.content_type.lower()):
            return CheckResult(
                name, False, f"content type {content_type or '(none)'!r}, expected {check.content_type!r}"
            )
        if check.text and check.text not in response.body.decode("utf-8", "replace"):
            return CheckResult(name, False, f"the body does not contain {check.text!r}")
        return CheckResult(name, True, f"status {response.status}")

    def assets(self, entry_path: str, page: Fetched) -> list[CheckResult]:
        if page.status != 200:
            return [CheckResult(f"assets of {entry_path}", False, f"the entry page answered {page.status}")]
        text = page.body.decode("utf-8", "replace")
        results = []
        for path in asset_paths(text, self.base_url + entry_path):
            response = self.get(path)
            problem = self.problem(response)
            if problem is None and response.status != 200:
                problem = f"status {response.status}, expected 200"
            results.append(CheckResult(f"asset {path}", problem is None, problem or "status 200"))
        return results


def verify_release(
    engine: ReleaseEngine,
    release_id: str,
    base_url: str,
    *,
    fetch: Fetch = http_fetch,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> VerifyReport:
    """Run the configured checks against a complete release at ``base_url`` through the preview path."""
    engine.require_complete(release_id)
    token = preview_token(engine.kvs).value
    verifier = _Verifier(release_id, token, base_url, engine.config.verify, fetch)
    entry_path = f"/{engine.config.site.entry}"
    reached, page = verifier.wait_for_preview(entry_path, sleep, clock)
    results = [reached]
    if reached.ok:
        results.extend(verifier.check(check) for check in engine.config.verify.checks)
        if engine.config.verify.assets:
            results.extend(verifier.assets(entry_path, page))
    return VerifyReport(release_id, verifier.base_url, tuple(results))
