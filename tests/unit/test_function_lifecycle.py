"""``hosting-toolkit function test``: the router's cases in the sandbox, and staged on CloudFront (botocore's Stubber)."""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.response import StreamingBody
from typer.testing import CliRunner, Result

from hosting_toolkit.cli import functions
from hosting_toolkit.cli.main import app
from hosting_toolkit.config import HostingConfig
from hosting_toolkit.contract import (
    OUTPUT_KVS_ARN,
    OUTPUT_ROUTER_FUNCTION_NAME,
    RELEASE_HEADER,
    ROUTING_KEY,
    RoutingState,
)
from hosting_toolkit.edge.code import render_router
from hosting_toolkit.edge.lifecycle import (
    CASES_DIR,
    FunctionCase,
    load_cases,
    mismatches,
    run_local,
    store_keys,
)
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.errors import InvalidInputError, VerificationError
from tests.fakes.aws import StubbedSession

pytestmark = pytest.mark.node

FUNCTION_NAME = "us-east-1hosting-siteRoutwerRequestRouter30E7F1E4"
KVS_ARN = "arn:aws:cloudfront::111111111111:key-value-store/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
FUNCTION_ARN = f"arn:aws:cloudfront::111111111111:function/{FUNCTION_NAME}"
DEPLOYED_LIVE = "d00dd00dd00d"
DEPLOYED_STORE = {ROUTING_KEY: RoutingState(live=DEPLOYED_LIVE).to_json()}
REMOTE_CASES = ["spa-root", "traversal-dot-segments"]


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "hosting.toml"
    path.write_text('[site]\nname = "site"\n', encoding="utf-8")
    return path


