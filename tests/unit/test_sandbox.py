"""The Node function sandbox enforces CloudFront's limits, and events match CloudFront's shapes."""

from __future__ import annotations

import base64
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from hosting_toolkit.edge import sandbox as sandbox_module
from hosting_toolkit.edge.events import (
    http_response,
    is_response,
    parse_cookies,
    parse_querystring,
    request_headers,
    request_target,
    viewer_request_event,
    viewer_response_event,
)
from hosting_toolkit.edge.sandbox import FunctionSandbox, SandboxError
from hosting_toolkit.errors import ToolkitError

EVENT = viewer_request_event("GET", "/")


def handler(body: str, *, imports: str = "import cf from 'cloudfront';\nconst kvs = cf.kvs();\n") -> str:
    return f"{imports}async function handler(event) {{\n{body}\n}}\n"


# --- limits -------------------------------------------------------------------------------------


@pytest.mark.node
def test_function_over_10_kb_is_refused(function_sandbox: FunctionSandbox) -> None:
    code = handler("return event.request;") + "// " + "x" * 10240 + "\n"
    with pytest.raises(SandboxError, match=r"over CloudFront's limit of 10240 bytes"):
        function_sandbox.load("too-big", code)


@pytest.mark.node
def test_size_limit_counts_utf8_bytes(function_sandbox: FunctionSandbox) -> None:
    code = handler("return event.request;")
    filler = "é" * ((10240 - len(code.encode())) // 2 + 1)
    with pytest.raises(SandboxError, match="bytes"):
        function_sandbox.load("wide", code + f"// {filler}\n")


@pytest.mark.node
@pytest.mark.parametrize(
    ("imports", "refused"),
    [
        ("import fs from 'fs';\n", "'fs'"),
        ("import http from 'node:http';\n", "'node:http'"),
        ("import cf from 'cloudfront';\nimport { x } from './local.js';\n", "'./local.js'"),
    ],
)
def test_only_cloudfront_and_crypto_modules_may_be_imported(
    function_sandbox: FunctionSandbox, imports: str, refused: str
) -> None:
    with pytest.raises(SandboxError, match=f"imports {refused}; CloudFront Functions may import only"):
        function_sandbox.load("importer", handler("return event.request;", imports=imports))


@pytest.mark.node
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return eval('1');", "eval"),
        ("return new Function('return 1')();", "Function constructor"),
        ("return Function('return 1')();", "Function constructor"),
        ("setTimeout(() => {}, 10); return event.request;", "timers"),
        ("setInterval(() => {}, 10); return event.request;", "timers"),
        ("return fetch('https://example.com');", "network"),
        ("const fs = require('fs'); return event.request;", "require"),
        ("return process.env;", "process"),
        ("return import('fs');", "dynamic import"),
    ],
)
def test_forbidden_features_are_refused_at_load(function_sandbox: FunctionSandbox, body: str, message: str) -> None:
    with pytest.raises(SandboxError, match=message):
        function_sandbox.load("forbidden", handler(body))


@pytest.mark.node
@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("return globalThis['ev' + 'al']('1');", "EvalError"),
        ("return (() => {}).constructor['constr' + 'uctor']('return 1')();", "EvalError"),
        ("return globalThis['setTime' + 'out'](() => {}, 1);", "TypeError"),
        ("return globalThis['fet' + 'ch']('https://example.com');", "TypeError"),
    ],
)
def test_hidden_forbidden_features_fail_at_run_time(function_sandbox: FunctionSandbox, body: str, error: str) -> None:
    function_sandbox.load("hidden", handler(body))
    invocation = function_sandbox.invoke("hidden", EVENT)
    assert not invocation.ok
    assert invocation.error is not None and error in invocation.error


@pytest.mark.node
@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("function handler(event) { return event.request;\n", "SyntaxError"),
        ("function other(event) { return event.request; }\n", "function handler"),
        ("export function handler(event) { return event.request; }\n", "do not export"),
        ("throw new Error('at load');\nfunction handler(event) {}\n", "top-level code failed"),
    ],
)
def test_broken_functions_are_refused_with_a_reason(function_sandbox: FunctionSandbox, code: str, message: str) -> None:
    with pytest.raises(SandboxError, match=message):
        function_sandbox.load("broken", code)


@pytest.mark.node
def test_sandbox_errors_are_toolkit_errors(function_sandbox: FunctionSandbox) -> None:
    with pytest.raises(ToolkitError):
        function_sandbox.load("bad", "import fs from 'fs';\n")


# --- the KeyValueStore stub ---------------------------------------------------------------------


