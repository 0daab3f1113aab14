"""``verify``: the configured checks against a staged release through the preview path, over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from hosting_toolkit.cli.main import app
from hosting_toolkit.config import HostingConfig, VerifyCheck, VerifyConfig
from hosting_toolkit.contract import PREVIEW_RELEASE_HEADER, PREVIEW_TOKEN_HEADER, RELEASE_HEADER
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.errors import NotFoundError, VerificationError
from hosting_toolkit.release.preview import preview_path, preview_token
from hosting_toolkit.release.verify import PREVIEW_POLL_SECONDS, Fetched, asset_paths, http_fetch, verify_release
from tests.fakes.sites import write_files
from tests.integration.conftest import Edge

pytestmark = [pytest.mark.integration, pytest.mark.node, pytest.mark.usefixtures("clean_cli_env")]

PAGE = """<!doctype html><html><head>
<link rel="stylesheet" href="/assets/site-1a2b3c4d.css">
<link rel="icon" href="favicon.ico">
<link rel="preconnect" href="https://fonts.example.net">
<script type="module" src="./assets/app-5e6f7a8b.js?v=2"></script>
</head><body><h1>Welcome to {version}</h1>
<img src="/img/logo.svg" alt=""><img src="data:image/gif;base64,R0lGOD" alt="">
<script src="//cdn.example.net/analytics.js"></script>
</body></html>"""


def site(root: Path, version: str, *, drop: str | None = None) -> Path:
    files = {
        "index.html": PAGE.format(version=version),
        "about/index.html": "<h1>About</h1>",
        "assets/site-1a2b3c4d.css": "body{}",
        "assets/app-5e6f7a8b.js": "console.log(1)",
        "favicon.ico": "ico",
        "img/logo.svg": "<svg/>",
    }
    if drop:
        del files[drop]
    return write_files(root, files)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "target"


def cli(target: Path, *args: str | Path) -> Result:
    return CliRunner().invoke(app, ["--local", str(target), *map(str, args)])


def staged(target: Path, folder: Path, rid: str) -> None:
    result = cli(target, "release", folder, "--id", rid, "--no-activate")
    assert result.exit_code == 0, result.stderr


def test_verify_passes_a_good_release_through_its_own_local_edge(target: Path, tmp_path: Path) -> None:
    staged(target, site(tmp_path / "good", "good"), "good")

    result = cli(target, "verify", "good")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "good"
    for name in ("preview of good", "GET / (status 200)", "asset /assets/site-1a2b3c4d.css", "asset /favicon.ico"):
        assert f"ok   {name}" in result.stderr
    assert "asset /assets/app-5e6f7a8b.js?v=2" in result.stderr
    assert "cdn.example.net" not in result.stderr and "data:" not in result.stderr
    assert "passed 6 checks" in result.stderr


def test_a_missing_asset_fails_naming_it(target: Path, tmp_path: Path) -> None:
    staged(target, site(tmp_path / "broken", "broken", drop="img/logo.svg"), "broken")

    result = cli(target, "verify", "broken", "--json")

    assert result.exit_code == VerificationError.exit_code
    report = json.loads(result.stdout)
    assert report["ok"] is False
    failed = [c for c in report["checks"] if not c["ok"]]
    assert failed == [{"name": "asset /img/logo.svg", "ok": False, "detail": "status 404, expected 200"}]
    assert "failed 1 of 6 checks; first: asset /img/logo.svg: status 404, expected 200" in result.stderr


def test_wrong_text_status_and_type_fail_naming_the_check(target: Path, tmp_path: Path) -> None:
    (tmp_path / "hosting.toml").write_text(
        """
[verify]
assets = false

[[verify.checks]]
path = "/"
text = "Welcome to production"
content_type = "text/html"

[[verify.checks]]
path = "/about/"
content_type = "application/json"

[[verify.checks]]
path = "/assets/missing.js"
status = 404

