"""The hosting stack with a release pipeline, for each source type: stages, triggers, the build, IAM, cdk-nag and cfn-lint."""

from __future__ import annotations

import json
import re
import tomllib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import typer
import yaml
from aws_cdk.assertions import Match
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint

from hosting_toolkit.cli.main import app as cli_app
from hosting_toolkit.component import HostingStack
from hosting_toolkit.config import (
    BuildConfig,
    CodeCommitSource,
    CodeConnectionsSource,
    HostingConfig,
    SiteConfig,
    ZipSource,
    parse_config,
)
from hosting_toolkit.contract import (
    OUTPUT_BUCKET_NAME,
    OUTPUT_CONNECTION_ARN,
    OUTPUT_DISTRIBUTION_ID,
    OUTPUT_KVS_ARN,
    OUTPUT_PIPELINE_NAME,
    OUTPUT_SITE_URL,
    OUTPUT_UPLOAD_LOCATION,
)
from hosting_toolkit.pipeline.buildspec import (
    ENV_BUCKET,
    ENV_COMMIT,
    ENV_CONFIG,
    ENV_KVS_ARN,
    ENV_MESSAGE,
    ENV_PACKAGE,
    ENV_REVISION,
    ENV_SITE_CONFIG,
    ENV_SITE_URL,
    RELEASE_COMMAND,
    render_buildspec,
)
from hosting_toolkit.pipeline.infrastructure import PACKAGE_FILES
from tests.cdk_helpers import SynthesizedStack, cdk_context, synth_hosting_stack
from tests.unit.test_nag import ACKNOWLEDGED as SITE_ACKNOWLEDGED
from tests.unit.test_nag import acknowledgements

pytestmark = pytest.mark.synth

BUCKET_LOGICAL_ID = "SiteBucket978D4AEB"
KVS_LOGICAL_ID = "RouterReleaseStore90AC4A9C"
CODESTAR_ARN = "arn:aws:codestar-connections:eu-west-1:111111111111:connection/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
LINT_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]

CONFIGS = {
    "codeconnections": HostingConfig(
        site=SiteConfig(name="docs"),
        source=CodeConnectionsSource(
            provider="github", repository="acme/docs", include_paths=("site/**",), exclude_paths=("site/**/*.md",)
        ),
        build=BuildConfig(
            framework="vite",
            app_root="site",
            env={"PUBLIC_API": "https://api.example.com"},
            secrets={"NPM_TOKEN": "ci/npm-token"},
            parameters={"ANALYTICS_ID": "/docs/analytics-id"},
        ),
    ),
    "connection-arn": HostingConfig(
        source=CodeConnectionsSource(
            provider="bitbucket", repository="acme/docs", branch="live", connection_arn=CODESTAR_ARN
        )
    ),
    "codecommit": HostingConfig(
        source=CodeCommitSource(repository="docs", branch="release"),
        build=BuildConfig(framework="hugo", compute="medium"),
    ),
    "zip": HostingConfig(source=ZipSource("drops/site.zip")),
}
SOURCE_TYPES = ["codeconnections", "codecommit", "zip"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], SynthesizedStack]]:
    """Each configuration synthesized once per module, on first use."""
    done: dict[str, SynthesizedStack] = {}

    def get(name: str) -> SynthesizedStack:
        if name not in done:
            done[name] = synth_hosting_stack(CONFIGS[name], tmp_path_factory.mktemp(name))
        return done[name]

    yield get


# -- helpers ------------------------------------------------------------------------------------


def text_of(value: Any) -> str:
    """A CloudFormation value with its intrinsics written out: ``${Logical.Attr}``, ``${Ref}``, joins joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((name, arg),) = value.items()
        if name == "Ref":
            return f"${{{arg}}}"
        if name == "Fn::GetAtt":
            return f"${{{arg[0]}.{arg[1]}}}"
        if name == "Fn::Join":
            return str(arg[0]).join(text_of(part) for part in arg[1])
        if name == "Fn::Sub":
            return str(arg)
        if name == "Fn::Select":
            return f"${{{text_of(arg[1])}[{arg[0]}]}}"
        if name == "Fn::Split":
            return f"{text_of(arg[1])}.split({arg[0]!r})"
    raise AssertionError(f"unexpected value {value!r}")


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def the_one(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    found = resources_of(template, kind)
    assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
    return next(iter(found.items()))


def role_statements(stack: SynthesizedStack, role_logical_id: str) -> list[dict[str, Any]]:
    statements = []
    for policy in resources_of(stack.template_json, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def grants(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Every (action, resource) pair the statements allow, resources written out, asset hashes as <hash>."""
    pairs = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            for resource in resources:
                pairs.add((action, re.sub(r"/[0-9a-f]{64}\.zip$", "/<hash>.zip", text_of(resource))))
    return pairs