@pytest.mark.node
def test_kvs_get_of_a_missing_key_throws(function_sandbox: FunctionSandbox) -> None:
    function_sandbox.load(
        "missing",
        handler("try { await kvs.get('nope'); return { thrown: false }; } catch (e) { return { thrown: true }; }"),
    )
    invocation = function_sandbox.invoke("missing", EVENT, {"other": "1"})
    assert invocation.result == {"thrown": True}
    assert invocation.kvs_reads == 1


@pytest.mark.node
def test_kvs_get_formats(function_sandbox: FunctionSandbox) -> None:
    function_sandbox.load(
        "formats",
        handler(
            "const json = await kvs.get('k', { format: 'json' });\n"
            "const text = await kvs.get('k');\n"
            "const bytes = await kvs.get('u', { format: 'bytes' });\n"
            "return { json: json, text: text, bytes: bytes.length, present: await kvs.exists('k'),"
            " absent: await kvs.exists('x') };"
        ),
    )
    invocation = function_sandbox.invoke("formats", EVENT, {"k": '{"live":"abc","pins":[]}', "u": "é"})
    assert invocation.result == {
        "json": {"live": "abc", "pins": []},
        "text": '{"live":"abc","pins":[]}',
        "bytes": 2,
        "present": True,
        "absent": False,
    }
    assert invocation.kvs_reads == 5


@pytest.mark.node
def test_kvs_json_format_of_invalid_json_rejects(function_sandbox: FunctionSandbox) -> None:
    function_sandbox.load("bad-json", handler("return await kvs.get('k', { format: 'json' });"))
    invocation = function_sandbox.invoke("bad-json", EVENT, {"k": "not json"})
    assert invocation.error is not None and "SyntaxError" in invocation.error


@pytest.mark.node
def test_kvs_values_must_be_strings(function_sandbox: FunctionSandbox) -> None:
    function_sandbox.load("any", handler("return event.request;"))
    with pytest.raises(TypeError, match="must be a string"):
        function_sandbox.invoke("any", EVENT, {"k": {"live": "x"}})  # type: ignore[dict-item]


