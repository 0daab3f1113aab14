"""Error pages over the real S3 protocol (moto_server) and through the local edge over HTTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hosting_toolkit.config import ErrorsConfig, HeadersConfig, HostingConfig, ReleaseConfig, SiteConfig
from hosting_toolkit.contract import (
    ERROR_PAGES_PREFIX,
    NOT_FOUND_PAGE_KEY,
    RELEASE_HEADER,
    RELEASES_PREFIX,
    SERVER_ERROR_PAGE_KEY,
)
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.errors import BackendError
from hosting_toolkit.local.edge import LocalEdge, security_headers
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.error_pages import BUILT_IN_PAGES, HTML_TYPE
from hosting_toolkit.release.kvs import LocalKeyValueStore
from hosting_toolkit.release.s3 import S3ObjectStore
from hosting_toolkit.release.storage import LocalObjectStore, ObjectStore, StoredObject
from tests.fakes.sites import write_files
from tests.integration.conftest import TEST_CONCURRENCY, Edge, FakeKvs, S3Bucket, S3Calls

pytestmark = pytest.mark.integration

CSP = "default-src 'self'"


def build(root: Path, version: str, *, not_found: bool = True, server_error: bool = False) -> Path:
    files = {
        "index.html": f"<h1>app {version}</h1>",
        "pricing.html": f"<h1>pricing {version}</h1>",
        f"assets/app-{version}1a2b3c4d.js": f"console.log({version})",
    }
    if not_found:
        files["404.html"] = f"<h1>missing in {version}</h1>"
    if server_error:
        files["500.html"] = f"<h1>broken in {version}</h1>"
    return write_files(root, files)


def config_of(mode: str, errors: ErrorsConfig | None = None) -> HostingConfig:
    return HostingConfig(
        site=SiteConfig(mode=mode),  # type: ignore[arg-type]
        headers=HeadersConfig(content_security_policy=CSP),
        release=ReleaseConfig(concurrency=TEST_CONCURRENCY),
        errors=errors or ErrorsConfig(),
    )


# -- the engine against S3 -------------------------------------------------------------------


def test_activate_rollback_and_promote_publish_the_live_pages_to_s3(
    s3_bucket: S3Bucket, fake_kvs: FakeKvs, tmp_path: Path
) -> None:
    store = s3_bucket.store()
    engine = ReleaseEngine(store, fake_kvs.store, config_of("static"), actor="tests")
    engine.create(build(tmp_path / "v1", "1", server_error=True), release_id="v1")

    head = s3_bucket.head(NOT_FOUND_PAGE_KEY)
    assert s3_bucket.body(NOT_FOUND_PAGE_KEY) == b"<h1>missing in 1</h1>"
    assert (head["ContentType"], head["CacheControl"], head["Metadata"]) == (HTML_TYPE, "no-cache", {"release": "v1"})
    assert s3_bucket.body(SERVER_ERROR_PAGE_KEY) == b"<h1>broken in 1</h1>"

    engine.create(build(tmp_path / "v2", "2", not_found=False), release_id="v2")
    assert s3_bucket.body(NOT_FOUND_PAGE_KEY) == BUILT_IN_PAGES[NOT_FOUND_PAGE_KEY]
    assert s3_bucket.head(SERVER_ERROR_PAGE_KEY)["Metadata"] == {"release": "v2"}

    calls = S3Calls().attach(store.client)
    engine.rollback()
    assert s3_bucket.body(NOT_FOUND_PAGE_KEY) == b"<h1>missing in 1</h1>"
    # Only the newer release's hashed assets are carried into the release rolled back to (skew protection).
    assert calls.writes_under(RELEASES_PREFIX) == ["releases/v1/assets/app-21a2b3c4d.js"]
    assert sorted(calls.writes_under(ERROR_PAGES_PREFIX)) == [NOT_FOUND_PAGE_KEY, SERVER_ERROR_PAGE_KEY]

    engine.canary("v2", 50)
    engine.promote()
    assert s3_bucket.head(NOT_FOUND_PAGE_KEY)["Metadata"] == {"release": "v2"}
    assert s3_bucket.keys(ERROR_PAGES_PREFIX) == [NOT_FOUND_PAGE_KEY, SERVER_ERROR_PAGE_KEY]


def test_spa_mode_publishes_the_entry_page_to_s3(s3_bucket: S3Bucket, fake_kvs: FakeKvs, tmp_path: Path) -> None:
    engine = ReleaseEngine(s3_bucket.store(), fake_kvs.store, config_of("spa"), actor="tests")
    engine.create(build(tmp_path / "v1", "1"), release_id="v1")
    assert s3_bucket.body(NOT_FOUND_PAGE_KEY) == b"<h1>app 1</h1>"
    assert s3_bucket.head(NOT_FOUND_PAGE_KEY)["ContentType"] == HTML_TYPE


def test_a_first_staged_release_places_the_built_in_pages_by_conditional_writes_without_reading(
    s3_bucket: S3Bucket, fake_kvs: FakeKvs, tmp_path: Path
) -> None:
    store = s3_bucket.store()
    engine = ReleaseEngine(store, fake_kvs.store, config_of("static"), actor="tests")
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=SERVER_ERROR_PAGE_KEY, Body=b"placed before")
    calls = S3Calls().attach(store.client)

    engine.create(build(tmp_path / "v1", "1"), release_id="v1", activate=False)

    assert [p["Key"] for p in calls.of("GetObject") + calls.of("HeadObject") if p["Key"].startswith("errors/")] == []
    puts = [(p["Key"], p.get("IfNoneMatch")) for p in calls.of("PutObject") if p["Key"].startswith("errors/")]
    assert sorted(puts) == [(NOT_FOUND_PAGE_KEY, "*"), (SERVER_ERROR_PAGE_KEY, "*")]
    # moto_server answered the second write 412: the page there stays.
    assert s3_bucket.body(SERVER_ERROR_PAGE_KEY) == b"placed before"
    assert s3_bucket.body(NOT_FOUND_PAGE_KEY) == BUILT_IN_PAGES[NOT_FOUND_PAGE_KEY]


class DeniedErrorPages:
    """The real S3 store, with writes under ``errors/`` denied (a build role without the grant)."""

    def __init__(self, inner: S3ObjectStore) -> None:
        self.inner = inner
        self.denied = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_bytes(self, key: str, data: bytes, **headers: Any) -> bool:
        if self.denied and key.startswith(ERROR_PAGES_PREFIX):
            raise BackendError(f"write to s3://bucket/{key} failed: AccessDenied")
        return self.inner.put_bytes(key, data, **headers)


def test_a_denied_publish_keeps_the_switch_warns_and_the_next_activate_publishes(
    s3_bucket: S3Bucket, fake_kvs: FakeKvs, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = DeniedErrorPages(s3_bucket.store())
    engine = ReleaseEngine(store, fake_kvs.store, config_of("static"), actor="tests")  # type: ignore[arg-type]

    with caplog.at_level(logging.WARNING, logger="hosting_toolkit.release.engine"):
        engine.create(build(tmp_path / "v1", "1"), release_id="v1")

    assert engine.status().live == "v1"
    assert s3_bucket.keys(ERROR_PAGES_PREFIX) == []
    assert "v1 is live, but its error pages were not published" in caplog.text
    assert "AccessDenied" in caplog.text and "hosting-toolkit activate v1" in caplog.text

    store.denied = False
    engine.activate("v1")
    assert s3_bucket.body(NOT_FOUND_PAGE_KEY) == b"<h1>missing in 1</h1>"


# -- the local edge --------------------------------------------------------------------------


@pytest.fixture
def static_edge(tmp_path: Path, function_sandbox: FunctionSandbox) -> Iterator[Edge]:
    running = Edge(tmp_path, config_of("static"), function_sandbox)
    yield running
    running.close()


@pytest.mark.node
def test_a_missing_path_gets_the_live_releases_404_page_with_status_404(static_edge: Edge, tmp_path: Path) -> None:
    static_edge.engine.create(build(tmp_path / "v1", "1"), release_id="v1")

    for path in ("/nowhere", "/nowhere/", "/assets/gone.js"):
        status, headers, body = static_edge.get(path)
        assert (status, body) == (404, b"<h1>missing in 1</h1>"), path
        assert headers["content-type"] == HTML_TYPE
        assert headers["cache-control"] == "no-cache"
        # As on CloudFront, no viewer-response function runs on an origin error: the page's own
        # release metadata names it, and no x-release or cookie is added.
        assert headers["x-amz-meta-release"] == "v1"
        assert RELEASE_HEADER not in headers
        assert "set-cookie" not in headers
        assert "<Error>" not in body.decode()
        for name, value in security_headers(HeadersConfig(content_security_policy=CSP)):
            assert headers[name] == value
    assert static_edge.get("/pricing")[0:3:2] == (200, b"<h1>pricing 1</h1>")


@pytest.mark.node
def test_a_switch_shows_the_new_releases_404_page(static_edge: Edge, tmp_path: Path) -> None:
    static_edge.engine.create(build(tmp_path / "v1", "1"), release_id="v1")
    static_edge.engine.create(build(tmp_path / "v2", "2", not_found=False), release_id="v2")
    status, _, body = static_edge.get("/nowhere")
    assert (status, body) == (404, BUILT_IN_PAGES[NOT_FOUND_PAGE_KEY])

    static_edge.engine.rollback()
    assert static_edge.get("/nowhere")[2] == b"<h1>missing in 1</h1>"


@pytest.mark.node
def test_head_of_a_missing_path_has_the_pages_headers_and_no_body(static_edge: Edge, tmp_path: Path) -> None:
    static_edge.engine.create(build(tmp_path / "v1", "1"), release_id="v1")
    status, headers, body = static_edge.get("/nowhere", method="HEAD")
    assert (status, body) == (404, b"")
    assert headers["content-length"] == str(len(b"<h1>missing in 1</h1>"))


@pytest.mark.node
def test_without_a_published_page_the_edge_answers_like_s3_never_with_a_listing(
    static_edge: Edge, tmp_path: Path
) -> None:
    static_edge.engine.create(build(tmp_path / "v1", "1"), release_id="v1")
    static_edge.engine.store.delete([NOT_FOUND_PAGE_KEY])

    status, headers, body = static_edge.get("/nowhere")

    assert (status, body) == (404, b"not found\n")
    assert headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.node
@pytest.mark.parametrize(("errors", "status"), [(ErrorsConfig(), 404), (ErrorsConfig(spa_status=200), 200)])
def test_spa_mode_answers_a_missing_file_with_the_entry_page(
    tmp_path: Path, function_sandbox: FunctionSandbox, errors: ErrorsConfig, status: int
) -> None:
    edge = Edge(tmp_path, config_of("spa", errors), function_sandbox)
    try:
        edge.engine.create(build(tmp_path / "v1", "1"), release_id="v1")
        assert edge.get("/users/42")[0:3:2] == (200, b"<h1>app 1</h1>"), "the router's own spa mapping"
        answered, headers, body = edge.get("/users/john.doe")
        assert (answered, body) == (status, b"<h1>app 1</h1>")
        assert headers["content-type"] == HTML_TYPE
    finally:
        edge.close()


class FailingReleases:
    """A bucket whose release files cannot be read (the origin fails); other keys read normally."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_object(self, key: str) -> StoredObject | None:
        if key.startswith(RELEASES_PREFIX):
            raise BackendError(f"read s3://bucket/{key} failed: InternalError")
        return self.inner.get_object(key)


