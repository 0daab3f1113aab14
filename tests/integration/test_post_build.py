"""The pipeline's post-build step and its operator steps, run as CodeBuild runs them: the commands of the
synthesized buildspecs, with bash, in the build's environment, using the release engine shipped in the package
asset, against S3 (moto_server) and a local KeyValueStore. The build stages a release and exports its id; the
operator's ``shift`` and ``retract`` steps move viewers to it and back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hosting_toolkit.config import BuildConfig, CodeConnectionsSource, HostingConfig, SiteConfig, ZipSource
from hosting_toolkit.contract import RELEASE_METADATA_KEY, RoutingState, release_prefix
from hosting_toolkit.pipeline.buildspec import (
    ENV_BUCKET,
    ENV_COMMIT,
    ENV_CONFIG,
    ENV_HOME,
    ENV_MESSAGE,
    ENV_OUTCOME,
    ENV_PERCENT,
    ENV_RELEASE_ID,
    ENV_REVISION,
    ENV_ROLLOUT,
    ENV_SITE_CONFIG,
    ENV_SITE_URL,
    ENV_STEP,
    ENV_STEP_INDEX,
    OPERATE_COMMAND,
    RELEASE_COMMAND,
    WRITE_CONFIG_COMMAND,
)
from hosting_toolkit.release.kvs import LocalKeyValueStore
from hosting_toolkit.release.records import record_key
from hosting_toolkit.target import LOCAL_KVS_FILE
from tests.cdk_helpers import SynthesizedStack, synth_hosting_stack
from tests.fakes.sites import SAMPLE_SITE, sample_site
from tests.integration.conftest import S3Bucket

pytestmark = [pytest.mark.integration, pytest.mark.synth]

COMMIT = "4f9c2a7be01d5c3f8a6b9e0d1c2b3a4f5e6d7c8b"
SITE_URL = "https://d111111abcdef8.cloudfront.net"
UPLOAD_VERSION = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo"

CONFIGS = {
    "git": HostingConfig(
        site=SiteConfig(name="docs", mode="static"),
        source=CodeConnectionsSource(repository="acme/docs"),
        build=BuildConfig(framework="vite", app_root="site"),
    ),
    "zip": HostingConfig(site=SiteConfig(name="docs"), source=ZipSource("drops/site.zip")),
}


@dataclass(frozen=True)
class Build:
    """What the pipeline hands CodeBuild, read back from a synthesized stack."""

    buildspec: dict[str, Any]
    project_variables: dict[str, Any]
    package: Path
    operate_buildspec: dict[str, Any]
    operate_variables: dict[str, Any]

    @property
    def install_commands(self) -> list[str]:
        commands: list[str] = self.buildspec["phases"]["install"]["commands"]
        return commands

    @property
    def post_build(self) -> str:
        (command,) = self.buildspec["phases"]["post_build"]["commands"]
        assert isinstance(command, str)
        return command


def read_project(stack: SynthesizedStack, which: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The buildspec and plain variables of one of the pipeline's CodeBuild projects."""
    assert stack.stack.pipeline is not None
    project = stack.template_json["Resources"][stack.logical_id(getattr(stack.stack.pipeline, which))]
    variables = {v["Name"]: v["Value"] for v in project["Properties"]["Environment"]["EnvironmentVariables"]}
    return yaml.safe_load(project["Properties"]["Source"]["BuildSpec"]), variables


def read_build(stack: SynthesizedStack) -> Build:
    (package,) = stack.outdir.glob("asset.*")
    buildspec, variables = read_project(stack, "project")
    operate_buildspec, operate_variables = read_project(stack, "operate_project")
    return Build(buildspec, variables, package, operate_buildspec, operate_variables)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Build]:
    return {name: read_build(synth_hosting_stack(c, tmp_path_factory.mktemp(name))) for name, c in CONFIGS.items()}


