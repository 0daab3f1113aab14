"""The edge functions use exactly the names and formats defined in ``hosting_toolkit/contract.py``."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from hosting_toolkit import contract
from hosting_toolkit.config import HostingConfig
from hosting_toolkit.edge.code import ROUTER_FILE, VIEWER_RESPONSE_FILE, render_router
from hosting_toolkit.edge.events import viewer_request_event
from hosting_toolkit.edge.sandbox import FunctionSandbox

DECLARATION = re.compile(r"^const ([A-Z][A-Z0-9_]*) = ('[^'\\]*'|\d+);$", re.MULTILINE)

ROUTER_NAMES = {
    "ROUTING_KEY": contract.ROUTING_KEY,
    "PREVIEW_TOKEN_KEY": contract.PREVIEW_TOKEN_KEY,
    "RELEASE_COOKIE": contract.RELEASE_COOKIE,
    "COHORT_COOKIE": contract.COHORT_COOKIE,
    "PREVIEW_PARAM": contract.PREVIEW_PARAM,
    "TOKEN_PARAM": contract.PREVIEW_TOKEN_PARAM,
    "PREVIEW_RELEASE_HEADER": contract.PREVIEW_RELEASE_HEADER,
    "PREVIEW_TOKEN_HEADER": contract.PREVIEW_TOKEN_HEADER,
    "PREVIEW_COOKIE_ATTRIBUTES": contract.PREVIEW_COOKIE_ATTRIBUTES,
    "RELEASES_PREFIX": contract.RELEASES_PREFIX,
    "RELEASE_HEADER": contract.RELEASE_HEADER,
    "MAX_URI_LENGTH": contract.MAX_URI_LENGTH,
    "COHORTS": contract.COHORTS,
    "FOLDER_HEADER": contract.FOLDER_HEADER,
    "WELL_KNOWN": contract.WELL_KNOWN_PREFIX,
    "RULES_KEY_PREFIX": contract.RULES_KEY_PREFIX,
    "RELEASE_RULES_HEADER": contract.RELEASE_RULES_HEADER,
    "PREVIEW_MARK_HEADER": contract.PREVIEW_MARK_HEADER,
    "PREVIEW_KEY_PREFIX": contract.PREVIEW_KEY_PREFIX,
    "PREVIEW_NAME_MARK": contract.PREVIEW_NAME_MARK,
}
VIEWER_RESPONSE_NAMES = {
    "RELEASE_HEADER": contract.RELEASE_HEADER,
    "RELEASE_METADATA_HEADER": f"x-amz-meta-{contract.RELEASE_METADATA_KEY}",
    "RELEASE_COOKIE": contract.RELEASE_COOKIE,
    "CHECK_HEADER": contract.CHECK_HEADER,
    "COHORT_COOKIE": contract.COHORT_COOKIE,
    "COHORTS": contract.COHORTS,
    "FOLDER_HEADER": contract.FOLDER_HEADER,
    "FOLDER_INDEX_METADATA_HEADER": f"x-amz-meta-{contract.FOLDER_INDEX_METADATA_KEY}",
    "RELEASE_RULES_HEADER": contract.RELEASE_RULES_HEADER,
    "PREVIEW_MARK_HEADER": contract.PREVIEW_MARK_HEADER,
    "ROBOTS_HEADER": contract.ROBOTS_HEADER,
}


def declarations(source: Path) -> dict[str, str | int]:
    """The top-level ``const NAME = 'literal';`` declarations of a function file."""
    found: dict[str, str | int] = {}
    for name, literal in DECLARATION.findall(source.read_text(encoding="utf-8")):
        found[name] = literal[1:-1] if literal.startswith("'") else int(literal)
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [(ROUTER_FILE, ROUTER_NAMES), (VIEWER_RESPONSE_FILE, VIEWER_RESPONSE_NAMES)],
    ids=["router", "viewer-response"],
)
def test_function_declares_the_contract_values(source: Path, expected: dict[str, str | int]) -> None:
    declared = declarations(source)
    assert {name: declared.get(name) for name in expected} == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [(ROUTER_FILE, ROUTER_NAMES), (VIEWER_RESPONSE_FILE, VIEWER_RESPONSE_NAMES)],
    ids=["router", "viewer-response"],
)
def test_contract_values_appear_only_in_their_declaration(source: Path, expected: dict[str, str | int]) -> None:
    text = source.read_text(encoding="utf-8")
    for name, value in expected.items():
        literal = f"'{value}'" if isinstance(value, str) else str(value)
        assert text.count(literal) == 1, f"{source.name} repeats {literal} instead of using {name}"
        assert re.search(rf"\b{name}\b", text.split(f"const {name} =", 1)[1]), f"{source.name} never uses {name}"


def test_router_reads_the_routing_key_and_preview_keys_in_json_format_and_the_preview_token_as_text() -> None:
    text = ROUTER_FILE.read_text(encoding="utf-8")
    assert text.count("kvs.get(") == 4
    assert "kvs.get(RULES_KEY_PREFIX + release, { format: 'json' })" in text
    assert "kvs.get(ROUTING_KEY, { format: 'json' })" in text
    assert "kvs.get(PREVIEW_TOKEN_KEY)" in text
    assert "kvs.get(PREVIEW_KEY_PREFIX + name, { format: 'json' })" in text


def test_preview_state_is_what_the_router_routes_by() -> None:
    """The router hands a preview's state to the code that routes ``routing``: the same field names."""
    state = json.loads(contract.PreviewState(live="abc", pins=("old",), ref="pr:1", at="t").to_json())
    routing = json.loads(contract.RoutingState(live="abc", pins=("old",)).to_json())
    assert {k: state[k] for k in routing} == routing
    assert contract.preview_key("pr-1").startswith(contract.PREVIEW_KEY_PREFIX)


