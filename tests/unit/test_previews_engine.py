"""Previews in the release engine: names, one conditional write of the preview's own key, removal,
prune, the store's limits, and a preview build kept away from the routing state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hosting_toolkit.config import HostingConfig, PreviewsConfig, ReleaseConfig
from hosting_toolkit.contract import (
    KVS_STORE_LIMIT,
    KVS_VALUE_LIMIT,
    PREVIEW_NAME_MAX,
    ROUTING_KEY,
    PreviewState,
    is_release_id,
    preview_key,
)
from hosting_toolkit.errors import BackendError, InvalidInputError, NotFoundError
from hosting_toolkit.release import previews
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.kvs import LocalKeyValueStore
from hosting_toolkit.release.preview import preview_token
from hosting_toolkit.release.previews import (
    MAX_PREVIEWS,
    PreviewKeys,
    branch_preview_name,
    branch_previewed,
    expire_previews,
    open_previews,
    pull_request_preview_name,
    remove_preview,
    stage_preview,
)
from hosting_toolkit.release.storage import LocalObjectStore
from tests.fakes.sites import sample_site


class CountingKvs(LocalKeyValueStore):
    """The local store, recording every write and delete by key."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.changes: list[str] = []

    def write(self, key: str, value: str, *, if_match: str) -> str:
        self.changes.append(key)
        return super().write(key, value, if_match=if_match)

    def delete(self, key: str, *, if_match: str) -> str:
        self.changes.append(f"-{key}")
        return super().delete(key, if_match=if_match)


@pytest.fixture
def engine(tmp_path: Path) -> ReleaseEngine:
    config = HostingConfig(release=ReleaseConfig(concurrency=4, keep=1), previews=PreviewsConfig(enabled=True))
    return ReleaseEngine(LocalObjectStore(tmp_path / "bucket"), CountingKvs(tmp_path / "kvs.json"), config, actor="t")


def make(engine: ReleaseEngine, tmp_path: Path, *ids: str) -> None:
    for rid in ids:
        engine.create(sample_site(tmp_path / rid, marker=rid), release_id=rid, activate=False)


def changes(engine: ReleaseEngine) -> list[str]:
    assert isinstance(engine.kvs, CountingKvs)
    return engine.kvs.changes


@pytest.mark.parametrize(
    ("branch", "name"),
    [("feature-x", "branch-feature-x"), ("fix-1", "branch-fix-1"), ("a", "branch-a")],
)
def test_a_branch_whose_slug_is_itself_gets_the_plain_name(branch: str, name: str) -> None:
    assert branch_preview_name(branch) == name


def test_branch_names_are_dns_labels_length_limited_and_never_collide() -> None:
    branches = ["feature/x", "feature-x", "Feature-X", "feature_x", "feature--x", "x" * 300, "x" * 301, "ünï/cødé", "-"]
    names = [branch_preview_name(b) for b in branches]
    assert len(set(names)) == len(names)
    for name in names:
        assert len(name) <= PREVIEW_NAME_MAX
        assert previews.check_name(name) == name
        assert is_release_id(name)
    assert branch_preview_name("feature/x") == branch_preview_name("feature/x")


def test_pull_request_names() -> None:
    assert pull_request_preview_name(42) == "pr-42"
    assert pull_request_preview_name("7") == "pr-7"
    for bad in ("0", "-1", "x", "4 2", ""):
        with pytest.raises(InvalidInputError):
            pull_request_preview_name(bad)


@pytest.mark.parametrize(
    ("branch", "patterns", "expected"),
    [
        ("feature/x", ["*"], True),
        ("main", ["*"], False),
        ("feature/x", ["feature/*"], True),
        ("fix/y", ["feature/*"], False),
        ("release/1", ["*", "!release/*"], False),
        ("dependabot/npm", ["*", "!dependabot/*"], False),
    ],
)
def test_branch_patterns_with_excludes_and_the_production_branch(
    branch: str, patterns: list[str], expected: bool
) -> None:
    assert branch_previewed(branch, patterns, production_branch="main") is expected