def copy_cases(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "cases"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(CASES_DIR / f"{name}.json", folder / f"{name}.json")
    return folder


def edit_case(folder: Path, name: str, **changes: Any) -> None:
    path = folder / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


# The cases of functions/tests in the sandbox.


def test_every_case_in_functions_tests_passes_in_the_sandbox(function_sandbox: FunctionSandbox) -> None:
    cases = load_cases(CASES_DIR)
    results = run_local(cases, HostingConfig(), function_sandbox)
    assert len(results) >= 15
    assert [(r.name, r.error, r.mismatches) for r in results if not r.ok] == []


def test_the_cases_cover_the_routers_promises() -> None:
    cases = load_cases(CASES_DIR)
    statuses = {case.expect["response"]["statusCode"] for case in cases if "response" in case.expect}
    assert statuses == {302, 400, 503}
    modes = {case.site.get("mode", "spa") for case in cases}
    assert modes == {"spa", "static"}
    assert {
        "spa-deep-link",
        "static-clean-url",
        "static-directory",
        "pinned-asset",
        "nothing-live",
        "release-rules-redirect",
    } <= {case.name for case in cases}


def test_function_test_runs_every_case_and_prints_each_result(config_file: Path) -> None:
    result = invoke("--config", config_file, "function", "test")

    assert result.exit_code == 0, result.stderr
    for path in CASES_DIR.glob("*.json"):
        assert f"ok   {path.stem}" in result.stderr
    assert "request /releases/a1b2c3d4e5f6/about/index.html" in result.stderr
    assert "response 503" in result.stderr


def test_a_broken_case_fails_the_run_with_exit_7(tmp_path: Path, config_file: Path) -> None:
    folder = copy_cases(tmp_path, "spa-root", "static-clean-url")
    edit_case(folder, "static-clean-url", expect={"request": {"uri": "/releases/a1b2c3d4e5f6/about.html"}})

    result = invoke("--config", config_file, "function", "test", "--cases", folder)

    assert result.exit_code == VerificationError.exit_code
    assert "ok   spa-root" in result.stderr
    assert "FAIL static-clean-url" in result.stderr
    assert (
        'request.uri: expected "/releases/a1b2c3d4e5f6/about.html", got "/releases/a1b2c3d4e5f6/about/index.html"'
        in result.stderr
    )
    assert "1 of 2 function test cases failed in the sandbox: static-clean-url" in result.stderr


def test_json_output_lists_every_case_with_its_output(tmp_path: Path, config_file: Path) -> None:
    folder = copy_cases(tmp_path, "nothing-live", "pinned-asset")
    edit_case(folder, "pinned-asset", kvs={})

    result = invoke("--config", config_file, "function", "test", "--cases", folder, "--json")

    assert result.exit_code == VerificationError.exit_code
    local = {entry["case"]: entry for entry in json.loads(result.stdout)["local"]}
    assert local["nothing-live"]["ok"] is True
    assert local["nothing-live"]["output"]["response"]["statusCode"] == 503
    assert local["pinned-asset"]["ok"] is False
    assert local["pinned-asset"]["summary"] == "response 503"
    assert local["pinned-asset"]["mismatches"] == [
        'request: missing (expected {"uri": "/releases/0f0f0f0f0f0f/assets/app.0f0f0f0f.js"})'
    ]


def test_cases_named_on_the_command_line_run_alone(config_file: Path) -> None:
    result = invoke("--config", config_file, "function", "test", "spa-root", "--json")
    assert result.exit_code == 0, result.stderr
    assert [entry["case"] for entry in json.loads(result.stdout)["local"]] == ["spa-root"]

    unknown = invoke("--config", config_file, "function", "test", "spa-roots")
    assert unknown.exit_code == InvalidInputError.exit_code
    assert "no case named spa-roots" in unknown.stderr


def test_invalid_case_files_are_reported_together(tmp_path: Path) -> None:
    folder = copy_cases(tmp_path, "spa-root", "nothing-live")
    edit_case(folder, "spa-root", expect={"uri": "/"}, extra=1)
    data = json.loads((folder / "nothing-live.json").read_text(encoding="utf-8"))
    data["event"]["context"]["eventType"] = "viewer-response"
    del data["event"]["request"]["cookies"]
    (folder / "nothing-live.json").write_text(json.dumps(data), encoding="utf-8")

    with pytest.raises(InvalidInputError) as caught:
        load_cases(folder)

    message = str(caught.value)
    assert "4 problems" in message
    assert 'nothing-live.json: event.context.eventType must be "viewer-request"' in message
    assert "nothing-live.json: event.request.cookies must map names to" in message
    assert "spa-root.json: unknown key 'extra'" in message
    assert "spa-root.json: 'expect' must be" in message


def test_kvs_values_may_be_json_or_text(tmp_path: Path) -> None:
    folder = copy_cases(tmp_path, "spa-root")
    edit_case(folder, "spa-root", kvs={"routing": '{"live":"a1b2c3d4e5f6"}', "preview-token": "x" * 32})
    (case,) = load_cases(folder)
    assert case.kvs == {"routing": '{"live":"a1b2c3d4e5f6"}', "preview-token": "x" * 32}
    assert store_keys([case]) == ["preview-token", "routing"]


# Comparing outputs.


def test_expectations_are_subsets_and_null_means_absent() -> None:
    actual = {"request": {"uri": "/a", "headers": {"host": {"value": "h"}, "x": {"value": "1"}}}}
    assert mismatches({"request": {"headers": {"host": {"value": "h"}}}}, actual) == []
    assert mismatches({"request": {"headers": {"y": None}}}, actual) == []
    assert mismatches({"request": {"headers": {"x": None}}}, actual) == [
        'request.headers.x: expected absent, got {"value": "1"}'
    ]
    assert mismatches({"response": {"statusCode": 400}}, actual) == ['response: missing (expected {"statusCode": 400})']


def test_a_response_body_compares_as_text_in_any_encoding() -> None:
    text = "Bad request path.\n"
    encoded = {"encoding": "base64", "data": base64.b64encode(text.encode()).decode()}
    assert mismatches({"response": {"body": text}}, {"response": {"body": encoded}}) == []
    assert mismatches({"response": {"body": {"encoding": "text", "data": text}}}, {"response": {"body": text}}) == []
    assert mismatches({"response": {"body": "other"}}, {"response": {"body": text}}) != []


# --remote: staged in DEVELOPMENT and run through TestFunction, answered by botocore's Stubber.


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubbedSession]:
    session = StubbedSession("cloudformation", "cloudfront-keyvaluestore", "cloudfront")
    monkeypatch.setattr(functions, "session_factory", lambda: session)
    yield session
    session.verify()


def function_summary(etag_stage: str = "DEVELOPMENT") -> dict[str, Any]:
    return {
        "Name": FUNCTION_NAME,
        "Status": "UNASSOCIATED" if etag_stage == "DEVELOPMENT" else "DEPLOYED",
        "FunctionConfig": {
            "Comment": "Routes each request of the 'site' site into the folder of one release",
            "Runtime": "cloudfront-js-2.0",
            "KeyValueStoreAssociations": {"Quantity": 1, "Items": [{"KeyValueStoreARN": KVS_ARN}]},
        },
        "FunctionMetadata": {
            "FunctionARN": FUNCTION_ARN,
            "Stage": etag_stage,
            "LastModifiedTime": datetime(2025, 1, 1, tzinfo=UTC),
        },
    }