[[verify.checks]]
path = "/favicon.ico"
status = 404
"""
    )
    staged(target, site(tmp_path / "v", "staging"), "v")

    result = cli(target, "verify", "v")

    assert result.exit_code == VerificationError.exit_code
    lines = result.stderr.splitlines()
    assert (
        "FAIL GET / (status 200, type text/html, text 'Welcome to production'): the body does not contain" in (lines[1])
    )
    assert "FAIL GET /about/ (status 200, type application/json): content type 'text/html; charset=utf-8'" in lines[2]
    assert lines[3].startswith("ok   GET /assets/missing.js (status 404)")
    assert lines[4] == "FAIL GET /favicon.ico (status 404): status 200, expected 404"
    assert "failed 3 of 5 checks; first: GET / " in result.stderr


def test_verify_against_a_base_url_and_refusals(
    target: Path, tmp_path: Path, function_sandbox: FunctionSandbox
) -> None:
    edge = Edge(tmp_path, HostingConfig(), function_sandbox)
    try:
        staged(target, site(tmp_path / "v", "v"), "v")
        assert cli(target, "verify", "v", "--base-url", edge.url).exit_code == 0
        assert cli(target, "verify", "ghost").exit_code == NotFoundError.exit_code
    finally:
        edge.close()


def test_a_site_that_ignores_the_preview_fails_the_first_check_after_waiting(
    tmp_path: Path, function_sandbox: FunctionSandbox
) -> None:
    config = HostingConfig(verify=VerifyConfig(wait_seconds=5))
    edge = Edge(tmp_path, config, function_sandbox)
    try:
        edge.engine.create(site(tmp_path / "live", "live"), release_id="live")
        edge.engine.create(site(tmp_path / "next", "next"), release_id="next", activate=False)
        other_token = "x" * 32
        clock = [0.0]
        sleeps: list[float] = []

        def with_wrong_token(url: str, headers: dict[str, str], timeout: float) -> Fetched:
            return http_fetch(url, {**headers, PREVIEW_TOKEN_HEADER: other_token}, timeout)

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            clock[0] += seconds

        report = verify_release(
            edge.engine, "next", edge.url, fetch=with_wrong_token, sleep=sleep, clock=lambda: clock[0]
        )
    finally:
        edge.close()

    assert not report.ok
    assert [r.name for r in report.results] == ["preview of next"]
    assert "served by release live, not next" in report.results[0].detail
    assert sleeps == [PREVIEW_POLL_SECONDS, PREVIEW_POLL_SECONDS]


def test_verify_waits_until_the_edge_honours_a_new_token(tmp_path: Path, function_sandbox: FunctionSandbox) -> None:
    edge = Edge(tmp_path, HostingConfig(verify=VerifyConfig(checks=(VerifyCheck("/about/"),))), function_sandbox)
    try:
        edge.engine.create(site(tmp_path / "live", "live"), release_id="live")
        edge.engine.create(site(tmp_path / "next", "next"), release_id="next", activate=False)
        looks: list[str] = []

        def propagating(url: str, headers: dict[str, str], timeout: float) -> Fetched:
            looks.append(url)
            if len(looks) < 3:
                headers = {**headers, PREVIEW_TOKEN_HEADER: "not-yet-at-this-edge"}
            return http_fetch(url, headers, timeout)

        report = verify_release(edge.engine, "next", edge.url, fetch=propagating, sleep=lambda _: None)
    finally:
        edge.close()

    assert report.ok, report.failures
    assert len(looks) == 3 + 1 + 4


def test_http_fetch_reports_redirects_and_errors_without_following(
    tmp_path: Path, function_sandbox: FunctionSandbox
) -> None:
    edge = Edge(tmp_path, HostingConfig(), function_sandbox)
    try:
        edge.engine.create(site(tmp_path / "v", "v"), release_id="v")
        token = preview_token(edge.engine.kvs).value
        redirect = http_fetch(edge.url + preview_path("v", token), {}, 5)
        missing = http_fetch(edge.url + "/nope.js", {PREVIEW_RELEASE_HEADER: "v", PREVIEW_TOKEN_HEADER: token}, 5)
    finally:
        edge.close()
    assert (redirect.status, redirect.headers["location"]) == (302, "/")
    assert (missing.status, missing.headers.get(RELEASE_HEADER)) == (404, None)
    unreachable = http_fetch(f"http://127.0.0.1:{edge.port}/", {}, 2)
    assert unreachable.status == 0 and unreachable.error is not None


def test_asset_paths_are_the_same_origin_references_each_once() -> None:
    page = PAGE.format(version="x") + '<script src="/assets/site-1a2b3c4d.css"></script><a href="/about">about</a>'
    assert asset_paths(page, "https://www.example.com/index.html") == [
        "/assets/site-1a2b3c4d.css",
        "/favicon.ico",
        "/assets/app-5e6f7a8b.js?v=2",
        "/img/logo.svg",
    ]
    absolute = '<script src="https://www.example.com/app.js"></script><img src="http://www.example.com/x.png">'
    assert asset_paths(absolute, "https://www.example.com/index.html") == ["/app.js"]
