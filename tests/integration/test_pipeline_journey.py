"""Whole push -> live journeys with the real artifacts: the synthesized stack's buildspecs run with bash (the
build's install, its post-build release step, the operator's verify, shift and retract), the synthesized state
machine definition executed on the States Language interpreter, the release engine against moto_server S3 and
the KeyValueStore protocol fake (SigV4A-signed boto3 requests), and a local edge serving that bucket and that
store through the real router functions: what a viewer gets is asserted over HTTP at every stage.

The pipeline's own sequencing (Source -> Build -> Verify -> Approve -> Rollout, each stage only after the one
before succeeded) is the ``Pipeline.push`` below; CodePipeline itself cannot run offline.

Not run here: CodeBuild's ``.sync`` integration of Step Functions, which no local emulator has (moto's
interpreter stops at it, see ``test_rollout_moto_sfn.py``); the startBuild calls are answered by running the
operator buildspec's command, as the build container would.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from hosting_toolkit.config import (
    BuildConfig,
    CodeConnectionsSource,
    HostingConfig,
    RolloutConfig,
    SiteConfig,
)
from hosting_toolkit.contract import COHORT_COOKIE, COHORTS, RELEASE_HEADER
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.local.edge import LocalEdge
from hosting_toolkit.local.server import make_server
from hosting_toolkit.pipeline.buildspec import (
    ENV_BUCKET,
    ENV_COMMIT,
    ENV_CONFIG,
    ENV_HOME,
    ENV_KVS_ARN,
    ENV_MESSAGE,
    ENV_OUTCOME,
    ENV_PACKAGE,
    ENV_RELEASE_ID,
    ENV_SITE_URL,
    ENV_STEP,
    INSTALL_FAILED,
    WHEELHOUSE_DIR,
)
from hosting_toolkit.pipeline.rollout import DESCRIBE_ALARMS, PUBLISH, START_BUILD
from hosting_toolkit.pipeline.wheelhouse import Wheelhouse
from hosting_toolkit.release.engine import ReleaseEngine
from tests.cdk_helpers import SynthesizedStack, synth_hosting_stack
from tests.fakes.sites import write_files
from tests.fakes.states import Execution, StateMachine, TaskFailure, VirtualClock
from tests.integration.conftest import BuildPython, FakeKvs, S3Bucket, offline_environment, zip_folder
from tests.integration.test_post_build import install_release_engine

pytestmark = [pytest.mark.integration, pytest.mark.synth, pytest.mark.node]

ALARM = "hosting-docs-5xx-error-rate"
CONFIG = HostingConfig(
    site=SiteConfig(name="docs"),
    source=CodeConnectionsSource(repository="acme/docs"),
    build=BuildConfig(framework="static"),
    rollout=RolloutConfig(
        strategy="canary", percent=10, interval_minutes=2, bake_minutes=1, approval=True, notify=("ops@example.com",)
    ),
)
IN_CANARY, NEVER_CANARY = 0, COHORTS - 1
COMMITS = {name: (name * 40)[:40] for name in ("a", "b", "c")}


@dataclass(frozen=True)
class Artifacts:
    """What the synthesized stack hands CodeBuild and Step Functions."""

    build_spec: dict[str, Any]
    build_variables: dict[str, str]
    operate_spec: dict[str, Any]
    operate_variables: dict[str, str]
    definition: dict[str, Any]
    package: Path


def _project(stack: SynthesizedStack, construct: Any) -> tuple[dict[str, Any], dict[str, str]]:
    project = stack.template_json["Resources"][stack.logical_id(construct)]
    variables = {
        v["Name"]: v["Value"] if isinstance(v["Value"], str) else json.dumps(v["Value"])
        for v in project["Properties"]["Environment"]["EnvironmentVariables"]
    }
    return yaml.safe_load(project["Properties"]["Source"]["BuildSpec"]), variables


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    return artifacts_of(synth_hosting_stack(CONFIG, tmp_path_factory.mktemp("journey")))


def artifacts_of(stack: SynthesizedStack) -> Artifacts:
    """The buildspecs, variables, state machine definition and package asset of a synthesized stack."""
    pipeline = stack.stack.pipeline
    assert pipeline is not None
    build_spec, build_variables = _project(stack, pipeline.project)
    operate_spec, operate_variables = _project(stack, pipeline.operate_project)
    machine = stack.template_json["Resources"][stack.logical_id(pipeline.rollout.state_machine)]["Properties"]
    text = machine["DefinitionString"]
    for name in machine["DefinitionSubstitutions"]:
        text = text.replace("${" + name + "}", f"deployed-{name}")
    (package,) = stack.outdir.glob("asset.*")
    return Artifacts(build_spec, build_variables, operate_spec, operate_variables, json.loads(text), package)


def viewer(url: str, *, cohort: int, path: str = "/") -> str:
    """What a viewer of ``cohort`` gets: status, the serving release and the page's title."""
    host = url.split("//", 1)[1].rstrip("/")
    connection = http.client.HTTPConnection(host, timeout=10)
    connection.request("GET", path, headers={"cookie": f"{COHORT_COOKIE}={cohort}.{int(time.time())}"})
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    title = body.split("<title>", 1)[-1].split("</title>", 1)[0] if "<title>" in body else body[:20]
    return f"{response.status} {response.getheader(RELEASE_HEADER)} {title}"


