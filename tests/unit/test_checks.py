"""The pieces of ``check`` that need no site: rule matching against the router's own, bucket policies, S3's
answers to the engine's reads (Stubber), and the viewer-response reading from a response's headers."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from hosting_toolkit.config import HostingConfig, parse_config
from hosting_toolkit.contract import CHECK_HEADER, RELEASE_HEADER, ROUTING_KEY, RoutingState
from hosting_toolkit.edge.code import render_router
from hosting_toolkit.edge.events import viewer_request_event
from hosting_toolkit.edge.rules import RULES_HEADER, parse_pattern
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.release.checks import FAIL, PASS, CheckError, CheckReport, CheckResult, SiteChecks, matches
from hosting_toolkit.release.verify import Fetched

BUCKET = "site-bucket"
DISTRIBUTION = "E2CHECKDIST"
KVS_ARN = "arn:aws:cloudfront::123456789012:key-value-store/0f0f0f0f-0000-4000-8000-000000000000"
NONCE = "feedfacecafe"
PATTERNS = ["/", "/docs/*", "/assets/:file", "/blog/:year/*", "/a/:b/c", "/exact/path", "/exact/dir/"]
PATHS = [
    "/",
    "/docs",
    "/docs/",
    "/docs/a/b.html",
    "/docsx",
    "/assets/app.js",
    "/assets/",
    "/assets",
    "/assets/deep/app.js",
    "/blog/2024",
    "/blog/2024/",
    "/blog/2024/post/x",
    "/blog",
    "/a/b/c",
    "/a//c",
    "/a/b/c/d",
    "/exact/path",
    "/exact/path/",
    "/exact/dir/",
    "/exact/dir",
]


@pytest.mark.node
def test_matching_picks_the_paths_the_router_tags_for_each_header_rule(function_sandbox: FunctionSandbox) -> None:
    rules = {"headers": [{"path": p, "headers": {"x-rule": str(i)}} for i, p in enumerate(PATTERNS)]}
    function_sandbox.load("check-router", render_router(parse_config({"rules": rules})))
    routing = {ROUTING_KEY: RoutingState(live="r1").to_json()}
    compiled = [parse_pattern(p)[0] for p in PATTERNS]
    for path in PATHS:
        result = function_sandbox.invoke("check-router", viewer_request_event("GET", path), routing).result
        assert result is not None, path
        tag = result["headers"].get(RULES_HEADER)
        tagged = [int(n) for n in tag["value"].split(".")] if tag else []
        assert [i for i, pattern in enumerate(compiled) if matches(pattern, path)] == tagged, path


def cdk_policy(**changes: Any) -> dict[str, Any]:
    """A bucket policy as CDK writes it for Origin Access Control with READ and LIST."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        "Condition": {
            "StringEquals": {"AWS:SourceArn": f"arn:aws:cloudfront::123456789012:distribution/{DISTRIBUTION}"}
        },
    }
    statement.update(changes)
    deny_http = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    return {"Version": "2012-10-17", "Statement": [deny_http, statement]}


