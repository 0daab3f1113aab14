"""A release's ``_redirects``/``_headers`` through the engine and ``serve``: they switch and roll back with the release."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hosting_toolkit.cli.main import app
from hosting_toolkit.config import HostingConfig, SiteConfig
from hosting_toolkit.contract import (
    COHORT_COOKIE,
    COHORTS,
    PREVIEW_RELEASE_HEADER,
    PREVIEW_TOKEN_HEADER,
    RELEASE_COOKIE,
    RELEASE_HEADER,
    ROUTING_KEY,
    RoutingState,
    rules_key,
)
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.errors import InvalidInputError
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.preview import preview
from hosting_toolkit.release.rollout import Rollouts
from hosting_toolkit.release.routing import delete_key
from hosting_toolkit.target import local_target
from tests.fakes.sites import write_files
from tests.integration.conftest import Edge, FakeKvs

pytestmark = [pytest.mark.integration, pytest.mark.node]

CORPUS = json.loads((Path(__file__).parents[1] / "data" / "netlify_rules_corpus.json").read_text(encoding="utf-8"))
CASES = [pytest.param(case, id=case["name"]) for case in CORPUS["cases"]]


def build(folder: Path, case: dict[str, Any]) -> Path:
    files = {name: f"file {name}\n" for name in case["files"]}
    if "redirects" in case:
        files["_redirects"] = case["redirects"]
    if "headers" in case:
        files["_headers"] = case["headers"]
    return write_files(folder, files)


@pytest.mark.parametrize("case", CASES)
def test_corpus_case_through_serve(tmp_path: Path, function_sandbox: FunctionSandbox, case: dict[str, Any]) -> None:
    config = HostingConfig(site=SiteConfig(mode=case.get("mode", "spa")))
    edge = Edge(tmp_path, config, function_sandbox)
    try:
        release = edge.engine.create(build(tmp_path / "build", case)).id
        for expected in case["requests"]:
            status, headers, body = edge.get(expected["path"])
            assert status == expected["status"], expected
            if "location" in expected:
                assert headers["location"] == expected["location"]
                assert headers[RELEASE_HEADER] == release
            if "serves" in expected:
                assert body == f"file {expected['serves']}\n".encode(), expected
                assert headers[RELEASE_HEADER] == release
            for name, value in expected.get("headers", {}).items():
                assert headers.get(name) == value, (expected["path"], name)
    finally:
        edge.close()


V1 = {"index.html": "<h1>one</h1>", "app-1.js": "one()"}
V2 = {
    "index.html": "<h1>two</h1>",
    "app-2.js": "two()",
    "sale.html": "<h1>sale</h1>",
    "_redirects": "/promo  /sale.html  302\n",
    "_headers": "/*\n  X-Release-Note: two\n",
}


@pytest.fixture
def edge(tmp_path: Path, function_sandbox: FunctionSandbox) -> Iterator[Edge]:
    running = Edge(tmp_path, HostingConfig(), function_sandbox)
    yield running
    running.close()


def promo(edge: Edge, headers: dict[str, str] | None = None) -> tuple[int, str | None]:
    status, got, _ = edge.get("/promo", headers)
    return status, got.get("location")


def cohort(n: int) -> str:
    return f"{COHORT_COOKIE}={n}.{int(time.time())}"


def test_the_redirect_exists_exactly_while_its_release_serves(edge: Edge, tmp_path: Path) -> None:
    one = edge.engine.create(write_files(tmp_path / "v1", V1)).id
    assert promo(edge)[0] == 200
    two = edge.engine.create(write_files(tmp_path / "v2", V2)).id
    assert edge.engine.status().rules == (two,)
    assert promo(edge) == (302, "/sale.html")
    assert edge.get("/")[1]["x-release-note"] == "two"
    edge.engine.rollback()
    assert edge.engine.status().live == one and edge.engine.status().rules == (two,)  # still pinned
    assert promo(edge)[0] == 200
    assert "x-release-note" not in edge.get("/")[1]
    # A page of release two keeps loading its own assets (pinned): with its headers, by its rules.
    status, headers, _ = edge.get("/app-2.js", {"Cookie": f"{RELEASE_COOKIE}={two}"})
    assert (status, headers[RELEASE_HEADER], headers["x-release-note"]) == (200, two, "two")
    edge.engine.activate(two)
    assert promo(edge) == (302, "/sale.html")


def test_a_canary_cohort_and_a_preview_get_the_rules_of_their_release(edge: Edge, tmp_path: Path) -> None:
    edge.engine.create(write_files(tmp_path / "v1", V1))
    two = edge.engine.create(write_files(tmp_path / "v2", V2), activate=False).id
    assert promo(edge)[0] == 200
    # The staged release's preview link (as `preview ID` or the pipeline's verify makes it).
    token = preview(edge.engine, two, None).token
    assert promo(edge, {PREVIEW_RELEASE_HEADER: two, PREVIEW_TOKEN_HEADER: token}) == (302, "/sale.html")
    edge.engine.canary(two, 10)
    assert promo(edge, {"Cookie": cohort(0)}) == (302, "/sale.html")
    assert promo(edge, {"Cookie": cohort(COHORTS - 1)})[0] == 200
    edge.engine.abort()
    assert promo(edge, {"Cookie": cohort(0)})[0] == 200
    assert edge.engine.status().rules == ()


def test_reads_per_request_through_serve(edge: Edge, tmp_path: Path) -> None:
    edge.engine.create(write_files(tmp_path / "v1", V1))
    assert [edge.local_edge.handle("GET", p, []).kvs_reads for p in ("/", "/promo", "/app-1.js")] == [1, 1, 1]
    edge.engine.create(write_files(tmp_path / "v2", V2))
    assert [edge.local_edge.handle("GET", p, []).kvs_reads for p in ("/", "/promo", "/app-2.js")] == [2, 2, 2]


def test_prune_removes_a_retired_release_rules_key(edge: Edge, tmp_path: Path) -> None:
    two = edge.engine.create(write_files(tmp_path / "v2", V2)).id
    assert edge.engine.kvs.read(rules_key(two))[0] is not None
    record = edge.engine.record(two)
    assert record is not None and json.loads(record.rules)["r"][0][2] == 302
    for n in range(edge.engine.config.release.pins + 1):
        edge.engine.create(write_files(tmp_path / f"v{n + 3}", {**V1, "index.html": f"<h1>{n}</h1>"}))
    result = edge.engine.prune(keep=0)
    assert two in result.removed
    assert edge.engine.kvs.read(rules_key(two))[0] is None


def test_a_release_with_refused_rules_is_not_created_and_every_problem_is_listed(edge: Edge, tmp_path: Path) -> None:
    bad = {
        **V1,
        "_redirects": "/a /b 302 Country=us\n/api/* https://api.example.com/:splat 200\n/ok /index.html\n",
        "_headers": "/*\n  X-Frame-Options: DENY\n",
    }
    with pytest.raises(InvalidInputError) as caught:
        edge.engine.create(write_files(tmp_path / "bad", bad))
    message = str(caught.value)
    assert "3 problems" in message
    assert "_redirects:1:" in message and "_redirects:2:" in message and "_headers:2:" in message
    assert edge.engine.records() == [] and edge.engine.pending() == []
    assert list(edge.engine.store.list("releases/")) == []


def test_rules_over_one_kvs_value_are_refused_with_the_limit(edge: Edge, tmp_path: Path) -> None:
    many = "".join(f"/old-page-number-{n} /new-page-number-{n} 301\n" for n in range(60))
    with pytest.raises(InvalidInputError, match="over the 1,024-byte limit of one KeyValueStore value"):
        edge.engine.create(write_files(tmp_path / "many", {**V1, "_redirects": many}))


def test_rollout_steps_and_undo_switch_the_rules_with_the_release(edge: Edge, tmp_path: Path) -> None:
    edge.engine.create(write_files(tmp_path / "v1", V1))
    two = edge.engine.create(write_files(tmp_path / "v2", V2), activate=False).id
    rollouts = Rollouts(edge.engine)
    rollouts.step("launch", two, 10, 0)
    assert edge.engine.status().rules == (two,)
    assert promo(edge, {"Cookie": cohort(0)}) == (302, "/sale.html")
    assert promo(edge, {"Cookie": cohort(COHORTS - 1)})[0] == 200
    rollouts.step("launch", two, 100, 1)
    assert promo(edge, {"Cookie": cohort(COHORTS - 1)}) == (302, "/sale.html")
    rollouts.undo("launch", two, "alarm")
    assert promo(edge, {"Cookie": cohort(0)})[0] == 200
    assert promo(edge, {"Cookie": cohort(COHORTS - 1)})[0] == 200


def test_a_rules_key_is_written_and_deleted_through_the_keyvaluestore_api(fake_kvs: FakeKvs, tmp_path: Path) -> None:
    engine = ReleaseEngine(local_target(tmp_path / "target", HostingConfig()).store, fake_kvs.store, HostingConfig())
    two = engine.create(write_files(tmp_path / "v2", V2)).id
    assert json.loads(fake_kvs.server.items(fake_kvs.arn)[rules_key(two)])["r"][0][1] == ["/sale.html"]
    assert RoutingState.from_json(fake_kvs.server.items(fake_kvs.arn)[ROUTING_KEY]).rules == (two,)
    assert delete_key(fake_kvs.store, rules_key(two)).after is None
    assert rules_key(two) not in fake_kvs.server.items(fake_kvs.arn)
    assert delete_key(fake_kvs.store, rules_key(two)).before is None


def test_the_release_command_reports_its_rules_and_refusals_on_one_error(clean_cli_env: None, tmp_path: Path) -> None:
    target = tmp_path / "target"
    good = CliRunner().invoke(app, ["--local", str(target), "release", str(write_files(tmp_path / "v2", V2)), "--json"])
    assert good.exit_code == 0, good.stderr
    assert json.loads(good.stdout)["rules"] == 2
    assert "rules: 1 redirects and rewrites, 1 header rules" in good.stderr
    bad = {**V1, "_redirects": "/a /b 302 Role=admin\n/c https://x.example/ 200\n"}
    refused = CliRunner().invoke(app, ["--local", str(target), "release", str(write_files(tmp_path / "bad", bad))])
    assert refused.exit_code != 0
    assert "_redirects:1: 'Role=admin'" in refused.stderr and "_redirects:2:" in refused.stderr
    assert "Traceback" not in refused.stderr
