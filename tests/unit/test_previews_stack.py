"""The synthesized stack with ``[previews]``: the preview pipeline's triggers and build, the wildcard
certificate, aliases and records, what IAM can and cannot keep the preview build from, and cdk-nag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match
from cdk_nag import AwsSolutionsChecks
from typer.testing import CliRunner

from hosting_toolkit.cli.main import app as cli_app
from hosting_toolkit.config import parse_config
from hosting_toolkit.errors import ConfigError
from hosting_toolkit.pipeline.buildspec import ENV_PREVIEW, RELEASE_COMMAND
from hosting_toolkit.pipeline.infrastructure import KVS_ACTIONS
from tests.cdk_helpers import SynthesizedStack, synth_hosting_stack
from tests.fakes.sites import sample_site

pytestmark = pytest.mark.synth

WILDCARD = "*.preview.example.com"
BASE: dict[str, Any] = {
    "site": {"name": "docs"},
    "source": {"type": "codeconnections", "repository": "acme/docs", "branch": "main"},
    "domain": {
        "names": ["www.example.com"],
        "hosted_zone_id": "Z0123456789ABCDEFGHIJ",
        "hosted_zone_name": "example.com",
    },
}
PREVIEWS = {**BASE, "previews": {"domain": "preview.example.com", "branches": ["*", "!release/*"]}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return synth_hosting_stack(
        parse_config(PREVIEWS),
        tmp_path_factory.mktemp("previews"),
        env=cdk.Environment(account="111111111111", region="us-east-1"),
    )


def preview_pipeline(stack: SynthesizedStack) -> dict[str, Any]:
    assert stack.stack.pipeline is not None and stack.stack.pipeline.preview_pipeline is not None
    logical = stack.logical_id(stack.stack.pipeline.preview_pipeline)
    return dict(stack.template_json["Resources"][logical]["Properties"])


def test_the_preview_pipeline_triggers_on_previewed_branches_and_pull_request_events(stack: SynthesizedStack) -> None:
    properties = preview_pipeline(stack)
    assert properties["PipelineType"] == "V2"
    assert properties["ExecutionMode"] == "QUEUED"
    [trigger] = properties["Triggers"]
    git = trigger["GitConfiguration"]
    assert trigger["ProviderType"] == "CodeStarSourceConnection"
    assert git["Push"] == [{"Branches": {"Includes": ["*"], "Excludes": ["release/*", "main"]}}]
    assert git["PullRequest"] == [{"Branches": {"Includes": ["*"]}, "Events": ["OPEN", "UPDATED", "CLOSED"]}]


def test_the_preview_pipeline_only_builds_and_previews(stack: SynthesizedStack) -> None:
    stages = [s["Name"] for s in preview_pipeline(stack)["Stages"]]
    assert stages == ["Source", "Preview"]


def test_the_production_pipeline_keeps_its_own_trigger_and_stages(stack: SynthesizedStack) -> None:
    assert stack.stack.pipeline is not None
    logical = stack.logical_id(stack.stack.pipeline.pipeline)
    properties = stack.template_json["Resources"][logical]["Properties"]
    assert [s["Name"] for s in properties["Stages"]] == ["Source", "Build", "Verify", "Rollout"]
    [trigger] = properties["Triggers"]
    assert trigger["GitConfiguration"]["Push"] == [{"Branches": {"Includes": ["main"]}}]
    assert "PullRequest" not in trigger["GitConfiguration"]


def test_the_preview_build_runs_the_same_buildspec_in_preview_mode(stack: SynthesizedStack) -> None:
    pipeline = stack.stack.pipeline
    assert pipeline is not None and pipeline.preview_project is not None
    resources = stack.template_json["Resources"]
    preview = resources[stack.logical_id(pipeline.preview_project)]["Properties"]
    production = resources[stack.logical_id(pipeline.project)]["Properties"]
    assert preview["Source"]["BuildSpec"] == production["Source"]["BuildSpec"]
    assert "previews build" in RELEASE_COMMAND
    variables = {v["Name"]: v["Value"] for v in preview["Environment"]["EnvironmentVariables"]}
    assert variables[ENV_PREVIEW] == "1"
    assert ENV_PREVIEW not in {v["Name"] for v in production["Environment"]["EnvironmentVariables"]}


def test_the_certificate_aliases_and_records_cover_the_preview_wildcard(stack: SynthesizedStack) -> None:
    stack.template.has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {"DomainName": "www.example.com", "SubjectAlternativeNames": [WILDCARD]},
    )
    stack.template.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {"DistributionConfig": Match.object_like({"Aliases": ["www.example.com", WILDCARD]})},
    )
    for record_type in ("A", "AAAA"):
        stack.template.has_resource_properties("AWS::Route53::RecordSet", {"Name": f"{WILDCARD}.", "Type": record_type})


def _statements(stack: SynthesizedStack, role: Any) -> list[dict[str, Any]]:
    found = []
    role_id = stack.logical_id(role)
    for resource in stack.template_json["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            found.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return found


def _actions_on(statements: list[dict[str, Any]], prefix: str) -> set[str]:
    actions: set[str] = set()
    for statement in statements:
        listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        actions |= {a for a in listed if a.startswith(prefix)}
    return actions


def test_iam_gives_the_preview_build_the_whole_store_so_the_engine_guards_routing(
    stack: SynthesizedStack, tmp_path: Path
) -> None:
    """KeyValueStore IAM is per store: the policy cannot tell ``routing`` from ``preview:*`` (no key
    condition exists), so the preview build may PutKey as production's may; the engine it runs in
    preview mode is what refuses ``routing``, proven here through the variable the template sets."""
    pipeline = stack.stack.pipeline
    assert pipeline is not None and pipeline.preview_project is not None and pipeline.preview_project.role
    statements = _statements(stack, pipeline.preview_project.role)
    kvs = [s for s in statements if any(str(a).startswith("cloudfront-keyvaluestore:") for a in s["Action"])]
    assert all("Condition" not in s for s in kvs)
    assert _actions_on(statements, "cloudfront-keyvaluestore:") == {
        *KVS_ACTIONS,
        "cloudfront-keyvaluestore:ListKeys",
        "cloudfront-keyvaluestore:DeleteKey",
    }
    assert _actions_on(statements, "codepipeline:") == {"codepipeline:GetPipelineExecution"}
    # The production build never deletes keys.
    assert "cloudfront-keyvaluestore:DeleteKey" not in _actions_on(_statements(stack, pipeline.build_role), "")

    variables = {
        v["Name"]: v["Value"]
        for v in stack.template_json["Resources"][stack.logical_id(pipeline.preview_project)]["Properties"][
            "Environment"
        ]["EnvironmentVariables"]
        if isinstance(v["Value"], str)
    }
    local = tmp_path / "target"
    runner = CliRunner()
    release = runner.invoke(
        cli_app, ["--local", str(local), "release", str(sample_site(tmp_path / "s")), "--id", "r1", "--no-activate"]
    )
    assert release.exit_code == 0, release.output
    refused = runner.invoke(
        cli_app, ["--local", str(local), "activate", "r1"], env={ENV_PREVIEW: variables[ENV_PREVIEW]}
    )
    assert refused.exit_code != 0 and "preview:" in refused.stderr


def test_the_stack_with_previews_passes_cdk_nag(stack: SynthesizedStack) -> None:
    report = AwsSolutionsChecks().validate_scope(stack.app)
    found = [
        f"{v.rule_name} ({', '.join(r.construct_path or '?' for r in v.violating_resources)})"
        for v in report.violations
    ]
    assert found == []


def test_a_stack_without_previews_has_no_preview_pipeline(tmp_path: Path) -> None:
    plain = synth_hosting_stack(
        parse_config(BASE), tmp_path, env=cdk.Environment(account="111111111111", region="us-east-1")
    )
    assert plain.stack.pipeline is not None and plain.stack.pipeline.preview_pipeline is None
    plain.template.resource_count_is("AWS::CodePipeline::Pipeline", 1)
    plain.template.has_resource_properties(
        "AWS::CertificateManager::Certificate", {"SubjectAlternativeNames": Match.absent()}
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"type": "codecommit", "repository": "site"}, "CodeCommit sources cannot trigger"),
        ({"type": "zip"}, "a 'zip' source has no branches"),
    ],
)
def test_sources_without_branch_and_pull_request_triggers_are_a_config_error(
    source: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"source": source, "previews": {}})


def test_the_template_with_previews_has_no_cfn_lint_errors(stack: SynthesizedStack) -> None:
    import json

    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(stack.template_json), config=ManualArgs(regions=["us-east-1"]))
    assert [f"{m.rule.id}: {m.message}" for m in matches if m.rule.severity == "error"] == []
