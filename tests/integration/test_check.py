"""``hosting-toolkit check`` through the CLI: the site's HTTP side against the real local edge over HTTP, S3 on
moto_server, the KeyValueStore on the protocol fake, and CloudFront, IAM, CloudFormation and CodeBuild
answered by botocore's Stubber with the exact requests the checks send.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY
from typer.testing import CliRunner, Result

from hosting_toolkit.cli import check as check_command
from hosting_toolkit.cli.main import app
from hosting_toolkit.config import HostingConfig, load_config
from hosting_toolkit.contract import (
    OUTPUT_BUCKET_NAME,
    OUTPUT_DISTRIBUTION_ID,
    OUTPUT_KVS_ARN,
    OUTPUT_SITE_URL,
    ROUTING_KEY,
    error_responses,
)
from hosting_toolkit.edge.code import VIEWER_RESPONSE_FILE, render, render_viewer_response, site_settings
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.local.edge import LocalEdge
from hosting_toolkit.local.server import make_server
from hosting_toolkit.release import checks
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.kvs import LocalKeyValueStore
from hosting_toolkit.release.s3 import S3ObjectStore
from tests.fakes.aws import StubbedSession
from tests.fakes.kvs_server import FakeKeyValueStoreServer
from tests.fakes.sites import write_files
from tests.integration.conftest import S3Bucket

pytestmark = [pytest.mark.integration, pytest.mark.node, pytest.mark.usefixtures("clean_cli_env")]

NONCE = "0c0ffee0c0ff"
STACK = "hosting-site"
DISTRIBUTION_ID = "E2CHECKDIST"
ACCOUNT = "123456789012"
DOMAIN = "d111111abcdef8.cloudfront.net"
VIEWER_RESPONSE = "hosting-site-ViewerResponse"
VIEWER_RESPONSE_ARN = f"arn:aws:cloudfront::{ACCOUNT}:function/{VIEWER_RESPONSE}"
LIVE = "r1"
BUILD_ROLE = f"arn:aws:iam::{ACCOUNT}:role/hosting-site-BuildRole"
OPERATE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/hosting-site-OperateRole"
ROLES = {"hosting-site-Build": BUILD_ROLE, "hosting-site-Operate": OPERATE_ROLE}
OLD_CODE = "// the viewer-response function of an earlier deploy\n"
RULES = """
[[rules.headers]]
path = "/assets/*"
headers = { "x-robots-tag" = "noindex", "cache-control" = "public, max-age=31536000, immutable" }

[[rules.headers]]
path = "/assets/:file"
headers = { "x-asset" = "yes" }
"""


def list_policy(bucket: str, *, actions: tuple[str, ...] = ("s3:GetObject", "s3:ListBucket")) -> dict[str, Any]:
    """The bucket policy CDK writes for an Origin Access Control with READ and LIST."""
    condition = {"StringEquals": {"AWS:SourceArn": f"arn:aws:cloudfront::{ACCOUNT}:distribution/{DISTRIBUTION_ID}"}}
    statements = []
    for action in actions:
        resource = f"arn:aws:s3:::{bucket}" if action == "s3:ListBucket" else f"arn:aws:s3:::{bucket}/*"
        statements.append(
            {
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": action,
                "Resource": resource,
                "Condition": condition,
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


class CloudFrontRuntime:
    """The CloudFront client, with TestFunction's answer computed by the staged code in the Node sandbox.

    Every call still goes through the Stubber (request shapes asserted); TestFunction's ``FunctionOutput``
    is then what the function code staged last (by UpdateFunction, else the DEVELOPMENT code) returns.
    """

    def __init__(self, client: Any, sandbox: FunctionSandbox, development_code: str) -> None:
        self._client = client
        self._sandbox = sandbox
        self.code = development_code
        self.events: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def update_function(self, **kwargs: Any) -> Any:
        answer = self._client.update_function(**kwargs)
        self.code = kwargs["FunctionCode"].decode()
        return answer

    def test_function(self, **kwargs: Any) -> Any:
        answer = self._client.test_function(**kwargs)
        event = json.loads(kwargs["EventObject"])
        self.events.append(event)
        self._sandbox.load("staged-viewer-response", self.code)
        invocation = self._sandbox.invoke("staged-viewer-response", event)
        result = answer["TestResult"]
        if invocation.ok:
            result["FunctionOutput"] = json.dumps({"response": invocation.result})
        else:
            result["FunctionErrorMessage"] = invocation.error
        return answer


@dataclass
class Deployed:
    """A site as the checks see it: the edge's address, the AWS clients, and what the store and bucket hold."""

    root: Path
    config_path: Path
    edge_url: str
    aws: StubbedSession
    bucket: S3Bucket
    kvs_server: FakeKeyValueStoreServer
    kvs_arn: str
    runtime: CloudFrontRuntime
    stop: Callable[[], None]
    contents: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        """Every object of the bucket with its ETag, and every key of the store with its value."""
        listed = self.bucket.keys()
        objects = {k: self.bucket.head(k)["ETag"] for k in listed}
        return {"objects": objects, "kvs": self.kvs_server.items(self.kvs_arn)}

    def invoke(self, *args: str) -> Result:
        runner = CliRunner()
        return runner.invoke(
            app, ["--config", str(self.config_path), "check", "--base-url", self.edge_url, "--kvs-wait", "5", *args]
        )