@pytest.mark.node
@pytest.mark.parametrize("server_error", [True, False], ids=["releases-page", "built-in-page"])
def test_a_failing_origin_gets_the_5xx_page_with_its_status(
    tmp_path: Path, function_sandbox: FunctionSandbox, server_error: bool
) -> None:
    config = config_of("static")
    kvs = LocalKeyValueStore(tmp_path / "kvs.json")
    store = LocalObjectStore(tmp_path / "bucket")
    ReleaseEngine(store, kvs, config, actor="t").create(
        build(tmp_path / "v1", "1", server_error=server_error), release_id="v1"
    )
    edge = LocalEdge(store=FailingReleases(store), kvs=kvs, config=config, sandbox=function_sandbox)  # type: ignore[arg-type]

    response = edge.handle("GET", "/pricing", [])

    assert (response.status, response.reason) == (502, "Bad Gateway")
    expected = b"<h1>broken in 1</h1>" if server_error else BUILT_IN_PAGES[SERVER_ERROR_PAGE_KEY]
    assert response.body == expected
    assert response.header("cache-control") == "no-cache"
    assert response.release == "v1"


@pytest.mark.node
def test_the_edge_serves_error_pages_from_an_s3_bucket(
    s3_bucket: S3Bucket, tmp_path: Path, function_sandbox: FunctionSandbox
) -> None:
    config = config_of("static")
    store = s3_bucket.store()
    kvs = LocalKeyValueStore(tmp_path / "kvs.json")
    ReleaseEngine(store, kvs, config, actor="t").create(build(tmp_path / "v1", "1"), release_id="v1")
    edge = LocalEdge(store=store, kvs=kvs, config=config, sandbox=function_sandbox)

    response = edge.handle("GET", "/nowhere", [])

    assert (response.status, response.body, response.release) == (404, b"<h1>missing in 1</h1>", "v1")
    assert response.header("etag") == s3_bucket.head(NOT_FOUND_PAGE_KEY)["ETag"]