def build_role(stack: SynthesizedStack) -> str:
    assert stack.stack.pipeline is not None
    return stack.logical_id(stack.stack.pipeline.build_role)


def pipeline_properties(stack: SynthesizedStack) -> dict[str, Any]:
    return the_one(stack.template_json, "AWS::CodePipeline::Pipeline")[1]["Properties"]


def actions_by_stage(stack: SynthesizedStack) -> dict[str, list[dict[str, Any]]]:
    return {stage["Name"]: stage["Actions"] for stage in pipeline_properties(stack)["Stages"]}


def build_project(stack: SynthesizedStack, which: str = "project") -> dict[str, Any]:
    """The build's CodeBuild project (or ``verify_project``, ``operate_project``) as synthesized."""
    assert stack.stack.pipeline is not None
    logical_id = stack.logical_id(getattr(stack.stack.pipeline, which))
    project: dict[str, Any] = stack.template_json["Resources"][logical_id]
    assert project["Type"] == "AWS::CodeBuild::Project"
    return project


def project_variables(stack: SynthesizedStack, which: str = "project") -> dict[str, dict[str, Any]]:
    project = build_project(stack, which)
    return {v["Name"]: v for v in project["Properties"]["Environment"]["EnvironmentVariables"]}


def synthesized_buildspec(stack: SynthesizedStack, which: str = "project") -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(build_project(stack, which)["Properties"]["Source"]["BuildSpec"])
    return spec


# -- the pipeline -------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCE_TYPES)
def test_pipeline_is_v2_in_superseded_mode_never_parallel(
    source: str, synth: Callable[[str], SynthesizedStack]
) -> None:
    properties = pipeline_properties(synth(source))

    assert properties["PipelineType"] == "V2"
    assert properties["ExecutionMode"] == "SUPERSEDED"


@pytest.mark.parametrize(
    ("source", "provider", "configuration"),
    [
        (
            "codeconnections",
            "CodeStarSourceConnection",
            {"FullRepositoryId": "acme/docs", "BranchName": "main", "ConnectionArn": Match.any_value()},
        ),
        (
            "codecommit",
            "CodeCommit",
            {"RepositoryName": "docs", "BranchName": "release", "PollForSourceChanges": False},
        ),
        ("zip", "S3", {"S3Bucket": Match.any_value(), "S3ObjectKey": "drops/site.zip", "PollForSourceChanges": False}),
    ],
)
def test_stages_take_the_source_then_build_verify_and_roll_it_out(
    source: str, provider: str, configuration: dict[str, Any], synth: Callable[[str], SynthesizedStack]
) -> None:
    stack = synth(source)
    stages = actions_by_stage(stack)

    assert list(stages) == ["Source", "Build", "Verify", "Rollout"]
    assert [a["ActionTypeId"]["Provider"] for a in stages["Source"]] == [provider]
    assert [(a["Name"], a["ActionTypeId"]["Provider"]) for a in stages["Build"]] == [("BuildAndStage", "CodeBuild")]
    assert [(a["Name"], a["ActionTypeId"]["Provider"]) for a in stages["Verify"]] == [("Verify", "CodeBuild")]
    assert [(a["Name"], a["ActionTypeId"]["Provider"]) for a in stages["Rollout"]] == [("Rollout", "StepFunctions")]
    pipeline = stack.stack.pipeline
    assert pipeline is not None
    assert stages["Build"][0]["Configuration"]["ProjectName"] == {"Ref": stack.logical_id(pipeline.project)}
    assert stages["Verify"][0]["Configuration"]["ProjectName"] == {"Ref": stack.logical_id(pipeline.verify_project)}
    stack.template.has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "Stages": Match.array_with(
                [{"Name": "Source", "Actions": [Match.object_like({"Configuration": configuration})]}]
            )
        },
    )


@pytest.mark.parametrize("source", SOURCE_TYPES)
def test_actions_run_as_the_pipeline_role_and_artifacts_stay_in_the_pipeline_bucket(
    source: str, synth: Callable[[str], SynthesizedStack]
) -> None:
    stack = synth(source)
    pipeline = stack.stack.pipeline
    assert pipeline is not None
    properties = pipeline_properties(stack)

    assert properties["ArtifactStore"] == {
        "Location": {"Ref": stack.logical_id(pipeline.artifact_bucket)},
        "Type": "S3",
    }
    assert all("RoleArn" not in action for actions in actions_by_stage(stack).values() for action in actions)