def test_staging_a_preview_writes_only_its_own_key_once(engine: ReleaseEngine, tmp_path: Path) -> None:
    make(engine, tmp_path, "prod1", "pv1")
    engine.activate("prod1")
    before_routing = engine.kvs.read(ROUTING_KEY)[0]
    changes(engine).clear()

    state = stage_preview(engine, "pr-42", "pv1", "pr:42")

    assert changes(engine) == [preview_key("pr-42")]
    assert engine.kvs.read(ROUTING_KEY)[0] == before_routing
    assert state.live == "pv1" and state.ref == "pr:42" and state.pins == ()
    assert [(p.name, p.release, p.ref) for p in open_previews(engine.kvs)] == [("pr-42", "pv1", "pr:42")]


def test_a_push_moves_the_preview_and_pins_its_previous_release(engine: ReleaseEngine, tmp_path: Path) -> None:
    make(engine, tmp_path, "pv1", "pv2", "pv3", "pv4")
    for rid in ("pv1", "pv2", "pv3"):
        stage_preview(engine, "branch-x", rid, "branch:x")
    changes(engine).clear()
    state = stage_preview(engine, "branch-x", "pv4")
    assert state.live == "pv4" and state.pins == ("pv3", "pv2") and state.ref == "branch:x"
    assert changes(engine) == [preview_key("branch-x")]
    # The same release again writes nothing.
    changes(engine).clear()
    stage_preview(engine, "branch-x", "pv4")
    assert changes(engine) == []


def test_staging_refuses_unknown_releases_and_bad_names_before_writing(engine: ReleaseEngine, tmp_path: Path) -> None:
    make(engine, tmp_path, "pv1")
    with pytest.raises(NotFoundError):
        stage_preview(engine, "pr-1", "nope")
    for bad in ("PR-1", "pr_1", "-x", "x-", "a" * 41, "a.b", ""):
        with pytest.raises(InvalidInputError):
            stage_preview(engine, bad, "pv1")
    with pytest.raises(InvalidInputError, match="over 300 bytes"):
        stage_preview(engine, "branch-x", "pv1", "branch:" + "x" * 400)
    assert changes(engine) == []


def test_remove_deletes_the_key_and_a_second_remove_changes_nothing(engine: ReleaseEngine, tmp_path: Path) -> None:
    make(engine, tmp_path, "pv1")
    stage_preview(engine, "pr-5", "pv1")
    removed = remove_preview(engine, "pr-5")
    assert removed is not None and removed.live == "pv1"
    assert engine.kvs.read(preview_key("pr-5"))[0] is None
    changes(engine).clear()
    assert remove_preview(engine, "pr-5") is None
    assert changes(engine) == []


def test_prune_retires_releases_only_removed_previews_reached_and_keeps_open_ones(
    engine: ReleaseEngine, tmp_path: Path
) -> None:
    make(engine, tmp_path, "prod1", "prod2", "gone1", "gone2", "open1", "open2")
    engine.activate("prod1")
    engine.activate("prod2")
    stage_preview(engine, "pr-1", "gone1")
    stage_preview(engine, "pr-1", "gone2")
    stage_preview(engine, "pr-2", "open1")
    stage_preview(engine, "pr-2", "open2")
    remove_preview(engine, "pr-1")

    result = engine.prune()

    assert sorted(result.removed) == ["gone1", "gone2"]
    ids = {r.id for r in engine.records()}
    # keep = 1 counts production's releases only; prod1 stays as prod2's pin.
    assert ids == {"prod1", "prod2", "open1", "open2"}


def test_a_promoted_preview_release_counts_as_production(engine: ReleaseEngine, tmp_path: Path) -> None:
    make(engine, tmp_path, "prod1", "pv1", "prod3")
    engine.activate("prod1")
    stage_preview(engine, "pr-1", "pv1")
    engine.activate("pv1")
    remove_preview(engine, "pr-1")
    engine.activate("prod3")
    result = engine.prune(keep=2)
    assert "pv1" not in result.removed


def test_prune_expires_previews_older_than_retention(engine: ReleaseEngine, tmp_path: Path) -> None:
    make(engine, tmp_path, "old1", "new1")
    stage_preview(engine, "pr-1", "old1")
    stage_preview(engine, "pr-2", "new1")
    later = datetime.now(UTC) + timedelta(days=engine.config.previews.retention_days, hours=1)
    assert expire_previews(engine, engine.config.previews, now=later) == ["pr-1", "pr-2"]
    assert open_previews(engine.kvs) == []
    assert expire_previews(engine, engine.config.previews) == []