def site_files(root: Path) -> Path:
    return write_files(
        root,
        {
            "index.html": "<h1>home</h1>",
            "docs/index.html": "<h1>docs</h1>",
            "assets/app-1a2b3c4d.js": "console.log(1)",
            "assets/deep/chunk-5e6f7a8b.js": "console.log(2)",
        },
    )


@pytest.fixture
def deploy(
    tmp_path: Path,
    s3_bucket: S3Bucket,
    kvs_server: FakeKeyValueStoreServer,
    kvs_test_client: Any,
    function_sandbox: FunctionSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Deployed]]:
    """Deploy a site locally: released into moto_server, routed by the KVS fake, served by the local edge."""
    monkeypatch.setattr(checks, "new_nonce", lambda: NONCE)
    stops: list[Callable[[], None]] = []

    def make(
        toml: str = "",
        *,
        edge_toml: str | None = None,
        live: bool = True,
        reading: Literal["rewritten", "original"] = "rewritten",
        policy: dict[str, Any] | None = None,
        development_code: str = OLD_CODE,
    ) -> Deployed:
        config_path = write_files(tmp_path, {"hosting.toml": '[site]\nname = "site"\n' + toml}) / "hosting.toml"
        edge_path = write_files(
            tmp_path / "edge", {"hosting.toml": '[site]\nname = "site"\n' + (toml if edge_toml is None else edge_toml)}
        )
        edge_config = load_config(edge_path / "hosting.toml")
        store = S3ObjectStore(s3_bucket.client, s3_bucket.name)
        local_kvs = LocalKeyValueStore(tmp_path / "kvs.json")
        engine = ReleaseEngine(store, local_kvs, edge_config, actor="tests")
        if live:
            engine.create(site_files(tmp_path / "site"), release_id=LIVE, activate=True)
        routing = local_kvs.read(ROUTING_KEY)[0]
        kvs_arn = kvs_server.create_store(items={ROUTING_KEY: routing} if routing else {})
        s3_bucket.client.put_bucket_policy(
            Bucket=s3_bucket.name, Policy=json.dumps(policy or list_policy(s3_bucket.name))
        )
        edge = LocalEdge(
            store=store, kvs=local_kvs, config=edge_config, sandbox=function_sandbox, viewer_response_uri=reading
        )
        server = make_server(edge, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()

        def stop() -> None:
            server.shutdown()
            server.server_close()

        stops.append(stop)
        aws = StubbedSession("cloudformation", "cloudfront", "iam", "codebuild")
        runtime = CloudFrontRuntime(aws.clients["cloudfront"], function_sandbox, development_code)
        aws.clients["cloudfront"] = runtime
        aws.clients["s3"] = s3_bucket.client
        aws.clients["cloudfront-keyvaluestore"] = kvs_test_client
        monkeypatch.setattr(check_command, "session_factory", lambda: aws)
        deployed = Deployed(
            tmp_path,
            config_path,
            f"http://127.0.0.1:{server.server_address[1]}",
            aws,
            s3_bucket,
            kvs_server,
            kvs_arn,
            runtime,
            stop,
        )
        expect_stack(deployed, edge_config)
        return deployed

    yield make
    for stop in stops:
        stop()


# -- the AWS calls the checks make -------------------------------------------------------------


def expect_stack(deployed: Deployed, edge_config: HostingConfig) -> None:
    outputs = {
        OUTPUT_BUCKET_NAME: deployed.bucket.name,
        OUTPUT_KVS_ARN: deployed.kvs_arn,
        OUTPUT_DISTRIBUTION_ID: DISTRIBUTION_ID,
        OUTPUT_SITE_URL: f"https://{DOMAIN}",
    }
    stack = {
        "StackName": STACK,
        "CreationTime": datetime(2025, 1, 1, tzinfo=UTC),
        "StackStatus": "CREATE_COMPLETE",
        "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in outputs.items()],
    }
    deployed.aws.stubbers["cloudformation"].add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": STACK})
    deployed.contents["edge_config"] = edge_config


def expect_roles(deployed: Deployed, roles: dict[str, str], *, denied: tuple[str, ...] = ()) -> None:
    """The pipeline's CodeBuild projects and their roles, and the simulator's answer for each key."""
    resources = [
        {
            "LogicalResourceId": name.replace("-", ""),
            "PhysicalResourceId": name,
            "ResourceType": "AWS::CodeBuild::Project",
            "LastUpdatedTimestamp": datetime(2025, 1, 1, tzinfo=UTC),
            "ResourceStatus": "CREATE_COMPLETE",
        }
        for name in roles
    ]
    resources.append(
        {
            "LogicalResourceId": "SiteBucket",
            "PhysicalResourceId": deployed.bucket.name,
            "ResourceType": "AWS::S3::Bucket",
            "LastUpdatedTimestamp": datetime(2025, 1, 1, tzinfo=UTC),
            "ResourceStatus": "CREATE_COMPLETE",
        }
    )
    deployed.aws.stubbers["cloudformation"].add_response(
        "list_stack_resources", {"StackResourceSummaries": resources}, {"StackName": STACK}
    )
    if not roles:
        return
    deployed.aws.stubbers["codebuild"].add_response(
        "batch_get_projects",
        {"projects": [{"name": name, "serviceRole": role} for name, role in roles.items()]},
        {"names": list(roles)},
    )
    bucket_arn = f"arn:aws:s3:::{deployed.bucket.name}"
    # Only _meta/ for the roles: no role reads under errors/, where the engine only writes.
    keys = [f"_meta/check-{NONCE}.json"]
    iam = deployed.aws.stubbers["iam"]
    for name in sorted(roles):
        role = roles[name]
        for key in keys:
            for action, resource, context in (
                ("s3:GetObject", f"{bucket_arn}/{key}", None),
                ("s3:ListBucket", bucket_arn, key),
            ):
                params: dict[str, Any] = {"PolicySourceArn": role, "ActionNames": [action], "ResourceArns": [resource]}
                if context is not None:
                    params["ContextEntries"] = [
                        {"ContextKeyName": "s3:prefix", "ContextKeyValues": [context], "ContextKeyType": "string"}
                    ]
                decision = "implicitDeny" if action in denied else "allowed"
                iam.add_response(
                    "simulate_principal_policy",
                    {
                        "EvaluationResults": [
                            {"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": decision}
                        ],
                        "IsTruncated": False,
                    },
                    params,
                )


def distribution(edge_config: HostingConfig) -> dict[str, Any]:
    status = edge_config.errors.not_found_status(edge_config.site.mode)
    items = [
        {"ErrorCode": code, "ResponsePagePath": f"/{key}", "ResponseCode": str(viewer), "ErrorCachingMinTTL": 10}
        for code, (key, viewer) in error_responses(status).items()
    ]
    return {
        "Distribution": {
            "Id": DISTRIBUTION_ID,
            "ARN": f"arn:aws:cloudfront::{ACCOUNT}:distribution/{DISTRIBUTION_ID}",
            "Status": "Deployed",
            "LastModifiedTime": datetime(2025, 1, 1, tzinfo=UTC),
            "InProgressInvalidationBatches": 0,
            "DomainName": DOMAIN,
            "DistributionConfig": {
                "CallerReference": "check",
                "Origins": {"Quantity": 1, "Items": [{"Id": "SiteBucket", "DomainName": "site.s3.amazonaws.com"}]},
                "DefaultCacheBehavior": {
                    "TargetOriginId": "SiteBucket",
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "FunctionAssociations": {
                        "Quantity": 2,
                        "Items": [
                            {
                                "FunctionARN": f"arn:aws:cloudfront::{ACCOUNT}:function/hosting-site-Router",
                                "EventType": "viewer-request",
                            },
                            {"FunctionARN": VIEWER_RESPONSE_ARN, "EventType": "viewer-response"},
                        ],
                    },
                },
                "CustomErrorResponses": {"Quantity": len(items), "Items": items},
                "Comment": "site",
                "Enabled": True,
            },
        },
        "ETag": "DIST1",
    }


def summary() -> dict[str, Any]:
    return {
        "Name": VIEWER_RESPONSE,
        "Status": "UNASSOCIATED",
        "FunctionConfig": {"Comment": "Names the release of each response", "Runtime": "cloudfront-js-2.0"},
        "FunctionMetadata": {
            "FunctionARN": VIEWER_RESPONSE_ARN,
            "Stage": "DEVELOPMENT",
            "LastModifiedTime": datetime(2025, 1, 1, tzinfo=UTC),
        },
    }


def expect_cloudfront(deployed: Deployed, *, test_error_at: int | None = None) -> None:
    """GetDistribution, the DEVELOPMENT code, staging the current code, four TestFunction runs and the restore."""
    stubber = deployed.aws.stubbers["cloudfront"]
    config = load_config(deployed.config_path)
    stubber.add_response("get_distribution", distribution(deployed.contents["edge_config"]), {"Id": DISTRIBUTION_ID})
    development = deployed.runtime.code.encode()
    stubber.add_response(
        "get_function",
        {"FunctionCode": StreamingBody(io.BytesIO(development), len(development)), "ETag": "VR1"},
        {"Name": VIEWER_RESPONSE, "Stage": "DEVELOPMENT"},
    )
    code = render_viewer_response(config)
    staged = deployed.runtime.code != code
    etag = "VR1"
    if staged:
        stubber.add_response(
            "describe_function",
            {"FunctionSummary": summary(), "ETag": "VR1"},
            {"Name": VIEWER_RESPONSE, "Stage": "DEVELOPMENT"},
        )
        stubber.add_response(
            "update_function",
            {"FunctionSummary": summary(), "ETag": "VR2"},
            {
                "Name": VIEWER_RESPONSE,
                "IfMatch": "VR1",
                "FunctionConfig": summary()["FunctionConfig"],
                "FunctionCode": code.encode(),
            },
        )
        etag = "VR2"
    runs = 4 if test_error_at is None else test_error_at + 1
    for run in range(runs):
        params = {"Name": VIEWER_RESPONSE, "IfMatch": etag, "Stage": "DEVELOPMENT", "EventObject": ANY}
        if run == test_error_at:
            stubber.add_client_error(
                "test_function", service_error_code="TestFunctionFailed", http_status_code=500, expected_params=params
            )
        else:
            stubber.add_response("test_function", {"TestResult": {"ComputeUtilization": "12"}}, params)
    if staged:
        stubber.add_response(
            "describe_function",
            {"FunctionSummary": summary(), "ETag": "VR3"},
            {"Name": VIEWER_RESPONSE, "Stage": "DEVELOPMENT"},
        )
        stubber.add_response(
            "update_function",
            {"FunctionSummary": summary(), "ETag": "VR4"},
            {
                "Name": VIEWER_RESPONSE,
                "IfMatch": "VR3",
                "FunctionConfig": summary()["FunctionConfig"],
                "FunctionCode": development,
            },
        )


def expect_all(deployed: Deployed, *, roles: dict[str, str] = ROLES, **cloudfront: Any) -> None:
    expect_roles(deployed, roles)
    expect_cloudfront(deployed, **cloudfront)


def by_name(result: Result) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in json.loads(result.stdout)["checks"]}