def expect_stack(aws: StubbedSession, outputs: dict[str, str]) -> None:
    stack = {
        "StackName": "hosting-site",
        "CreationTime": datetime(2025, 1, 1, tzinfo=UTC),
        "StackStatus": "UPDATE_COMPLETE",
        "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()],
    }
    aws.stubbers["cloudformation"].add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "hosting-site"})


def expect_stack_and_store(aws: StubbedSession) -> None:
    expect_stack(aws, {OUTPUT_ROUTER_FUNCTION_NAME: FUNCTION_NAME, OUTPUT_KVS_ARN: KVS_ARN})
    kvs = aws.stubbers["cloudfront-keyvaluestore"]
    kvs.add_response(
        "describe_key_value_store",
        {"ItemCount": 1, "TotalSizeInBytes": 40, "KvsARN": KVS_ARN, "Created": datetime(2025, 1, 1), "ETag": "KVS1"},
        {"KvsARN": KVS_ARN},
    )
    kvs.add_response(
        "get_key",
        {"Key": ROUTING_KEY, "Value": DEPLOYED_STORE[ROUTING_KEY], "ItemCount": 1, "TotalSizeInBytes": 40},
        {"KvsARN": KVS_ARN, "Key": ROUTING_KEY},
    )


def expect_staging(aws: StubbedSession, code: str) -> None:
    cloudfront = aws.stubbers["cloudfront"]
    cloudfront.add_response(
        "describe_function",
        {"FunctionSummary": function_summary(), "ETag": "ETAG1"},
        {"Name": FUNCTION_NAME, "Stage": "DEVELOPMENT"},
    )
    cloudfront.add_response(
        "update_function",
        {"FunctionSummary": function_summary(), "ETag": "ETAG2"},
        {
            "Name": FUNCTION_NAME,
            "IfMatch": "ETAG1",
            "FunctionConfig": function_summary()["FunctionConfig"],
            "FunctionCode": code.encode(),
        },
    )


def expect_test(aws: StubbedSession, case: FunctionCase, result: dict[str, Any]) -> None:
    aws.stubbers["cloudfront"].add_response(
        "test_function",
        {"TestResult": {"FunctionSummary": function_summary(), **result}},
        {"Name": FUNCTION_NAME, "IfMatch": "ETAG2", "Stage": "DEVELOPMENT", "EventObject": case.event_bytes},
    )


def expect_live_code(aws: StubbedSession, code: str) -> None:
    data = code.encode()
    aws.stubbers["cloudfront"].add_response(
        "get_function",
        {
            "FunctionCode": StreamingBody(io.BytesIO(data), len(data)),
            "ETag": "ETAG0",
            "ContentType": "application/octet-stream",
        },
        {"Name": FUNCTION_NAME, "Stage": "LIVE"},
    )


def routed_output(case: FunctionCase, uri: str) -> str:
    """TestFunction's FunctionOutput for the case's request rewritten to ``uri`` (``/releases/<id>/...``)."""
    request = case.event["request"]
    tagged = {**request["headers"], RELEASE_HEADER: {"value": uri.split("/")[2]}}
    return json.dumps({"request": {**request, "uri": uri, "headers": tagged}})


BAD_REQUEST = json.dumps(
    {
        "response": {
            "headers": {
                "content-type": {"value": "text/plain; charset=utf-8"},
                "cache-control": {"value": "no-store"},
                "x-release": {"value": "none"},
            },
            "statusDescription": "Bad Request",
            "cookies": {},
            "statusCode": 400,
            "body": {"encoding": "text", "data": "Bad request path.\n"},
        }
    }
)


def expect_remote_run(aws: StubbedSession, results: dict[str, dict[str, Any]], *, live_code: str | None = None) -> None:
    """The calls of a ``--remote`` run of ``REMOTE_CASES``, with TestFunction answering each case with ``results``."""
    cases = {case.name: case for case in load_cases(CASES_DIR, REMOTE_CASES)}
    code = render_router(HostingConfig())
    expect_stack_and_store(aws)
    expect_staging(aws, code)
    for name in REMOTE_CASES:
        expect_test(aws, cases[name], results[name])
    expect_live_code(aws, code if live_code is None else live_code)


def spa_root_output(uri: str) -> str:
    """TestFunction's FunctionOutput for the spa-root case's request rewritten to ``uri``."""
    (case,) = load_cases(CASES_DIR, ["spa-root"])
    return routed_output(case, uri)


