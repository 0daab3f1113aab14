"""The local backends: a bucket kept as files and a key-value store kept in one file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from hosting_toolkit.contract import KVS_VALUE_LIMIT, ROUTING_KEY
from hosting_toolkit.errors import BackendError
from hosting_toolkit.release.kvs import KvsConflict, LocalKeyValueStore
from hosting_toolkit.release.storage import LocalObjectStore

# -- LocalKeyValueStore ---------------------------------------------------------------------------


def test_empty_store_reads_none_at_an_initial_etag(tmp_path: Path) -> None:
    kvs = LocalKeyValueStore(tmp_path / "kvs.json")

    assert kvs.read(ROUTING_KEY) == (None, "0")
    assert kvs.snapshot() == ({}, "0")


def test_write_with_the_current_etag_replaces_the_etag(tmp_path: Path) -> None:
    kvs = LocalKeyValueStore(tmp_path / "kvs.json")
    _, etag = kvs.read(ROUTING_KEY)

    new_etag = kvs.write(ROUTING_KEY, '{"live":"a"}', if_match=etag)

    assert new_etag != etag
    assert kvs.read(ROUTING_KEY) == ('{"live":"a"}', new_etag)
    assert LocalKeyValueStore(tmp_path / "kvs.json").read(ROUTING_KEY) == ('{"live":"a"}', new_etag)


def test_write_with_a_stale_etag_conflicts_and_changes_nothing(tmp_path: Path) -> None:
    kvs = LocalKeyValueStore(tmp_path / "kvs.json")
    _, stale = kvs.read(ROUTING_KEY)
    current = kvs.write(ROUTING_KEY, "first", if_match=stale)

    with pytest.raises(KvsConflict):
        kvs.write(ROUTING_KEY, "second", if_match=stale)

    assert kvs.read(ROUTING_KEY) == ("first", current)


def test_etag_is_store_wide_so_a_write_to_another_key_also_conflicts(tmp_path: Path) -> None:
    kvs = LocalKeyValueStore(tmp_path / "kvs.json")
    _, etag = kvs.read(ROUTING_KEY)
    kvs.write("preview-token", "secret", if_match=etag)

    with pytest.raises(KvsConflict):
        kvs.write(ROUTING_KEY, "x", if_match=etag)


def test_value_over_the_kvs_limit_is_refused(tmp_path: Path) -> None:
    kvs = LocalKeyValueStore(tmp_path / "kvs.json")

    with pytest.raises(BackendError, match="1 KB"):
        kvs.write(ROUTING_KEY, "x" * (KVS_VALUE_LIMIT + 1), if_match="0")
    kvs.write(ROUTING_KEY, "x" * KVS_VALUE_LIMIT, if_match="0")


def test_concurrent_writers_with_the_same_etag_have_exactly_one_winner(tmp_path: Path) -> None:
    kvs = LocalKeyValueStore(tmp_path / "kvs.json")
    _, etag = kvs.read(ROUTING_KEY)
    outcomes: list[str] = []
    start = threading.Barrier(16)

    def write(n: int) -> None:
        start.wait()
        try:
            kvs.write(ROUTING_KEY, f"writer {n}", if_match=etag)
            outcomes.append("won")
        except KvsConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["conflict"] * 15 + ["won"]


def test_writes_replace_the_file_atomically_and_leave_no_temporary_files(tmp_path: Path) -> None:
    kvs = LocalKeyValueStore(tmp_path / "kvs.json")
    etag = "0"
    for n in range(5):
        etag = kvs.write(ROUTING_KEY, str(n), if_match=etag)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["kvs.json", "kvs.json.lock"]
    assert json.loads((tmp_path / "kvs.json").read_text()) == {"etag": etag, "items": {ROUTING_KEY: "4"}}


def test_corrupt_store_file_is_a_backend_error(tmp_path: Path) -> None:
    (tmp_path / "kvs.json").write_text("{half a document")

    with pytest.raises(BackendError, match="unreadable key-value store"):
        LocalKeyValueStore(tmp_path / "kvs.json").read(ROUTING_KEY)


# -- LocalObjectStore -----------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "bucket")


def test_put_file_keeps_the_bytes_and_the_headers(store: LocalObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "app.js"
    source.write_bytes(b"console.log(1)")

    store.put_file(
        "releases/a/app.js", source, content_type="text/javascript", cache_control="no-cache", metadata={"release": "a"}
    )

    stored = store.get_object("releases/a/app.js")
    assert stored is not None
    assert (stored.body, stored.content_type, stored.cache_control, stored.metadata) == (
        b"console.log(1)",
        "text/javascript",
        "no-cache",
        {"release": "a"},
    )
    assert stored.etag


def test_put_bytes_if_absent_writes_once(store: LocalObjectStore) -> None:
    first = store.put_bytes("_meta/pending/a.json", b"first", content_type="application/json", if_absent=True)
    second = store.put_bytes("_meta/pending/a.json", b"second", content_type="text/plain", if_absent=True)

    assert (first, second) == (True, False)
    assert store.get("_meta/pending/a.json") == b"first"
    stored = store.get_object("_meta/pending/a.json")
    assert stored is not None and stored.content_type == "application/json"


def test_put_bytes_overwrites_without_if_absent(store: LocalObjectStore) -> None:
    store.put_bytes("k.json", b"1", content_type="application/json")

    assert store.put_bytes("k.json", b"2", content_type="application/json") is True
    assert store.get("k.json") == b"2"


def test_concurrent_if_absent_writes_have_exactly_one_winner(store: LocalObjectStore) -> None:
    results: list[bool] = []
    start = threading.Barrier(16)

    def claim(n: int) -> None:
        start.wait()
        results.append(store.put_bytes("claim.json", str(n).encode(), content_type="application/json", if_absent=True))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 15 + [True]


@pytest.mark.parametrize(
    "key", ["../escape.txt", "releases/../../escape.txt", "/etc/passwd", "a//b", "./a", "a\\b", ""]
)
def test_unsafe_keys_are_refused(store: LocalObjectStore, tmp_path: Path, key: str) -> None:
    with pytest.raises(BackendError, match="unsafe object key"):
        store.put_bytes(key, b"x", content_type="text/plain")
    with pytest.raises(BackendError, match="unsafe object key"):
        store.get(key)
    assert not (tmp_path / "escape.txt").exists()


def test_copy_rewrites_headers_and_a_missing_source_is_a_backend_error(store: LocalObjectStore) -> None:
    store.put_bytes("releases/a/x.js", b"x", content_type="text/javascript", metadata={"release": "a"})

    store.copy(
        "releases/a/x.js",
        "releases/b/x.js",
        content_type="text/javascript",
        cache_control="c",
        metadata={"release": "b"},
    )

    copied = store.get_object("releases/b/x.js")
    assert copied is not None and (copied.body, copied.metadata) == (b"x", {"release": "b"})
    with pytest.raises(BackendError, match="no such object"):
        store.copy("releases/z/x.js", "releases/b/y.js", content_type="t", cache_control="c", metadata={})


def test_list_finds_keys_by_prefix_and_skips_temporary_files(store: LocalObjectStore, tmp_path: Path) -> None:
    for key in ("releases/a/index.html", "releases/a/assets/app.js", "releases/ab/index.html", "_meta/x.json"):
        store.put_bytes(key, b"12", content_type="text/plain")
    (tmp_path / "bucket" / "objects" / "releases" / "a" / ".tmp-half").write_bytes(b"partial")

    assert sorted(store.list("releases/a/")) == [("releases/a/assets/app.js", 2), ("releases/a/index.html", 2)]
    assert sorted(k for k, _ in store.list("releases/a")) == [
        "releases/a/assets/app.js",
        "releases/a/index.html",
        "releases/ab/index.html",
    ]
    assert list(store.list_folders("releases/")) == ["a", "ab"]


def test_delete_counts_objects_and_removes_empty_folders(store: LocalObjectStore, tmp_path: Path) -> None:
    store.put_bytes("releases/a/deep/x.js", b"x", content_type="text/plain")
    store.put_bytes("releases/b/y.js", b"y", content_type="text/plain")

    deleted = store.delete(["releases/a/deep/x.js", "releases/a/missing.js"])

    assert deleted == 1
    assert not (tmp_path / "bucket" / "objects" / "releases" / "a").exists()
    assert not (tmp_path / "bucket" / "headers" / "releases" / "a").exists()
    assert store.get("releases/b/y.js") == b"y"
    assert store.get_object("releases/a/deep/x.js") is None