# -- a healthy site -----------------------------------------------------------------------------


def test_every_check_passes_on_a_healthy_site_and_leaves_the_store_and_bucket_as_they_were(
    deploy: Callable[..., Deployed],
) -> None:
    deployed = deploy(RULES)
    expect_all(deployed)
    before = deployed.snapshot()
    writes = deployed.kvs_server.count("PutKey"), deployed.kvs_server.count("DeleteKey")

    result = deployed.invoke("--json")

    assert result.exit_code == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["base_url"] == deployed.edge_url
    checks_ = by_name(result)
    assert {name: c["status"] for name, c in checks_.items()} == {
        "404 through CloudFront": "pass",
        "404 for your credentials": "pass",
        "404 for the hosting-site-Build role": "pass",
        "404 for the hosting-site-Operate role": "pass",
        "viewer-response sees": "pass",
        "viewer-response on CloudFront": "pass",
        "security headers": "pass",
        "header rule 1 (/assets/*)": "pass",
        "header rule 2 (/assets/:file)": "pass",
        "KeyValueStore write": "pass",
        "not-found page": "pass",
        "server-error page": "skip",
        "nothing-live page": "skip",
    }
    assert report["counts"] == {"pass": 11, "fail": 0, "skip": 2}
    for check in report["checks"]:
        assert set(check) == {"name", "status", "detail", "fix", "measured"}
        assert check["fix"] is None
    assert checks_["404 for your credentials"]["measured"]["answers"] == [
        f"head_object errors/check-{NONCE}.html: 404",
        f"get_object errors/check-{NONCE}.html: 404",
        f"head_object _meta/check-{NONCE}.json: 404",
        f"get_object _meta/check-{NONCE}.json: 404",
    ]
    assert checks_["viewer-response sees"]["measured"] == {
        "uri": f"/releases/{LIVE}/index.html",
        "reading": "rewritten",
        "router_headers_seen": True,
    }
    assert checks_["viewer-response on CloudFront"]["measured"]["staged"] is True
    release = f"check-{NONCE}"
    events = deployed.runtime.events
    assert [e["request"]["uri"] for e in events] == [
        "/docs/",
        f"/releases/{release}/docs/index.html",
        "/app.js",
        f"/releases/{release}/app.js",
    ]
    for event in events:
        assert event["version"] == "1.0" and event["context"]["eventType"] == "viewer-response"
        assert event["request"]["headers"]["x-release"] == {"value": release}
        assert event["response"]["statusCode"] == 304 and "content-type" not in event["response"]["headers"]
    assert "compute utilization up to 12%" in checks_["viewer-response on CloudFront"]["detail"]
    assert checks_["header rule 1 (/assets/*)"]["measured"]["path"] == "/assets/app-1a2b3c4d.js"
    kvs = checks_["KeyValueStore write"]
    assert kvs["measured"]["measured"] == "api_read_after_write"
    assert isinstance(kvs["measured"]["seconds"], float)
    assert "cannot be seen without changing what viewers see" in kvs["detail"]
    assert checks_["not-found page"]["measured"] == {"status": 404, "expected": 404, "problems": []}
    assert "not testable on a live site" in checks_["server-error page"]["detail"]
    # What the run wrote it removed: the check key, and the staged code (the restore UpdateFunction).
    assert deployed.snapshot() == before
    assert (deployed.kvs_server.count("PutKey"), deployed.kvs_server.count("DeleteKey")) == (
        writes[0] + 1,
        writes[1] + 1,
    )
    assert deployed.runtime.code == OLD_CODE
    deployed.aws.verify()