def test_preview_state_drops_pins_to_fit_one_value() -> None:
    state = contract.PreviewState(live="a" * 40, pins=tuple(f"{i:040d}" for i in range(30)), ref="branch:" + "b" * 255)
    text = state.to_json()
    assert len(text.encode()) <= contract.KVS_VALUE_LIMIT
    assert contract.PreviewState.from_json(text).pins == state.pins[: len(contract.PreviewState.from_json(text).pins)]


def test_preview_cookie_is_the_preview_parameter() -> None:
    assert contract.PREVIEW_COOKIE == contract.PREVIEW_PARAM


def test_router_id_alphabet_matches_the_release_id_pattern() -> None:
    match = re.fullmatch(r"\^\[([^\]]+)\]\[([^\]]+)\]\{0,(\d+)\}\$", contract.RELEASE_ID_PATTERN)
    assert match, "RELEASE_ID_PATTERN changed shape; update the router's ID_CHARS check"

    def expand(char_class: str) -> str:
        return re.sub(r"(.)-(.)", lambda m: "".join(map(chr, range(ord(m[1]), ord(m[2]) + 1))), char_class)

    alphabet = str(declarations(ROUTER_FILE)["ID_CHARS"])
    # The router allows the first 36 characters first; lengths are checked by behaviour below.
    assert alphabet[:36] == expand(match[1])
    assert sorted(alphabet) == sorted(expand(match[2]))


@pytest.mark.node
def test_router_accepts_exactly_the_release_ids_of_the_contract(function_sandbox: FunctionSandbox) -> None:
    function_sandbox.load("contract-router", render_router(HostingConfig()))
    live = "a1b2c3d4e5f6"
    candidates = [
        "a", "0", "abc123", "v1.2.3", "rel_2024-06-01", "a" * 40, "a" * 41, "", ".", "..", "a..b", ".a", "-a", "_a",
        "A", "aB", "a/b", "a b", "a%2e", "é", "a\\b", "1" * 39 + ".", "x-", "x.", "0f0f0f0f0f0f",
    ]  # fmt: skip
    for candidate in candidates:
        state = json.dumps({"live": live, "pins": [candidate]})
        event = viewer_request_event("GET", "/app.js", [("Cookie", f"{contract.RELEASE_COOKIE}={candidate}")])
        result = function_sandbox.invoke("contract-router", event, {contract.ROUTING_KEY: state}).result
        assert result is not None
        chosen = candidate if contract.is_release_id(candidate) else live
        assert result["uri"] == f"/{contract.release_prefix(chosen)}app.js", candidate


@pytest.mark.node
def test_router_reads_the_state_routing_state_writes(function_sandbox: FunctionSandbox) -> None:
    function_sandbox.load("contract-router", render_router(HostingConfig()))
    state = contract.RoutingState(live="new1", canary="next2", weight=5, pins=("old1", "old2"))
    # A cohort far above the canary's 5 % keeps this viewer out of the canary.
    cohort = f"{contract.COHORT_COOKIE}={contract.COHORTS - 1}.{int(time.time())}"
    for cookie, chosen in (("old2", "old2"), ("gone", "new1"), ("next2", "next2")):
        event = viewer_request_event("GET", "/x.css", [("Cookie", f"{contract.RELEASE_COOKIE}={cookie}; {cohort}")])
        result = function_sandbox.invoke("contract-router", event, {contract.ROUTING_KEY: state.to_json()}).result
        assert result is not None
        assert result["uri"] == f"/{contract.release_prefix(chosen)}x.css"