def test_git_push_on_the_branch_within_the_path_filters_starts_the_pipeline(
    synth: Callable[[str], SynthesizedStack],
) -> None:
    triggers = pipeline_properties(synth("codeconnections"))["Triggers"]

    assert triggers == [
        {
            "ProviderType": "CodeStarSourceConnection",
            "GitConfiguration": {
                "SourceActionName": "Checkout",
                "Push": [
                    {
                        "Branches": {"Includes": ["main"]},
                        "FilePaths": {"Includes": ["site/**"], "Excludes": ["site/**/*.md"]},
                    }
                ],
            },
        }
    ]


def test_push_trigger_without_path_filters_filters_the_branch_only(synth: Callable[[str], SynthesizedStack]) -> None:
    push = pipeline_properties(synth("connection-arn"))["Triggers"][0]["GitConfiguration"]["Push"]

    assert push == [{"Branches": {"Includes": ["live"]}}]


def test_stack_creates_the_connection_when_none_is_named(synth: Callable[[str], SynthesizedStack]) -> None:
    stack = synth("codeconnections")
    logical_id, connection = the_one(stack.template_json, "AWS::CodeConnections::Connection")

    assert connection["Properties"] == {"ConnectionName": "hosting-docs", "ProviderType": "GitHub"}
    source = actions_by_stage(stack)["Source"][0]
    assert source["Configuration"]["ConnectionArn"] == {"Fn::GetAtt": [logical_id, "ConnectionArn"]}
    assert stack.template_json["Outputs"][OUTPUT_CONNECTION_ARN]["Value"] == {
        "Fn::GetAtt": [logical_id, "ConnectionArn"]
    }


@pytest.mark.parametrize("source", ["codeconnections", "connection-arn"])
def test_pipeline_may_use_the_connection_under_both_service_prefixes(
    source: str, synth: Callable[[str], SynthesizedStack]
) -> None:
    stack = synth(source)
    pipeline = stack.stack.pipeline
    assert pipeline is not None
    connection = actions_by_stage(stack)["Source"][0]["Configuration"]["ConnectionArn"]
    pairs = grants(role_statements(stack, stack.logical_id(pipeline.pipeline.role)))

    assert ("codestar-connections:UseConnection", text_of(connection)) in pairs
    assert ("codeconnections:UseConnection", text_of(connection)) in pairs


def test_named_connection_is_used_as_it_is(synth: Callable[[str], SynthesizedStack]) -> None:
    stack = synth("connection-arn")

    assert resources_of(stack.template_json, "AWS::CodeConnections::Connection") == {}
    assert actions_by_stage(stack)["Source"][0]["Configuration"]["ConnectionArn"] == CODESTAR_ARN
    assert stack.template_json["Outputs"][OUTPUT_CONNECTION_ARN]["Value"] == CODESTAR_ARN


