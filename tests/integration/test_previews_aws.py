"""Previews on the real protocols: moto_server S3 and the KeyValueStore fake over HTTP (SigV4A boto3).
Each move is one PutKey and each removal one DeleteKey, both with the store's ETag; routing is untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from hosting_toolkit.config import HostingConfig, PreviewsConfig, ReleaseConfig
from hosting_toolkit.contract import ROUTING_KEY, PreviewState, preview_key
from hosting_toolkit.errors import BackendError
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.kvs import KvsConflict
from hosting_toolkit.release.previews import PreviewKeys, open_previews, remove_preview, stage_preview
from tests.fakes.sites import sample_site
from tests.integration.conftest import TEST_CONCURRENCY, FakeKvs, S3Bucket

pytestmark = pytest.mark.integration


def test_a_preview_moves_and_goes_with_one_conditional_request_each(
    fake_kvs: FakeKvs, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    config = HostingConfig(release=ReleaseConfig(concurrency=TEST_CONCURRENCY), previews=PreviewsConfig(enabled=True))
    engine = ReleaseEngine(s3_bucket.store(), fake_kvs.store, config, actor="tests")
    for rid in ("prod1", "pv1", "pv2"):
        engine.create(sample_site(tmp_path / rid, marker=rid), release_id=rid, activate=rid == "prod1")
    routing = fake_kvs.server.items(fake_kvs.arn)[ROUTING_KEY]
    puts, deletes = fake_kvs.server.count("PutKey"), fake_kvs.server.count("DeleteKey")

    stage_preview(engine, "pr-1", "pv1", "pr:1")
    stage_preview(engine, "pr-1", "pv2")

    assert fake_kvs.server.count("PutKey") == puts + 2
    state = PreviewState.from_json(fake_kvs.server.items(fake_kvs.arn)[preview_key("pr-1")])
    assert (state.live, state.pins, state.ref) == ("pv2", ("pv1",), "pr:1")
    assert [p.name for p in open_previews(fake_kvs.store)] == ["pr-1"]

    remove_preview(engine, "pr-1")
    assert fake_kvs.server.count("DeleteKey") == deletes + 1
    assert preview_key("pr-1") not in fake_kvs.server.items(fake_kvs.arn)
    assert fake_kvs.server.items(fake_kvs.arn)[ROUTING_KEY] == routing
    assert s3_bucket.keys("_meta/previews/") == ["_meta/previews/pr-1.json"]


def test_a_delete_with_a_stale_etag_conflicts_and_routing_cannot_be_deleted(fake_kvs: FakeKvs) -> None:
    _, stale = fake_kvs.store.read(preview_key("pr-2"))
    etag = fake_kvs.store.write(preview_key("pr-2"), PreviewState(live="a").to_json(), if_match=stale)
    with pytest.raises(KvsConflict):
        fake_kvs.store.delete(preview_key("pr-2"), if_match=stale)
    fake_kvs.store.delete(preview_key("pr-2"), if_match=etag)
    assert fake_kvs.server.items(fake_kvs.arn) == {}
    with pytest.raises(BackendError, match="preview:"):
        PreviewKeys(fake_kvs.store).write(ROUTING_KEY, "{}", if_match=fake_kvs.store.read(ROUTING_KEY)[1])