def s3_checks(policy: dict[str, Any] | None = None) -> tuple[SiteChecks, Stubber]:
    client = boto3.client("s3", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.activate()
    if policy is not None:
        stubber.add_response("get_bucket_policy", {"Policy": json.dumps(policy)}, {"Bucket": BUCKET})
    kvs = boto3.client("cloudfront-keyvaluestore", region_name="us-east-1")
    kvs_stubber = Stubber(kvs)
    kvs_stubber.activate()
    kvs_stubber.add_response(
        "get_key",
        {"Key": ROUTING_KEY, "Value": RoutingState().to_json(), "ItemCount": 1, "TotalSizeInBytes": 9},
        {"KvsARN": KVS_ARN, "Key": ROUTING_KEY},
    )
    checks = SiteChecks(
        config=HostingConfig(),
        clients={"s3": client, "cloudfront-keyvaluestore": kvs}.__getitem__,
        base_url="https://d111111abcdef8.cloudfront.net",
        bucket=BUCKET,
        kvs_arn=KVS_ARN,
        distribution_id=DISTRIBUTION,
        stack_name="hosting-site",
        nonce=NONCE,
    )
    return checks, stubber


@pytest.mark.parametrize(
    ("changes", "granted"),
    [
        ({}, True),
        ({"Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"}, True),
        ({"Action": ["s3:GetObject"]}, False),
        ({"Resource": [f"arn:aws:s3:::{BUCKET}/*"]}, False),
        ({"Effect": "Deny"}, False),
        ({"Principal": {"Service": "s3.amazonaws.com"}}, False),
        ({"Principal": "*"}, False),
        ({"Condition": {"StringEquals": {"AWS:SourceArn": "arn:aws:cloudfront::1:distribution/EOTHER"}}}, False),
    ],
    ids=["cdk", "list-only", "read-only", "objects-only", "deny", "other-service", "anyone", "other-distribution"],
)
def test_the_origin_check_needs_a_list_grant_to_this_distribution(changes: dict[str, Any], granted: bool) -> None:
    checks, stubber = s3_checks(cdk_policy(**changes))

    (result,) = checks.check_origin_lists()

    assert result.status == (PASS if granted else FAIL)
    assert result.measured == {"list_granted": granted}
    assert ("READ and LIST" in result.fix) is not granted
    stubber.assert_no_pending_responses()


def expect_reads(stubber: Stubber, status: int, code: str) -> None:
    for key in (f"errors/check-{NONCE}.html", f"_meta/check-{NONCE}.json"):
        for operation in ("head_object", "get_object"):
            stubber.add_client_error(
                operation,
                service_error_code=code,
                http_status_code=status,
                expected_params={"Bucket": BUCKET, "Key": key},
            )


def test_missing_keys_answering_404_pass() -> None:
    checks, stubber = s3_checks()
    expect_reads(stubber, 404, "NoSuchKey")

    (result,) = checks.check_engine_reads()

    assert result.status == PASS
    assert result.detail.startswith(f"head_object errors/check-{NONCE}.html: 404")
    stubber.assert_no_pending_responses()


def test_missing_keys_answering_403_fail_with_the_list_grant_to_add() -> None:
    checks, stubber = s3_checks()
    expect_reads(stubber, 403, "AccessDenied")

    (result,) = checks.check_engine_reads()

    assert result.status == FAIL
    assert f"get_object _meta/check-{NONCE}.json: 403" in result.detail
    assert "s3:ListBucket" in result.fix


def reading_checks(answer: Fetched, live: str | None = "r1") -> SiteChecks:
    kvs = boto3.client("cloudfront-keyvaluestore", region_name="us-east-1")
    stubber = Stubber(kvs)
    stubber.activate()
    stubber.add_response(
        "get_key",
        {"Key": ROUTING_KEY, "Value": RoutingState(live=live).to_json(), "ItemCount": 1, "TotalSizeInBytes": 20},
        {"KvsARN": KVS_ARN, "Key": ROUTING_KEY},
    )

    def fetch(url: str, headers: dict[str, str], timeout: float) -> Fetched:
        assert headers == {CHECK_HEADER: "1"}
        return answer

    return SiteChecks(
        config=HostingConfig(),
        clients={"cloudfront-keyvaluestore": kvs}.__getitem__,
        base_url="https://d111111abcdef8.cloudfront.net/",
        bucket=BUCKET,
        kvs_arn=KVS_ARN,
        distribution_id=DISTRIBUTION,
        stack_name="hosting-site",
        fetch=fetch,
        nonce=NONCE,
    )


def test_a_viewer_response_function_without_the_check_header_asks_for_a_deploy() -> None:
    checks = reading_checks(Fetched(200, {RELEASE_HEADER: "r1"}))

    (result,) = checks.check_viewer_response_reading()

    assert result.status == FAIL
    assert "predates this check" in result.detail
    assert "hosting-toolkit deploy" in result.fix


def test_the_router_headers_not_reaching_the_viewer_response_function_fail() -> None:
    checks = reading_checks(Fetched(200, {CHECK_HEADER: "/"}))

    (result,) = checks.check_viewer_response_reading()

    assert result.status == FAIL
    assert result.measured == {"uri": "/", "reading": "original", "router_headers_seen": False}
    assert "header rules" in result.fix


def test_a_site_that_does_not_answer_fails_the_check_not_the_run() -> None:
    checks = reading_checks(Fetched(0, error="no response from https://d111111abcdef8.cloudfront.net/: timed out"))

    results = [r for r in checks.run().results if r.name == "viewer-response sees"]

    assert results == [
        CheckResult(
            "viewer-response sees",
            FAIL,
            "could not check: no response from https://d111111abcdef8.cloudfront.net/: timed out",
        )
    ]


def test_the_report_counts_each_status_and_fails_on_any_failure() -> None:
    report = CheckReport(
        (
            CheckResult("a", PASS, "fine"),
            CheckResult("b", "skip", "not here"),
            CheckResult("c", FAIL, "broken", "fix it", {"seconds": 1.5}),
        )
    )

    data = report.to_json()

    assert data["ok"] is False and report.ok is False
    assert data["counts"] == {"pass": 1, "fail": 1, "skip": 1}
    assert data["checks"][2] == {
        "name": "c",
        "status": "fail",
        "detail": "broken",
        "fix": "fix it",
        "measured": {"seconds": 1.5},
    }
    assert [r.name for r in report.failures] == ["c"]


def kvs_checks() -> tuple[SiteChecks, Stubber]:
    kvs = boto3.client("cloudfront-keyvaluestore", region_name="us-east-1")
    stubber = Stubber(kvs)
    stubber.activate()
    ticks = iter(range(100))
    checks = SiteChecks(
        config=HostingConfig(),
        clients={"cloudfront-keyvaluestore": kvs}.__getitem__,
        base_url="https://d111111abcdef8.cloudfront.net",
        bucket=BUCKET,
        kvs_arn=KVS_ARN,
        distribution_id=DISTRIBUTION,
        stack_name="hosting-site",
        nonce=NONCE,
        clock=lambda: float(next(ticks)),
        sleep=lambda _: None,
    )
    return checks, stubber


def describe(stubber: Stubber, etag: str) -> None:
    answer = {
        "KvsARN": KVS_ARN,
        "Created": "2025-01-01T00:00:00Z",
        "ETag": etag,
        "ItemCount": 1,
        "TotalSizeInBytes": 40,
    }
    stubber.add_response("describe_key_value_store", answer, {"KvsARN": KVS_ARN})


def test_the_kvs_check_writes_a_check_key_conditionally_times_its_read_back_and_deletes_it() -> None:
    checks, stubber = kvs_checks()
    key, value = f"check-{NONCE}", json.dumps({"check": NONCE}, separators=(",", ":"))
    describe(stubber, "E1")
    stubber.add_response(
        "put_key",
        {"ETag": "E2", "ItemCount": 2, "TotalSizeInBytes": 80},
        {"KvsARN": KVS_ARN, "Key": key, "Value": value, "IfMatch": "E1"},
    )
    stubber.add_client_error(
        "get_key", "ResourceNotFoundException", http_status_code=404, expected_params={"KvsARN": KVS_ARN, "Key": key}
    )
    stubber.add_response(
        "get_key", {"Key": key, "Value": value, "ItemCount": 2, "TotalSizeInBytes": 80}, {"KvsARN": KVS_ARN, "Key": key}
    )
    describe(stubber, "E2")
    describe(stubber, "E2")
    stubber.add_response(
        "delete_key",
        {"ETag": "E3", "ItemCount": 1, "TotalSizeInBytes": 40},
        {"KvsARN": KVS_ARN, "Key": key, "IfMatch": "E2"},
    )

    (result,) = checks.check_kvs_write()

    assert result.status == PASS
    assert result.measured == {"seconds": 2.0, "measured": "api_read_after_write"}
    assert result.detail.startswith(f"{key} read back after 2.00 s and was deleted again")
    stubber.assert_no_pending_responses()


def test_a_check_key_that_cannot_be_deleted_fails_saying_how_to_delete_it() -> None:
    checks, stubber = kvs_checks()
    key, value = f"check-{NONCE}", json.dumps({"check": NONCE}, separators=(",", ":"))
    describe(stubber, "E1")
    stubber.add_response("put_key", {"ETag": "E2", "ItemCount": 2, "TotalSizeInBytes": 80})
    stubber.add_response("get_key", {"Key": key, "Value": value, "ItemCount": 2, "TotalSizeInBytes": 80})
    describe(stubber, "E2")
    describe(stubber, "E2")
    stubber.add_client_error("delete_key", "AccessDeniedException", http_status_code=403)

    with pytest.raises(CheckError) as raised:
        list(checks.check_kvs_write())

    assert f"the check key {key} could not be deleted" in str(raised.value)
    assert f"aws cloudfront-keyvaluestore delete-key --kvs-arn {KVS_ARN} --key {key}" in str(raised.value)
    stubber.assert_no_pending_responses()