def test_codecommit_push_on_the_branch_starts_the_pipeline_through_eventbridge(
    synth: Callable[[str], SynthesizedStack],
) -> None:
    stack = synth("codecommit")
    _, rule = the_one(stack.template_json, "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]

    assert pattern["source"] == ["aws.codecommit"]
    assert pattern["detail-type"] == ["CodeCommit Repository State Change"]
    assert pattern["detail"] == {"event": ["referenceCreated", "referenceUpdated"], "referenceName": ["release"]}
    assert [text_of(r) for r in pattern["resources"]] == [
        "arn:${AWS::Partition}:codecommit:${AWS::Region}:${AWS::AccountId}:docs"
    ]
    assert text_of(rule["Properties"]["Targets"][0]["Arn"]).endswith(
        f":${{{stack.logical_id(stack.stack.pipeline.pipeline)}}}"
    )  # type: ignore[union-attr]


def test_zip_upload_bucket_is_versioned_and_sends_its_events_to_eventbridge(
    synth: Callable[[str], SynthesizedStack],
) -> None:
    stack = synth("zip")
    pipeline = stack.stack.pipeline
    assert pipeline is not None and pipeline.upload_bucket is not None
    bucket = stack.template_json["Resources"][stack.logical_id(pipeline.upload_bucket)]

    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert resources_of(stack.template_json, "AWS::CloudTrail::Trail") == {}
    assert resources_of(stack.template_json, "Custom::S3BucketNotifications") == {}
    assert resources_of(stack.template_json, "AWS::Lambda::Function") == {}


def test_zip_rule_starts_the_pipeline_on_object_created_for_the_zip_key(
    synth: Callable[[str], SynthesizedStack],
) -> None:
    stack = synth("zip")
    pipeline = stack.stack.pipeline
    assert pipeline is not None and pipeline.upload_bucket is not None
    _, rule = the_one(stack.template_json, "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]
    target = rule["Properties"]["Targets"][0]

    assert pattern == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [{"Ref": stack.logical_id(pipeline.upload_bucket)}]},
            "object": {"key": ["drops/site.zip"]},
        },
    }
    assert all(key.endswith(".zip") for key in pattern["detail"]["object"]["key"])
    assert text_of(target["Arn"]).endswith(f":${{{stack.logical_id(pipeline.pipeline)}}}")
    role = target["RoleArn"]["Fn::GetAtt"][0]
    assert grants(role_statements(stack, role)) == {
        ("codepipeline:StartPipelineExecution", text_of(target["Arn"])),
    }
    assert text_of(stack.template_json["Outputs"][OUTPUT_UPLOAD_LOCATION]["Value"]) == (
        f"s3://${{{stack.logical_id(pipeline.upload_bucket)}}}/drops/site.zip"
    )


# -- the build ----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", [*SOURCE_TYPES, "connection-arn"])
def test_synthesized_buildspec_is_the_rendered_one_and_releases_with_the_tested_command(
    source: str, synth: Callable[[str], SynthesizedStack]
) -> None:
    spec = synthesized_buildspec(synth(source))

    assert spec == render_buildspec(CONFIGS[source].build)
    assert spec["phases"]["post_build"]["commands"] == [RELEASE_COMMAND]


def test_build_project_runs_on_amazon_linux_with_the_configured_size(synth: Callable[[str], SynthesizedStack]) -> None:
    synth("codecommit").template.has_resource_properties(
        "AWS::CodeBuild::Project",
        {
            "Environment": Match.object_like(
                {
                    "ComputeType": "BUILD_GENERAL1_MEDIUM",
                    "Image": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
                    "PrivilegedMode": False,
                }
            ),
            "Cache": {"Type": "S3", "Location": Match.any_value()},
            "TimeoutInMinutes": 60,
        },
    )


def test_build_environment_names_the_target_the_engine_and_the_sites_own_variables(
    synth: Callable[[str], SynthesizedStack],
) -> None:
    stack = synth("codeconnections")
    variables = project_variables(stack)

    assert {name: v["Type"] for name, v in variables.items()} == {
        ENV_BUCKET: "PLAINTEXT",
        ENV_KVS_ARN: "PLAINTEXT",
        ENV_SITE_URL: "PLAINTEXT",
        ENV_PACKAGE: "PLAINTEXT",
        ENV_SITE_CONFIG: "PLAINTEXT",
        "PUBLIC_API": "PLAINTEXT",
        "NPM_TOKEN": "SECRETS_MANAGER",
        "ANALYTICS_ID": "PARAMETER_STORE",
    }
    assert variables[ENV_BUCKET]["Value"] == {"Ref": BUCKET_LOGICAL_ID}
    assert variables[ENV_KVS_ARN]["Value"] == {"Fn::GetAtt": [KVS_LOGICAL_ID, "Arn"]}
    assert text_of(variables[ENV_SITE_URL]["Value"]) == "https://${SiteDistribution390DED28.DomainName}"
    assert re.fullmatch(
        r"s3://cdk-hnb659fds-assets-\$\{AWS::AccountId\}-\$\{AWS::Region\}/[0-9a-f]{64}\.zip",
        text_of(variables[ENV_PACKAGE]["Value"]),
    )
    assert variables["NPM_TOKEN"]["Value"] == "ci/npm-token"
    assert variables["ANALYTICS_ID"]["Value"] == "/docs/analytics-id"


@pytest.mark.parametrize("source", [*SOURCE_TYPES, "connection-arn"])
def test_build_gets_the_configuration_synth_used(source: str, synth: Callable[[str], SynthesizedStack]) -> None:
    text = project_variables(synth(source))[ENV_SITE_CONFIG]["Value"]

    assert parse_config(tomllib.loads(text)) == replace(CONFIGS[source], path=None)


