"""The preview pipeline's build as CodeBuild runs it: the synthesized project's buildspec and variables, its
post-build step with bash, the shipped release engine against moto_server S3 and a local key-value store.
A push to a branch stages a release and moves the branch's preview; production routing is never written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hosting_toolkit.config import parse_config
from hosting_toolkit.contract import ROUTING_KEY, PreviewState, preview_key
from hosting_toolkit.pipeline.buildspec import (
    ENV_BRANCH,
    ENV_COMMIT,
    ENV_EXECUTION,
    ENV_PREVIEW,
    RELEASE_COMMAND,
    WRITE_CONFIG_COMMAND,
)
from hosting_toolkit.release.kvs import LocalKeyValueStore
from hosting_toolkit.release.previews import branch_preview_name
from hosting_toolkit.target import LOCAL_KVS_FILE
from tests.cdk_helpers import synth_hosting_stack
from tests.fakes.sites import sample_site
from tests.integration.conftest import S3Bucket
from tests.integration.test_post_build import Build, CodeBuild, install_release_engine, read_project

pytestmark = [pytest.mark.integration, pytest.mark.synth]

CONFIG = {
    "site": {"name": "docs"},
    "source": {"type": "codeconnections", "repository": "acme/docs", "branch": "main"},
    "previews": {"branches": ["*", "!release/*"]},
}
COMMITS = ("1a2b3c4d5e6f" + "0" * 28, "6f5e4d3c2b1a" + "1" * 28)


@pytest.fixture(scope="module")
def preview_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    stack = synth_hosting_stack(parse_config(CONFIG), tmp_path_factory.mktemp("preview-build"))
    (package,) = stack.outdir.glob("asset.*")
    buildspec, variables = read_project(stack, "preview_project")
    operate_buildspec, operate_variables = read_project(stack, "operate_project")
    return Build(buildspec, variables, package, operate_buildspec, operate_variables)


@pytest.fixture
def codebuild(preview_build: Build, s3_bucket: S3Bucket, tmp_path: Path) -> Iterator[CodeBuild]:
    home = tmp_path / "home"
    install_release_engine(home, preview_build.package)
    src = tmp_path / "src"
    src.mkdir()
    yield CodeBuild(preview_build, src, home, tmp_path / "target", s3_bucket)


def test_the_preview_build_runs_the_release_command(preview_build: Build) -> None:
    assert preview_build.post_build == RELEASE_COMMAND
    assert preview_build.project_variables[ENV_PREVIEW] == "1"


def test_a_push_stages_a_release_and_moves_the_branch_preview_without_touching_routing(codebuild: CodeBuild) -> None:
    kvs = LocalKeyValueStore(codebuild.target / LOCAL_KVS_FILE)
    name = branch_preview_name("feature/login")
    action = {ENV_PREVIEW: codebuild.build.project_variables[ENV_PREVIEW], ENV_BRANCH: "feature/login"}
    assert codebuild.run(WRITE_CONFIG_COMMAND).returncode == 0
    for commit in COMMITS:
        sample_site(codebuild.output_folder(), marker=commit)
        staged = codebuild.run(codebuild.build.post_build, **action, **{ENV_COMMIT: commit, ENV_EXECUTION: "e-1"})
        assert staged.returncode == 0, staged.stderr
        assert staged.stdout.strip().splitlines()[-1] == name
        value, _ = kvs.read(preview_key(name))
        assert value is not None and PreviewState.from_json(value).live == commit[:12]
        assert kvs.read(ROUTING_KEY)[0] is None
    state = PreviewState.from_json(kvs.read(preview_key(name))[0] or "")
    assert (state.pins, state.ref) == ((COMMITS[0][:12],), "branch:feature/login")

    # An excluded branch gets nothing; the same environment cannot switch production.
    skipped = codebuild.run(
        codebuild.build.post_build, **{**action, ENV_BRANCH: "release/2"}, **{ENV_COMMIT: COMMITS[0]}
    )
    assert skipped.returncode == 0 and "gets no preview" in skipped.stderr
    home = codebuild.home / "bin" / "hosting-toolkit"
    refused = codebuild.run(f'"{home}" activate {COMMITS[0][:12]}', **action)
    assert refused.returncode != 0 and "preview:" in refused.stderr
    assert kvs.read(ROUTING_KEY)[0] is None


def test_a_failed_build_stages_nothing_and_leaves_the_preview(codebuild: CodeBuild) -> None:
    kvs = LocalKeyValueStore(codebuild.target / LOCAL_KVS_FILE)
    action = {ENV_PREVIEW: "1", ENV_BRANCH: "feature/login", ENV_COMMIT: COMMITS[0]}
    assert codebuild.run(WRITE_CONFIG_COMMAND).returncode == 0
    sample_site(codebuild.output_folder())
    failed = codebuild.run(codebuild.build.post_build, **action, CODEBUILD_BUILD_SUCCEEDING="0")
    assert failed.returncode != 0
    assert "the build failed, so preview branch-feature-login-" in failed.stderr
    assert kvs.snapshot()[0] == {}