AS_THE_SANDBOX = {
    "spa-root": {
        "ComputeUtilization": "14",
        "FunctionExecutionLogs": [],
        "FunctionErrorMessage": "",
        "FunctionOutput": spa_root_output(f"/releases/{DEPLOYED_LIVE}/index.html"),
    },
    "traversal-dot-segments": {"ComputeUtilization": "3", "FunctionOutput": BAD_REQUEST},
}


def test_remote_stages_the_rendered_code_and_tests_every_case_against_the_deployed_store(
    aws: StubbedSession, config_file: Path
) -> None:
    expect_remote_run(aws, AS_THE_SANDBOX)

    result = invoke("--config", config_file, "function", "test", *REMOTE_CASES, "--remote")

    assert result.exit_code == 0, result.stderr
    assert f"staged in {FUNCTION_NAME} (DEVELOPMENT, ETag ETAG2)" in result.stderr
    assert f"request /releases/{DEPLOYED_LIVE}/index.html" in result.stderr
    assert "compute 14%" in result.stderr
    assert "compute 3%" in result.stderr
    assert "LIVE runs this same code" in result.stderr


def test_remote_json_reports_the_stage_and_each_cases_compute_utilization(
    aws: StubbedSession, config_file: Path
) -> None:
    expect_remote_run(aws, AS_THE_SANDBOX, live_code="// an older router\n")

    result = invoke("--config", config_file, "function", "test", *REMOTE_CASES, "--remote", "--json")

    assert result.exit_code == 0, result.stderr
    remote = json.loads(result.stdout)["remote"]
    assert remote["function"] == FUNCTION_NAME
    assert remote["stage"] == "DEVELOPMENT"
    assert remote["etag"] == "ETAG2"
    assert remote["live_runs_this_code"] is False
    assert [(r["case"], r["ok"], r["compute_utilization"]) for r in remote["results"]] == [
        ("spa-root", True, 14),
        ("traversal-dot-segments", True, 3),
    ]


def test_remote_fails_when_cloudfront_answers_otherwise_than_the_sandbox(
    aws: StubbedSession, config_file: Path
) -> None:
    error = "TypeError: cannot read property 'value' of undefined"
    expect_remote_run(
        aws,
        {
            "spa-root": {"ComputeUtilization": "15", "FunctionOutput": spa_root_output(f"/releases/{DEPLOYED_LIVE}/")},
            "traversal-dot-segments": {"ComputeUtilization": "4", "FunctionErrorMessage": error},
        },
    )

    result = invoke("--config", config_file, "function", "test", *REMOTE_CASES, "--remote")

    assert result.exit_code == VerificationError.exit_code
    assert "FAIL spa-root" in result.stderr
    assert (
        f'request.uri: expected "/releases/{DEPLOYED_LIVE}/index.html", got "/releases/{DEPLOYED_LIVE}/"'
        in result.stderr
    )
    assert "FAIL traversal-dot-segments" in result.stderr
    assert f"error: {error}" in result.stderr
    assert "2 of 2 function test cases failed on CloudFront" in result.stderr


def test_remote_stages_nothing_when_a_case_fails_in_the_sandbox(
    aws: StubbedSession, tmp_path: Path, config_file: Path
) -> None:
    folder = copy_cases(tmp_path, "spa-root")
    edit_case(folder, "spa-root", expect={"request": {"uri": "/"}})

    result = invoke("--config", config_file, "function", "test", "--cases", folder, "--remote")

    assert result.exit_code == VerificationError.exit_code
    assert "failed in the sandbox; nothing was staged" in result.stderr


def test_remote_needs_the_router_output_of_a_current_stack(aws: StubbedSession, config_file: Path) -> None:
    expect_stack(aws, {OUTPUT_KVS_ARN: KVS_ARN})

    result = invoke("--config", config_file, "function", "test", "spa-root", "--remote")

    assert result.exit_code == 6
    assert f"stack hosting-site has no output {OUTPUT_ROUTER_FUNCTION_NAME}" in result.stderr


def test_remote_refuses_a_local_target(tmp_path: Path, config_file: Path) -> None:
    result = invoke("--config", config_file, "--local", tmp_path / "target", "function", "test", "--remote")
    assert result.exit_code == InvalidInputError.exit_code
    assert "--remote tests the deployed function" in result.stderr


def test_help_says_live_changes_only_through_deploy() -> None:
    result = invoke("function", "test", "--help")
    assert result.exit_code == 0
    assert "Publishing to LIVE happens only through 'hosting-toolkit deploy'" in " ".join(result.stdout.split())