@pytest.mark.parametrize(
    ("source", "variables"),
    [
        (
            "codeconnections",
            {ENV_COMMIT: "#{Source_Checkout_NS.CommitId}", ENV_MESSAGE: "push to main of acme/docs"},
        ),
        (
            "codecommit",
            {ENV_COMMIT: "#{Source_Checkout_NS.CommitId}", ENV_MESSAGE: "push to release of docs"},
        ),
        ("zip", {ENV_REVISION: "#{Source_Upload_NS.VersionId}", ENV_MESSAGE: "upload of drops/site.zip"}),
    ],
)
def test_build_action_passes_the_commit_or_the_uploaded_version(
    source: str, variables: dict[str, str], synth: Callable[[str], SynthesizedStack]
) -> None:
    stack = synth(source)
    source_action = actions_by_stage(stack)["Source"][0]
    build_action = actions_by_stage(stack)["Build"][0]
    passed = json.loads(build_action["Configuration"]["EnvironmentVariables"])

    assert {v["name"]: v["value"] for v in passed} == variables
    assert {v["type"] for v in passed} == {"PLAINTEXT"}
    assert all(value.startswith(f"#{{{source_action['Namespace']}.") for value in variables.values() if "#{" in value)


def test_pipeline_target_variables_are_the_clis_own_options() -> None:
    command = typer.main.get_command(cli_app)
    envvars = {param.name: param.envvar for param in command.params}

    assert envvars["bucket"] == ENV_BUCKET
    assert envvars["kvs_arn"] == ENV_KVS_ARN
    assert envvars["site_url"] == ENV_SITE_URL
    assert envvars["config"] == ENV_CONFIG


