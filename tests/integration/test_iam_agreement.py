"""Every S3 and KeyValueStore call the release engine makes in a pipeline role is allowed by that role's
synthesized policy, and the roles hold no grant of the engine they never use.

The journeys are the pipeline journeys (``test_pipeline_journey.py``): the synthesized buildspecs' commands run
by bash, the rollout definition on the States Language interpreter, the engine against moto_server S3 and the
KeyValueStore protocol fake. The engine each build runs records every call its botocore and CRT clients make
(``tests/fakes/iam.py``); each call becomes the IAM requests S3 or the store authorizes it by, and a small
policy evaluator decides each against the role's statements in the synthesized template. The engine's
download in the install phase (``aws s3 cp`` of the package asset) is added from the rendered variable.

``pytest tests/integration/test_iam_agreement.py -k table -s`` prints the table.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from hosting_toolkit.pipeline.buildspec import ENV_PACKAGE, ENV_RELEASE_ID, ENV_STEP
from hosting_toolkit.release.engine import ReleaseEngine
from tests.cdk_helpers import SynthesizedStack, synth_hosting_stack
from tests.fakes.iam import (
    LOG_VARIABLE,
    ROLE_VARIABLE,
    Call,
    Request,
    Resolver,
    RolePolicies,
    iam_requests,
    iter_statement_grants,
    read_calls,
    role_policies,
    used_grants,
)
from tests.integration.conftest import FakeKvs, S3Bucket
from tests.integration.test_pipeline_journey import (
    ALARM,
    COMMITS,
    CONFIG,
    Artifacts,
    Pipeline,
    artifacts_of,
    pipeline,  # noqa: F401  (the journey's fixture)
)
from tests.integration.test_post_build import RUN_WITHOUT_SYNTH_ONLY, shipped_python

pytestmark = [pytest.mark.integration, pytest.mark.synth, pytest.mark.node]

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("build", "verify", "operate")
#: Grants of the engine's statements no journey here exercises, each with the failure it is kept for.
FAILURE_PATH_GRANTS = {
    ("build", "AbortFailedUploads"): "the CRT aborts the parts of a large upload that failed; no journey fails one",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return synth_hosting_stack(CONFIG, tmp_path_factory.mktemp("iam"))


@pytest.fixture(scope="module")
def artifacts(stack: SynthesizedStack) -> Artifacts:
    return artifacts_of(stack)


def role_ids(stack: SynthesizedStack) -> dict[str, str]:
    stages = stack.stack.pipeline
    assert stages is not None and stages.verify_project.role and stages.operate_project.role
    return {
        "build": stack.logical_id(stages.build_role),
        "verify": stack.logical_id(stages.verify_project.role),
        "operate": stack.logical_id(stages.operate_project.role),
    }


RECORDING_RUNNER = (
    f"""\
import os
import sys

sys.path.append({str(ROOT)!r})
from tests.fakes.iam import record_calls