#: What runs a build's ``pip install`` command, with the build's environment; a failure ends the build.
Install = Callable[[str, dict[str, str]], "subprocess.CompletedProcess[str] | None"]


@dataclass
class Run:
    """How one push went: the stage it ended in, the release, the rollout's execution."""

    stage: str
    release: str | None = None
    execution: Execution | None = None
    log: str = ""


@dataclass
class Pipeline:
    """The pipeline of the synthesized stack, its build containers, its site bucket, store and edge."""

    artifacts: Artifacts
    bucket: S3Bucket
    kvs: FakeKvs
    root: Path
    edge_url: str
    approve: Callable[[str], bool] = lambda release: True
    firing_from: dict[str, float] = field(default_factory=dict)
    meanwhile: dict[float, Callable[[], None]] = field(default_factory=dict)
    notifications: list[str] = field(default_factory=list)
    runs: int = 0
    build_log: str = ""
    rollout_started: float = 0.0
    clock: VirtualClock = field(default_factory=VirtualClock)
    #: Folders put first on the builds' PATH (the build image's python3).
    tools: list[str] = field(default_factory=list)

    def environment(self, spec: dict[str, Any], variables: dict[str, str], **action: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTING_TOOLKIT_")}
        env.update({k: str(v) for k, v in spec["env"]["variables"].items()})
        env.update({k: v for k, v in variables.items() if not v.startswith("{")})
        env.update(
            {
                # CloudFormation references of the template, and the image's paths moved into the test's folder.
                ENV_BUCKET: self.bucket.name,
                ENV_KVS_ARN: self.kvs.arn,
                ENV_SITE_URL: self.edge_url,
                ENV_PACKAGE: f"s3://{self.bucket.name}/assets/package.zip",
                ENV_HOME: str(self.root / "home"),
                ENV_CONFIG: str(self.root / "home" / "hosting.toml"),
                "AWS_ENDPOINT_URL_S3": self.bucket.endpoint,
                "AWS_ENDPOINT_URL_CLOUDFRONT_KEYVALUESTORE": self.kvs.server.url,
                "CODEBUILD_SRC_DIR": str(self.root / "src"),
                "CODEBUILD_BUILD_ID": f"docs-build:{self.runs}",
                "CODEBUILD_BUILD_SUCCEEDING": "1",
                # The build image's tools: python3 and the AWS CLI.
                "PATH": os.pathsep.join([*self.tools, str(Path(sys.executable).parent), os.environ["PATH"]]),
            }
        )
        env.update(action)
        return env

    def bash(self, command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command], env=env, cwd=self.root / "src", capture_output=True, text=True, timeout=180
        )

    def phases(self, spec: dict[str, Any], env: dict[str, str], *, install: Install) -> tuple[int, str]:
        """A CodeBuild run: the install phase's commands in order (a failing one ends the build: no later phase
        runs), then the build and post-build phases, whose output ends with the exported variables.

        The install phase's commands run as rendered (the virtual environment, the download of the package
        asset from S3 and its extraction, the configuration), but for each ``pip install``, which ``install``
        runs (``Pipeline.offline_pip`` runs it as rendered)."""
        log = []
        for command in spec["phases"]["install"]["commands"]:
            if command.startswith(f'"${ENV_HOME}/bin/pip" install'):
                installed = install(command, env)
                if installed is not None and installed.returncode != 0:
                    log.append(installed.stderr)
                    return installed.returncode, "".join(log)
                continue
            done = self.bash(command, env)
            log.append(done.stderr)
            if done.returncode != 0:
                return done.returncode, "".join(log)
        for phase in ("build", "post_build"):
            commands = spec["phases"].get(phase, {}).get("commands", [])
            if not commands:
                continue
            exported = spec["env"].get("exported-variables", [])
            tail = "".join(f'\necho "{name}=${{{name}:-}}"' for name in exported) if phase == "post_build" else ""
            done = self.bash("\n".join(commands) + "\ncode=$?" + tail + '\nexit "$code"', env)
            log.append(done.stderr)
            if done.returncode != 0:
                return done.returncode, "".join(log)
            if phase == "post_build":
                return 0, "".join(log) + done.stdout
        return 0, "".join(log)

    def push(
        self,
        commit: str,
        title: str,
        *,
        install: Install | None = None,
        files: dict[str, str] | None = None,
    ) -> Run:
        """A push of a site whose home page is titled ``title`` (and has ``files``): Build, Verify, Approve, Rollout."""
        self.runs += 1
        src = self.root / "src"
        shutil.rmtree(src, ignore_errors=True)
        pages = {"index.html": f"<!doctype html><title>{title}</title>", "about.html": "<title>about</title>"}
        write_files(src, {**pages, **(files or {})})
        action = {ENV_COMMIT: commit, ENV_MESSAGE: f"push {title}"}
        env = self.environment(self.artifacts.build_spec, self.artifacts.build_variables, **action)
        code, log = self.phases(self.artifacts.build_spec, env, install=install or self.fake_pip_install)
        self.build_log = log
        if code != 0:
            return Run("Build", log=log)
        release = log.strip().splitlines()[-1].removeprefix(f"{ENV_RELEASE_ID}=")
        verify = self.operate({ENV_STEP: "verify", ENV_RELEASE_ID: release})
        if verify.returncode != 0:
            return Run("Verify", release, log=verify.stderr)
        if not self.approve(release):
            return Run("Approve", release)
        self.rollout_started = self.clock.seconds
        execution = StateMachine(self.artifacts.definition).execute(
            {"release": release},
            {START_BUILD: self.start_build, DESCRIBE_ALARMS: self.describe_alarms, PUBLISH: self.publish},
            self.clock,
            name=f"rollout-docs-{self.runs}",
        )
        return Run("Rollout" if execution.status != "SUCCEEDED" else "Done", release, execution)

    def fake_pip_install(self, command: str, env: dict[str, str]) -> None:
        """What the install phase's ``pip install`` of the package asset leaves (see test_post_build)."""
        home = self.root / "home"
        if not (home / "bin" / "hosting-toolkit").exists():
            shutil.rmtree(home / "bin", ignore_errors=True)
            shutil.rmtree(home / "lib", ignore_errors=True)
            install_release_engine(home, self.artifacts.package)

    def offline_pip(self, command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """The rendered ``pip install`` with this machine's pip settings, mirrors and proxies removed, and an
        unreachable package index: it succeeds only from the wheels shipped in the package asset."""
        return self.bash(command, offline_environment(env))

    def operate(self, overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
        env = self.environment(self.artifacts.operate_spec, self.artifacts.operate_variables, **overrides)
        (command,) = self.artifacts.operate_spec["phases"]["build"]["commands"]
        return self.bash(f'{command}\ncode=$?\necho "{ENV_OUTCOME}=${{{ENV_OUTCOME}:-}}"\nexit "$code"', env)

    def start_build(self, parameters: dict[str, Any]) -> dict[str, Any]:
        overrides = {item["Name"]: item["Value"] for item in parameters["EnvironmentVariablesOverride"]}
        done = self.operate(overrides)
        if done.returncode != 0:
            raise TaskFailure("States.TaskFailed", json.dumps({"Build": {"BuildStatus": "FAILED"}, "Log": done.stderr}))
        outcome = done.stdout.strip().splitlines()[-1].removeprefix(f"{ENV_OUTCOME}=")
        return {
            "Build": {
                "BuildStatus": "SUCCEEDED",
                "ExportedEnvironmentVariables": [{"Name": ENV_OUTCOME, "Value": outcome}],
            }
        }

    def describe_alarms(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``meanwhile`` and ``firing_from`` count minutes from the start of the current rollout."""
        minute = (self.clock.seconds - self.rollout_started) / 60
        for at in sorted(self.meanwhile):
            if at <= minute:
                self.meanwhile.pop(at)()
        names = [n for n in parameters["AlarmNames"] if n == ALARM]
        if parameters.get("StateValue") == "ALARM":
            names = [n for n in names if minute >= self.firing_from.get(n, math.inf)]
        return {"MetricAlarms": [{"AlarmName": n} for n in names], "CompositeAlarms": []}

    def publish(self, parameters: dict[str, Any]) -> dict[str, Any]:
        self.notifications.append(parameters["Subject"])
        return {"MessageId": str(len(self.notifications))}

    def routing(self) -> dict[str, Any]:
        value, _ = self.kvs.store.read("routing")
        state = json.loads(value or "{}")
        return {"live": state.get("live"), "canary": state.get("canary")}

    def history(self) -> list[tuple[str, str | None, str | None, bool]]:
        engine = ReleaseEngine(self.bucket.store(), self.kvs.store, CONFIG, actor="tests")
        return [(e.action, e.from_release, e.to_release, e.automatic) for e in reversed(engine.switches())]


@pytest.fixture
def pipeline(
    artifacts: Artifacts, s3_bucket: S3Bucket, fake_kvs: FakeKvs, function_sandbox: FunctionSandbox, tmp_path: Path
) -> Iterator[Pipeline]:
    package = tmp_path / "package.zip"
    with zipfile.ZipFile(package, "w") as archive:
        for path in sorted(artifacts.package.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(artifacts.package))
    s3_bucket.client.upload_file(str(package), s3_bucket.name, "assets/package.zip")
    edge = LocalEdge(store=s3_bucket.store(), kvs=fake_kvs.store, config=CONFIG, sandbox=function_sandbox)
    server = make_server(edge, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Pipeline(artifacts, s3_bucket, fake_kvs, tmp_path, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


A, B = COMMITS["a"][:12], COMMITS["b"][:12]


def test_first_push_goes_live_and_the_second_rolls_out_by_canary(pipeline: Pipeline) -> None:
    assert viewer(pipeline.edge_url, cohort=NEVER_CANARY).startswith("503")

    first = pipeline.push(COMMITS["a"], "one")

    assert first.stage == "Done", (first.log, pipeline.build_log)
    assert pipeline.routing() == {"live": A, "canary": None}
    assert viewer(pipeline.edge_url, cohort=IN_CANARY) == f"200 {A} one"

    during: list[str] = []
    pipeline.meanwhile = {
        1: lambda: during.extend(viewer(pipeline.edge_url, cohort=c) for c in (IN_CANARY, NEVER_CANARY))
    }
    second = pipeline.push(COMMITS["b"], "two")

    assert second.stage == "Done", second.execution and second.execution.cause
    assert during == [f"200 {B} two", f"200 {A} one"]
    assert viewer(pipeline.edge_url, cohort=NEVER_CANARY) == f"200 {B} two"
    assert pipeline.history() == [
        ("activate", None, A, True),
        ("canary", A, B, True),
        ("promote", A, B, True),
    ]
    assert pipeline.notifications[-4:] == [
        f"Rollout of {B} started",
        f"Rollout of {B}: 10% of viewers",
        f"Rollout of {B}: 100% of viewers",
        f"Release {B} is live",
    ]


def test_a_re_run_of_the_same_commit_changes_nothing(pipeline: Pipeline) -> None:
    pipeline.push(COMMITS["a"], "one")
    pipeline.push(COMMITS["b"], "two")
    switches = pipeline.history()

    rerun = pipeline.push(COMMITS["b"], "two")

    assert rerun.stage == "Done", rerun.execution and rerun.execution.cause
    assert pipeline.routing() == {"live": B, "canary": None}
    assert pipeline.history() == switches
    assert viewer(pipeline.edge_url, cohort=IN_CANARY) == f"200 {B} two"


def test_an_alarm_during_the_canary_takes_its_viewers_back_automatically(pipeline: Pipeline) -> None:
    pipeline.push(COMMITS["a"], "one")
    pipeline.firing_from = {ALARM: 1}

    run = pipeline.push(COMMITS["b"], "two")

    assert run.stage == "Rollout" and run.execution is not None
    assert run.execution.error == "AlarmFired"
    assert pipeline.routing() == {"live": A, "canary": None}
    assert viewer(pipeline.edge_url, cohort=IN_CANARY) == f"200 {A} one"
    assert pipeline.history()[-1] == ("abort", B, A, True)
    assert pipeline.notifications[-1] == f"Rollout of {B} rolled back automatically"


def test_an_approval_rejected_leaves_the_release_staged_and_the_site_as_it_was(pipeline: Pipeline) -> None:
    pipeline.push(COMMITS["a"], "one")
    pipeline.approve = lambda release: False

    run = pipeline.push(COMMITS["b"], "two")

    assert (run.stage, run.release) == ("Approve", B)
    assert pipeline.routing() == {"live": A, "canary": None}
    assert viewer(pipeline.edge_url, cohort=IN_CANARY) == f"200 {A} one"
    engine = ReleaseEngine(pipeline.bucket.store(), pipeline.kvs.store, CONFIG, actor="tests")
    assert {i.id: i.state for i in engine.list_releases()} == {A: "live", B: "staged"}


def test_a_build_that_fails_to_install_moves_no_viewer(pipeline: Pipeline) -> None:
    pipeline.push(COMMITS["a"], "one")
    objects = pipeline.bucket.keys()

    pipeline.bucket.client.delete_object(Bucket=pipeline.bucket.name, Key="assets/package.zip")
    shutil.rmtree(pipeline.root / "home")

    run = pipeline.push(COMMITS["b"], "two")

    assert run.stage == "Build"
    assert "package.zip" in run.log and "404" in run.log
    assert pipeline.routing() == {"live": A, "canary": None}
    assert pipeline.bucket.keys() == [k for k in objects if k != "assets/package.zip"]
    assert viewer(pipeline.edge_url, cohort=IN_CANARY) == f"200 {A} one"


def test_the_kvs_protocol_fake_saw_only_conditional_writes(pipeline: Pipeline) -> None:
    pipeline.push(COMMITS["a"], "one")

    assert pipeline.kvs.server.count("PutKey") >= 1
    assert pipeline.kvs.server.count("UpdateKeys") == 0
    client = boto3.client("s3", endpoint_url=pipeline.bucket.endpoint)
    assert client.head_object(Bucket=pipeline.bucket.name, Key=f"releases/{A}/index.html")["Metadata"] == {"release": A}


def test_an_identical_zip_uploaded_again_changes_nothing(pipeline: Pipeline) -> None:
    # A ZIP source gives no commit: the release id is the content's, so the same bytes give the same id.
    first = pipeline.push("", "one")
    assert first.stage == "Done", (first.log, pipeline.build_log)
    switches = pipeline.history()
    assert first.release is not None and [s[2] for s in switches] == [first.release]

    again = pipeline.push("", "one")

    assert again.stage == "Done", again.execution and again.execution.cause
    assert again.release == first.release
    assert pipeline.routing() == {"live": first.release, "canary": None}
    assert pipeline.history() == switches
    assert viewer(pipeline.edge_url, cohort=IN_CANARY) == f"200 {first.release} one"


def test_a_manual_abort_mid_rollout_keeps_the_live_release_and_ends_the_rollout(pipeline: Pipeline) -> None:
    pipeline.push(COMMITS["a"], "one")
    operator = ReleaseEngine(pipeline.bucket.store(), pipeline.kvs.store, CONFIG, actor="operator")
    pipeline.meanwhile = {1: operator.abort}

    run = pipeline.push(COMMITS["b"], "two")

    assert run.stage == "Rollout" and run.execution is not None
    assert run.execution.error == "RolloutStopped"
    assert pipeline.routing() == {"live": A, "canary": None}
    assert pipeline.history()[-2:] == [("canary", A, B, True), ("abort", B, A, False)]


def ship_wheels(pipeline: Pipeline, wheels: Wheelhouse, *, altered: str | None = None) -> None:
    """Upload the package asset as a synthesis with ``wheels`` ships it (see ``PackageBundle``), one wheel
    altered by a byte when ``altered`` names its project."""
    asset = pipeline.root / "asset"
    shutil.rmtree(asset, ignore_errors=True)
    shutil.copytree(pipeline.artifacts.package, asset)
    shutil.copytree(wheels.path, asset / WHEELHOUSE_DIR)
    replace: dict[str, bytes | None] = {}
    if altered is not None:
        (wheel,) = [w for w in wheels.wheels if w.lower().startswith(f"{altered}-")]
        replace[f"{WHEELHOUSE_DIR}/{wheel}"] = (wheels.path / wheel).read_bytes() + b"\0"
    archive = zip_folder(asset, pipeline.root / "package.zip", replace=replace)
    pipeline.bucket.client.upload_file(str(archive), pipeline.bucket.name, "assets/package.zip")


@pytest.mark.wheels
def test_builds_installed_from_the_shipped_wheels_alone_go_live_and_roll_back(
    pipeline: Pipeline, engine_wheels: Wheelhouse, build_python: BuildPython
) -> None:
    ship_wheels(pipeline, engine_wheels)
    pipeline.tools = [str(build_python.bin)]

    first = pipeline.push(COMMITS["a"], "one", install=pipeline.offline_pip)

    assert first.stage == "Done", (first.log, pipeline.build_log)
    assert (pipeline.root / "home" / "lib" / f"python{build_python.version}" / "site-packages" / "awscrt").is_dir()
    assert pipeline.routing() == {"live": A, "canary": None}
    pipeline.firing_from = {ALARM: 1}

    second = pipeline.push(COMMITS["b"], "two", install=pipeline.offline_pip)

    assert second.stage == "Rollout" and second.execution is not None
    assert second.execution.error == "AlarmFired"
    assert pipeline.routing() == {"live": A, "canary": None}
    assert pipeline.history()[-1] == ("abort", B, A, True)
    assert viewer(pipeline.edge_url, cohort=IN_CANARY) == f"200 {A} one"


@pytest.mark.wheels
def test_a_build_whose_shipped_wheel_was_altered_fails_to_install_and_moves_no_viewer(
    pipeline: Pipeline, engine_wheels: Wheelhouse, build_python: BuildPython
) -> None:
    pipeline.push(COMMITS["a"], "one")
    objects = pipeline.bucket.keys()
    ship_wheels(pipeline, engine_wheels, altered="botocore")
    shutil.rmtree(pipeline.root / "home")
    pipeline.tools = [str(build_python.bin)]

    run = pipeline.push(COMMITS["b"], "two", install=pipeline.offline_pip)

    assert run.stage == "Build"
    assert "DO NOT MATCH THE HASHES" in run.log
    assert run.log.strip().splitlines()[-1] == INSTALL_FAILED
    assert not (pipeline.root / "home" / "bin" / "hosting-toolkit").exists()
    assert pipeline.routing() == {"live": A, "canary": None}
    assert pipeline.bucket.keys() == objects
    assert pipeline.history() == [("activate", None, A, True)]
    assert viewer(pipeline.edge_url, cohort=IN_CANARY) == f"200 {A} one"