def test_a_preview_build_cannot_write_or_delete_the_routing_state(engine: ReleaseEngine, tmp_path: Path) -> None:
    make(engine, tmp_path, "prod1", "pv1")
    engine.activate("prod1")
    guarded = ReleaseEngine(engine.store, PreviewKeys(engine.kvs), engine.config, actor="preview-build")
    routing = engine.kvs.read(ROUTING_KEY)[0]
    with pytest.raises(BackendError, match="preview:"):
        guarded.activate("pv1")
    with pytest.raises(BackendError):
        guarded.canary("pv1", 10)
    etag = engine.kvs.read(ROUTING_KEY)[1]
    with pytest.raises(BackendError):
        PreviewKeys(engine.kvs).delete(ROUTING_KEY, if_match=etag)
    assert engine.kvs.read(ROUTING_KEY)[0] == routing
    stage_preview(guarded, "pr-3", "pv1")
    assert engine.kvs.read(preview_key("pr-3"))[0] is not None


def test_the_store_limits_give_a_clear_error_before_they_are_reached(
    engine: ReleaseEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(engine, tmp_path, "pv1")
    stage_preview(engine, "pr-1", "pv1")
    stage_preview(engine, "pr-2", "pv1")
    monkeypatch.setattr(previews, "MAX_PREVIEWS", 2)
    with pytest.raises(InvalidInputError, match="holds 2 previews, the most it takes"):
        stage_preview(engine, "pr-3", "pv1")
    # Moving an open preview still works at the limit.
    stage_preview(engine, "pr-2", "pv1", "pr:2")
    monkeypatch.setattr(previews, "MAX_PREVIEWS", 10)
    monkeypatch.setattr(previews, "KVS_STORE_LIMIT", 2 * KVS_VALUE_LIMIT)
    with pytest.raises(InvalidInputError, match="could pass CloudFront's limit"):
        stage_preview(engine, "pr-3", "pv1")
    assert engine.kvs.read(preview_key("pr-3"))[0] is None


def test_how_many_previews_fit_in_the_store() -> None:
    """At their largest (a 255-character branch, full pins) MAX_PREVIEWS still fit in 5 MB with the reserve."""
    largest = PreviewState(
        live="a" * 40, pins=("b" * 40, "c" * 40), ref="branch:" + "x" * 255, at="2026-01-01T00:00:00Z"
    ).to_json()
    entry = len(preview_key("branch-" + "x" * 33).encode()) + len(largest.encode())
    assert MAX_PREVIEWS * entry + previews.RESERVED_BYTES <= KVS_STORE_LIMIT


def test_a_preview_state_marks_the_releases_that_bring_rules(engine: ReleaseEngine, tmp_path: Path) -> None:
    plain = "a00000000001"
    engine.create(sample_site(tmp_path / plain, marker=plain), release_id=plain, activate=False)
    ruled = "b00000000002"
    folder = sample_site(tmp_path / ruled, marker=ruled)
    (folder / "_redirects").write_text("/old /new 301\n")
    engine.create(folder, release_id=ruled, activate=False)

    first = stage_preview(engine, "pr-7", plain, "pr:7")
    second = stage_preview(engine, "pr-7", ruled, "pr:7")

    assert first.rules == ()
    assert (second.live, second.pins, second.rules) == (ruled, (plain,), (ruled,))
    stored, _ = engine.kvs.read(preview_key("pr-7"))
    assert stored is not None and PreviewState.from_json(stored).rules == (ruled,)


def test_a_preview_key_keeps_a_copy_of_the_token_and_a_rotation_rewrites_it(
    engine: ReleaseEngine, tmp_path: Path
) -> None:
    make(engine, tmp_path, "a00000000001")
    before = stage_preview(engine, "pr-8", "a00000000001", "pr:8")
    assert before.token == ""
    created = preview_token(engine.kvs)
    assert created.created

    def stored() -> PreviewState:
        text, _ = engine.kvs.read(preview_key("pr-8"))
        assert text is not None
        return PreviewState.from_json(text)

    # Created first, the token is not copied (that would need a listing): the router reads it instead.
    assert stored().token == ""
    assert stage_preview(engine, "pr-8", "a00000000001", "pr:8").token == created.value
    assert stored().token == created.value
    rotated = preview_token(engine.kvs, rotate=True)
    assert rotated.value != created.value and stored().token == rotated.value
    assert stored().live == "a00000000001" and stored().ref == "pr:8"
    make(engine, tmp_path, "b00000000002")
    assert stage_preview(engine, "pr-8", "b00000000002", "pr:8").token == rotated.value