def test_the_table_names_each_check_and_says_so_when_all_pass(deploy: Callable[..., Deployed]) -> None:
    deployed = deploy()
    deployed.runtime.code = render_viewer_response(load_config(deployed.config_path))
    expect_all(deployed, roles={})

    result = deployed.invoke()

    assert result.exit_code == 0, result.stderr
    for name in ("404 through", "viewer-response", "KeyValueStore", "not-found page", "pass", "skip"):
        assert name in result.stderr
    assert "no pipeline" in result.stderr
    assert "all 11 checks passed or were skipped" in result.stderr
    assert result.stdout == ""
    deployed.aws.verify()


def test_the_deployed_code_is_tested_in_place_when_it_is_the_current_code(deploy: Callable[..., Deployed]) -> None:
    deployed = deploy()
    deployed.runtime.code = render_viewer_response(load_config(deployed.config_path))
    expect_all(deployed, roles={})

    result = deployed.invoke("--json")

    assert result.exit_code == 0, result.stderr
    runtime = by_name(result)["viewer-response on CloudFront"]
    assert runtime["measured"]["staged"] is False
    assert "the deployed code" in runtime["detail"]
    deployed.aws.verify()


def test_an_edge_passing_the_viewers_uri_is_reported_and_still_served_correctly(
    deploy: Callable[..., Deployed],
) -> None:
    deployed = deploy(RULES, reading="original")
    expect_all(deployed, roles={})

    result = deployed.invoke("--json")

    assert result.exit_code == 0, result.stderr
    seen = by_name(result)["viewer-response sees"]
    assert seen["measured"] == {"uri": "/", "reading": "original", "router_headers_seen": True}
    assert seen["detail"].startswith("the original URI (/)")
    deployed.aws.verify()


