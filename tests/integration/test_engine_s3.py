"""The release engine against the real S3 protocol (moto_server over HTTP) and the KVS data plane."""

from __future__ import annotations

import math
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from hosting_toolkit.contract import (
    NOT_FOUND_PAGE_KEY,
    RELEASE_METADATA_KEY,
    SERVER_ERROR_PAGE_KEY,
    RoutingState,
    release_prefix,
)
from hosting_toolkit.errors import BackendError, InvalidInputError, NotFoundError, ReleaseConflictError
from hosting_toolkit.release.content import REVALIDATE
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.kvs import LocalKeyValueStore
from hosting_toolkit.release.records import HISTORY_PREFIX, RECORDS_PREFIX, manifest_key, pending_key, record_key
from hosting_toolkit.release.s3 import S3ObjectStore
from hosting_toolkit.release.storage import LocalObjectStore
from tests.fakes.sites import HTML, SAMPLE_SITE, numbered_site, sample_site, write_files
from tests.integration.conftest import EngineFactory, FakeKvs, S3Bucket, S3Calls, make_config

pytestmark = pytest.mark.integration


class InstrumentedStore:
    """The real S3 store, recording the order of writes and failing the Nth file upload if asked."""

    def __init__(self, inner: S3ObjectStore, *, fail_on_upload: int | None = None) -> None:
        self.inner = inner
        self.fail_on_upload = fail_on_upload
        self.writes: list[str] = []
        self._uploads = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_file(self, key: str, source: Path, **headers: Any) -> None:
        with self._lock:
            self._uploads += 1
            failing = self._uploads == self.fail_on_upload
        if failing:
            raise BackendError(f"upload to {key} failed: connection reset")
        self.inner.put_file(key, source, **headers)
        with self._lock:
            self.writes.append(key)

    def put_bytes(self, key: str, data: bytes, **headers: Any) -> bool:
        written = self.inner.put_bytes(key, data, **headers)
        with self._lock:
            self.writes.append(key)
        return written

    def copy(self, source_key: str, key: str, **headers: Any) -> None:
        self.inner.copy(source_key, key, **headers)
        with self._lock:
            self.writes.append(key)


def snapshot(bucket: S3Bucket, prefix: str) -> dict[str, tuple[bytes, dict[str, str], str]]:
    """Body, metadata and ETag of every object under ``prefix``."""
    result = {}
    for key in bucket.keys(prefix):
        head = bucket.head(key)
        result[key] = (bucket.body(key), head["Metadata"], head["ETag"])
    return result


# -- what a release puts in the bucket ------------------------------------------------------------


@pytest.mark.parametrize("native", [False, True], ids=["botocore", "crt"])
def test_every_object_carries_its_type_cache_control_and_release_metadata(
    s3_bucket: S3Bucket, fake_kvs: FakeKvs, make_engine: EngineFactory, tmp_path: Path, native: bool
) -> None:
    store = s3_bucket.store(native=native)
    engine = make_engine(store, fake_kvs.store)
    calls = S3Calls().attach(store.client)

    result = engine.create(sample_site(tmp_path / "site"))

    prefix = release_prefix(result.id)
    assert len(calls.writes_under(prefix)) == (0 if native else len(SAMPLE_SITE))
    assert sorted(s3_bucket.keys(prefix)) == sorted(prefix + path for path in SAMPLE_SITE)
    for path, (body, content_type, cache_control) in SAMPLE_SITE.items():
        head = s3_bucket.head(prefix + path)
        assert (path, head["ContentType"], head["CacheControl"]) == (path, content_type, cache_control)
        assert head["Metadata"] == {RELEASE_METADATA_KEY: result.id}
        assert s3_bucket.body(prefix + path) == body
    assert (result.files, result.uploaded_files, result.copied_files) == (len(SAMPLE_SITE), len(SAMPLE_SITE), 0)
    assert result.activated
    assert engine.status() == RoutingState(live=result.id)
    assert fake_kvs.server.count("PutKey") == 1


@pytest.mark.parametrize("native", [False, True], ids=["botocore", "crt"])
def test_file_names_needing_url_encoding_keep_their_exact_keys(
    s3_bucket: S3Bucket, make_engine: EngineFactory, tmp_path: Path, native: bool
) -> None:
    names = ["index.html", "a b+c=d&e.html", "über/straße.html", "x/(1)!'*;,@$.txt", "~user/.well-known/x"]
    site = write_files(tmp_path / "site", {name: name for name in names})

    result = make_engine(s3_bucket.store(native=native)).create(site)

    prefix = release_prefix(result.id)
    assert sorted(s3_bucket.keys(prefix)) == sorted(prefix + name for name in names)
    for name in names:
        assert s3_bucket.body(prefix + name) == name.encode()
        assert s3_bucket.head(prefix + name)["Metadata"] == {RELEASE_METADATA_KEY: result.id}