def test_package_asset_ships_the_package_and_nothing_else_of_the_checkout(
    synth: Callable[[str], SynthesizedStack],
) -> None:
    stack = synth("zip")
    (asset,) = stack.outdir.glob("asset.*")
    shipped = {p.name + ("/" if p.is_dir() else "") for p in asset.iterdir()}

    assert shipped == set(PACKAGE_FILES)
    assert (asset / "hosting_toolkit" / "cli" / "main.py").is_file()
    assert (asset / "hosting_toolkit" / "pipeline" / "buildspec.py").is_file()
    assert not [p for p in asset.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"]
    pyproject = tomllib.loads((asset / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["hosting-toolkit"] == "hosting_toolkit.cli.main:main"


# -- IAM ----------------------------------------------------------------------------------------

SITE = f"${{{BUCKET_LOGICAL_ID}.Arn}}"
ARTIFACTS = "${PipelineArtifactBucket5F943F51.Arn}"
CACHE = "${PipelineCacheBucket13EB56ED.Arn}"
DEFAULT_LOG_GROUP = (
    "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/codebuild/${PipelineBuild9D009F66}"
)
#: CDK's read-write grant on the cache bucket (CodeBuild's S3 cache).
CACHE_ACTIONS = (
    "s3:Abort*",
    "s3:DeleteObject*",
    "s3:GetBucket*",
    "s3:GetObject*",
    "s3:List*",
    "s3:PutObject",
    "s3:PutObjectLegalHold",
    "s3:PutObjectRetention",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
)
#: Everything the build role may do, whatever the source: (action, resource).
BUILD_ROLE_GRANTS = {
    # The release engine: releases and records in the site bucket; it reads the routing state, never writes it.
    ("s3:GetObject", f"{SITE}/releases/*"),
    ("s3:GetObject", f"{SITE}/_meta/*"),
    ("s3:PutObject", f"{SITE}/releases/*"),
    ("s3:PutObject", f"{SITE}/_meta/*"),
    ("s3:PutObject", f"{SITE}/errors/*"),
    ("s3:AbortMultipartUpload", f"{SITE}/releases/*"),
    ("s3:DeleteObject", f"{SITE}/_meta/pending/*"),
    ("s3:ListBucket", SITE),
    ("cloudfront-keyvaluestore:DescribeKeyValueStore", f"${{{KVS_LOGICAL_ID}.Arn}}"),
    ("cloudfront-keyvaluestore:GetKey", f"${{{KVS_LOGICAL_ID}.Arn}}"),
    # The release engine's package, from the CDK asset.
    ("s3:GetObject", "arn:${AWS::Partition}:s3:::cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}/<hash>.zip"),
    # The source artifact of the execution.
    *(
        (action, resource)
        for action in ("s3:GetBucket*", "s3:GetObject*", "s3:List*")
        for resource in (ARTIFACTS, f"{ARTIFACTS}/*")
    ),
    # The dependency cache.
    *((action, resource) for action in CACHE_ACTIONS for resource in (CACHE, f"{CACHE}/*")),
    # Logs: the stack's log group, and CDK's grant on the project's default one.
    ("logs:CreateLogStream", "${PipelineBuildLogs0FB13851.Arn}"),
    ("logs:PutLogEvents", "${PipelineBuildLogs0FB13851.Arn}"),
    *(
        (action, resource)
        for action in ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
        for resource in (DEFAULT_LOG_GROUP, f"{DEFAULT_LOG_GROUP}:*")
    ),
}
SECRET_GRANTS = {
    (
        "secretsmanager:GetSecretValue",
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:ci/npm-token-??????",
    ),
    ("ssm:GetParameters", "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/docs/analytics-id"),
}


@pytest.mark.parametrize("source", [*SOURCE_TYPES, "connection-arn"])
def test_build_role_gets_exactly_these_grants(source: str, synth: Callable[[str], SynthesizedStack]) -> None:
    stack = synth(source)
    expected = BUILD_ROLE_GRANTS | (SECRET_GRANTS if source == "codeconnections" else set())

    assert grants(role_statements(stack, build_role(stack))) == expected


def test_build_role_lists_the_site_bucket_only_under_releases_and_meta(
    synth: Callable[[str], SynthesizedStack],
) -> None:
    stack = synth("zip")
    (listing,) = [s for s in role_statements(stack, build_role(stack)) if s["Action"] == "s3:ListBucket"]

    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["releases/*", "_meta/*"]}}


@pytest.mark.parametrize("source", [*SOURCE_TYPES, "connection-arn"])
def test_no_s3_or_key_value_store_action_applies_to_every_resource(
    source: str, synth: Callable[[str], SynthesizedStack]
) -> None:
    stack = synth(source)
    statements = [
        s
        for policy in resources_of(stack.template_json, "AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]

    for action, resource in grants(statements):
        if action.startswith(("s3:", "cloudfront-keyvaluestore:")):
            assert resource != "*", action


# -- resources ----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCE_TYPES)
def test_pipeline_buckets_are_private_encrypted_tls_only_and_go_with_the_stack(
    source: str, synth: Callable[[str], SynthesizedStack]
) -> None:
    stack = synth(source)
    pipeline = stack.stack.pipeline
    assert pipeline is not None
    buckets = resources_of(stack.template_json, "AWS::S3::Bucket")
    policies = {
        p["Properties"]["Bucket"]["Ref"]: p for p in resources_of(stack.template_json, "AWS::S3::BucketPolicy").values()
    }
    mine = [
        pipeline.artifact_bucket,
        pipeline.cache_bucket,
        *([pipeline.upload_bucket] if pipeline.upload_bucket else []),
    ]
    own = {stack.logical_id(bucket): buckets[stack.logical_id(bucket)] for bucket in mine}

    assert len(own) == (3 if source == "zip" else 2)
    for logical_id, bucket in own.items():
        assert bucket["DeletionPolicy"] == "Delete"
        assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        ]
        denials = [
            s for s in policies[logical_id]["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"
        ]
        assert {json.dumps(s["Condition"], sort_keys=True) for s in denials} == {
            '{"Bool": {"aws:SecureTransport": "false"}}',
            '{"NumericLessThan": {"s3:TlsVersion": 1.2}}',
        }
    site = buckets[BUCKET_LOGICAL_ID]
    assert (site["DeletionPolicy"], site["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_artifacts_and_caches_expire(synth: Callable[[str], SynthesizedStack]) -> None:
    stack = synth("codecommit")
    pipeline = stack.stack.pipeline
    assert pipeline is not None
    resources = stack.template_json["Resources"]

    for bucket, rule in ((pipeline.artifact_bucket, "ExpireArtifacts"), (pipeline.cache_bucket, "ExpireIdleCaches")):
        rules = resources[stack.logical_id(bucket)]["Properties"]["LifecycleConfiguration"]["Rules"]
        assert {"Id": rule, "ExpirationInDays": 30, "Status": "Enabled"} in rules


def test_build_logs_are_kept_three_months_and_go_with_the_stack(synth: Callable[[str], SynthesizedStack]) -> None:
    stack = synth("zip")
    assert stack.stack.pipeline is not None
    logical_id = stack.logical_id(stack.stack.pipeline.log_group)
    group = stack.template_json["Resources"][logical_id]

    assert group["Properties"] == {"RetentionInDays": 90}
    assert group["DeletionPolicy"] == "Delete"
    stack.template.has_resource_properties(
        "AWS::CodeBuild::Project",
        {"LogsConfig": {"CloudWatchLogs": {"GroupName": {"Ref": logical_id}, "Status": "ENABLED"}}},
    )


@pytest.mark.parametrize(
    ("source", "extra"),
    [
        ("codeconnections", [OUTPUT_PIPELINE_NAME, OUTPUT_CONNECTION_ARN]),
        ("connection-arn", [OUTPUT_PIPELINE_NAME, OUTPUT_CONNECTION_ARN]),
        ("codecommit", [OUTPUT_PIPELINE_NAME]),
        ("zip", [OUTPUT_PIPELINE_NAME, OUTPUT_UPLOAD_LOCATION]),
    ],
)
def test_outputs_add_what_deploy_and_status_need(
    source: str, extra: list[str], synth: Callable[[str], SynthesizedStack]
) -> None:
    stack = synth(source)
    outputs = stack.template_json["Outputs"]

    pipeline_outputs = {OUTPUT_PIPELINE_NAME, OUTPUT_CONNECTION_ARN, OUTPUT_UPLOAD_LOCATION}
    assert {key for key in outputs if key in pipeline_outputs} == set(extra)
    assert {OUTPUT_SITE_URL, OUTPUT_DISTRIBUTION_ID, OUTPUT_BUCKET_NAME, OUTPUT_KVS_ARN} <= set(outputs)
    assert all(outputs[key].get("Description") for key in extra)
    assert outputs[OUTPUT_PIPELINE_NAME]["Value"] == {"Ref": stack.logical_id(stack.stack.pipeline.pipeline)}  # type: ignore[union-attr]


@pytest.mark.parametrize("source", SOURCE_TYPES)
def test_stateful_logical_ids_are_those_of_the_stack_without_a_pipeline(
    source: str, synth: Callable[[str], SynthesizedStack]
) -> None:
    resources = synth(source).template_json["Resources"]

    assert resources[BUCKET_LOGICAL_ID]["Type"] == "AWS::S3::Bucket"
    assert resources[KVS_LOGICAL_ID]["Type"] == "AWS::CloudFront::KeyValueStore"


# -- cdk-nag and cfn-lint -----------------------------------------------------------------------


def pipeline_acknowledgements(source: str) -> dict[str, list[str]]:
    build_role = [
        "AwsSolutions-IAM5[Action::s3:Abort*]",
        "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
        "AwsSolutions-IAM5[Action::s3:GetBucket*]",
        "AwsSolutions-IAM5[Action::s3:GetObject*]",
        "AwsSolutions-IAM5[Action::s3:List*]",
        "AwsSolutions-IAM5[Resource::<PipelineArtifactBucket5F943F51.Arn>/*]",
        "AwsSolutions-IAM5[Resource::<PipelineCacheBucket13EB56ED.Arn>/*]",
        "AwsSolutions-IAM5[Resource::<SiteBucket978D4AEB.Arn>/_meta/*]",
        "AwsSolutions-IAM5[Resource::<SiteBucket978D4AEB.Arn>/_meta/pending/*]",
        "AwsSolutions-IAM5[Resource::<SiteBucket978D4AEB.Arn>/errors/*]",
        "AwsSolutions-IAM5[Resource::<SiteBucket978D4AEB.Arn>/releases/*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        "/aws/codebuild/<PipelineBuild9D009F66>:*]",
    ]
    pipeline_role = [
        "AwsSolutions-IAM5[Action::s3:Abort*]",
        "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
        "AwsSolutions-IAM5[Action::s3:GetBucket*]",
        "AwsSolutions-IAM5[Action::s3:GetObject*]",
        "AwsSolutions-IAM5[Action::s3:List*]",
        "AwsSolutions-IAM5[Resource::<PipelineArtifactBucket5F943F51.Arn>/*]",
    ]
    operator_role = [
        "AwsSolutions-IAM5[Resource::<SiteBucket978D4AEB.Arn>/_meta/*]",
        "AwsSolutions-IAM5[Resource::<SiteBucket978D4AEB.Arn>/errors/*]",
        "AwsSolutions-IAM5[Resource::<SiteBucket978D4AEB.Arn>/releases/*]",
    ]
    # verify reads records (and the preview token); it reads no release file and writes nothing.
    verify_role = [
        "AwsSolutions-IAM5[Resource::<SiteBucket978D4AEB.Arn>/_meta/*]",
        "AwsSolutions-IAM5[Action::s3:GetBucket*]",
        "AwsSolutions-IAM5[Action::s3:GetObject*]",
        "AwsSolutions-IAM5[Action::s3:List*]",
        "AwsSolutions-IAM5[Resource::<PipelineArtifactBucket5F943F51.Arn>/*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        "/aws/codebuild/<PipelineVerifyE909C2FD>:*]",
    ]
    operator_role.append(
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
        "/aws/codebuild/<PipelineOperateA2B2AFD9>:*]"
    )
    machine = '{"Ref":"PipelineRolloutStateMachineDF912B6B"}'
    part = [f'{{"Fn::Select":[{i},{{"Fn::Split":[":",{machine}]}}]}}' for i in range(7)]
    name = CONFIGS[source].site.name
    pipeline_role.append(
        f"AwsSolutions-IAM5[Resource::arn:{part[1]}:states:{part[3]}:{part[4]}:execution:{part[6]}:rollout-{name}*]"
    )
    expected = {
        **{path: sorted(rules) for path, rules in SITE_ACKNOWLEDGED.items()},
        "Pipeline/Verify": ["AwsSolutions-CB4"],
        "Pipeline/Verify/Role": sorted(verify_role),
        "Pipeline/Operate": ["AwsSolutions-CB4"],
        "Pipeline/Operate/Role": sorted(operator_role),
        "Pipeline/Rollout/StateMachine/Role": ["AwsSolutions-IAM5[Resource::*]"],
        "Pipeline/ArtifactBucket": ["AwsSolutions-S1"],
        "Pipeline/CacheBucket": ["AwsSolutions-S1"],
        "Pipeline/Build": ["AwsSolutions-CB4"],
        "Pipeline/Build/Role": sorted(build_role),
        "Pipeline/Pipeline/Role": sorted(pipeline_role),
    }
    if source == "zip":
        expected["Pipeline/UploadBucket"] = ["AwsSolutions-S1"]
    return expected


@pytest.mark.parametrize("source", SOURCE_TYPES)
def test_aws_solutions_checks_find_nothing_unacknowledged(
    source: str, synth: Callable[[str], SynthesizedStack]
) -> None:
    report = AwsSolutionsChecks().validate_scope(synth(source).app)

    found = [
        f"{v.rule_name} ({', '.join(r.construct_path or '?' for r in v.violating_resources)})"
        for v in report.violations
    ]
    assert found == []
    assert report.success


def test_a_stack_bound_to_an_account_and_region_passes_the_checks_too(tmp_path: Path) -> None:
    app = cdk.App(context=cdk_context(), outdir=str(tmp_path))
    HostingStack(
        app, "hosting-site", config=CONFIGS["zip"], env=cdk.Environment(account="111111111111", region="eu-west-1")
    )

    report = AwsSolutionsChecks().validate_scope(app)

    assert [v.rule_name for v in report.violations] == []


@pytest.mark.parametrize("source", SOURCE_TYPES)
def test_acknowledged_rules_are_exactly_the_reviewed_ones(
    source: str, synth: Callable[[str], SynthesizedStack]
) -> None:
    stack = synth(source)
    found = acknowledgements(stack.stack)

    assert {path: sorted(rules) for path, rules in found.items()} == pipeline_acknowledgements(source)


@pytest.mark.parametrize("source", SOURCE_TYPES)
def test_every_pipeline_acknowledgement_gives_a_specific_reason(
    source: str, synth: Callable[[str], SynthesizedStack]
) -> None:
    found = acknowledgements(synth(source).stack)

    for path, rules in found.items():
        reasons = list(rules.values())
        assert len(set(reasons)) == len(reasons), f"{path}: each rule needs its own reason"
        for reason in reasons:
            assert len(reason) >= 80, reason
            assert not any(word in reason.lower() for word in ("todo", "tbd", "placeholder", "suppress")), reason


@pytest.mark.parametrize("source", SOURCE_TYPES)
def test_template_has_no_cfn_lint_errors(source: str, synth: Callable[[str], SynthesizedStack]) -> None:
    matches = lint(json.dumps(synth(source).template_json, indent=1), config=ManualArgs(regions=LINT_REGIONS))

    for match in matches:
        if match.rule.severity != "error":
            warnings.warn(f"cfn-lint {match.rule.id}: {match.message}", stacklevel=1)
    assert [f"{m.rule.id}: {m.message}" for m in matches if m.rule.severity == "error"] == []