record_calls(os.environ[{LOG_VARIABLE!r}], os.environ[{ROLE_VARIABLE!r}])
"""
    + RUN_WITHOUT_SYNTH_ONLY
)


@dataclass
class RecordedPipeline(Pipeline):
    """The journey's pipeline, whose every engine run records its calls, tagged with the role it runs as."""

    log: Path = Path()

    def environment(self, spec: dict[str, Any], variables: dict[str, str], **action: str) -> dict[str, str]:
        env = super().environment(spec, variables, **action)
        if spec is self.artifacts.build_spec:
            role = "build"
        else:
            role = "verify" if action.get(ENV_STEP) == "verify" else "operate"
        env.update({LOG_VARIABLE: str(self.log), ROLE_VARIABLE: role})
        return env

    def install(self, command: str, env: dict[str, str]) -> None:
        """The build's ``pip install``, with a ``hosting-toolkit`` that records its AWS calls."""
        home = self.root / "home"
        script = home / "bin" / "hosting-toolkit"
        if script.exists():
            return
        runner = home / "lib" / "hosting_toolkit_cli.py"
        runner.parent.mkdir(parents=True, exist_ok=True)
        runner.write_text(RECORDING_RUNNER)
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(f'#!/bin/sh\nexec env {shipped_python(self.artifacts.package)} "{runner}" "$@"\n')
        script.chmod(0o755)

    def operator(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A person's command with the operator role (the commands a rollout step runs underneath)."""
        env = self.environment(self.artifacts.operate_spec, self.artifacts.operate_variables)
        quoted = " ".join(f"'{a}'" for a in args)
        return self.bash(f'"$HOSTING_TOOLKIT_HOME/bin/hosting-toolkit" {quoted}', env)


def asset(version: str) -> dict[str, str]:
    """A content-hashed asset of one build: what the skew carry copies into the next releases."""
    return {f"assets/app-{version}1a2b3c4d.js": f"console.log({version!r})"}


def run_journeys(recorded: RecordedPipeline) -> list[Call]:
    """First release, a second by canary (carrying the first's assets), the same commit again, an alarm that takes
    a canary back, and the operator's own commands: activate, canary, abort, promote, rollback."""
    calls: list[Call] = []

    def collect(journey: str) -> None:
        if recorded.log.exists():
            calls.extend(read_calls(recorded.log, journey=journey))
            recorded.log.unlink()

    first = recorded.push(COMMITS["a"], "one", install=recorded.install, files=asset("1"))
    assert first.stage == "Done", (first.log, recorded.build_log)
    collect("first release")
    second = recorded.push(COMMITS["b"], "two", install=recorded.install, files=asset("2"))
    assert second.stage == "Done", second.execution and second.execution.cause
    collect("second release by canary")
    again = recorded.push(COMMITS["b"], "two", install=recorded.install, files=asset("2"))
    assert again.stage == "Done", again.execution and again.execution.cause
    collect("re-release of the same id")
    recorded.firing_from = {ALARM: 1}
    alarmed = recorded.push(COMMITS["c"], "three", install=recorded.install, files=asset("3"))
    assert alarmed.execution is not None and alarmed.execution.error == "AlarmFired"
    recorded.firing_from = {}
    collect("alarm during the canary")
    unknown = recorded.operate({ENV_STEP: "verify", ENV_RELEASE_ID: "0" * 12})
    assert unknown.returncode == 5 and f"no release {'0' * 12}" in unknown.stderr, unknown.stderr
    collect("verify of an unknown release")
    c = COMMITS["c"][:12]
    for command in (
        ("rollback", "--no-wait"),
        ("activate", c, "--no-wait"),
        ("rollback", "--no-wait"),
        ("canary", c, "--percent", "20", "--no-wait"),
        ("canary", "--abort"),
        ("canary", c, "--percent", "20", "--no-wait"),
        ("canary", "--promote", "--no-wait"),
    ):
        done = recorded.operator(*command)
        assert done.returncode == 0, (command, done.stderr)
        collect(f"operator: {' '.join(command[:2] if command[0] == 'canary' else command[:1])}")
    return calls


def install_requests(stack: SynthesizedStack, resolve: Resolver) -> dict[str, Request]:
    """Each role's download of the package asset in its install phase, from the project's rendered variable."""
    stages = stack.stack.pipeline
    assert stages is not None
    found = {}
    for role, project in (
        ("build", stages.project),
        ("verify", stages.verify_project),
        ("operate", stages.operate_project),
    ):
        variables = stack.template_json["Resources"][stack.logical_id(project)]["Properties"]["Environment"]
        (url,) = [resolve(v["Value"]) for v in variables["EnvironmentVariables"] if v["Name"] == ENV_PACKAGE]
        bucket, _, key = url.removeprefix("s3://").partition("/")
        found[role] = Request("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}")
    return found


@dataclass(frozen=True)
class Row:
    action: str
    resource: str
    role: str
    allowed: bool
    reason: str


@dataclass
class Agreement:
    policies: dict[str, RolePolicies]
    requests: dict[str, list[Request]]
    rows: list[Row]
    kvs_arn: str

    def table(self) -> str:
        width = max(len(r.resource) for r in self.rows)
        action_width = max(len(r.action) for r in self.rows)
        lines = [f"{'action':<{action_width}}  {'resource':<{width}}  {'role':<8} allowed"]
        lines += [
            f"{r.action:<{action_width}}  {r.resource:<{width}}  {r.role:<8} {'yes' if r.allowed else 'NO: ' + r.reason}"
            for r in self.rows
        ]
        return "\n".join(lines)


def shown(request: Request, bucket: str, kvs_arn: str, releases: list[str]) -> str:
    """The resource of ``request`` as the table shows it: release ids as <id>, objects below two levels as *."""

    def key_pattern(key: str) -> str:
        parts = key.split("/")
        text = "/".join(parts[:2]) + ("/*" if len(parts) > 2 else "")
        for rid in releases:
            text = text.replace(rid, "<id>")
        return text

    if request.resource == kvs_arn:
        return "<release store>"
    site = f"arn:aws:s3:::{bucket}"
    if request.resource == site:
        note = f" ({request.note})" if request.note else ""
        return f"<site bucket> prefix {key_pattern(request.key()) or '(none)'}{note}"
    if request.resource.startswith(site + "/"):
        return "<site bucket>/" + key_pattern(request.resource[len(site) + 1 :])
    if request.resource.startswith("arn:aws:s3:::cdk-") and request.resource.endswith(".zip"):
        # The asset's name is the hash of the package, which every change of the code changes.
        return "<CDK asset bucket>/<package asset>.zip"
    return request.resource.removeprefix("arn:aws:s3:::")


#: The agreement found by the first test that asks for it: the journeys are slow, their result is plain data.
_FOUND: dict[str, Agreement] = {}


@pytest.fixture
def agreement(
    stack: SynthesizedStack,
    pipeline: Pipeline,  # noqa: F811  (the journey's fixture)
    s3_bucket: S3Bucket,
    fake_kvs: FakeKvs,
    tmp_path: Path,
) -> Agreement:
    if "agreement" not in _FOUND:
        _FOUND["agreement"] = find_agreement(stack, pipeline, s3_bucket, fake_kvs, tmp_path)
    return _FOUND["agreement"]


def find_agreement(
    stack: SynthesizedStack,
    journey: Pipeline,
    s3_bucket: S3Bucket,
    fake_kvs: FakeKvs,
    tmp_path: Path,
) -> Agreement:
    """Run the journeys with recording engines and decide every request against its role's policies."""
    recorded = RecordedPipeline(
        **{f.name: getattr(journey, f.name) for f in fields(journey)}, log=tmp_path / "calls.jsonl"
    )
    calls = run_journeys(recorded)
    names = {
        stack.logical_id(stack.stack.site.bucket): s3_bucket.name,
        stack.logical_id(stack.stack.router.store): fake_kvs.arn,
    }
    resolve = Resolver(stack.template_json, names)
    ids = role_ids(stack)
    policies = {role: role_policies(stack.template_json, ids[role], resolve) for role in ROLES}
    installs = install_requests(stack, resolve)
    requests: dict[str, list[Request]] = {role: [installs[role]] for role in ROLES}
    for call in calls:
        requests[call.role].extend(iam_requests(call))
    engine = ReleaseEngine(s3_bucket.store(), fake_kvs.store, CONFIG, actor="tests")
    releases = sorted({r.id for r in engine.records()}, key=len, reverse=True)
    rows: dict[tuple[str, str, str], Row] = {}
    for role in ROLES:
        for request in requests[role]:
            decision = policies[role].evaluate(request)
            where = shown(request, s3_bucket.name, fake_kvs.arn, releases)
            key = (role, where, request.action)
            if key not in rows or (rows[key].allowed and not decision.allowed):
                rows[key] = Row(
                    request.action, where, role, decision.allowed, f"{decision.reason} ({request.resource})"
                )
    ordered = sorted(rows.values(), key=lambda r: (ROLES.index(r.role), r.resource, r.action))
    return Agreement(policies, requests, ordered, fake_kvs.arn)


def test_table_every_call_of_the_engine_is_allowed_by_its_roles_synthesized_policy(agreement: Agreement) -> None:
    print("\n" + agreement.table())

    denied = [r for r in agreement.rows if not r.allowed]
    assert denied == []
    assert {r.role for r in agreement.rows} == set(ROLES)
    # The journeys reach what the table is for: the first build's error pages and the skew carry.
    assert Row("s3:PutObject", "<site bucket>/errors/404.html", "build", True, "") in [
        Row(r.action, r.resource, r.role, r.allowed, "") for r in agreement.rows
    ]
    assert ("s3:PutObject", "<site bucket>/releases/<id>/*", "operate") in {
        (r.action, r.resource, r.role) for r in agreement.rows
    }


def test_no_role_holds_an_engine_grant_it_never_uses(agreement: Agreement) -> None:
    unused = []
    for role in ROLES:
        used = used_grants(agreement.policies[role], agreement.requests[role])
        for statement in agreement.policies[role].identity:
            # The toolkit's statements have a Sid; CDK's own grants (logs, artifacts, cache) have none.
            if not statement.sid:
                continue
            if (role, statement.sid) in FAILURE_PATH_GRANTS:
                continue
            for action, resource in iter_statement_grants(statement):
                if (statement.sid, action, resource) not in used:
                    unused.append((role, statement.sid, action, resource))

    assert unused == []


def test_only_the_roles_that_switch_or_preview_may_write_the_store(agreement: Agreement) -> None:
    # The store's data-plane actions cannot be limited to one key: a role that may PutKey may write the
    # routing key. The build never switches, so it may only read.
    put_key = Request("cloudfront-keyvaluestore:PutKey", agreement.kvs_arn)
    writes = {role: agreement.policies[role].evaluate(put_key).allowed for role in ROLES}
    used = {role: put_key in agreement.requests[role] for role in ROLES}

    assert writes == used == {"build": False, "verify": True, "operate": True}