def test_release_record_is_written_after_the_last_file(
    s3_bucket: S3Bucket, make_engine: EngineFactory, tmp_path: Path
) -> None:
    store = InstrumentedStore(s3_bucket.store())
    engine = make_engine(store)  # type: ignore[arg-type]

    rid = engine.create(sample_site(tmp_path / "site"), activate=False).id

    writes = store.writes
    last_file = max(i for i, key in enumerate(writes) if key.startswith(release_prefix(rid)))
    assert writes[0] == pending_key(rid)
    assert writes.index(manifest_key(rid)) > last_file
    assert writes.index(record_key(rid)) > writes.index(manifest_key(rid))
    assert s3_bucket.keys("_meta/pending/") == []


def test_failed_upload_leaves_an_incomplete_release_that_resumes_when_run_again(
    s3_bucket: S3Bucket, fake_kvs: FakeKvs, make_engine: EngineFactory, tmp_path: Path
) -> None:
    site = sample_site(tmp_path / "site")
    failing = make_engine(InstrumentedStore(s3_bucket.store(), fail_on_upload=6), fake_kvs.store)  # type: ignore[arg-type]

    with pytest.raises(BackendError, match="connection reset"):
        failing.create(site)

    [pending] = s3_bucket.keys("_meta/pending/")
    rid = pending.removeprefix("_meta/pending/").removesuffix(".json")
    assert s3_bucket.keys(RECORDS_PREFIX) == []
    assert s3_bucket.keys(release_prefix(rid))
    engine = make_engine(s3_bucket.store(), fake_kvs.store)
    with pytest.raises(InvalidInputError, match=f"release {rid} is incomplete"):
        engine.activate(rid)
    assert [(i.id, i.state) for i in engine.list_releases()] == [(rid, "incomplete")]
    assert fake_kvs.server.writes() == 0

    resumed = engine.create(site)

    assert resumed.id == rid
    assert resumed.resumed_files >= 5
    assert resumed.uploaded_files + resumed.resumed_files == len(SAMPLE_SITE)
    assert s3_bucket.keys(RECORDS_PREFIX) == [record_key(rid)]
    assert s3_bucket.keys("_meta/pending/") == []
    assert engine.status().live == rid


def test_incomplete_release_of_other_content_blocks_its_id(
    s3_bucket: S3Bucket, make_engine: EngineFactory, tmp_path: Path
) -> None:
    failing = make_engine(InstrumentedStore(s3_bucket.store(), fail_on_upload=1))  # type: ignore[arg-type]
    with pytest.raises(BackendError):
        failing.create(sample_site(tmp_path / "a"), release_id="v1")

    with pytest.raises(ReleaseConflictError, match="being uploaded with other content"):
        make_engine(s3_bucket.store()).create(sample_site(tmp_path / "b", marker="b"), release_id="v1")


# -- incremental releases and immutability --------------------------------------------------------


def test_second_release_uploads_only_changed_files_and_copies_the_rest_server_side(
    s3_bucket: S3Bucket, fake_kvs: FakeKvs, make_engine: EngineFactory, tmp_path: Path
) -> None:
    store = s3_bucket.store()
    engine = make_engine(store, fake_kvs.store)
    first = engine.create(numbered_site(tmp_path / "v1", 100))
    second_site = shutil.copytree(tmp_path / "v1", tmp_path / "v2")
    changed = second_site / "assets" / "chunk-00042-a0000042.js"
    changed.write_text("/* changed */ export const answer = 42;")
    calls = S3Calls().attach(store.client)

    second = engine.create(second_site)

    prefix = release_prefix(second.id)
    assert second.id != first.id
    assert (second.files, second.uploaded_files, second.copied_files) == (100, 1, 99)
    assert second.uploaded_bytes == changed.stat().st_size < second.bytes
    assert [p["Key"] for p in calls.of("PutObject") if p["Key"].startswith(prefix)] == [
        prefix + "assets/chunk-00042-a0000042.js"
    ]
    assert len(calls.of("CopyObject")) == 99
    assert len(s3_bucket.keys(prefix)) == 100
    for key in s3_bucket.keys(prefix):
        head = s3_bucket.head(key)
        assert head["Metadata"] == {RELEASE_METADATA_KEY: second.id}, key
    assert s3_bucket.head(prefix + "index.html")["CacheControl"] == REVALIDATE
    assert s3_bucket.head(release_prefix(first.id) + "index.html")["Metadata"] == {RELEASE_METADATA_KEY: first.id}