def test_with_nothing_live_the_503_page_is_checked_and_the_rest_skipped(deploy: Callable[..., Deployed]) -> None:
    deployed = deploy(live=False)
    expect_all(deployed, roles={})

    result = deployed.invoke("--json")

    assert result.exit_code == 0, result.stderr
    checks_ = by_name(result)
    assert checks_["nothing-live page"]["status"] == "pass"
    assert "answered 503 text/html" in checks_["nothing-live page"]["detail"]
    for name in ("viewer-response sees", "security headers"):
        assert checks_[name]["status"] == "skip"
    assert checks_["not-found page"]["status"] == "pass"
    deployed.aws.verify()


# -- each check failing ----------------------------------------------------------------------------


def test_a_bucket_policy_without_list_fails_with_the_fix_and_exit_7(deploy: Callable[..., Deployed]) -> None:
    deployed = deploy(policy=None)
    deployed.bucket.client.put_bucket_policy(
        Bucket=deployed.bucket.name, Policy=json.dumps(list_policy(deployed.bucket.name, actions=("s3:GetObject",)))
    )
    expect_all(deployed, roles={})

    result = deployed.invoke("--json")

    assert result.exit_code == 7
    failed = by_name(result)["404 through CloudFront"]
    assert failed["status"] == "fail"
    assert "list the bucket: no" in failed["detail"]
    assert "READ and LIST" in failed["fix"]
    assert "1 of 11 checks failed: 404 through CloudFront" in result.stderr
    assert json.loads(result.stdout)["ok"] is False