@pytest.mark.node
def test_crypto_module_hashes_like_cloudfront(function_sandbox: FunctionSandbox) -> None:
    function_sandbox.load(
        "hash",
        handler(
            "return { hex: crypto.createHash('sha256').update('abc').digest('hex'),"
            " mac: crypto.createHmac('sha256', 'key').update('abc').digest('base64') };",
            imports="import crypto from 'crypto';\n",
        ),
    )
    result = function_sandbox.invoke("hash", EVENT).result
    assert result is not None
    assert result["hex"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert base64.b64decode(result["mac"])


# --- invocation ---------------------------------------------------------------------------------


@pytest.mark.node
def test_handler_errors_and_logs_are_reported_not_raised(function_sandbox: FunctionSandbox) -> None:
    function_sandbox.load(
        "fails", handler("console.log('routing', { uri: event.request.uri }); throw new TypeError('boom');")
    )
    invocation = function_sandbox.invoke("fails", EVENT)
    assert not invocation.ok
    assert invocation.result is None
    assert invocation.error is not None and invocation.error.startswith("TypeError: boom")
    assert "worker.mjs" not in invocation.error
    assert invocation.logs == ('routing {"uri":"/"}',)


@pytest.mark.node
def test_a_handler_that_never_settles_is_reported(function_sandbox: FunctionSandbox) -> None:
    function_sandbox.load("hangs", handler("await new Promise(() => {}); return event.request;"))
    invocation = function_sandbox.invoke("hangs", EVENT)
    assert invocation.error is not None and "did not settle" in invocation.error


@pytest.mark.node
def test_a_runaway_handler_is_stopped_and_the_function_recovers() -> None:
    with FunctionSandbox(invoke_timeout_ms=50) as sandbox:
        sandbox.load(
            "spins", handler("if (event.request.uri === '/spin') { await 1; while (true) {} } return event.request;")
        )
        stopped = sandbox.invoke("spins", viewer_request_event("GET", "/spin"))
        assert stopped.error is not None and "longer than 50 ms" in stopped.error
        assert sandbox.invoke("spins", EVENT).ok
        with pytest.raises(SandboxError, match="top-level code failed: it ran longer than 50 ms"):
            sandbox.load("spins-at-load", "while (true) {}\nfunction handler(event) { return event.request; }\n")


@pytest.mark.node
def test_a_batch_runs_each_event_in_turn_with_its_own_reads_logs_and_errors(function_sandbox: FunctionSandbox) -> None:
    function_sandbox.load(
        "batch",
        handler(
            "if (event.request.uri === '/boom') throw new Error('boom');\n"
            "console.log(event.request.uri);\n"
            "if (event.request.uri === '/read') await kvs.get('k');\n"
            "return { uri: event.request.uri };"
        ),
    )
    uris = ["/a", "/read", "/boom", "/b"]
    results = function_sandbox.invoke_many("batch", [viewer_request_event("GET", u) for u in uris], {"k": "v"})
    assert [r.result for r in results] == [{"uri": "/a"}, {"uri": "/read"}, None, {"uri": "/b"}]
    assert [r.kvs_reads for r in results] == [0, 1, 0, 0]
    assert [r.logs for r in results] == [("/a",), ("/read",), (), ("/b",)]
    assert results[2].error is not None and results[2].error.startswith("Error: boom")
    assert all(r.duration_us > 0 for r in results)


@pytest.mark.node
def test_a_runaway_event_stops_its_batch_and_the_function_recovers() -> None:
    with FunctionSandbox(invoke_timeout_ms=50) as sandbox:
        sandbox.load("spins", handler("if (event.request.uri === '/spin') { while (true) {} } return event.request;"))
        results = sandbox.invoke_many("spins", [EVENT, viewer_request_event("GET", "/spin"), EVENT])
        assert all(r.error is not None and "longer than 50 ms" in r.error for r in results)
        assert [r.ok for r in sandbox.invoke_many("spins", [EVENT, EVENT])] == [True, True]


@pytest.mark.node
@pytest.mark.parametrize("value", ["'text'", "undefined", "[event.request]", "{ big: 10n }"])
def test_a_handler_must_return_a_plain_object(function_sandbox: FunctionSandbox, value: str) -> None:
    function_sandbox.load("returns", handler(f"return {value};"))
    invocation = function_sandbox.invoke("returns", EVENT)
    assert not invocation.ok
    assert invocation.result is None


@pytest.mark.node
def test_duration_measures_the_handler(function_sandbox: FunctionSandbox) -> None:
    function_sandbox.load("quick", handler("return event.request;"))
    invocation = function_sandbox.invoke("quick", EVENT)
    assert 0 < invocation.duration_us < 100_000


@pytest.mark.node
def test_unknown_function_is_an_error(function_sandbox: FunctionSandbox) -> None:
    with pytest.raises(SandboxError, match="no function named 'ghost'"):
        function_sandbox.invoke("ghost", EVENT)


@pytest.mark.node
def test_invocations_from_many_threads_get_their_own_answers(function_sandbox: FunctionSandbox) -> None:
    function_sandbox.load("echo", handler("return { uri: event.request.uri };"))
    failures: list[str] = []

    def worker(index: int) -> None:
        for round_ in range(25):
            uri = f"/t{index}/{round_}"
            result = function_sandbox.invoke("echo", viewer_request_event("GET", uri)).result
            if result != {"uri": uri}:
                failures.append(f"{uri}: {result}")

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


@pytest.mark.node
def test_a_worker_killed_between_calls_is_restarted_with_its_functions() -> None:
    with FunctionSandbox() as sandbox:
        sandbox.load("echo", handler("return { uri: event.request.uri };"))
        pid = sandbox.worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while sandbox.worker_pid is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        invocation = sandbox.invoke("echo", EVENT)
        assert invocation.result == {"uri": "/"}
        assert sandbox.worker_pid not in (None, pid)


def fake_node(tmp_path: Path, script: str) -> str:
    """A stand-in for ``node`` that ignores its arguments and runs ``script`` (POSIX shell)."""
    path = tmp_path / "node"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


def test_a_worker_dying_mid_call_is_a_clear_error(tmp_path: Path) -> None:
    node = fake_node(tmp_path, "read line; echo 'worker crashed: out of memory' >&2; exit 3")
    with FunctionSandbox(node=node) as sandbox:
        with pytest.raises(SandboxError, match=r"worker stopped \(exit code 3: worker crashed: out of memory\)"):
            sandbox.load("any", handler("return event.request;"))
        assert sandbox.worker_pid is None


def test_a_silent_worker_is_stopped_after_the_answer_timeout(tmp_path: Path) -> None:
    node = fake_node(tmp_path, "read line; exec sleep 30")
    with FunctionSandbox(node=node, answer_timeout_s=0.3) as sandbox:
        with pytest.raises(SandboxError, match=r"did not answer within 0\.3 s"):
            sandbox.load("any", handler("return event.request;"))
        assert sandbox.worker_pid is None


def test_missing_node_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    with FunctionSandbox() as sandbox, pytest.raises(SandboxError, match=r"Node\.js"):
        sandbox.load("any", handler("return event.request;"))


def test_unstartable_node_is_a_clear_error(tmp_path: Path) -> None:
    with FunctionSandbox(node=str(tmp_path / "no-node")) as sandbox, pytest.raises(SandboxError, match="cannot start"):
        sandbox.load("any", handler("return event.request;"))


# --- event shapes -------------------------------------------------------------------------------


def test_viewer_request_event_has_cloudfronts_shape() -> None:
    event = viewer_request_event(
        "get",
        "/a%20b/c.html?x=1&x=2&flag&q=a%2Fb",
        [
            ("Host", "www.example.com"),
            ("Accept", "text/html"),
            ("Accept", "*/*"),
            ("Cookie", "a=1; b=2"),
            ("cookie", "a=3"),
        ],
        client_ip="203.0.113.9",
        request_id="req-1",
    )
    assert event["version"] == "1.0"
    assert event["context"] == {
        "distributionDomainName": "localhost",
        "distributionId": "LOCAL",
        "eventType": "viewer-request",
        "requestId": "req-1",
    }
    assert event["viewer"] == {"ip": "203.0.113.9"}
    request = event["request"]
    assert request["method"] == "GET"
    assert request["uri"] == "/a%20b/c.html"
    assert request["querystring"] == {
        "x": {"value": "1", "multiValue": [{"value": "1"}, {"value": "2"}]},
        "flag": {"value": ""},
        "q": {"value": "a%2Fb"},
    }
    assert request["headers"] == {
        "host": {"value": "www.example.com"},
        "accept": {"value": "text/html", "multiValue": [{"value": "text/html"}, {"value": "*/*"}]},
    }
    assert request["cookies"] == {
        "a": {"value": "1", "multiValue": [{"value": "1"}, {"value": "3"}]},
        "b": {"value": "2"},
    }


def test_viewer_request_event_without_query_or_cookies_has_empty_objects() -> None:
    request = viewer_request_event("GET", "/", {"Host": "h"})["request"]
    assert request["querystring"] == {}
    assert request["cookies"] == {}
    assert request["headers"] == {"host": {"value": "h"}}
    assert viewer_request_event("GET", "/")["context"]["requestId"]


def test_viewer_response_event_moves_set_cookie_into_cookies() -> None:
    request = viewer_request_event("GET", "/")["request"]
    event = viewer_response_event(
        request,
        200,
        [("Content-Type", "text/html"), ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "a=2"), ("Set-Cookie", "b=3")],
    )
    assert event["context"]["eventType"] == "viewer-response"
    assert event["request"] == request
    response = event["response"]
    assert response["statusCode"] == 200
    assert response["statusDescription"] == "OK"
    assert response["headers"] == {"content-type": {"value": "text/html"}}
    assert response["cookies"] == {
        "a": {
            "value": "1",
            "attributes": "Path=/",
            "multiValue": [{"value": "1", "attributes": "Path=/"}, {"value": "2", "attributes": ""}],
        },
        "b": {"value": "3", "attributes": ""},
    }
    assert "body" not in response