def test_same_content_again_already_exists_and_uploads_nothing(
    s3_bucket: S3Bucket, make_engine: EngineFactory, tmp_path: Path
) -> None:
    store = s3_bucket.store()
    engine = make_engine(store)
    site = sample_site(tmp_path / "site")
    first = engine.create(site)
    calls = S3Calls().attach(store.client)

    again = engine.create(site)

    assert again.id == first.id
    assert again.already_existed
    assert (again.uploaded_files, again.uploaded_bytes, again.copied_files) == (0, 0, 0)
    assert calls.writes_under("releases/") == []
    # Activating the live release again only publishes its error pages again.
    assert sorted(p["Key"] for p in calls.of("PutObject")) == [NOT_FOUND_PAGE_KEY, SERVER_ERROR_PAGE_KEY]


def test_same_id_with_other_content_is_refused_and_overwrites_nothing(
    s3_bucket: S3Bucket, make_engine: EngineFactory, tmp_path: Path
) -> None:
    store = s3_bucket.store()
    engine = make_engine(store)
    engine.create(sample_site(tmp_path / "a"), release_id="v1")
    before = snapshot(s3_bucket, "")
    calls = S3Calls().attach(store.client)

    with pytest.raises(ReleaseConflictError, match="release v1 already exists with other content"):
        engine.create(sample_site(tmp_path / "b", marker="other"), release_id="v1")

    assert calls.writes_under("") == []
    assert snapshot(s3_bucket, "") == before


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"home.html": "<p>no entry page</p>", "assets/app-1a2b3c4d.js": "1"}, "no index.html"),
        ({}, "empty"),
    ],
    ids=["no-index-html", "empty-folder"],
)
def test_unusable_build_folder_is_refused_before_any_upload(
    s3_bucket: S3Bucket, make_engine: EngineFactory, tmp_path: Path, files: dict[str, str], message: str
) -> None:
    store = s3_bucket.store()
    calls = S3Calls().attach(store.client)
    site = write_files(tmp_path / "site", files)

    with pytest.raises(InvalidInputError, match=message):
        make_engine(store).create(site)

    assert s3_bucket.keys() == []
    assert calls.writes_under("") == []