def test_a_pipeline_role_denied_listing_fails_naming_what_it_lacks(deploy: Callable[..., Deployed]) -> None:
    deployed = deploy()
    expect_roles(deployed, {"hosting-site-Build": BUILD_ROLE}, denied=("s3:ListBucket",))
    expect_cloudfront(deployed)

    result = deployed.invoke("--json")

    assert result.exit_code == 7
    failed = by_name(result)["404 for the hosting-site-Build role"]
    assert failed["status"] == "fail"
    assert failed["measured"]["denied"] == [
        f"s3:ListBucket with s3:prefix _meta/check-{NONCE}.json",
    ]
    assert "a missing key answers 403" in failed["detail"]
    deployed.aws.verify()


def test_a_missing_security_header_or_header_rule_fails(deploy: Callable[..., Deployed]) -> None:
    csp = "[headers]\ncontent_security_policy = \"default-src 'self'\"\n"
    deployed = deploy(csp + RULES, edge_toml=RULES.split('[[rules.headers]]\npath = "/assets/:file"')[0])
    expect_all(deployed, roles={})

    result = deployed.invoke("--json")

    assert result.exit_code == 7
    checks_ = by_name(result)
    headers = checks_["security headers"]
    assert headers["status"] == "fail"
    assert headers["measured"]["wrong"] == ["content-security-policy: None, expected \"default-src 'self'\""]
    assert checks_["header rule 1 (/assets/*)"]["status"] == "pass", checks_["header rule 1 (/assets/*)"]
    rule = checks_["header rule 2 (/assets/:file)"]
    assert rule["status"] == "fail"
    assert rule["measured"]["wrong"] == ["x-asset: None, expected 'yes'"]
    assert "hosting-toolkit deploy" in rule["fix"]


def test_a_not_found_status_other_than_configured_fails(deploy: Callable[..., Deployed]) -> None:
    deployed = deploy("[errors]\nspa_status = 200\n", edge_toml="")
    expect_all(deployed, roles={})

    result = deployed.invoke("--json")

    assert result.exit_code == 7
    failed = by_name(result)["not-found page"]
    assert failed["status"] == "fail"
    problems = failed["measured"]["problems"]
    assert "status 404, expected 200" in problems
    assert "403 -> ('/errors/404.html', 404), expected ('/errors/404.html', 200)" in problems


