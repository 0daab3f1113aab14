"""The local demo: releases of an example site served, switched, rolled back, previewed and canaried, no AWS needed."""

from __future__ import annotations

import http.client
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from hosting_toolkit.config import HostingConfig
from hosting_toolkit.contract import (
    LOCAL_PREVIEW_DOMAIN,
    PREVIEW_COOKIE,
    PREVIEW_NAME_MARK,
    PREVIEW_RELEASE_HEADER,
    PREVIEW_TOKEN_HEADER,
)
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.local.edge import LocalEdge
from hosting_toolkit.local.server import serving
from hosting_toolkit.release.engine import Progress, ReleaseEngine
from hosting_toolkit.release.preview import preview_path, preview_token
from hosting_toolkit.release.previews import branch_preview_name, preview_link, stage_preview
from hosting_toolkit.target import Target, local_target

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Example site {version}</title>
<link rel="stylesheet" href="/assets/site-{css_hash}.css"></head>
<body><main><h1>Example site, version {version}</h1>
<p>{text}</p><p><a href="/about">About</a></p></main>
<script type="module" src="/assets/app-{js_hash}.js"></script></body>
</html>
"""
_VERSIONS = {
    "1": {"text": "The first release.", "js_hash": "4f1c9a2b", "css_hash": "7d3e2a10"},
    "2": {
        "text": "The second release: a new headline, same stylesheet.",
        "js_hash": "9b2d7c41",
        "css_hash": "7d3e2a10",
    },
    "3": {
        "text": "The third release: tried by a preview and a canary before anyone else gets it.",
        "js_hash": "c0ffee42",
        "css_hash": "7d3e2a10",
    },
    "4": {
        "text": "The fourth release: brings a _redirects file; a rollback takes its redirect away again.",
        "js_hash": "5e7a3c19",
        "css_hash": "7d3e2a10",
    },
    "feature": {
        "text": "A branch's preview: its own address, next to production, which it never touches.",
        "js_hash": "be11a7e5",
        "css_hash": "7d3e2a10",
    },
}
#: The rule the fourth release ships in its build, in Netlify's format.
DEMO_REDIRECTS = "/launch  /  302\n"
#: The branch whose preview the demo shows next to production.
DEMO_BRANCH = "feature/new-look"
#: Viewers the demo's canary step simulates, each without cookies (a new cohort each).
CANARY_VIEWERS = 1000
CANARY_PERCENT = 20


def write_example_site(folder: Path, version: str) -> Path:
    """Write version ``version`` of the example single-page site into ``folder``."""
    values = _VERSIONS[version]
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(_PAGE.format(version=version, **values))
    (folder / "assets" / f"app-{values['js_hash']}.js").write_text(
        f"document.title += ' (script of version {version})';\n"
    )
    (folder / "assets" / f"site-{values['css_hash']}.css").write_text("body{font-family:system-ui;margin:3rem}\n")
    (folder / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    if version == "4":
        (folder / "_redirects").write_text(DEMO_REDIRECTS)
    return folder


@dataclass(frozen=True)
class Seen:
    """What a viewer got for one URL."""

    status: int
    release: str | None
    body: str


def fetch(url: str, headers: dict[str, str] | None = None) -> Seen:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
            return Seen(response.status, response.headers.get("x-release"), response.read().decode())
    except urllib.error.HTTPError as exc:
        return Seen(exc.code, exc.headers.get("x-release"), exc.read().decode(errors="replace"))


def status_of(url: str) -> tuple[int, str | None]:
    """The status and ``Location`` of one request, without following a redirect."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=10)
    try:
        connection.request("GET", parts.path or "/")
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("location")
    finally:
        connection.close()


