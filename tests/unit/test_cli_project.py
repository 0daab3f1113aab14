"""init, deploy, destroy and the pipeline part of status through the real CLI: the files init writes, the exact
``npx cdk`` command lines deploy and destroy run, and their AWS calls answered by botocore's Stubber."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner, Result

from hosting_toolkit.cli import project
from hosting_toolkit.cli.main import app
from hosting_toolkit.config import (
    BuildConfig,
    CodeCommitSource,
    CodeConnectionsSource,
    HostingConfig,
    SiteConfig,
    ZipSource,
    load_config,
)
from hosting_toolkit.contract import (
    OUTPUT_BUCKET_NAME,
    OUTPUT_CONNECTION_ARN,
    OUTPUT_DISTRIBUTION_DOMAIN_NAME,
    OUTPUT_KVS_ARN,
    OUTPUT_PIPELINE_NAME,
    OUTPUT_SITE_URL,
    OUTPUT_UPLOAD_LOCATION,
)
from hosting_toolkit.errors import BackendError
from hosting_toolkit.pipeline.executions import PipelineRun, latest_run
from hosting_toolkit.pipeline.wheelhouse import NO_WHEELHOUSE, WHEELHOUSE_CONTEXT_KEY, Wheelhouse, WheelhouseError
from hosting_toolkit.release.kvs import LocalKeyValueStore
from hosting_toolkit.release.storage import LocalObjectStore
from hosting_toolkit.site.dns import CERTIFICATE_REGION
from hosting_toolkit.target import Target
from tests.fakes.sites import write_files
from tests.unit.test_detect import FIXTURES, package_json
from tests.unit.test_domain_dns import (
    APEX_RECORD,
    CERTIFICATE_ARN,
    certificate_resource,
    described,
    missing_stack,
    option,
    resources,
)

REGION = "eu-west-1"
ACCOUNT = "111111111111"
CONNECTION_ARN = f"arn:aws:codeconnections:{REGION}:{ACCOUNT}:connection/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
SITE_URL = "https://d111111abcdef8.cloudfront.net"
SITE_BUCKET = "hosting-docs-sitebucket978d4aeb-1a2b3c4d5e6f"
ARTIFACT_BUCKET = "hosting-docs-pipelineartifactbucket5f943f51-0a9b8c7d6e5f"
CACHE_BUCKET = "hosting-docs-pipelinecachebucket13eb56ed-9f8e7d6c5b4a"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A working folder of its own, no configuration or target from the machine, dummy AWS settings."""
    for name in (
        "HOSTING_TOOLKIT_CONFIG",
        "HOSTING_TOOLKIT_LOCAL",
        "HOSTING_TOOLKIT_BUCKET",
        "HOSTING_TOOLKIT_KVS_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-config"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)


def run(*args: str | Path, input: str | None = None) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def ok(*args: str | Path, input: str | None = None) -> Result:
    result = run(*args, input=input)
    assert result.exit_code == 0, result.stderr
    return result


# -- init ---------------------------------------------------------------------------------------


def test_init_writes_the_detected_build_and_says_what_it_saw(tmp_path: Path) -> None:
    site = write_files(tmp_path / "web", FIXTURES["vite"][0])

    result = ok("init", site, "--yes")

    written = tmp_path / "hosting.toml"
    assert result.stdout.strip() == "hosting.toml"
    assert "package.json depends on vite" in result.stderr
    assert "framework: vite (Vite): npm run build -> dist" in result.stderr
    assert "source: none found; add a [source] (see hosting.example.toml)" in result.stderr
    config = load_config(written)
    assert config.site == SiteConfig(name="my-site", mode="spa")
    assert config.source is None
    assert config.build == BuildConfig(framework="vite", command="npm run build", output_dir="dist")
    text = written.read_text()
    assert 'command = "npm run build"' in text and 'output_dir = "dist"' in text


#: Where each fixture site's build lands: read from its configuration, else the recipe's folder.
INIT_OUTPUT = {
    "static": ".",
    "vite": "dist",
    "react": "build",
    "vue": "www",
    "angular": "dist/shop/browser",
    "next": "out",
    "astro": "dist",
    "hugo": "public",
    "gatsby": "public",
}


@pytest.mark.parametrize("framework", sorted(FIXTURES))
def test_init_writes_a_valid_configuration_for_each_frameworks_starter(framework: str, tmp_path: Path) -> None:
    site = write_files(tmp_path / "site", FIXTURES[framework][0])

    ok("init", site, "--yes")

    build = load_config(tmp_path / "hosting.toml").build
    assert (build.framework, build.output_dir) == (framework, INIT_OUTPUT[framework])
    assert build.command == (
        "" if framework == "static" else "hugo --minify" if framework == "hugo" else "npm run build"
    )