def test_a_kvs_failure_midway_still_deletes_the_check_key(
    deploy: Callable[..., Deployed], kvs_test_client: Any
) -> None:
    deployed = deploy()
    expect_all(deployed, roles={})
    before = deployed.snapshot()
    deletes = deployed.kvs_server.count("DeleteKey")

    def broken_read(model: Any, params: dict[str, Any], **_: Any) -> None:
        if params.get("url_path", "").endswith(f"/keys/check-{NONCE}"):
            raise RuntimeError("the connection dropped")

    kvs_test_client.meta.events.register("before-call.cloudfront-keyvaluestore.GetKey", broken_read)
    try:
        result = deployed.invoke("--json")
    finally:
        kvs_test_client.meta.events.unregister("before-call.cloudfront-keyvaluestore.GetKey", broken_read)

    assert result.exit_code == 7
    failed = by_name(result)["KeyValueStore write"]
    assert failed["status"] == "fail"
    assert "the connection dropped" in failed["detail"]
    assert by_name(result)["not-found page"]["status"] == "pass"
    assert deployed.snapshot() == before
    assert deployed.kvs_server.count("DeleteKey") == deletes + 1


def test_a_testfunction_failure_midway_still_puts_the_development_code_back(deploy: Callable[..., Deployed]) -> None:
    deployed = deploy()
    expect_roles(deployed, {})
    expect_cloudfront(deployed, test_error_at=1)

    result = deployed.invoke("--json")

    assert result.exit_code == 7
    failed = by_name(result)["viewer-response on CloudFront"]
    assert failed["status"] == "fail"
    assert "TestFunctionFailed" in failed["detail"]
    assert deployed.runtime.code == OLD_CODE
    deployed.aws.verify()


def test_a_viewer_response_function_that_reads_the_release_from_the_uri_fails_on_cloudfront(
    deploy: Callable[..., Deployed], function_sandbox: FunctionSandbox, tmp_path: Path
) -> None:
    deployed = deploy()
    expect_all(deployed, roles={})
    config = load_config(deployed.config_path)
    current = render_viewer_response(config)
    assert render(VIEWER_RESPONSE_FILE, site_settings(config)) == current
    source = VIEWER_RESPONSE_FILE.read_text(encoding="utf-8")
    reading = source.replace(
        "const tag = event.request.headers[RELEASE_HEADER];\n  return tag ? tag.value : '';",
        "const u = event.request.uri;\n  return u.indexOf('/releases/') === 0 ? u.split('/')[2] : '';",
    )
    assert reading != source
    (tmp_path / "viewer_response.js").write_text(reading, encoding="utf-8")
    uri_reading = render(tmp_path / "viewer_response.js", site_settings(config))
    original_update = deployed.runtime.update_function

    def stage_uri_reading(**kwargs: Any) -> Any:
        answer = original_update(**kwargs)
        if kwargs["FunctionCode"] == current.encode():
            deployed.runtime.code = uri_reading
        return answer

    deployed.runtime.update_function = stage_uri_reading  # type: ignore[method-assign]

    result = deployed.invoke("--json")

    assert result.exit_code == 7
    failed = by_name(result)["viewer-response on CloudFront"]
    assert failed["status"] == "fail"
    # With the viewer's URI the release is unknown; with the rewritten one the answers are right.
    assert [d.split(", expected")[0] for d in failed["measured"]["differences"]] == [
        "/docs/: {'x-release': 'none', 'cookies': []}",
        "/app.js: {'x-release': 'none', 'cookies': []}",
    ]
    assert deployed.runtime.code == OLD_CODE


def test_check_refuses_a_local_target(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--local", str(tmp_path / "target"), "check"])

    assert result.exit_code == 3
    assert "leave out --local" in result.stderr


def test_a_put_whose_answer_is_lost_still_deletes_the_key(
    deploy: Callable[..., Deployed], kvs_test_client: Any
) -> None:
    deployed = deploy()
    expect_all(deployed, roles={})
    before = deployed.snapshot()

    def lost_answer(**_: Any) -> None:
        raise ConnectionResetError("the answer to PutKey was lost")

    kvs_test_client.meta.events.register("after-call.cloudfront-keyvaluestore.PutKey", lost_answer)
    try:
        result = deployed.invoke("--json")
    finally:
        kvs_test_client.meta.events.unregister("after-call.cloudfront-keyvaluestore.PutKey", lost_answer)

    assert result.exit_code == 7
    assert "the answer to PutKey was lost" in by_name(result)["KeyValueStore write"]["detail"]
    assert deployed.snapshot() == before