def test_static_mode_gives_each_page_a_clean_url_object(
    s3_bucket: S3Bucket, make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = make_engine(s3_bucket.store(), config=make_config(mode="static"))

    result = engine.create(sample_site(tmp_path / "site"))

    prefix = release_prefix(result.id)
    alias = s3_bucket.head(prefix + "blog/first-post/index.html")
    assert (alias["ContentType"], alias["CacheControl"]) == (HTML, REVALIDATE)
    assert alias["Metadata"] == {RELEASE_METADATA_KEY: result.id}
    assert s3_bucket.body(prefix + "blog/first-post/index.html") == SAMPLE_SITE["blog/first-post.html"][0]
    assert prefix + "404/index.html" not in s3_bucket.keys(prefix)
    assert result.files == len(SAMPLE_SITE) + 1


# -- switching traffic ----------------------------------------------------------------------------


def test_rollback_is_one_kvs_write_and_uploads_nothing(
    s3_bucket: S3Bucket, fake_kvs: FakeKvs, make_engine: EngineFactory, tmp_path: Path
) -> None:
    store = s3_bucket.store()
    engine = make_engine(store, fake_kvs.store)
    first = engine.create(sample_site(tmp_path / "a")).id
    second = engine.create(sample_site(tmp_path / "b", marker="b")).id
    puts_before = fake_kvs.server.count("PutKey")
    calls = S3Calls().attach(store.client)

    change = engine.rollback()

    assert (change.before.live, change.after.live) == (second, first)
    assert fake_kvs.server.count("PutKey") - puts_before == 1
    assert fake_kvs.server.count("UpdateKeys") == fake_kvs.server.count("DeleteKey") == 0
    assert calls.writes_under("releases/") == []
    keys = [p["Key"] for p in calls.of("PutObject")]
    assert [k.startswith(HISTORY_PREFIX) for k in keys] == [True, False, False]
    assert keys[1:] == [NOT_FOUND_PAGE_KEY, SERVER_ERROR_PAGE_KEY]
    assert [e.action for e in engine.history()] == ["activate", "activate", "rollback"]


def test_rollback_to_a_named_release(
    s3_bucket: S3Bucket, fake_kvs: FakeKvs, make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = make_engine(s3_bucket.store(), fake_kvs.store)
    ids = [engine.create(sample_site(tmp_path / n, marker=n)).id for n in ("a", "b", "c")]

    engine.rollback(to=ids[0])

    assert engine.status() == RoutingState(live=ids[0], pins=(ids[2], ids[1]))
    with pytest.raises(NotFoundError, match="no release nope"):
        engine.rollback(to="nope")


def test_rollback_with_nothing_previous_is_not_found(
    s3_bucket: S3Bucket, fake_kvs: FakeKvs, make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = make_engine(s3_bucket.store(), fake_kvs.store)
    with pytest.raises(NotFoundError, match="no previous release"):
        engine.rollback()
    engine.create(sample_site(tmp_path / "a"))
    writes = fake_kvs.server.writes()

    with pytest.raises(NotFoundError, match="no previous release"):
        engine.rollback()

    assert fake_kvs.server.writes() == writes


# -- pruning --------------------------------------------------------------------------------------


def test_prune_keeps_live_pinned_and_newest_releases_and_deletes_the_rest(
    s3_bucket: S3Bucket, make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = make_engine(s3_bucket.store(), config=make_config(pins=1))
    plan = {"r1": True, "r2": True, "r3": False, "r4": False, "r5": True}
    for rid, activate in plan.items():
        engine.create(numbered_site(tmp_path / rid, 3, marker=rid), release_id=rid, activate=activate)
    assert engine.status() == RoutingState(live="r5", pins=("r2",))

    result = engine.prune(keep=2)

    assert sorted(result.removed) == ["r1", "r3"]
    assert sorted(result.kept) == ["r2", "r4", "r5"]
    assert result.objects_deleted == 6
    assert sorted(s3_bucket.keys(RECORDS_PREFIX)) == [record_key(r) for r in ("r2", "r4", "r5")]
    for rid in plan:
        assert bool(s3_bucket.keys(release_prefix(rid))) == (rid in result.kept), rid
    assert s3_bucket.keys(manifest_key("r1")) == []


def test_prune_lists_past_one_page_and_deletes_in_batches_of_1000(
    s3_bucket: S3Bucket, make_engine: EngineFactory, tmp_path: Path
) -> None:
    store = s3_bucket.store()
    engine = make_engine(store)
    big = engine.create(numbered_site(tmp_path / "big", 1100, size=1), release_id="big", activate=False).id
    engine.create(numbered_site(tmp_path / "a", 2, marker="a"), release_id="a")
    engine.create(numbered_site(tmp_path / "b", 2, marker="b"), release_id="b")
    calls = S3Calls().attach(store.client)

    result = engine.prune(keep=1)

    batches = [
        [o["Key"] for o in p["Delete"]["Objects"]]
        for p in calls.of("DeleteObjects")
        if p["Delete"]["Objects"][0]["Key"].startswith(release_prefix(big))
    ]
    assert result.removed == [big]
    assert result.objects_deleted == 1100
    assert len(batches) == math.ceil(1100 / 1000)
    assert all(len(batch) <= 1000 for batch in batches)
    assert len({key for batch in batches for key in batch}) == 1100
    assert s3_bucket.keys(release_prefix(big)) == []
    assert s3_bucket.keys(release_prefix("a")) and s3_bucket.keys(release_prefix("b"))


def test_activation_undone_when_prune_deleted_the_release_between_check_and_write(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "bucket")
    kvs = LocalKeyValueStore(tmp_path / "kvs.json")
    engine = ReleaseEngine(store, kvs, make_config(), actor="test")
    first = engine.create(write_files(tmp_path / "v1", {"index.html": "one"}))
    second = engine.create(write_files(tmp_path / "v2", {"index.html": "two"}), activate=False)

    class PruneRacingKvs:
        description = "racing"

        def read(self, key: str) -> tuple[str | None, str]:
            return kvs.read(key)

        def write(self, key: str, value: str, *, if_match: str) -> str:
            etag = kvs.write(key, value, if_match=if_match)
            store.delete([record_key(second.id)])
            return etag

    racing = ReleaseEngine(store, PruneRacingKvs(), make_config(), actor="test")
    with pytest.raises(NotFoundError, match="pruned while it was being activated"):
        racing.activate(second.id)
    assert engine.status().live == first.id


# -- skew protection: hashed assets of retained releases carried into each release ----------------


def versioned_site(root: Path, version: str) -> Path:
    """The sample site whose entry chunk (and its name) and home page change with ``version``."""
    sample_site(root, marker=version)
    old = root / "assets" / "index-BdW3x1Yz.js"
    old.unlink()
    (root / "assets" / f"index-{version}Bd3Xy.js").write_text(f"console.log('{version}')")
    (root / "robots.txt").write_text(f"User-agent: {version}\n")
    return root


def test_a_release_carries_the_hashed_assets_of_retained_releases_with_their_own_headers(
    s3_bucket: S3Bucket, make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = make_engine(s3_bucket.store())
    first = engine.create(versioned_site(tmp_path / "v1", "Aa1")).id
    old_chunk = release_prefix(first) + "assets/index-Aa1Bd3Xy.js"
    first_objects = snapshot(s3_bucket, release_prefix(first))

    second = engine.create(versioned_site(tmp_path / "v2", "Bb2"))

    prefix = release_prefix(second.id)
    carried = prefix + "assets/index-Aa1Bd3Xy.js"
    assert (second.carried_files, second.carried_bytes) == (1, len(b"console.log('Aa1')"))
    assert s3_bucket.body(carried) == s3_bucket.body(old_chunk)
    head = s3_bucket.head(carried)
    assert head["Metadata"] == {RELEASE_METADATA_KEY: first}
    assert head["ContentType"] == s3_bucket.head(old_chunk)["ContentType"]
    assert head["CacheControl"] == s3_bucket.head(old_chunk)["CacheControl"]
    # Pages and files without a content hash stay the release's own.
    assert s3_bucket.body(prefix + "robots.txt") == b"User-agent: Bb2\n"
    assert s3_bucket.body(prefix + "index.html") == b"<!doctype html><title>home Bb2</title>"
    # Carried files are not the release's content: same id, files and manifest as the build alone.
    alone = make_engine(s3_bucket.store(), config=make_config()).manifest(second.id)
    assert "assets/index-Aa1Bd3Xy.js" not in {e.path for e in alone}
    assert (second.files, engine.require_complete(second.id).files) == (len(SAMPLE_SITE), len(SAMPLE_SITE))
    assert second.id == engine.create(versioned_site(tmp_path / "v2-again", "Bb2")).id
    assert snapshot(s3_bucket, release_prefix(first)) == first_objects


def test_rolling_back_carries_the_newer_releases_assets_into_the_older_one_without_touching_its_files(
    s3_bucket: S3Bucket, make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = make_engine(s3_bucket.store())
    first = engine.create(versioned_site(tmp_path / "v1", "Aa1")).id
    second = engine.create(versioned_site(tmp_path / "v2", "Bb2")).id
    own = {k: v for k, v in snapshot(s3_bucket, release_prefix(first)).items()}

    engine.rollback()

    after = snapshot(s3_bucket, release_prefix(first))
    assert {k: after[k] for k in own} == own
    added = sorted(set(after) - set(own))
    assert added == [release_prefix(first) + "assets/index-Bb2Bd3Xy.js"]
    assert after[added[0]][1] == {RELEASE_METADATA_KEY: second}
    assert engine.status().live == first


def test_only_retained_releases_are_carried_so_the_cost_is_bounded_by_retention(
    s3_bucket: S3Bucket, make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = make_engine(s3_bucket.store(), config=make_config(keep=2, pins=1))
    ids = [engine.create(versioned_site(tmp_path / v, v)).id for v in ("Aa1", "Bb2", "Cc3", "Dd4", "Ee5")]

    names = {k.rsplit("/", 1)[1] for k in s3_bucket.keys(release_prefix(ids[-1]) + "assets/index-")}

    # Retained when Ee5 was made: the 2 newest (Dd4, Cc3), live (Dd4) and its pin (Cc3); never Aa1 or Bb2.
    assert {n for n in names if n.endswith("Bd3Xy.js")} == {
        "index-Cc3Bd3Xy.js",
        "index-Dd4Bd3Xy.js",
        "index-Ee5Bd3Xy.js",
    }
    assert engine.create(versioned_site(tmp_path / "f", "Ff6")).carried_files == 2


def test_a_name_with_other_bytes_in_two_retained_releases_is_not_carried(
    s3_bucket: S3Bucket, make_engine: EngineFactory, tmp_path: Path
) -> None:
    engine = make_engine(s3_bucket.store())
    one = versioned_site(tmp_path / "v1", "Aa1")
    (one / "assets" / "logo-Final2024X.png").write_bytes(b"one")
    engine.create(one)
    two = versioned_site(tmp_path / "v2", "Bb2")
    (two / "assets" / "logo-Final2024X.png").write_bytes(b"two")
    engine.create(two)

    third = engine.create(versioned_site(tmp_path / "v3", "Cc3"))

    keys = s3_bucket.keys(release_prefix(third.id))
    assert release_prefix(third.id) + "assets/logo-Final2024X.png" not in keys
    assert release_prefix(third.id) + "assets/index-Aa1Bd3Xy.js" in keys
