"""Parsing and compiling a build's ``_redirects`` and ``_headers``, and the routing marks of releases with rules."""

from __future__ import annotations

import json

import pytest

from hosting_toolkit.contract import RoutingState, rules_key
from hosting_toolkit.edge.rules import ONE_SEGMENT, REST
from hosting_toolkit.errors import InvalidInputError
from hosting_toolkit.release.kvs import LocalKeyValueStore
from hosting_toolkit.release.release_rules import RULES_VALUE_LIMIT, compile_rules
from hosting_toolkit.release.routing import update_key, update_routing

FILES = ["index.html", "about/index.html", "blog/post.html", "LICENSE", ".well-known/security.txt"]


def compiled(redirects: str | None = None, headers: str | None = None, *, mode: str = "spa") -> dict[str, object]:
    value = compile_rules(redirects, headers, FILES, mode=mode, entry="index.html").to_json()
    return json.loads(value) if value else {}


def test_redirect_lines_compile_in_file_order_with_their_status_force_and_conditions() -> None:
    rules = compiled(
        "# comment\n\n/home  /  \n/news/*  /blog/:splat  302!\n/store id=:id lang=en  /blog/:id  301\n"
        "/go  https://example.com/x?a=1  307\n/p/:slug  /blog/post.html  200\n/gone  /blog/post.html  410\n"
    )
    assert rules["r"] == [
        [["home"], ["/"], 301],
        [["news", REST], ["/blog/", 0], 302],
        [["store"], ["/blog/", 0], 301, [["id", 0], ["lang", "en"]]],
        [["go"], ["https://example.com/x"], 307, 0, "a=1"],
        [["p", ONE_SEGMENT], ["/blog/post.html"], 200],
        [["gone"], ["/blog/post.html"], 410],
        [["LICENSE"], ["/LICENSE"], 200, 0, 0, 1],
    ]


def test_every_problem_is_reported_at_once_with_file_and_line() -> None:
    with pytest.raises(InvalidInputError) as caught:
        compile_rules(
            "/ok /\n/a /b 302 Country=us\n/c\n/d /e 999\n/f https://x.example/:splat 200\n",
            "/*\n  Content-Length: 1\n  Nonsense\n/x\n",
            FILES,
            mode="spa",
            entry="index.html",
        )
    lines = str(caught.value).splitlines()
    assert lines[0] == "7 problems in the release's rules:"
    assert [line.split(": ")[0].strip() for line in lines[1:]] == [
        "_redirects:2",
        "_redirects:3",
        "_redirects:4",
        "_redirects:5",
        "_headers:2",
        "_headers:3",
        "_headers:4",
    ]


def test_a_rule_without_force_leaves_the_files_it_matches_to_them() -> None:
    notes = compile_rules("/about  /blog  301\n/blog/*  /  302\n", None, FILES, mode="static", entry="index.html")
    assert any("_redirects:1: /about is the file about/index.html" in note for note in notes.notes)
    assert notes.redirects[0] == [["blog", REST], ["/"], 302, 0, 0, 0, ["/blog/post", "/blog/post.html"]]
    # In spa mode a folder's path gets the entry page, so the folder's index.html does not shadow it.
    spa = compile_rules("/about  /blog  301\n", None, FILES, mode="spa", entry="index.html")
    assert spa.redirects[0] == [["about"], ["/blog"], 301]


def test_files_without_an_extension_are_matched_by_their_encoded_path() -> None:
    rules = compile_rules(None, None, ["index.html", "My Notes", "a/LICENSE"], mode="spa", entry="index.html")
    assert rules.redirects == [
        [["My%20Notes"], ["/My%20Notes"], 200, 0, 0, 1],
        [["a", "LICENSE"], ["/a/LICENSE"], 200, 0, 0, 1],
    ]


def test_the_spa_fallback_rule_is_what_spa_mode_does_already() -> None:
    rules = compile_rules("/*  /index.html  200\n", None, ["index.html"], mode="spa", entry="index.html")
    assert rules.empty and "what the spa mode already does" in rules.notes[0]


def test_files_without_an_extension_are_served_as_themselves_in_spa_mode_only() -> None:
    assert compiled()["r"] == [[["LICENSE"], ["/LICENSE"], 200, 0, 0, 1]]
    assert compiled(mode="static") == {}


def test_header_blocks_join_repeated_headers_and_remove_with_a_bang() -> None:
    rules = compiled(None, "/*\n  X-A: 1\n  x-a: 2\n  Cache-Control: no-cache\n/blog/:slug\n  ! Cache-Control\n")
    assert rules["h"] == [
        [[REST], {"x-a": "1, 2", "cache-control": "no-cache"}],
        [["blog", ONE_SEGMENT], {"cache-control": None}],
    ]


def test_rules_over_one_kvs_value_are_refused_naming_the_limit() -> None:
    many = "".join(f"/old-{n} /new-{n}\n" for n in range(80))
    with pytest.raises(InvalidInputError, match=f"over the {RULES_VALUE_LIMIT:,}-byte limit"):
        compile_rules(many, None, ["index.html"], mode="static", entry="index.html")
    fitting = "".join(f"/old-{n} /new-{n}\n" for n in range(30))
    assert len(compile_rules(fitting, None, ["index.html"], mode="static", entry="index.html").to_json()) <= 1024


def test_every_routing_change_marks_exactly_the_serving_releases_with_rules(tmp_path) -> None:  # type: ignore[no-untyped-def]
    kvs = LocalKeyValueStore(tmp_path / "kvs.json")
    update_key(kvs, rules_key("ruled"), lambda _: '{"r":[]}')
    after = update_routing(kvs, lambda s: RoutingState(live="plain")).after
    assert after.rules == ()
    after = update_routing(kvs, lambda s: RoutingState(live="plain", canary="ruled", weight=5)).after
    assert after.rules == ("ruled",)
    after = update_routing(kvs, lambda s: RoutingState(live="ruled", pins=("plain",))).after
    assert after.rules == ("ruled",)
    after = update_routing(kvs, lambda s: RoutingState(live="plain", pins=("ruled",), rules=s.rules)).after
    assert after.rules == ("ruled",)
    after = update_routing(kvs, lambda s: RoutingState(live="plain")).after
    assert after.rules == ()
    assert RoutingState.from_json(kvs.read("routing")[0]) == after


def test_staging_a_release_with_rules_writes_nothing_to_the_store_until_it_is_used(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hosting_toolkit.config import HostingConfig
    from hosting_toolkit.release.engine import ReleaseEngine
    from hosting_toolkit.target import local_target
    from tests.fakes.sites import sample_site

    target = local_target(tmp_path / "target", HostingConfig())
    engine = ReleaseEngine(target.store, target.kvs, HostingConfig(), actor="t")
    folder = sample_site(tmp_path / "build")
    (folder / "_redirects").write_text("/old /new 301\n")
    _, before = target.kvs.read(rules_key("x"))

    staged = engine.create(folder, release_id="a00000000001", activate=False)

    assert staged.rules == 1
    assert target.kvs.read(rules_key("a00000000001")) == (None, before)
    engine.activate("a00000000001")
    value, _ = target.kvs.read(rules_key("a00000000001"))
    assert value is not None and json.loads(value)["r"]
    assert RoutingState.from_json(target.kvs.read("routing")[0] or "").rules == ("a00000000001",)