def test_http_response_turns_cookies_into_set_cookie_and_decodes_bodies() -> None:
    response = http_response(
        {
            "statusCode": 302,
            "headers": {
                "location": {"value": "/next"},
                "vary": {"value": "a", "multiValue": [{"value": "a"}, {"value": "b"}]},
            },
            "cookies": {"s": {"value": "1", "attributes": "Path=/"}, "t": {"value": "2"}},
            "body": {"data": base64.b64encode(b"\x00\x01").decode(), "encoding": "base64"},
        }
    )
    assert response.status == 302
    assert response.reason == "Found"
    assert response.headers == [
        ("location", "/next"),
        ("vary", "a"),
        ("vary", "b"),
        ("set-cookie", "s=1; Path=/"),
        ("set-cookie", "t=2"),
    ]
    assert response.body == b"\x00\x01"
    assert http_response({"statusCode": 200, "body": "hé"}).body == "hé".encode()
    assert http_response({"statusCode": 200, "body": {"data": "x", "encoding": "text"}}).body == b"x"
    assert is_response({"statusCode": 200})
    assert not is_response(viewer_request_event("GET", "/")["request"])


def test_returned_request_turns_back_into_a_target_and_headers() -> None:
    request = viewer_request_event("GET", "/a?x=1&x=2&flag", [("Host", "h"), ("Cookie", "a=1; b=2")])["request"]
    request["uri"] = "/releases/abc/a/index.html"
    assert request_target(request) == "/releases/abc/a/index.html?x=1&x=2&flag"
    assert request_target({"uri": "/b", "querystring": "z=9"}) == "/b?z=9"
    assert request_target({"uri": "/c", "querystring": {}}) == "/c"
    assert request_headers(request) == [("host", "h"), ("cookie", "a=1; b=2")]


def test_parsers_keep_raw_encoded_values() -> None:
    assert parse_querystring("a=%2e%2E&&b=c=d") == {"a": {"value": "%2e%2E"}, "b": {"value": "c=d"}}
    assert parse_cookies(["x=%20; ; =skip; y"]) == {"x": {"value": "%20"}, "y": {"value": ""}}