@dataclass
class CodeBuild:
    """A build container in miniature: the source folder, the toolkit home, and a bash that runs commands."""

    build: Build
    src: Path
    home: Path
    target: Path
    bucket: S3Bucket
    rollouts: int = 0

    def environment(self, **action: str) -> dict[str, str]:
        """The build's environment: buildspec, project and action variables, with local stand-ins for AWS."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTING_TOOLKIT_")}
        env.update({k: str(v) for k, v in self.build.buildspec["env"]["variables"].items()})
        env[ENV_SITE_CONFIG] = self.build.project_variables[ENV_SITE_CONFIG]
        env.update(
            {
                # The image paths of the buildspec, moved into the test's folder.
                ENV_HOME: str(self.home),
                ENV_CONFIG: str(self.home / "hosting.toml"),
                # Tokens in the template (the bucket, the distribution's address), and local stand-ins.
                ENV_BUCKET: self.bucket.name,
                ENV_SITE_URL: SITE_URL,
                "HOSTING_TOOLKIT_LOCAL": str(self.target),
                # SITE_URL answers nothing here: the edge wait is tested against a local edge elsewhere.
                "HOSTING_TOOLKIT_NO_WAIT": "1",
                "AWS_ENDPOINT_URL_S3": self.bucket.endpoint,
                # What CodeBuild itself sets.
                "CODEBUILD_SRC_DIR": str(self.src),
                "CODEBUILD_BUILD_ID": "hosting-docs-build:0f6f5a0c",
                "CODEBUILD_BUILD_SUCCEEDING": "1",
            }
        )
        env.update(action)
        return env

    def stage(self, **action: str) -> subprocess.CompletedProcess[str]:
        """The post-build step, then what it exports to the pipeline (the last line of stdout)."""
        return self.run(f'{self.build.post_build}\necho "${ENV_RELEASE_ID}"', **action)

    def operate(
        self, step: str, release_id: str, percent: str = "", *, rollout: str | None = None, index: int = 0
    ) -> subprocess.CompletedProcess[str]:
        """One run of the operator project, as the rollout state machine starts it (a rollout of its own by
        default), then the variable it exports (the last line of stdout)."""
        (command,) = self.build.operate_buildspec["phases"]["build"]["commands"]
        self.rollouts += 1
        overrides = {
            ENV_STEP: step,
            ENV_RELEASE_ID: release_id,
            ENV_PERCENT: percent,
            ENV_STEP_INDEX: str(index),
            ENV_ROLLOUT: rollout or f"rollout-docs-{self.rollouts}",
        }
        return self.run(f'{command}\ncode=$?\necho "${{{ENV_OUTCOME}:-}}"\nexit "$code"', **overrides)

    def run(self, command: str, **action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command],
            env=self.environment(**action),
            cwd=self.src,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def output_folder(self) -> Path:
        variables = self.build.buildspec["env"]["variables"]
        return self.src / variables["HOSTING_TOOLKIT_APP_ROOT"] / variables["HOSTING_TOOLKIT_OUTPUT_DIR"]

    def routing(self) -> RoutingState:
        value, _ = LocalKeyValueStore(self.target / LOCAL_KVS_FILE).read("routing")
        return RoutingState.from_json(value)

    def record(self, release_id: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.bucket.body(record_key(release_id)))
        return data


#: Modules of the requirements the build does not install (``SYNTH_ONLY_REQUIREMENTS``).
SYNTH_ONLY_MODULES = ("aws_cdk", "constructs", "cdk_nag", "jsii", "yaml")
#: Runs the CLI as the build's ``hosting-toolkit`` does, with importing a module the build lacks failing.
RUN_WITHOUT_SYNTH_ONLY = f"""\
import importlib.abc
import runpy
import sys


class SynthOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SYNTH_ONLY_MODULES!r}:
            raise ModuleNotFoundError(f"{{name}} is not installed in the build", name=name)
        return None


