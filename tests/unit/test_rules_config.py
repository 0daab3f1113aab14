"""``[rules]`` in hosting.toml: validation, the compiled settings, and how they reach the rendered functions."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from hosting_toolkit.config import DomainConfig, HostingConfig, load_config, parse_config
from hosting_toolkit.contract import RELEASE_RULES_HEADER
from hosting_toolkit.edge import code
from hosting_toolkit.edge.code import (
    ROUTER_FILE,
    ROUTER_SIZE_BUDGET,
    VIEWER_RESPONSE_FILE,
    VIEWER_RESPONSE_SIZE_BUDGET,
    render,
    render_router,
    render_viewer_response,
)
from hosting_toolkit.edge.rules import (
    ONE_SEGMENT,
    REST,
    RULES_HEADER,
    HeaderRule,
    RedirectRule,
    RewriteRule,
    RulesConfig,
    parse_pattern,
    parse_target,
    router_rules,
)
from hosting_toolkit.errors import ConfigError
from tests.unit.test_contract import declarations

REPO_ROOT = Path(__file__).resolve().parents[2]


def rules_config(**rules: list[dict[str, Any]]) -> HostingConfig:
    return parse_config({"rules": rules})


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


# --- parsing ------------------------------------------------------------------------------------


def test_rules_default_to_none() -> None:
    assert HostingConfig().rules == RulesConfig()
    assert HostingConfig().rules.count == 0


def test_rules_tables_become_typed_rules_in_file_order() -> None:
    config = rules_config(
        redirects=[{"from": "/a", "to": "/b"}, {"from": "/c/*", "to": "https://example.org/:splat", "status": 302}],
        rewrites=[{"from": "/docs/*", "to": "/docs/index.html"}],
        headers=[{"path": "/assets/*", "headers": {"Cache-Control": "immutable", "x-robots-tag": "noindex"}}],
    )
    assert config.rules.redirects == (
        RedirectRule("/a", "/b", 301),
        RedirectRule("/c/*", "https://example.org/:splat", 302),
    )
    assert config.rules.rewrites == (RewriteRule("/docs/*", "/docs/index.html"),)
    assert config.rules.headers == (
        HeaderRule("/assets/*", (("cache-control", "immutable"), ("x-robots-tag", "noindex"))),
    )
    assert config.rules.count == 4


def test_the_commented_rules_of_the_example_file_are_valid() -> None:
    example = REPO_ROOT / "hosting.example.toml"
    assert load_config(example).rules == RulesConfig()
    tables, inside = [], False
    for line in example.read_text(encoding="utf-8").splitlines():
        inside = line.startswith("# [[rules.") or (inside and line.startswith("# "))
        if inside:
            tables.append(line.removeprefix("# "))
    rules = parse_config(tomllib.loads("\n".join(tables))).rules
    assert (len(rules.redirects), len(rules.rewrites), len(rules.headers)) == (2, 1, 1)


INVALID = [
    ({"redirects": {"from": "/a", "to": "/b"}}, "rules.redirects: expected [[rules.redirects]] tables"),
    ({"redirects": ["/a"]}, "rules.redirects[0]: expected a table with from, to, status"),
    ({"redirects": [{"from": "/a", "to": "/b", "code": 301}]}, "rules.redirects[0].code: unknown key"),
    ({"redirects": [{"form": "/a", "to": "/b"}]}, "rules.redirects[0].form: unknown key (did you mean 'from'?)"),
    ({"redirects": [{"to": "/b"}]}, "rules.redirects[0].from: missing"),
    ({"redirects": [{"from": "/a"}]}, "rules.redirects[0].to: missing"),
    (
        {"redirects": [{"from": "a", "to": "/b"}]},
        "rules.redirects[0].from: 'a' must be a path pattern starting with '/'",
    ),
    ({"redirects": [{"from": "/a", "to": "/b", "status": 303}]}, "rules.redirects[0].status: 303 is not a redirect"),
    ({"redirects": [{"from": "/a", "to": "/b", "status": True}]}, "rules.redirects[0].status: True is not"),
    ({"redirects": [{"from": "/a", "to": "/b", "status": "301"}]}, "rules.redirects[0].status: '301' is not"),
    ({"redirects": [{"from": "/a/:x", "to": "/b/:y"}]}, "':y' is not a placeholder of the pattern (it has :x)"),
    ({"redirects": [{"from": "/a", "to": "/b/:splat"}]}, "':splat' is not a placeholder of the pattern (it has none)"),
    ({"redirects": [{"from": "/a/../b", "to": "/b"}]}, "rules.redirects[0].from: '/a/../b': '.' segments and '..'"),
    ({"redirects": [{"from": "/a/./b", "to": "/b"}]}, "'.' segments and '..' are not allowed"),
    ({"redirects": [{"from": "/a?x=1", "to": "/b"}]}, "a pattern matches the path only, without '?' or '#'"),
    ({"redirects": [{"from": "/a#top", "to": "/b"}]}, "without '?' or '#'"),
    ({"redirects": [{"from": "/a/*/b", "to": "/b"}]}, "'*' must be the last segment"),
    ({"redirects": [{"from": "/a*", "to": "/b"}]}, "'*' only stands as the whole last segment"),
    ({"redirects": [{"from": "/a/:x/:x", "to": "/b"}]}, "the placeholder ':x' appears twice"),
    ({"redirects": [{"from": "/a/:splat", "to": "/b"}]}, "':splat' is what '*' captures"),
    ({"redirects": [{"from": "/a/:x-y", "to": "/b"}]}, "a placeholder is a whole segment ':name'"),
    ({"redirects": [{"from": "/a//b", "to": "/b"}]}, "empty segments ('//') never match"),
    ({"redirects": [{"from": "/a b", "to": "/b"}]}, "percent-encode them"),
    ({"redirects": [{"from": "/a%2e", "to": "/b"}]}, "holds an encoded dot, slash, backslash or control character"),
    ({"redirects": [{"from": "/a%2F", "to": "/b"}]}, "holds an encoded dot, slash"),
    ({"redirects": [{"from": "/a%zz", "to": "/b"}]}, "'%' must start an escape"),
    (
        {"redirects": [{"from": "/a", "to": "b"}]},
        "rules.redirects[0].to: 'b' must be a path starting with '/', or an https",
    ),
    ({"redirects": [{"from": "/a", "to": "//evil.example"}]}, "must be a path starting with '/', or an https:// URL"),
    ({"redirects": [{"from": "/a", "to": "http://example.com/"}]}, "or an https:// URL"),
    ({"redirects": [{"from": "/a/*", "to": "https://:splat"}]}, "is not an https:// URL with a lowercase host name"),
    ({"redirects": [{"from": "/a", "to": "https://Example.com/"}]}, "lowercase host name"),
    ({"redirects": [{"from": "/a", "to": "/b#top"}]}, "a target cannot hold a '#' fragment"),
    ({"redirects": [{"from": "/a/*", "to": "/b?p=:splat"}]}, "placeholders go in the path of the target"),
    ({"redirects": [{"from": "/a/*", "to": "/../:splat"}]}, "'..' is not allowed"),
    ({"redirects": [{"from": "/a/*", "to": "/b//:splat"}]}, "'.' and empty ('//') segments are not allowed"),
    ({"redirects": [{"from": "/a/*", "to": "/b/%2e%2e/:splat"}]}, "holds an encoded dot"),
    ({"redirects": [{"from": "/a", "to": "/b\r\nx: y"}]}, "percent-encode them"),
    ({"rewrites": [{"from": "/a", "to": "https://example.com/"}]}, "must be a path of the release starting with '/'"),
    ({"rewrites": [{"from": "/a", "to": "/b?x=1"}]}, "a rewrite serves a file and keeps the request's query string"),
    ({"rewrites": [{"from": "/a", "to": "/b", "status": 200}]}, "rules.rewrites[0].status: unknown key"),
    ({"headers": [{"path": "/a"}]}, "rules.headers[0].headers: expected a table of name = value"),
    ({"headers": [{"path": "/a", "headers": {}}]}, "rules.headers[0].headers: expected a table"),
    ({"headers": [{"headers": {"x-a": "1"}}]}, "rules.headers[0].path: missing"),
    ({"headers": [{"path": "/a?b", "headers": {"x-a": "1"}}]}, "rules.headers[0].path: '/a?b': a pattern matches"),
    ({"headers": [{"path": "/a", "headers": {"x a": "1"}}]}, "rules.headers[0].headers.x a: not a header name"),
    ({"headers": [{"path": "/a", "headers": {"x-a": "1\r\nx-b: 2"}}]}, "the value must be one line of printable ASCII"),
    ({"headers": [{"path": "/a", "headers": {"x-a": "caf\u00e9"}}]}, "the value must be one line of printable ASCII"),
    ({"headers": [{"path": "/a", "headers": {"x-a": 1}}]}, "rules.headers[0].headers.x-a: the value must be one line"),
    ({"headers": [{"path": "/a", "headers": {"X-A": "1", "x-a": "2"}}]}, "x-a: set twice in this rule"),
    ({"headers": [{"path": "/a", "headers": {"Connection": "close"}}]}, "CloudFront does not let a function add this"),
    ({"headers": [{"path": "/a", "headers": {"x-amz-cf-pop": "x"}}]}, "CloudFront does not let a function add this"),
    ({"headers": [{"path": "/a", "headers": {"x-edge-location": "x"}}]}, "CloudFront does not let a function add"),
    ({"headers": [{"path": "/a", "headers": {"content-length": "1"}}]}, "viewer-response function change this header"),
    ({"headers": [{"path": "/a", "headers": {"via": "1"}}]}, "viewer-response function change this header"),
    ({"headers": [{"path": "/a", "headers": {"x-frame-options": "DENY"}}]}, "configure it in [headers]"),
    ({"headers": [{"path": "/a", "headers": {"content-security-policy": "x"}}]}, "configure it in [headers]"),
    ({"headers": [{"path": "/a", "headers": {"x-release": "x"}}]}, "the toolkit sets this header itself"),
    ({"headers": [{"path": "/a", "headers": {"set-cookie": "a=b"}}]}, "the toolkit sets this header itself"),
    ({"redirect": []}, "rules.redirect: unknown key (did you mean 'redirects'?)"),
]


@pytest.mark.parametrize(("rules", "message"), INVALID, ids=[m for _, m in INVALID])
def test_invalid_rules_are_reported_with_their_key_and_index(rules: dict[str, Any], message: str) -> None:
    assert any(message in problem for problem in problems_of({"rules": rules})), problems_of({"rules": rules})


def test_every_problem_of_every_rule_is_reported_together() -> None:
    problems = problems_of(
        {
            "rules": {
                "redirects": [{"from": "/ok", "to": "/fine"}, {"from": "/a?", "to": "/b", "status": 200}],
                "rewrites": [{"from": "/a/:x", "to": "/:y"}],
                "headers": [{"path": "/a", "headers": {"via": "x", "x-a": "\n"}}],
            },
            "site": {"mode": "nope"},
        }
    )
    keys = sorted(problem.split(":")[0] for problem in problems)
    assert keys == [
        "rules.headers[0].headers.via",
        "rules.headers[0].headers.x-a",
        "rules.redirects[1].from",
        "rules.redirects[1].status",
        "rules.rewrites[0].to",
        "site.mode",
    ]


def test_an_invalid_pattern_does_not_add_placeholder_complaints_about_its_target() -> None:
    problems = problems_of({"rules": {"redirects": [{"from": "/a?x", "to": "/b/:x"}]}})
    assert [p.split(":")[0] for p in problems] == ["rules.redirects[0].from"]


# --- compiling ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "compiled", "names"),
    [
        ("/", [""], []),
        ("/about", ["about"], []),
        ("/about/", ["about", ""], []),
        ("/*", [REST], ["splat"]),
        ("/blog/:year/*", ["blog", ONE_SEGMENT, REST], ["year", "splat"]),
        ("/a/:x/b/:y", ["a", ONE_SEGMENT, "b", ONE_SEGMENT], ["x", "y"]),
        ("/wiki/File:Logo%20big.png", ["wiki", "File:Logo%20big.png"], []),
    ],
)
def test_patterns_compile_to_one_entry_per_segment(pattern: str, compiled: list[Any], names: list[str]) -> None:
    assert parse_pattern(pattern) == (compiled, names)


@pytest.mark.parametrize(
    ("target", "names", "compiled"),
    [
        ("/news/:year/:splat", ["year", "splat"], (["/news/", 0, "/", 1], "")),
        ("/:a-:b.html", ["a", "b"], (["/", 0, "-", 1, ".html"], "")),
        ("/search?source=old&x", [], (["/search"], "source=old&x")),
        ("https://example.org", [], (["https://example.org"], "")),
        ("https://example.org:8443/:splat?a=1", ["splat"], (["https://example.org:8443/", 0], "a=1")),
        ("/:splat", ["splat"], (["/", 0], "")),
    ],
)
def test_targets_compile_to_literal_text_and_capture_numbers(
    target: str, names: list[str], compiled: tuple[list[Any], str]
) -> None:
    assert parse_target(target, names, absolute=True) == compiled


def test_router_rules_hold_the_www_pair_and_every_rule_in_file_order() -> None:
    config = parse_config(
        {
            "rules": {
                "redirects": [{"from": "/a/*", "to": "/b/:splat", "status": 307}, {"from": "/c", "to": "/d?x=1"}],
                "rewrites": [{"from": "/app/:page", "to": "/app/index.html"}],
                "headers": [{"path": "/x/*", "headers": {"x-a": "1"}}, {"path": "/", "headers": {"x-b": "2"}}],
            },
            "domain": {"names": ["example.com"], "www_redirect": "www-to-apex"},
        }
    )
    assert router_rules(config.rules, config.domain.redirect) == {
        "www": ["www.example.com", "example.com"],
        "r": [
            [["a", REST], ["/b/", 0], 307],
            [["c"], ["/d"], 301, 0, "x=1"],
            [["app", ONE_SEGMENT], ["/app/index.html"], 200],
        ],
        "headers": [["x", REST], [""]],
    }
    assert router_rules(RulesConfig(), None)["www"] is None


# --- rendering ----------------------------------------------------------------------------------


def settings_of(rendered: str) -> dict[str, Any]:
    """The settings the rendered (minified) code declares as ``SITE``: plain JSON."""
    start = rendered.index("const SITE=") + len("const SITE=")
    result: dict[str, Any] = json.JSONDecoder().raw_decode(rendered, start)[0]
    return result


def test_without_rules_the_functions_hold_no_rule_code() -> None:
    for rendered, budget in (
        (render_router(HostingConfig()), ROUTER_SIZE_BUDGET),
        (render_viewer_response(HostingConfig()), VIEWER_RESPONSE_SIZE_BUDGET),
    ):
        assert RULES_HEADER not in rendered
        assert "rules" not in settings_of(rendered)
        assert "headers" not in settings_of(rendered)
        assert len(rendered.encode()) <= budget


def test_the_no_rules_router_is_the_router_file_without_its_rules_blocks() -> None:
    rendered = render_router(HostingConfig())
    assert rendered == render(ROUTER_FILE, code.site_settings(HostingConfig()))
    # The matching code is shared with a release's own rules, which any release may bring. Names are
    # minified, so the blocks show by the header names only their code uses.
    assert f'"{RULES_HEADER}"' not in rendered and f'"{RELEASE_RULES_HEADER}"' in rendered
    assert f'"{RULES_HEADER}"' in render(ROUTER_FILE, {}, blocks=(code.RULES_BLOCK,))


def test_rules_put_the_rule_code_and_settings_into_the_router_and_headers_into_the_viewer_response() -> None:
    config = rules_config(
        redirects=[{"from": "/a", "to": "/b"}], headers=[{"path": "/x", "headers": {"Cache-Control": "no-cache"}}]
    )
    router = render_router(config)
    assert f'"{RULES_HEADER}"' in router
    assert settings_of(router)["rules"] == router_rules(config.rules, None)
    viewer_response = render_viewer_response(config)
    assert f'"{RULES_HEADER}"' in viewer_response
    assert settings_of(viewer_response)["headers"] == [{"cache-control": "no-cache"}]
    assert "rules" not in settings_of(viewer_response)


def test_a_www_redirect_alone_brings_the_rule_code_into_the_router_only() -> None:
    config = HostingConfig(domain=DomainConfig(names=("example.com",), www_redirect="www-to-apex"))
    assert settings_of(render_router(config))["rules"]["www"] == ["www.example.com", "example.com"]
    assert RULES_HEADER not in render_viewer_response(config)


def test_redirects_without_header_rules_leave_the_viewer_response_as_it_is() -> None:
    config = rules_config(redirects=[{"from": "/a", "to": "/b"}])
    assert render_viewer_response(config) == render_viewer_response(HostingConfig())


@pytest.mark.parametrize("source", [ROUTER_FILE, VIEWER_RESPONSE_FILE], ids=["router", "viewer-response"])
def test_both_functions_declare_the_rules_header_of_the_python_side(source: Path) -> None:
    assert declarations(source)["RULES_HEADER"] == RULES_HEADER


BLOCKS = [
    ("a;\n// [x]\nb;\n// [/x]\nc;\n", (), "a;c;\n"),
    ("a;\n// [x]\nb;\n// [/x]\nc;\n", ("x",), "a;b;c;\n"),
    ("a;\n  // [x]\n  // a comment\n  b;\n  // [/x]\n// [y]\nd;\n// [/y]\n", ("x",), "a;b;\n"),
]


@pytest.mark.parametrize(("text", "blocks", "expected"), BLOCKS)
def test_render_keeps_only_the_blocks_asked_for(
    tmp_path: Path, text: str, blocks: tuple[str, ...], expected: str
) -> None:
    source = tmp_path / "f.js"
    source.write_text(text)
    assert render(source, blocks=blocks) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("// [x]\na;\n", "block [x] is never closed"),
        ("a;\n// [/x]\n", "f.js:2: unbalanced block mark"),
        ("// [x]\n// [y]\n// [/y]\n// [/x]\n", "f.js:2: unbalanced block mark"),
        ("// [x]\n// [/y]\n", "f.js:2: unbalanced block mark"),
    ],
)
def test_unbalanced_block_marks_are_refused(tmp_path: Path, text: str, message: str) -> None:
    source = tmp_path / "f.js"
    source.write_text(text)
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        render(source)
