"""Error pages: the ``[errors]`` settings, and the engine publishing the live release's pages after each switch."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from hosting_toolkit.config import ErrorsConfig, HostingConfig, ReleaseConfig, SiteConfig, parse_config
from hosting_toolkit.contract import (
    ERROR_PAGES_PREFIX,
    NOT_FOUND_PAGE_KEY,
    RELEASE_METADATA_KEY,
    RELEASES_PREFIX,
    SERVER_ERROR_PAGE_KEY,
    RoutingState,
    error_responses,
)
from hosting_toolkit.errors import BackendError, ConfigError
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.error_pages import (
    BUILT_IN_PAGES,
    ERROR_PAGE_CACHE_CONTROL,
    HTML_TYPE,
    PublishedPage,
    publish_error_pages,
)
from hosting_toolkit.release.kvs import LocalKeyValueStore
from hosting_toolkit.release.routing import update_routing
from hosting_toolkit.release.storage import LocalObjectStore
from tests.fakes.sites import write_files


def build(root: Path, version: str, *, not_found: bool = True, server_error: bool = False) -> Path:
    files = {"index.html": f"<h1>app {version}</h1>", "about.html": f"<h1>about {version}</h1>"}
    if not_found:
        files["404.html"] = f"<h1>missing in {version}</h1>"
    if server_error:
        files["500.html"] = f"<h1>broken in {version}</h1>"
    return write_files(root, files)


def make_engine(root: Path, *, mode: str = "static", errors: ErrorsConfig | None = None) -> ReleaseEngine:
    config = HostingConfig(
        site=SiteConfig(mode=mode),  # type: ignore[arg-type]
        release=ReleaseConfig(concurrency=4),
        errors=errors or ErrorsConfig(),
    )
    return ReleaseEngine(LocalObjectStore(root / "bucket"), LocalKeyValueStore(root / "kvs.json"), config, actor="t")


def page(engine: ReleaseEngine, key: str) -> tuple[bytes, str, str | None, dict[str, str]]:
    found = engine.store.get_object(key)
    assert found is not None, f"{key} was not published"
    return found.body, found.content_type, found.cache_control, found.metadata


# -- configuration ---------------------------------------------------------------------------


def test_defaults_take_the_conventional_pages_and_answer_404_in_both_modes() -> None:
    errors = HostingConfig().errors
    assert (errors.not_found, errors.server_error, errors.spa_status) == ("404.html", "500.html", 404)
    assert errors.not_found_status("spa") == errors.not_found_status("static") == 404


def test_spa_status_applies_to_spa_mode_only() -> None:
    config = parse_config({"errors": {"spa_status": 200, "not_found": "errors/missing.html", "server_error": ""}})
    assert config.errors == ErrorsConfig(not_found="errors/missing.html", server_error="", spa_status=200)
    assert config.errors.not_found_status("spa") == 200
    assert config.errors.not_found_status("static") == 404


def test_every_errors_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {"errors": {"not_found": "../404.html", "server_error": "/500.html", "spa_status": 302, "notfound": "x"}}
        )
    problems = caught.value.problems
    assert problems[0] == "errors.notfound: unknown key (did you mean 'not_found'?)"
    assert problems[1].startswith("errors.not_found: '../404.html' must be the path of an .html file inside")
    assert problems[2].startswith("errors.server_error: '/500.html' must be the path of an .html file inside")
    assert problems[3] == "errors.spa_status: 302 is not supported; use 404 or 200"
    assert len(problems) == 4


@pytest.mark.parametrize("value", ["404", "404.txt", "a//404.html", "./404.html", 404, "a/../404.html"])
def test_a_page_must_be_an_html_file_inside_the_release(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"errors\.not_found"):
        parse_config({"errors": {"not_found": value}})


def test_error_responses_cover_missing_paths_and_origin_failures() -> None:
    assert error_responses(200) == {
        403: (NOT_FOUND_PAGE_KEY, 200),
        404: (NOT_FOUND_PAGE_KEY, 200),
        500: (SERVER_ERROR_PAGE_KEY, 500),
        502: (SERVER_ERROR_PAGE_KEY, 502),
        503: (SERVER_ERROR_PAGE_KEY, 503),
        504: (SERVER_ERROR_PAGE_KEY, 504),
    }
    assert not NOT_FOUND_PAGE_KEY.startswith(RELEASES_PREFIX)
    assert NOT_FOUND_PAGE_KEY.startswith(ERROR_PAGES_PREFIX) and SERVER_ERROR_PAGE_KEY.startswith(ERROR_PAGES_PREFIX)


# -- publishing ------------------------------------------------------------------------------


def test_activate_publishes_the_releases_own_pages_with_no_cache_and_its_metadata(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    engine.create(build(tmp_path / "v1", "1", server_error=True), release_id="v1")

    body, content_type, cache_control, metadata = page(engine, NOT_FOUND_PAGE_KEY)
    assert body == b"<h1>missing in 1</h1>"
    assert (content_type, cache_control, metadata) == (
        HTML_TYPE,
        ERROR_PAGE_CACHE_CONTROL,
        {RELEASE_METADATA_KEY: "v1"},
    )
    assert page(engine, SERVER_ERROR_PAGE_KEY)[0] == b"<h1>broken in 1</h1>"


def test_a_release_without_its_pages_gets_the_built_in_ones(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    notes: list[str] = []
    engine.progress.note = notes.append  # type: ignore[method-assign]
    engine.create(build(tmp_path / "v1", "1", not_found=False), release_id="v1")

    for key in (NOT_FOUND_PAGE_KEY, SERVER_ERROR_PAGE_KEY):
        body, content_type, cache_control, metadata = page(engine, key)
        assert body == BUILT_IN_PAGES[key]
        assert (content_type, cache_control, metadata) == (HTML_TYPE, "no-cache", {RELEASE_METADATA_KEY: "v1"})
    assert notes == [
        f"v1 has no 404.html: {NOT_FOUND_PAGE_KEY} is the built-in page",
        f"v1 has no 500.html: {SERVER_ERROR_PAGE_KEY} is the built-in page",
    ]


def test_built_in_pages_are_plain_html_any_content_security_policy_allows() -> None:
    for body in BUILT_IN_PAGES.values():
        text = body.decode()
        assert text.startswith("<!doctype html>") and "<title>" in text
        assert "<script" not in text and "<style" not in text and "style=" not in text


def test_empty_settings_choose_the_built_in_pages_even_when_the_release_has_its_own(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, errors=ErrorsConfig(not_found="", server_error=""))
    notes: list[str] = []
    engine.progress.note = notes.append  # type: ignore[method-assign]
    engine.create(build(tmp_path / "v1", "1", server_error=True), release_id="v1")
    assert notes == [], "a built-in page asked for is nothing to point out"
    assert page(engine, NOT_FOUND_PAGE_KEY)[0] == BUILT_IN_PAGES[NOT_FOUND_PAGE_KEY]
    assert page(engine, SERVER_ERROR_PAGE_KEY)[0] == BUILT_IN_PAGES[SERVER_ERROR_PAGE_KEY]


def test_a_configured_page_in_a_folder_is_published(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, errors=ErrorsConfig(not_found="errors/missing.html"))
    folder = write_files(tmp_path / "v1", {"index.html": "home", "errors/missing.html": "<p>gone</p>"})
    engine.create(folder, release_id="v1")
    assert page(engine, NOT_FOUND_PAGE_KEY)[0] == b"<p>gone</p>"


def test_spa_mode_publishes_the_entry_page_for_missing_paths(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, mode="spa")
    engine.create(build(tmp_path / "v1", "1"), release_id="v1")
    assert page(engine, NOT_FOUND_PAGE_KEY)[0] == b"<h1>app 1</h1>"
    assert page(engine, SERVER_ERROR_PAGE_KEY)[0] == BUILT_IN_PAGES[SERVER_ERROR_PAGE_KEY]


def test_rollback_and_promote_publish_the_pages_of_the_release_they_make_live(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    for version in ("1", "2", "3"):
        engine.create(build(tmp_path / f"v{version}", version), release_id=f"v{version}", activate=False)
    engine.activate("v1")
    engine.activate("v2")
    assert page(engine, NOT_FOUND_PAGE_KEY)[0] == b"<h1>missing in 2</h1>"

    engine.rollback()
    assert page(engine, NOT_FOUND_PAGE_KEY)[0] == b"<h1>missing in 1</h1>"

    engine.canary("v3", 10)
    assert page(engine, NOT_FOUND_PAGE_KEY)[3] == {RELEASE_METADATA_KEY: "v1"}, "a canary does not change them"
    engine.promote()
    assert page(engine, NOT_FOUND_PAGE_KEY)[0] == b"<h1>missing in 3</h1>"

    engine.rollback(to="v2")
    assert page(engine, NOT_FOUND_PAGE_KEY)[3] == {RELEASE_METADATA_KEY: "v2"}


def test_publishing_again_gives_the_same_pages(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    engine.create(build(tmp_path / "v1", "1"), release_id="v1")
    first = [page(engine, key)[0] for key in (NOT_FOUND_PAGE_KEY, SERVER_ERROR_PAGE_KEY)]

    assert publish_error_pages(engine.store, engine.config, "v1") == (
        PublishedPage(NOT_FOUND_PAGE_KEY, "404.html"),
        PublishedPage(SERVER_ERROR_PAGE_KEY, None),
    )
    assert [page(engine, key)[0] for key in (NOT_FOUND_PAGE_KEY, SERVER_ERROR_PAGE_KEY)] == first
    assert sorted(k for k, _ in engine.store.list(ERROR_PAGES_PREFIX)) == [NOT_FOUND_PAGE_KEY, SERVER_ERROR_PAGE_KEY]


class FailingErrorPages(LocalObjectStore):
    """The local bucket, refusing writes under ``errors/`` while ``failing`` is set."""

    failing = True

    def put_bytes(self, key: str, data: bytes, **kwargs: Any) -> bool:
        if self.failing and key.startswith(ERROR_PAGES_PREFIX):
            raise BackendError(f"write to {key} failed: access denied")
        return super().put_bytes(key, data, **kwargs)


def test_a_failed_publish_leaves_the_switch_in_place_and_activating_again_retries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FailingErrorPages(tmp_path / "bucket")
    config = HostingConfig(site=SiteConfig(mode="static"), release=ReleaseConfig(concurrency=4))
    engine = ReleaseEngine(store, LocalKeyValueStore(tmp_path / "kvs.json"), config, actor="t")

    with caplog.at_level(logging.WARNING, logger="hosting_toolkit.release.engine"):
        result = engine.create(build(tmp_path / "v1", "1"), release_id="v1")

    assert result.activated and engine.status().live == "v1"
    assert [e.action for e in engine.history()] == ["activate"]
    assert engine.store.get_object(NOT_FOUND_PAGE_KEY) is None
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith("warning: v1 is live, but its error pages were not published (write to errors/")
    assert warning.endswith("publish them with: hosting-toolkit activate v1")

    store.failing = False
    change = engine.activate("v1")

    assert change.before == change.after
    assert [e.action for e in engine.history()] == ["activate"]
    assert page(engine, NOT_FOUND_PAGE_KEY)[0] == b"<h1>missing in 1</h1>"


def test_a_failed_rollback_publish_is_a_warning_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FailingErrorPages(tmp_path / "bucket")
    store.failing = False
    config = HostingConfig(site=SiteConfig(mode="static"), release=ReleaseConfig(concurrency=4))
    engine = ReleaseEngine(store, LocalKeyValueStore(tmp_path / "kvs.json"), config, actor="t")
    engine.create(build(tmp_path / "v1", "1"), release_id="v1")
    engine.create(build(tmp_path / "v2", "2"), release_id="v2")
    store.failing = True

    with caplog.at_level(logging.WARNING, logger="hosting_toolkit.release.engine"):
        change = engine.rollback()

    assert (change.before.live, change.after.live, engine.status().live) == ("v2", "v1", "v1")
    assert "hosting-toolkit activate v1" in caplog.text
    assert page(engine, NOT_FOUND_PAGE_KEY)[3] == {RELEASE_METADATA_KEY: "v2"}, "the old pages stay until a retry"


class OvertakingStore(LocalObjectStore):
    """The local bucket; the first error page written triggers another switch of the live release."""

    def __init__(self, root: Path, overtake: Any) -> None:
        super().__init__(root)
        self.overtake = overtake

    def put_bytes(self, key: str, data: bytes, **kwargs: Any) -> bool:
        if key.startswith(ERROR_PAGES_PREFIX) and self.overtake is not None:
            overtake, self.overtake = self.overtake, None
            overtake()
        return super().put_bytes(key, data, **kwargs)


def test_a_switch_racing_the_publish_ends_with_the_pages_of_the_release_that_is_live(tmp_path: Path) -> None:
    kvs = LocalKeyValueStore(tmp_path / "kvs.json")
    config = HostingConfig(site=SiteConfig(mode="static"), release=ReleaseConfig(concurrency=4))
    setup = ReleaseEngine(LocalObjectStore(tmp_path / "bucket"), kvs, config, actor="t")
    for version in ("1", "2"):
        setup.create(build(tmp_path / f"v{version}", version), release_id=f"v{version}", activate=False)

    def other_writer_activates_v2() -> None:
        update_routing(kvs, lambda state: RoutingState(live="v2", pins=("v1",)))

    racing = ReleaseEngine(OvertakingStore(tmp_path / "bucket", other_writer_activates_v2), kvs, config, actor="t")
    racing.activate("v1")

    assert racing.status().live == "v2"
    assert page(racing, NOT_FOUND_PAGE_KEY)[0] == b"<h1>missing in 2</h1>"
    assert page(racing, SERVER_ERROR_PAGE_KEY)[3] == {RELEASE_METADATA_KEY: "v2"}


def test_a_first_staged_release_puts_the_built_in_pages_in_place(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)

    engine.create(build(tmp_path / "v1", "1"), release_id="v1", activate=False)

    for key in (NOT_FOUND_PAGE_KEY, SERVER_ERROR_PAGE_KEY):
        body, _, cache_control, metadata = page(engine, key)
        assert (body, cache_control, metadata) == (BUILT_IN_PAGES[key], ERROR_PAGE_CACHE_CONTROL, {})


def test_staging_next_to_a_live_release_leaves_its_pages_alone(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    engine.create(build(tmp_path / "v1", "1"), release_id="v1")

    engine.create(build(tmp_path / "v2", "2", not_found=False), release_id="v2", activate=False)

    assert page(engine, NOT_FOUND_PAGE_KEY)[0] == b"<h1>missing in 1</h1>"
    assert page(engine, NOT_FOUND_PAGE_KEY)[3] == {RELEASE_METADATA_KEY: "v1"}


def test_placing_the_built_in_pages_keeps_a_page_already_there_and_places_the_missing_one(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    engine.store.put_bytes(NOT_FOUND_PAGE_KEY, b"<h1>placed before</h1>", content_type=HTML_TYPE)

    engine.create(build(tmp_path / "v1", "1"), release_id="v1", activate=False)

    assert page(engine, NOT_FOUND_PAGE_KEY)[0] == b"<h1>placed before</h1>"
    assert page(engine, SERVER_ERROR_PAGE_KEY)[0] == BUILT_IN_PAGES[SERVER_ERROR_PAGE_KEY]


def test_a_failed_placement_fails_the_staging_and_staging_again_places_the_pages(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    # A file where the errors/ folder belongs: every write under errors/ fails, as a refused PutObject does.
    blocker = tmp_path / "bucket" / "objects" / ERROR_PAGES_PREFIX.rstrip("/")
    blocker.write_bytes(b"")

    with pytest.raises(BackendError, match="release v1 is staged, but the built-in error pages could not be placed"):
        engine.create(build(tmp_path / "v1", "1"), release_id="v1", activate=False)

    assert engine.record("v1") is not None
    blocker.unlink()
    result = engine.create(build(tmp_path / "v1", "1"), release_id="v1", activate=False)
    assert result.already_existed
    assert page(engine, NOT_FOUND_PAGE_KEY)[0] == BUILT_IN_PAGES[NOT_FOUND_PAGE_KEY]