def test_init_in_a_monorepo_folder_adds_the_repository_and_path_filter(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_files(
        repo / ".git",
        {"config": '[remote "origin"]\n\turl = https://gitlab.com/acme/web.git\n', "HEAD": "ref: refs/heads/trunk\n"},
    )
    write_files(
        repo, {"pnpm-lock.yaml": "", "apps/shop/package.json": package_json(dev={"astro": "4"}, build="astro build")}
    )

    ok("init", repo / "apps" / "shop", "--yes")

    config = load_config(tmp_path / "hosting.toml")
    assert config.source == CodeConnectionsSource(
        provider="gitlab", repository="acme/web", branch="trunk", include_paths=("apps/shop/**",)
    )
    assert config.site.mode == "static"
    assert config.build.app_root == "apps/shop"
    assert config.build.package_manager == "pnpm"
    assert config.build.install_command == "cd ../.. && corepack enable && pnpm install --frozen-lockfile"


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    site = write_files(tmp_path / "site", FIXTURES["hugo"][0])
    (tmp_path / "hosting.toml").write_text("# mine\n")

    refused = run("init", site, "--yes")
    forced = run("init", site, "--yes", "--force")

    assert refused.exit_code == 3
    assert "hosting.toml exists; pass --force to replace it" in refused.stderr
    assert forced.exit_code == 0
    assert load_config(tmp_path / "hosting.toml").build.framework == "hugo"


def test_init_writes_where_config_points(tmp_path: Path) -> None:
    site = write_files(tmp_path / "site", FIXTURES["gatsby"][0])

    (tmp_path / "conf").mkdir()

    ok("--config", tmp_path / "conf" / "docs.toml", "init", site, "--yes")

    assert load_config(tmp_path / "conf" / "docs.toml").build.framework == "gatsby"


def test_init_under_yes_refuses_to_guess_between_frameworks(tmp_path: Path) -> None:
    site = write_files(tmp_path / "site", {"package.json": package_json(deps={"next": "14", "gatsby": "5"})})

    result = run("init", site, "--yes")

    assert result.exit_code == 3
    assert "package.json depends on next" in result.stderr
    assert "cannot tell the framework (it could be next or gatsby); pass --framework" in result.stderr
    assert not (tmp_path / "hosting.toml").exists()


def test_init_asks_between_the_candidates(tmp_path: Path) -> None:
    files = {
        "package.json": package_json(deps={"next": "14", "gatsby": "5"}),
        "next.config.js": "module.exports = { output: 'export' }\n",
    }
    site = write_files(tmp_path / "site", files)

    result = ok("init", site, input="next\n")

    assert "Framework (next, gatsby, custom):" in result.stderr
    assert load_config(tmp_path / "hosting.toml").build == BuildConfig(
        framework="next", command="npm run build", output_dir="out", install_command="npm install --no-audit --no-fund"
    )


def test_init_asks_for_the_command_and_output_of_an_unknown_build(tmp_path: Path) -> None:
    site = write_files(
        tmp_path / "site",
        {"package.json": package_json(dev={"@11ty/eleventy": "2"}, build="eleventy"), "package-lock.json": "{}"},
    )

    result = ok("init", site, input="custom\n\n_site\n")

    assert "Eleventy is in the dependencies" in result.stderr
    build = load_config(tmp_path / "hosting.toml").build
    assert build == BuildConfig(
        framework="custom", command="npm run build", output_dir="_site", install_command="npm ci --no-audit --no-fund"
    )


def test_init_takes_the_framework_command_and_output_from_options(tmp_path: Path) -> None:
    site = write_files(tmp_path / "site", {"Gemfile": "gem 'jekyll'\n"})

    ok("init", site, "--yes", "--framework", "custom", "--command", "bundle exec jekyll build", "--output-dir", "_site")

    build = load_config(tmp_path / "hosting.toml").build
    assert (build.framework, build.command, build.output_dir, build.install_command) == (
        "custom",
        "bundle exec jekyll build",
        "_site",
        "",
    )


def test_init_refuses_a_next_app_that_needs_a_server(tmp_path: Path) -> None:
    files = {**FIXTURES["next"][0], "next.config.mjs": "export default {}\n"}
    site = write_files(tmp_path / "site", files)

    result = run("init", site, "--yes")

    assert result.exit_code == 3
    assert "does not set output: 'export'" in result.stderr


def test_init_of_a_missing_folder_is_refused(tmp_path: Path) -> None:
    result = run("init", tmp_path / "nowhere", "--yes")

    assert result.exit_code == 3
    assert "not a folder" in result.stderr


# -- deploy and destroy: command lines and AWS calls ----------------------------------------------


class Calls:
    """A runner recording every command; ``deploy`` writes the outputs the stack would have.

    ``codes``: the exit code of each command in turn (default: ``code`` for all); ``until``: an
    event each command waits for first, as a deploy waits for CloudFormation.
    """

    def __init__(
        self,
        outputs: dict[str, str] | None = None,
        code: int = 0,
        *,
        codes: Sequence[int] = (),
        until: threading.Event | None = None,
    ) -> None:
        self.outputs = outputs or {}
        self.code = code
        self.codes = list(codes)
        self.until = until
        self.commands: list[tuple[list[str], dict[str, str], Path]] = []

    def __call__(self, command: Sequence[str], env: Mapping[str, str], cwd: Path) -> int:
        self.commands.append((list(command), dict(env), cwd))
        if self.until is not None:
            assert self.until.wait(5), "the command ended before what it waits for"
        code = self.codes.pop(0) if self.codes else self.code
        if "--outputs-file" in command and code == 0:
            path = Path(command[command.index("--outputs-file") + 1])
            path.write_text(json.dumps({command[3]: self.outputs}))
        return code


class FakeSession:
    """Hands out stubbed clients by service and region; ``region_name`` is the default region, as in boto3."""

    def __init__(self, region_name: str = REGION) -> None:
        self.region_name = region_name
        self.clients: dict[tuple[str, str], Any] = {}
        self.stubbers: dict[tuple[str, str], Stubber] = {}

    def stub(self, service: str, region: str | None = None) -> Stubber:
        region = region or self.region_name
        client = boto3.client(service, region_name=region)  # type: ignore[call-overload]
        stubber = Stubber(client)
        stubber.activate()
        self.clients[(service, region)] = client
        self.stubbers[(service, region)] = stubber
        return stubber

    def client(self, service: str, region_name: str | None = None, **_: Any) -> Any:
        return self.clients[(service, region_name or self.region_name)]

    def verify(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout with cdk.json and the pinned CDK CLI, where deploy and destroy run."""
    root = write_files(tmp_path / "checkout", {"cdk.json": "{}", "node_modules/.bin/cdk": ""})
    monkeypatch.setattr(project, "PROJECT_ROOT", root)
    # Preparing the real wheelhouse downloads from PyPI: tests/integration/test_offline_install.py does it.
    monkeypatch.setattr(project, "wheelhouse_preparer", lambda: PREPARED)
    return root


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSession]:
    session = FakeSession()
    monkeypatch.setattr(project, "session_factory", lambda: session)
    yield session
    session.verify()


def use_runner(monkeypatch: pytest.MonkeyPatch, calls: Calls) -> Calls:
    monkeypatch.setattr(project, "runner", calls)
    return calls


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosting.toml"
    path.write_text('[site]\nname = "docs"\n' + text)
    return path


GITHUB = '[source]\ntype = "codeconnections"\nprovider = "github"\nrepository = "acme/docs"\n'
OUTPUTS = {OUTPUT_SITE_URL: SITE_URL, OUTPUT_BUCKET_NAME: SITE_BUCKET, OUTPUT_PIPELINE_NAME: "hosting-docs-Pipeline"}


def test_deploy_runs_the_pinned_cdk_from_the_checkout_with_the_config_file(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, "")
    monkeypatch.setenv("HOSTING_TOOLKIT_CONFIG", str(config))
    calls = use_runner(monkeypatch, Calls(OUTPUTS))

    result = ok("deploy", "--yes")

    ((command, env, cwd),) = calls.commands
    assert command[:-1] == [
        "npx",
        "cdk",
        "deploy",
        "hosting-docs",
        "-c",
        f"config={config.resolve()}",
        "--require-approval",
        "never",
        "--outputs-file",
    ]
    assert Path(command[-1]).name == "outputs.json"
    assert cwd == checkout
    assert env["CDK_DISABLE_VERSION_CHECK"] == "1"
    assert env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] == "20"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert "HOSTING_TOOLKIT_CONFIG" not in env
    assert result.stdout.strip() == SITE_URL
    assert "deploying hosting-docs without a pipeline" in result.stderr
    assert "hosting-toolkit release BUILD_DIR" in result.stderr


#: What ``destroy`` tells the CDK app: it deploys no build, so it needs no wheels.
NO_WHEELS = ["-c", f"{WHEELHOUSE_CONTEXT_KEY}={NO_WHEELHOUSE}"]
PREPARED = Wheelhouse(Path("/cache/hosting-toolkit/wheelhouses/0123-cp312-x86_64"), ("boto3.whl",), 2_500_000, True)


def test_deploy_of_a_pipeline_ships_the_prepared_wheelhouse(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, '[source]\ntype = "zip"\n')
    calls = use_runner(monkeypatch, Calls(OUTPUTS))

    result = ok("deploy", "--yes")

    ((command, _, _),) = calls.commands
    assert command[command.index(f"{WHEELHOUSE_CONTEXT_KEY}={PREPARED.path}") - 1] == "-c"
    assert f"ships the release engine's wheels: 1 wheels, 2.5 MB, reused: {PREPARED.path}" in result.stderr


def test_deploy_without_a_pipeline_ships_no_wheelhouse(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, "")
    calls = use_runner(monkeypatch, Calls(OUTPUTS))
    monkeypatch.setattr(project, "wheelhouse_preparer", lambda: pytest.fail("prepared a wheelhouse"))

    ok("deploy", "--yes")

    assert not [word for word in calls.commands[0][0] if word.startswith(f"{WHEELHOUSE_CONTEXT_KEY}=")]


def test_deploy_whose_wheels_cannot_be_prepared_deploys_nothing(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, '[source]\ntype = "zip"\n')
    calls = use_runner(monkeypatch, Calls(OUTPUTS))

    def offline() -> Wheelhouse:
        raise WheelhouseError("could not download the release engine's wheels for cp312-x86_64")

    monkeypatch.setattr(project, "wheelhouse_preparer", offline)

    result = run("deploy", "--yes")

    assert result.exit_code == BackendError.exit_code
    assert "could not download the release engine's wheels for cp312-x86_64; nothing was deployed" in result.stderr
    assert calls.commands == []


def test_deploy_asks_cdk_to_approve_security_changes_unless_yes(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, "")
    calls = use_runner(monkeypatch, Calls(OUTPUTS))

    ok("deploy")

    command = calls.commands[0][0]
    assert command[command.index("--require-approval") + 1] == "broadening"


def test_deploy_prints_the_console_step_for_a_pending_connection(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, GITHUB)
    use_runner(monkeypatch, Calls({**OUTPUTS, OUTPUT_CONNECTION_ARN: CONNECTION_ARN}))
    aws.stub("codeconnections").add_response(
        "get_connection",
        {"Connection": {"ConnectionArn": CONNECTION_ARN, "ConnectionStatus": "PENDING", "ProviderType": "GitHub"}},
        {"ConnectionArn": CONNECTION_ARN},
    )

    result = ok("deploy", "--yes")

    assert "with its release pipeline (github acme/docs, branch main)" in result.stderr
    assert "approve the connection to github once (it is pending):" in result.stderr
    assert (
        f"open https://console.aws.amazon.com/codesuite/settings/{ACCOUNT}/{REGION}/connections/"
        f"0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d?region={REGION}"
    ) in result.stderr
    assert "then every push to main of acme/docs is built and released" in result.stderr


def test_deploy_with_an_available_connection_has_no_console_step(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, GITHUB)
    use_runner(monkeypatch, Calls({**OUTPUTS, OUTPUT_CONNECTION_ARN: CONNECTION_ARN}))
    aws.stub("codeconnections").add_response(
        "get_connection",
        {"Connection": {"ConnectionArn": CONNECTION_ARN, "ConnectionStatus": "AVAILABLE"}},
        {"ConnectionArn": CONNECTION_ARN},
    )

    result = ok("deploy", "--yes")

    assert "approve" not in result.stderr
    assert "every push to main of acme/docs is built and released" in result.stderr


def test_deploy_of_a_zip_source_says_where_to_upload(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, '[source]\ntype = "zip"\n')
    use_runner(monkeypatch, Calls({**OUTPUTS, OUTPUT_UPLOAD_LOCATION: "s3://uploads-bucket/site.zip"}))

    result = ok("deploy", "--yes")

    assert "aws s3 cp site.zip s3://uploads-bucket/site.zip" in result.stderr


def test_failed_cdk_deploy_exits_6(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, "")
    use_runner(monkeypatch, Calls(code=1))

    result = run("deploy", "--yes")

    assert result.exit_code == BackendError.exit_code == 6
    assert "cdk deploy of hosting-docs failed (exit code 1)" in result.stderr


def test_deploy_needs_the_pinned_cdk_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(project, "PROJECT_ROOT", write_files(tmp_path / "bare", {"cdk.json": "{}"}))

    result = run("deploy")

    assert result.exit_code == 3
    assert "run 'npm ci' (or 'make setup')" in result.stderr


def test_deploy_refuses_to_let_cdk_pick_another_configuration(
    tmp_path: Path, checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (checkout / "hosting.toml").write_text('[site]\nname = "other"\n')
    calls = use_runner(monkeypatch, Calls(OUTPUTS))

    result = run("deploy")

    assert result.exit_code == 3
    assert "name one with --config" in result.stderr
    assert calls.commands == []


def stub_stack(aws: FakeSession, *, buckets: list[str]) -> None:
    cloudformation = aws.stub("cloudformation")
    cloudformation.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "hosting-docs",
                    "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
                    "StackStatus": "UPDATE_COMPLETE",
                    "Outputs": [
                        {"OutputKey": OUTPUT_BUCKET_NAME, "OutputValue": SITE_BUCKET},
                        {
                            "OutputKey": OUTPUT_KVS_ARN,
                            "OutputValue": "arn:aws:cloudfront::111111111111:key-value-store/x",
                        },
                    ],
                }
            ]
        },
        {"StackName": "hosting-docs"},
    )
    cloudformation.add_response(
        "list_stack_resources",
        {
            "StackResourceSummaries": [
                {
                    "LogicalResourceId": f"Bucket{i}",
                    "PhysicalResourceId": name,
                    "ResourceType": "AWS::S3::Bucket",
                    "LastUpdatedTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
                    "ResourceStatus": "CREATE_COMPLETE",
                }
                for i, name in enumerate(buckets)
            ]
        },
        {"StackName": "hosting-docs"},
    )


def stub_emptying(s3: Stubber, bucket: str, keys: list[tuple[str, str]], *, markers: int = 0) -> None:
    versions = [{"Key": k, "VersionId": v} for k, v in keys]
    deleted = [{"Key": f"gone-{n}", "VersionId": f"m{n}"} for n in range(markers)]
    s3.add_response(
        "list_object_versions",
        {"Versions": versions, "DeleteMarkers": deleted, "IsTruncated": False},
        {"Bucket": bucket},
    )
    if keys or markers:
        s3.add_response(
            "delete_objects",
            {"Deleted": []},
            {"Bucket": bucket, "Delete": {"Objects": [*versions, *deleted], "Quiet": True}},
        )


def test_destroy_empties_the_pipeline_buckets_and_keeps_the_site_bucket(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, '[source]\ntype = "zip"\n')
    calls = use_runner(monkeypatch, Calls())
    stub_stack(aws, buckets=[SITE_BUCKET, ARTIFACT_BUCKET, CACHE_BUCKET])
    s3 = aws.stub("s3")
    stub_emptying(s3, ARTIFACT_BUCKET, [("Source/a.zip", "v1"), ("Source/b.zip", "v2")])
    stub_emptying(s3, CACHE_BUCKET, [], markers=1)

    result = ok("destroy", "--yes")

    ((command, env, cwd),) = calls.commands
    assert command == [
        "npx",
        "cdk",
        "destroy",
        "hosting-docs",
        "-c",
        f"config={config.resolve()}",
        *NO_WHEELS,
        "--force",
    ]
    assert (cwd, env["CDK_DISABLE_VERSION_CHECK"]) == (checkout, "1")
    assert f"emptying s3://{ARTIFACT_BUCKET}: 2 objects deleted" in result.stderr
    assert f"emptying s3://{CACHE_BUCKET}: 1 objects deleted" in result.stderr
    assert f"kept s3://{SITE_BUCKET} with its releases" in result.stderr


def test_destroy_with_delete_content_empties_every_version_and_deletes_the_site_bucket(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, "")
    calls = use_runner(monkeypatch, Calls())
    stub_stack(aws, buckets=[SITE_BUCKET])
    s3 = aws.stub("s3")
    stub_emptying(s3, SITE_BUCKET, [("releases/a/index.html", "v1"), ("releases/a/index.html", "v0")], markers=2)
    stub_emptying(s3, SITE_BUCKET, [("releases/b/index.html", "v9")])
    s3.add_response("delete_bucket", {}, {"Bucket": SITE_BUCKET})

    result = ok("destroy", "--delete-content", "--yes")

    assert len(calls.commands) == 1
    assert f"emptying the site bucket s3://{SITE_BUCKET}: 4 objects deleted" in result.stderr
    assert f"deleted the site bucket s3://{SITE_BUCKET}" in result.stderr


def test_destroy_asks_first_and_does_nothing_when_refused(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, "")
    calls = use_runner(monkeypatch, Calls())

    result = run("destroy", "--delete-content", input="n\n")

    assert result.exit_code == 1
    assert "destroy hosting-docs, and DELETE every release in the site bucket?" in result.stderr
    assert calls.commands == []


def test_destroy_of_a_stack_that_is_not_deployed_exits_5(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, "")
    calls = use_runner(monkeypatch, Calls())
    aws.stub("cloudformation").add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message="Stack with id hosting-docs does not exist",
    )

    result = run("destroy", "--yes")

    assert result.exit_code == 5
    assert "not deployed" in result.stderr
    assert calls.commands == []


# -- custom domains: the certificate stack and the DNS records ------------------------------------

DOMAIN = '[domain]\nnames = ["example.org"]\nwww_redirect = "www-to-apex"\n'
ZONED = (
    '[domain]\nnames = ["example.org"]\nhosted_zone_id = "Z0123456789ABCDEFGHIJ"\nhosted_zone_name = "example.org"\n'
)
DISTRIBUTION_DOMAIN = "d111111abcdef8.cloudfront.net"
DOMAIN_OUTPUTS = {
    OUTPUT_SITE_URL: "https://example.org",
    OUTPUT_BUCKET_NAME: SITE_BUCKET,
    OUTPUT_DISTRIBUTION_DOMAIN_NAME: DISTRIBUTION_DOMAIN,
}
SITE_RECORDS = [
    f"  example.org CNAME {DISTRIBUTION_DOMAIN}",
    f"  www.example.org CNAME {DISTRIBUTION_DOMAIN}",
]


def stub_pending_certificate(aws: FakeSession) -> threading.Event:
    """One look of the watcher in us-east-1: the certificate stack has asked ACM, which waits for one record.

    The event is set once ACM has answered, as CloudFormation would go on waiting until the record exists.
    """
    cloudformation = aws.stub("cloudformation", CERTIFICATE_REGION)
    acm = aws.stub("acm", CERTIFICATE_REGION)
    cloudformation.add_response("list_stack_resources", *resources("hosting-docs-certificate", certificate_resource()))
    acm.add_response(
        "describe_certificate", described(option("example.org", APEX_RECORD)), {"CertificateArn": CERTIFICATE_ARN}
    )
    missing_stack(cloudformation, "hosting-docs")
    answered = threading.Event()
    aws.clients[("acm", CERTIFICATE_REGION)].meta.events.register(
        "after-call.acm.DescribeCertificate", lambda **_: answered.set()
    )
    return answered


def watcher_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "certificate-validation"]


def test_deploy_prints_the_validation_records_while_it_waits_and_the_site_records_after(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, DOMAIN)
    calls = use_runner(monkeypatch, Calls(DOMAIN_OUTPUTS, until=stub_pending_certificate(aws)))

    result = ok("deploy", "--yes")

    ((command, _, _),) = calls.commands
    assert command[3] == "hosting-docs"
    assert "--exclusively" not in command and "--all" not in command
    assert command[command.index("--progress") + 1] == "events"
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "deploying hosting-docs without a pipeline, after its certificate stack hosting-docs-certificate in us-east-1"
    )
    assert lines[1].startswith("the certificate waits for these DNS records")
    assert lines[2] == f"  {APEX_RECORD}"
    assert lines[3] == "deployed hosting-docs: https://example.org"
    assert lines[4].startswith("point the site's names at the distribution with these DNS records")
    assert lines[5:7] == SITE_RECORDS
    assert result.stdout.strip() == "https://example.org"
    assert watcher_threads() == []


def test_deploy_json_has_the_outputs_and_the_dns_records(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, DOMAIN)
    use_runner(monkeypatch, Calls(DOMAIN_OUTPUTS, until=stub_pending_certificate(aws)))

    data = json.loads(ok("deploy", "--yes", "--json").stdout)

    assert data["site_url"] == "https://example.org"
    assert data["stack"] == "hosting-docs"
    assert data["outputs"] == DOMAIN_OUTPUTS
    assert data["validation_records"] == [asdict(APEX_RECORD)]
    assert data["dns_records"] == [
        {"name": "example.org", "type": "CNAME", "value": DISTRIBUTION_DOMAIN},
        {"name": "www.example.org", "type": "CNAME", "value": DISTRIBUTION_DOMAIN},
    ]


@pytest.mark.parametrize("failure", ["exit code", "interrupt"])
def test_the_watcher_stops_when_the_deploy_fails(
    failure: str, tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, DOMAIN)
    answered = stub_pending_certificate(aws)

    def deploy(command: Sequence[str], env: Mapping[str, str], cwd: Path) -> int:
        assert answered.wait(5)
        if failure == "interrupt":
            raise KeyboardInterrupt
        return 1

    monkeypatch.setattr(project, "runner", deploy)

    result = run("deploy", "--yes")

    assert result.exit_code == (6 if failure == "exit code" else 130)
    assert f"  {APEX_RECORD}" in result.stderr
    assert "point the site's names" not in result.stderr
    assert watcher_threads() == []


def test_deploy_with_a_hosted_zone_says_the_stack_manages_the_records(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, ZONED)
    calls = use_runner(monkeypatch, Calls(DOMAIN_OUTPUTS))

    result = ok("deploy", "--yes", "--json")

    assert "--progress" not in calls.commands[0][0]
    assert (
        "DNS: the stack manages the records of example.org (certificate validation, A and AAAA aliases) "
        "in the Route 53 zone example.org (Z0123456789ABCDEFGHIJ)"
    ) in result.stderr
    data = json.loads(result.stdout)
    assert (data["validation_records"], data["dns_records"]) == ([], [])


def test_deploy_in_us_east_1_has_no_certificate_stack(
    tmp_path: Path, checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(project, "session_factory", lambda: FakeSession(CERTIFICATE_REGION))
    write_config(tmp_path, ZONED)
    use_runner(monkeypatch, Calls(DOMAIN_OUTPUTS))

    result = ok("deploy", "--yes")

    assert "deploying hosting-docs without a pipeline\n" in result.stderr
    assert "certificate stack" not in result.stderr


def test_deploy_without_a_domain_says_nothing_about_dns(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, "")
    use_runner(monkeypatch, Calls(OUTPUTS))

    result = ok("deploy", "--yes", "--json")

    assert "DNS" not in result.stderr and "certificate" not in result.stderr
    data = json.loads(result.stdout)
    assert data == {
        "site_url": SITE_URL,
        "stack": "hosting-docs",
        "outputs": OUTPUTS,
        "connection_status": None,
        "validation_records": [],
        "dns_records": [],
    }


def stub_certificate_stack(aws: FakeSession, *, deployed: bool) -> None:
    cloudformation = aws.stub("cloudformation", CERTIFICATE_REGION)
    if deployed:
        cloudformation.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "hosting-docs-certificate",
                        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
                        "StackStatus": "CREATE_COMPLETE",
                    }
                ]
            },
            {"StackName": "hosting-docs-certificate"},
        )
    else:
        cloudformation.add_client_error(
            "describe_stacks",
            service_error_code="ValidationError",
            service_message="Stack with id hosting-docs-certificate does not exist",
            expected_params={"StackName": "hosting-docs-certificate"},
        )


def test_destroy_removes_the_certificate_stack_after_the_site_stack(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, DOMAIN)
    calls = use_runner(monkeypatch, Calls())
    stub_certificate_stack(aws, deployed=True)
    stub_stack(aws, buckets=[SITE_BUCKET])
    aws.stub("s3")

    result = ok("destroy", "--yes")

    assert [command for command, _, _ in calls.commands] == [
        ["npx", "cdk", "destroy", stack, "-c", f"config={config.resolve()}", *NO_WHEELS, "--force"]
        for stack in ("hosting-docs", "hosting-docs-certificate")
    ]
    assert "destroying the certificate stack hosting-docs-certificate in us-east-1" in result.stderr
    assert "destroyed hosting-docs and hosting-docs-certificate" in result.stderr
    assert f"kept s3://{SITE_BUCKET} with its releases" in result.stderr


def test_destroy_names_the_certificate_stack_when_it_asks(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, DOMAIN)
    calls = use_runner(monkeypatch, Calls())

    result = run("destroy", input="n\n")

    assert result.exit_code == 1
    assert (
        "destroy hosting-docs and its certificate stack hosting-docs-certificate in us-east-1, keeping the site bucket?"
    ) in result.stderr
    assert calls.commands == []


def test_destroy_removes_a_certificate_stack_left_alone(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, DOMAIN)
    calls = use_runner(monkeypatch, Calls())
    stub_certificate_stack(aws, deployed=True)
    aws.stub("cloudformation").add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message="Stack with id hosting-docs does not exist",
    )

    result = ok("destroy", "--yes")

    assert [command[3] for command, _, _ in calls.commands] == ["hosting-docs-certificate"]
    assert "hosting-docs is not deployed; destroying its certificate stack hosting-docs-certificate alone" in (
        result.stderr
    )
    assert "destroyed hosting-docs-certificate\n" in result.stderr


def test_destroy_skips_a_certificate_stack_never_deployed(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, DOMAIN)
    calls = use_runner(monkeypatch, Calls())
    stub_certificate_stack(aws, deployed=False)
    stub_stack(aws, buckets=[SITE_BUCKET])
    aws.stub("s3")

    result = ok("destroy", "--yes")

    assert [command[3] for command, _, _ in calls.commands] == ["hosting-docs"]
    assert "destroyed hosting-docs\n" in result.stderr


def test_a_failed_certificate_stack_destroy_says_the_site_stack_is_gone(
    tmp_path: Path, checkout: Path, aws: FakeSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, DOMAIN)
    use_runner(monkeypatch, Calls(codes=[0, 1]))
    stub_certificate_stack(aws, deployed=True)
    stub_stack(aws, buckets=[SITE_BUCKET])
    aws.stub("s3")

    result = run("destroy", "--yes")

    assert result.exit_code == 6
    assert "hosting-docs is gone, but cdk destroy of hosting-docs-certificate failed (exit code 1)" in result.stderr


def test_destroy_in_us_east_1_has_only_the_site_stack(
    tmp_path: Path, checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws = FakeSession(CERTIFICATE_REGION)
    monkeypatch.setattr(project, "session_factory", lambda: aws)
    write_config(tmp_path, ZONED)
    calls = use_runner(monkeypatch, Calls())
    stub_stack(aws, buckets=[SITE_BUCKET])
    aws.stub("s3")

    result = ok("destroy", "--yes")

    assert [command[3] for command, _, _ in calls.commands] == ["hosting-docs"]
    assert "certificate" not in result.stderr
    aws.verify()


def test_the_cli_does_not_load_the_cdk() -> None:
    """Importing ``aws_cdk`` starts Node.js (and its banner); the CLI's DNS code must not need it."""
    probe = "import sys, hosting_toolkit.cli.main; sys.exit('aws_cdk' in sys.modules or 'jsii' in sys.modules)"

    assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


# -- status -------------------------------------------------------------------------------------

EXECUTION = {
    "pipelineExecutionId": "5c7e1a2b-0000-4000-8000-000000000001",
    "status": "InProgress",
    "startTime": datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
    "sourceRevisions": [
        {
            "actionName": "Checkout",
            "revisionId": "4f9c2a7be01d5c3f8a6b9e0d1c2b3a4f5e6d7c8b",
            "revisionSummary": json.dumps({"ProviderType": "GitHub", "CommitMessage": "Add pricing\n\nbody"}),
        }
    ],
    "trigger": {"triggerType": "Webhook", "triggerDetail": "x"},
}


RUN_ID = "5c7e1a2b-0000-4000-8000-000000000001"
#: The pipeline's state while EXECUTION verifies its release (an older run's rollout failed earlier).
RUNNING_STATE = [
    {"stageName": "Source", "latestExecution": {"pipelineExecutionId": RUN_ID, "status": "Succeeded"}},
    {"stageName": "Build", "latestExecution": {"pipelineExecutionId": RUN_ID, "status": "Succeeded"}},
    {"stageName": "Verify", "latestExecution": {"pipelineExecutionId": RUN_ID, "status": "InProgress"}},
    {
        "stageName": "Rollout",
        "latestExecution": {"pipelineExecutionId": "an-older-run", "status": "Failed"},
        "actionStates": [
            {"actionName": "Rollout", "latestExecution": {"status": "Failed", "errorDetails": {"message": "old"}}}
        ],
    },
]
ALARM_CAUSE = (
    "AlarmFired: alarms went into ALARM while 4f9c2a7be01d had 10% of viewers: "
    '["hosting-docs-5xx-error-rate"] []; any viewers it had went back to the release before it'
)
#: The pipeline's state once EXECUTION's rollout failed on an alarm.
FAILED_STATE = [
    *RUNNING_STATE[:2],
    {"stageName": "Verify", "latestExecution": {"pipelineExecutionId": RUN_ID, "status": "Succeeded"}},
    {
        "stageName": "Rollout",
        "latestExecution": {"pipelineExecutionId": RUN_ID, "status": "Failed"},
        "actionStates": [
            {
                "actionName": "Rollout",
                "latestExecution": {
                    "status": "Failed",
                    "errorDetails": {"code": "JobFailed", "message": ALARM_CAUSE},
                },
            }
        ],
    },
]


def stub_executions(
    aws: FakeSession, summaries: list[dict[str, Any]], stages: list[dict[str, Any]] | None = None
) -> None:
    stub = aws.stub("codepipeline")
    stub.add_response(
        "list_pipeline_executions",
        {"pipelineExecutionSummaries": summaries},
        {"pipelineName": "hosting-docs-Pipeline", "maxResults": 1},
    )
    if summaries:
        stub.add_response(
            "get_pipeline_state",
            {"pipelineName": "hosting-docs-Pipeline", "stageStates": RUNNING_STATE if stages is None else stages},
            {"name": "hosting-docs-Pipeline"},
        )


def test_latest_run_reads_the_newest_execution(aws: FakeSession) -> None:
    stub_executions(aws, [EXECUTION])

    run_ = latest_run(aws.client("codepipeline"), "hosting-docs-Pipeline")

    assert run_ == PipelineRun(
        pipeline="hosting-docs-Pipeline",
        id="5c7e1a2b-0000-4000-8000-000000000001",
        status="InProgress",
        started="2026-03-01T12:30:00+00:00",
        revision="4f9c2a7be01d5c3f8a6b9e0d1c2b3a4f5e6d7c8b",
        summary="Add pricing",
        trigger="Webhook",
        stage="Verify",
    )


def test_latest_run_says_where_it_failed_and_why(aws: FakeSession) -> None:
    stub_executions(aws, [{**EXECUTION, "status": "Failed"}], FAILED_STATE)

    run_ = latest_run(aws.client("codepipeline"), "hosting-docs-Pipeline")

    assert run_ is not None
    assert (run_.status, run_.stage, run_.reason) == ("Failed", "Rollout", ALARM_CAUSE)


def test_latest_run_before_the_first_execution_is_none(aws: FakeSession) -> None:
    stub_executions(aws, [])

    assert latest_run(aws.client("codepipeline"), "hosting-docs-Pipeline") is None


def test_latest_run_failure_is_a_backend_error(aws: FakeSession) -> None:
    aws.stub("codepipeline").add_client_error(
        "list_pipeline_executions", service_error_code="PipelineNotFoundException"
    )

    with pytest.raises(BackendError, match="reading the executions of pipeline"):
        latest_run(aws.client("codepipeline"), "hosting-docs-Pipeline")


@pytest.fixture
def deployed_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Target:
    """The stack lookup answered with local stores and the pipeline's name, as the outputs would give them."""
    target = Target(
        LocalObjectStore(tmp_path / "bucket"),
        LocalKeyValueStore(tmp_path / "kvs.json"),
        SITE_URL,
        pipeline_name="hosting-docs-Pipeline",
    )
    monkeypatch.setattr("hosting_toolkit.cli.session.aws_target", lambda config: target)
    return target


def test_status_adds_the_pipelines_latest_run(deployed_target: Target, aws: FakeSession) -> None:
    stub_executions(aws, [EXECUTION])

    result = ok("status")

    assert result.stdout.splitlines()[-1] == (
        'pipeline: InProgress at Verify 4f9c2a7be01d "Add pricing" (started 2026-03-01 12:30:00)'
    )


def test_status_shows_why_the_latest_run_failed(deployed_target: Target, aws: FakeSession) -> None:
    stub_executions(aws, [{**EXECUTION, "status": "Failed"}], FAILED_STATE)

    result = ok("status")

    assert result.stdout.splitlines()[-2:] == [
        'pipeline: Failed at Rollout 4f9c2a7be01d "Add pricing" (started 2026-03-01 12:30:00)',
        f"  why: {ALARM_CAUSE}",
    ]


def test_status_json_adds_the_pipeline(deployed_target: Target, aws: FakeSession) -> None:
    stub_executions(aws, [])

    data = json.loads(ok("status", "--json").stdout)

    assert data["pipeline"] == {"name": "hosting-docs-Pipeline", "latest": None}
    assert data["site_url"] == SITE_URL


def test_status_of_a_local_target_has_no_pipeline(tmp_path: Path) -> None:
    data = json.loads(ok("--local", tmp_path / "target", "status", "--json").stdout)

    assert "pipeline" not in data


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (CodeCommitSource(repository="docs", branch="prod"), "every push to prod of the CodeCommit repository docs"),
        (ZipSource(), "aws s3 cp site.zip s3://<upload bucket>/site.zip"),
    ],
)
def test_next_steps_name_the_source(source: object, expected: str) -> None:
    config = HostingConfig(source=source)  # type: ignore[arg-type]

    steps = project.next_steps(config, project.Deployment("hosting-site", {}))

    assert any(expected in step for step in steps)


def test_written_init_file_round_trips(tmp_path: Path) -> None:
    config = HostingConfig(
        site=SiteConfig(name="docs", mode="static"),
        source=CodeConnectionsSource(repository="acme/docs"),
        build=BuildConfig(framework="hugo", command="hugo --minify", output_dir="public"),
    )

    text = project.init_file_text(config, tmp_path)

    assert tomllib.loads(text)["source"]["provider"] == "github"
    assert tomllib.loads(text)["site"] == {"name": "docs", "mode": "static"}