def run_demo(
    root: Path,
    config: HostingConfig,
    *,
    port: int,
    say: Callable[[str], None],
    progress: Progress | None = None,
    wait: Callable[[str], None] | None = None,
) -> list[str]:
    """Run every step against a fresh local target in ``root``; return the release ids, oldest first.

    ``wait`` is called with the site URL while the server still runs, so a person can look.
    """
    # The demo shows a branch preview, so its router has the previews' code whatever the configuration says.
    config = replace(config, previews=replace(config.previews, enabled=True))
    target_dir = root / "target"
    if target_dir.exists():
        shutil.rmtree(target_dir)
    target: Target = local_target(target_dir, config)
    engine = ReleaseEngine(target.store, target.kvs, config, actor="demo", progress=progress)
    builds = [write_example_site(root / f"build-v{v}", v) for v in ("1", "2", "3", "4")]

    with FunctionSandbox() as sandbox:
        edge = LocalEdge(store=target.store, kvs=target.kvs, config=config, sandbox=sandbox)  # type: ignore[arg-type]
        with serving(edge, "127.0.0.1", port) as url:
            say(f"1. local edge at {url} runs the real router function; nothing is live yet")
            seen = fetch(url)
            say(f"   GET / -> {seen.status} (the router's 'nothing live' page)")
            first = engine.create(builds[0], message="first release")
            seen = fetch(url)
            say(f"2. released {first.id} ({first.files} files, {first.uploaded_bytes} bytes uploaded) and made it live")
            say(f"   GET / -> {seen.status}, x-release: {seen.release}")
            second = engine.create(builds[1], message="second release")
            seen = fetch(url)
            say(
                f"3. released {second.id}: uploaded {second.uploaded_files} changed files, copied "
                f"{second.copied_files} unchanged ones; one KVS write switched traffic"
            )
            say(f"   GET / -> {seen.status}, x-release: {seen.release}")
            change = engine.rollback()
            seen = fetch(url)
            say(f"4. rolled back to {change.after.live} with one KVS write, nothing uploaded")
            say(f"   GET / -> {seen.status}, x-release: {seen.release}")
            engine.activate(second.id)
            seen = fetch(url)
            say(f"5. activated {second.id} again: GET / -> x-release: {seen.release}")
            bad = fetch(url + "%2e%2e/%2e%2e/etc/passwd")
            say(f"6. a path escaping the release folder: GET /%2e%2e/%2e%2e/etc/passwd -> {bad.status}")
            missing = fetch(url + "assets/gone.js")
            say(f"7. a missing file: GET /assets/gone.js -> {missing.status}, the live release's error page, no S3 XML")
            third = engine.create(builds[2], message="third release", activate=False)
            token = preview_token(engine.kvs).value
            seen = fetch(url, {PREVIEW_RELEASE_HEADER: third.id, PREVIEW_TOKEN_HEADER: token})
            say(
                f"8. staged {third.id} without traffic; its preview link: {url.rstrip('/')}{preview_path(third.id, token)}"
            )
            say(f"   GET / with the preview token -> x-release: {seen.release}; without it -> {fetch(url).release}")
            engine.canary(third.id, CANARY_PERCENT)
            releases = [fetch(url).release for _ in range(CANARY_VIEWERS)]
            share = 100 * releases.count(third.id) / CANARY_VIEWERS
            say(
                f"9. canary {third.id} at {CANARY_PERCENT}%: {share:.1f}% of {CANARY_VIEWERS} new viewers got it "
                "(a stable cohort each, kept in a cookie)"
            )
            engine.abort()
            say(f"   aborted: every viewer is back on {fetch(url).release}; nothing was deleted")
            before = status_of(url + "launch")
            fourth = engine.create(builds[3], message="fourth release, with a _redirects file")
            status, location = status_of(url + "launch")
            say(
                f"10. released {fourth.id} with a _redirects file ({DEMO_REDIRECTS.strip()!r}): "
                f"GET /launch -> {status} to {location} (before: {before[0]})"
            )
            change = engine.rollback()
            say(
                f"   rolled back to {change.after.live}: GET /launch -> {status_of(url + 'launch')[0]}; "
                "the redirect left with its release"
            )
            branch = engine.create(
                write_example_site(root / "build-feature", "feature"), message=f"push to {DEMO_BRANCH}", activate=False
            )
            name = branch_preview_name(DEMO_BRANCH)
            stage_preview(engine, name, branch.id, f"branch:{DEMO_BRANCH}")
            host = f"{name}.{LOCAL_PREVIEW_DOMAIN}:{url.rstrip('/').rsplit(':', 1)[-1]}"
            previewed = fetch(url, {"Host": host, "Cookie": f"{PREVIEW_COOKIE}={PREVIEW_NAME_MARK}{name}.{token}"})
            link = preview_link(name, domain=LOCAL_PREVIEW_DOMAIN, base_url=url, token=token)
            say(f"11. a push to {DEMO_BRANCH} staged {branch.id} as the preview {name}, one write of its own key")
            say(f"   {link} -> x-release: {previewed.release}; production at {url} -> x-release: {fetch(url).release}")
            if wait is not None:
                wait(url)
    return [first.id, second.id, third.id, fourth.id]