sys.meta_path.insert(0, SynthOnly())
runpy.run_module("hosting_toolkit", run_name="__main__", alter_sys=True)
"""


def shipped_python(package: Path) -> str:
    """A Python running the package asset's code with this environment's dependencies, the way the build's
    virtual environment does: no ``site`` processing, so the checkout's editable install stays out."""
    paths = dict.fromkeys([str(package), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    return f'PYTHONPATH="{os.pathsep.join(paths)}" "{sys.executable}" -S'


def install_release_engine(home: Path, package: Path) -> None:
    """What ``pip install`` of the package asset gives the build: a ``hosting-toolkit`` running the shipped
    code, without the requirements only synthesis needs."""
    (home / "bin").mkdir(parents=True)
    runner = home / "lib" / "hosting_toolkit_cli.py"
    runner.parent.mkdir()
    runner.write_text(RUN_WITHOUT_SYNTH_ONLY)
    script = home / "bin" / "hosting-toolkit"
    script.write_text(f'#!/bin/sh\nexec env {shipped_python(package)} "{runner}" "$@"\n')
    script.chmod(0o755)


@pytest.fixture
def codebuild(builds: dict[str, Build], s3_bucket: S3Bucket, tmp_path: Path) -> Iterator[Callable[[str], CodeBuild]]:
    def make(name: str) -> CodeBuild:
        build = builds[name]
        home = tmp_path / name / "home"
        install_release_engine(home, build.package)
        src = tmp_path / name / "src"
        src.mkdir()
        return CodeBuild(build, src, home, tmp_path / name / "target", s3_bucket)

    yield make


def test_shipped_package_is_what_the_build_runs(builds: dict[str, Build], tmp_path: Path) -> None:
    code = "import hosting_toolkit.cli.main as m; print(m.__file__)"

    result = subprocess.run(
        ["bash", "-c", f'{shipped_python(builds["git"].package)} -c "{code}"'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )

    assert Path(result.stdout.strip()).is_relative_to(builds["git"].package)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_buildspec_runs_the_tested_commands(name: str, builds: dict[str, Build]) -> None:
    assert builds[name].post_build == RELEASE_COMMAND
    assert WRITE_CONFIG_COMMAND in builds[name].install_commands


def test_git_build_is_staged_under_its_commit_and_exported_without_taking_viewers(
    codebuild: Callable[[str], CodeBuild],
) -> None:
    build = codebuild("git")
    sample_site(build.output_folder())
    action = {ENV_COMMIT: COMMIT, ENV_MESSAGE: "push to main of acme/docs"}

    configured = build.run(WRITE_CONFIG_COMMAND, **action)
    released = build.stage(**action)

    assert configured.returncode == 0, configured.stderr
    assert released.returncode == 0, released.stderr
    rid = COMMIT[:12]
    assert released.stdout.strip().splitlines() == [rid]
    log = released.stderr
    uploaded = sum(len(body) for body, _, _ in SAMPLE_SITE.values())
    # Static mode adds blog/first-post/index.html, a server-side copy of blog/first-post.html.
    files, size = len(SAMPLE_SITE) + 1, uploaded + len(SAMPLE_SITE["blog/first-post.html"][0])
    assert (
        f"release {rid}: {files} files, {size:,} bytes; uploaded {len(SAMPLE_SITE)} files ({uploaded:,} bytes)" in log
    )
    assert f"staged; make it live with: hosting-toolkit activate {rid}" in log
    assert not (build.target / LOCAL_KVS_FILE).exists()
    record = build.record(rid)
    assert (record["revision"], record["message"]) == (COMMIT, "push to main of acme/docs")
    assert record["actor"] == "hosting-docs-build:0f6f5a0c"
    head = build.bucket.head(release_prefix(rid) + "index.html")
    assert head["Metadata"] == {RELEASE_METADATA_KEY: rid}


def test_zip_upload_is_staged_under_its_content_and_a_changed_upload_is_a_new_release(
    codebuild: Callable[[str], CodeBuild],
) -> None:
    build = codebuild("zip")
    sample_site(build.output_folder())
    action = {ENV_REVISION: UPLOAD_VERSION, ENV_MESSAGE: "upload of drops/site.zip"}
    assert build.run(WRITE_CONFIG_COMMAND, **action).returncode == 0

    first = build.stage(**action)
    assert build.operate("shift", first.stdout.strip().splitlines()[-1], "100").returncode == 0
    again = build.stage(**action)
    sample_site(build.output_folder(), marker="changed")
    changed = build.stage(**{**action, ENV_REVISION: "another-version"})
    assert build.operate("shift", changed.stdout.strip().splitlines()[-1], "100").returncode == 0

    for result in (first, again, changed):
        assert result.returncode == 0, result.stderr
    first_id = first.stdout.strip().splitlines()[-1]
    changed_id = changed.stdout.strip().splitlines()[-1]
    assert len(first_id) == 12 and first_id != COMMIT[:12]
    assert again.stdout.strip().splitlines()[-1] == first_id
    assert "already exists with the same content; nothing uploaded" in again.stderr
    assert changed_id != first_id
    assert build.routing().live == changed_id
    assert build.routing().pins == (first_id,)
    assert build.record(first_id)["revision"] == UPLOAD_VERSION
    assert build.record(first_id)["message"] == "upload of drops/site.zip"


def test_failed_build_releases_nothing(codebuild: Callable[[str], CodeBuild]) -> None:
    build = codebuild("git")
    sample_site(build.output_folder())
    build.run(WRITE_CONFIG_COMMAND)

    result = build.run(build.build.post_build, **{ENV_COMMIT: COMMIT, "CODEBUILD_BUILD_SUCCEEDING": "0"})
    exported = build.stage(**{ENV_COMMIT: COMMIT, "CODEBUILD_BUILD_SUCCEEDING": "0"})

    assert result.returncode != 0
    assert "the build failed, so nothing is released" in result.stderr
    assert exported.stdout.strip() == ""
    assert build.bucket.keys() == []
    assert not (build.target / LOCAL_KVS_FILE).exists()


def test_rebuilt_commit_with_other_bytes_rolls_out_its_first_release_again(
    codebuild: Callable[[str], CodeBuild],
) -> None:
    build = codebuild("git")
    build.run(WRITE_CONFIG_COMMAND)
    other = "0123456789abcdef0123456789abcdef01234567"
    sample_site(build.output_folder(), marker="first build")
    assert build.stage(**{ENV_COMMIT: COMMIT}).returncode == 0
    assert build.operate("shift", COMMIT[:12], "100").returncode == 0
    sample_site(build.output_folder(), marker="next commit")
    assert build.stage(**{ENV_COMMIT: other}).returncode == 0
    assert build.operate("shift", other[:12], "100").returncode == 0

    sample_site(build.output_folder(), marker="first build, other timestamp")
    rerun = build.stage(**{ENV_COMMIT: COMMIT})

    assert rerun.returncode == 0, rerun.stderr
    assert "already exists with other content" in rerun.stderr
    assert f"commit {COMMIT[:12]} was released before from other bytes; rolling out that release" in rerun.stderr
    assert rerun.stdout.strip().splitlines() == [COMMIT[:12]]
    assert build.routing().live == other[:12]


def test_invalid_configuration_stops_the_release(codebuild: Callable[[str], CodeBuild]) -> None:
    build = codebuild("git")
    sample_site(build.output_folder())
    (build.home / "hosting.toml").write_text('[site]\nmode = "spaa"\n')

    result = build.run(build.build.post_build, **{ENV_COMMIT: COMMIT})

    assert result.returncode == 2
    assert "site.mode" in result.stderr
    assert build.bucket.keys() == []


def test_operator_runs_the_tested_command(builds: dict[str, Build]) -> None:
    for build in builds.values():
        assert build.operate_buildspec["phases"]["build"]["commands"] == [OPERATE_COMMAND]
        assert WRITE_CONFIG_COMMAND in build.operate_buildspec["phases"]["install"]["commands"]
        assert build.operate_variables[ENV_SITE_CONFIG] == build.project_variables[ENV_SITE_CONFIG]


def test_operator_shifts_viewers_step_by_step_and_retracts_them(codebuild: Callable[[str], CodeBuild]) -> None:
    build = codebuild("git")
    build.run(WRITE_CONFIG_COMMAND)
    first, second = COMMIT[:12], "0123456789ab"
    for rid, marker in ((first, "one"), (second, "two")):
        sample_site(build.output_folder(), marker=marker)
        assert build.stage(**{ENV_COMMIT: rid}).returncode == 0
    assert build.operate("shift", first, "100").returncode == 0

    states, outcomes = [], []
    for index, percent in enumerate(("10", "50")):
        shifted = build.operate("shift", second, percent, rollout="rollout-docs-a", index=index)
        assert shifted.returncode == 0, shifted.stderr
        outcomes.append(shifted.stdout.strip().splitlines()[-1])
        states.append((build.routing().live, build.routing().canary, build.routing().weight))
    retracted = build.operate("retract", second, rollout="rollout-docs-a")
    again = build.operate("retract", second, rollout="rollout-docs-a")

    assert states == [(first, second, 10), (first, second, 50)]
    assert outcomes == ["shifted", "shifted"]
    assert retracted.returncode == 0, retracted.stderr
    assert (build.routing().live, build.routing().canary) == (first, None)
    assert again.returncode == 0 and "has no viewers the rollout gave it" in again.stderr

    assert build.operate("shift", second, "100", rollout="rollout-docs-b").returncode == 0
    assert build.routing().live == second
    assert build.operate("retract", second, rollout="rollout-docs-b").returncode == 0
    assert build.routing().live == first


@pytest.mark.parametrize(
    ("step", "release_id", "message"),
    [
        ("deploy", "4f9c2a7be01d", "unknown step 'deploy'"),
        ("shift", "4f9c2a7be01d --to x", "is not a valid release id"),
        ("retract", "x --to y", "is not a valid release id"),
    ],
)
def test_operator_refuses_unknown_steps_and_ids_that_would_add_arguments(
    step: str, release_id: str, message: str, codebuild: Callable[[str], CodeBuild]
) -> None:
    build = codebuild("git")
    build.run(WRITE_CONFIG_COMMAND)

    result = build.operate(step, release_id, "10")

    assert result.returncode != 0
    assert message in result.stderr
