"""The engine's KeyValueStore backend against the data-plane API over HTTP (real boto3, SigV4A)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hosting_toolkit.contract import KVS_VALUE_LIMIT, ROUTING_KEY, RoutingState
from hosting_toolkit.errors import BackendError
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.kvs import AwsKeyValueStore, KeyValueStore, KvsConflict, LocalKeyValueStore, kvs_client
from hosting_toolkit.release.routing import read_routing, update_routing
from hosting_toolkit.release.storage import LocalObjectStore
from tests.fakes.sites import numbered_site
from tests.integration.conftest import FakeKvs, make_config

pytestmark = pytest.mark.integration


# -- the fake speaks the service's protocol -------------------------------------------------------


def test_describe_returns_status_counts_and_etag_header(fake_kvs: FakeKvs) -> None:
    client = fake_kvs.store.client

    described = client.describe_key_value_store(KvsARN=fake_kvs.arn)

    assert described["KvsARN"] == fake_kvs.arn
    assert described["Status"] == "READY"
    assert described["ItemCount"] == 0
    assert described["ETag"] == fake_kvs.server.etag(fake_kvs.arn)
    assert described["Created"].year >= 2024


def test_arn_arrives_url_encoded_as_one_path_segment(fake_kvs: FakeKvs) -> None:
    fake_kvs.store.read("a key/with slash")

    assert fake_kvs.server.raw_paths[-1].startswith("/key-value-stores/arn%3Aaws%3Acloudfront%3A%3A")
    assert fake_kvs.server.raw_paths[-1].endswith("/keys/a%20key%2Fwith%20slash")


def test_put_get_list_update_and_delete_keys_round_trip(fake_kvs: FakeKvs) -> None:
    client = fake_kvs.store.client
    arn = fake_kvs.arn
    etag = client.describe_key_value_store(KvsARN=arn)["ETag"]

    put = client.put_key(KvsARN=arn, Key="a", Value="1", IfMatch=etag)
    updated = client.update_keys(
        KvsARN=arn, IfMatch=put["ETag"], Puts=[{"Key": f"k{n}", "Value": str(n)} for n in range(7)], Deletes=[]
    )
    deleted = client.delete_key(KvsARN=arn, Key="k0", IfMatch=updated["ETag"])
    pages = list(client.get_paginator("list_keys").paginate(KvsARN=arn, PaginationConfig={"PageSize": 3}))

    assert put["ItemCount"] == 1 and put["TotalSizeInBytes"] == 2
    assert updated["ItemCount"] == 8
    assert deleted["ItemCount"] == 7
    assert len({put["ETag"], updated["ETag"], deleted["ETag"], etag}) == 4
    assert client.get_key(KvsARN=arn, Key="k3")["Value"] == "3"
    assert len(pages) == 3
    assert [item["Key"] for page in pages for item in page["Items"]] == ["a", *(f"k{n}" for n in range(1, 7))]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c, arn: c.get_key(KvsARN=arn, Key="missing"), "ResourceNotFoundException"),
        (lambda c, arn: c.put_key(KvsARN=arn, Key="k", Value="v", IfMatch="stale"), "ConflictException"),
        (
            lambda c, arn: c.update_keys(KvsARN=arn, IfMatch="stale", Puts=[{"Key": "k", "Value": "v"}]),
            "ConflictException",
        ),
        (lambda c, arn: c.describe_key_value_store(KvsARN=arn + "-other"), "ResourceNotFoundException"),
    ],
    ids=["missing-key", "stale-put", "stale-update", "unknown-store"],
)
def test_errors_parse_into_the_modeled_exceptions(
    fake_kvs: FakeKvs, call: Callable[[Any, str], object], error: str
) -> None:
    client = fake_kvs.store.client

    with pytest.raises(client.exceptions.ClientError) as caught:
        call(client, fake_kvs.arn)

    assert caught.value.response["Error"]["Code"] == error
    assert type(caught.value).__name__ == error
    assert caught.value.response["Error"]["Message"]


def test_value_over_the_limit_is_a_validation_error(fake_kvs: FakeKvs) -> None:
    client = fake_kvs.store.client
    etag = client.describe_key_value_store(KvsARN=fake_kvs.arn)["ETag"]

    with pytest.raises(client.exceptions.ValidationException):
        client.put_key(KvsARN=fake_kvs.arn, Key="k", Value="x" * (KVS_VALUE_LIMIT + 1), IfMatch=etag)
    client.put_key(KvsARN=fake_kvs.arn, Key="k", Value="x" * KVS_VALUE_LIMIT, IfMatch=etag)


# -- the engine's backend over that protocol ------------------------------------------------------


def test_engine_client_reaches_a_local_endpoint_with_credentials_from_the_environment(fake_kvs: FakeKvs) -> None:
    # The service's endpoint rules prefix the host with the ARN's account id; the client keeps the host.
    store = AwsKeyValueStore(kvs_client(endpoint_url=fake_kvs.server.url), fake_kvs.arn)

    value, etag = store.read(ROUTING_KEY)
    store.write(ROUTING_KEY, '{"live":"a"}', if_match=etag)

    assert value is None
    assert fake_kvs.server.items(fake_kvs.arn) == {ROUTING_KEY: '{"live":"a"}'}


def test_read_of_a_missing_key_returns_none_and_the_store_etag(fake_kvs: FakeKvs) -> None:
    value, etag = fake_kvs.store.read(ROUTING_KEY)

    assert value is None
    assert etag == fake_kvs.server.etag(fake_kvs.arn)


def test_write_with_the_read_etag_stores_the_value_in_one_put(fake_kvs: FakeKvs) -> None:
    _, etag = fake_kvs.store.read(ROUTING_KEY)

    new_etag = fake_kvs.store.write(ROUTING_KEY, '{"live":"a"}', if_match=etag)

    assert fake_kvs.server.items(fake_kvs.arn) == {ROUTING_KEY: '{"live":"a"}'}
    assert new_etag == fake_kvs.server.etag(fake_kvs.arn) != etag
    assert fake_kvs.store.read(ROUTING_KEY) == ('{"live":"a"}', new_etag)
    assert fake_kvs.server.count("PutKey") == 1


def test_write_with_a_stale_etag_raises_kvs_conflict_and_changes_nothing(fake_kvs: FakeKvs) -> None:
    _, stale = fake_kvs.store.read(ROUTING_KEY)
    fake_kvs.store.write(ROUTING_KEY, '{"live":"a"}', if_match=stale)

    with pytest.raises(KvsConflict):
        fake_kvs.store.write(ROUTING_KEY, '{"live":"b"}', if_match=stale)

    assert fake_kvs.server.items(fake_kvs.arn) == {ROUTING_KEY: '{"live":"a"}'}


def test_write_over_the_value_limit_is_a_backend_error(fake_kvs: FakeKvs) -> None:
    _, etag = fake_kvs.store.read(ROUTING_KEY)

    with pytest.raises(BackendError, match="ValidationException"):
        fake_kvs.store.write(ROUTING_KEY, "x" * (KVS_VALUE_LIMIT + 1), if_match=etag)


def test_unknown_store_is_a_backend_error_naming_the_arn(fake_kvs: FakeKvs) -> None:
    fake_kvs.store.arn += "-gone"

    with pytest.raises(BackendError, match="-gone"):
        fake_kvs.store.read(ROUTING_KEY)


def test_update_routing_over_http_re_reads_after_a_racing_writer(fake_kvs: FakeKvs) -> None:
    racing = {"done": False}

    def change(state: RoutingState) -> RoutingState:
        if not racing["done"]:
            racing["done"] = True
            _, etag = fake_kvs.store.read(ROUTING_KEY)
            fake_kvs.store.write(ROUTING_KEY, RoutingState(live="other", pins=("old",)).to_json(), if_match=etag)
        return RoutingState(live="mine", pins=tuple(p for p in (state.live, *state.pins) if p))

    result = update_routing(fake_kvs.store, change, sleep=lambda _: None)

    assert result.attempts == 2
    assert read_routing(fake_kvs.store)[0] == RoutingState(live="mine", pins=("other", "old"))


# -- concurrent activations -----------------------------------------------------------------------


def _staged_releases(engine: ReleaseEngine, tmp_path: Path, count: int) -> list[str]:
    ids = []
    for n in range(count):
        site = numbered_site(tmp_path / f"site-{n}", 3, marker=f"release {n}")
        ids.append(engine.create(site, activate=False).id)
    return ids


@pytest.mark.parametrize("backend", ["fake-kvs-server", "local-file"])
def test_parallel_activations_leave_one_of_them_live_and_lose_no_history(
    backend: str, fake_kvs: FakeKvs, tmp_path: Path
) -> None:
    kvs: KeyValueStore = fake_kvs.store if backend == "fake-kvs-server" else LocalKeyValueStore(tmp_path / "kvs.json")
    engine = ReleaseEngine(LocalObjectStore(tmp_path / "bucket"), kvs, make_config(), actor="tests")
    ids = _staged_releases(engine, tmp_path, 20)
    errors: list[BaseException] = []
    start = threading.Barrier(len(ids))

    def activate(release_id: str) -> None:
        try:
            start.wait()
            engine.activate(release_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=activate, args=(rid,)) for rid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    state = engine.status()
    history = engine.history()
    assert errors == []
    assert state.live in ids
    assert set(state.pins) <= set(ids) - {state.live}
    assert len(state.pins) == engine.config.release.pins
    assert [e.action for e in history] == ["activate"] * 20
    assert sorted(e.to_release for e in history) == sorted(ids)
    # Each write replaced exactly the state before it: the writes form one chain, none was lost.
    assert sorted(str(e.from_release) for e in history) == sorted(["None", *(set(ids) - {state.live})])
    if backend == "fake-kvs-server":
        assert fake_kvs.server.items(fake_kvs.arn) == {ROUTING_KEY: state.to_json()}
