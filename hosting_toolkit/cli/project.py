"""Commands that set up and take down a site's hosting: init, deploy and destroy, and the pipeline part of status.

``deploy`` and ``destroy`` run the pinned CDK CLI (``npx cdk``) from the checkout this package is
in; everything they run goes through ``runner`` and every AWS client comes from ``aws_session``, so
tests can check the exact command lines and API calls without AWS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer
from botocore.exceptions import BotoCoreError, ClientError

from hosting_toolkit.cli.output import emit_json, emit_line, err
from hosting_toolkit.cli.session import Session, session_of
from hosting_toolkit.config import (
    DEFAULT_CONFIG_FILE,
    FRAMEWORKS,
    BuildConfig,
    CodeCommitSource,
    CodeConnectionsSource,
    HostingConfig,
    SiteConfig,
    SourceConfig,
    SourceProvider,
    ZipSource,
    parse_config,
)
from hosting_toolkit.contract import (
    OUTPUT_BUCKET_NAME,
    OUTPUT_CONNECTION_ARN,
    OUTPUT_DISTRIBUTION_DOMAIN_NAME,
    OUTPUT_SITE_URL,
    OUTPUT_UPLOAD_LOCATION,
)
from hosting_toolkit.errors import BackendError, InvalidInputError, NotFoundError
from hosting_toolkit.pipeline.buildspec import PROJECT_ROOT, default_build
from hosting_toolkit.pipeline.config_file import render_config
from hosting_toolkit.pipeline.detect import Detection, detect
from hosting_toolkit.pipeline.executions import latest_run
from hosting_toolkit.pipeline.frameworks import PACKAGE_MANAGER_RECIPES, RECIPES
from hosting_toolkit.pipeline.wheelhouse import (
    NO_WHEELHOUSE,
    WHEELHOUSE_CONTEXT_KEY,
    Wheelhouse,
    WheelhouseError,
    default_cache_root,
    prepare_wheelhouse,
)
from hosting_toolkit.site.dns import CERTIFICATE_REGION, DnsRecord, ValidationWatcher, certificate_stack, site_records

#: Environment of the CDK CLI: no version check (offline), no Node.js end-of-life banner from jsii.
CDK_ENVIRONMENT = {"CDK_DISABLE_VERSION_CHECK": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
#: Settings of the caller that would make the CDK app read another configuration than the one named.
CDK_ENVIRONMENT_REMOVED = ("HOSTING_TOOLKIT_CONFIG", "CDK_CONTEXT_JSON")
#: The CDK CLI the checkout pins (package.json), installed by ``npm ci``.
CDK_BIN = Path("node_modules") / ".bin" / "cdk"

Runner = Callable[[Sequence[str], Mapping[str, str], Path], int]


def run_command(command: Sequence[str], env: Mapping[str, str], cwd: Path) -> int:
    """Run ``command`` in ``cwd`` with its output going straight to the terminal; its exit code."""
    return subprocess.run(list(command), env=dict(env), cwd=cwd, check=False).returncode


def aws_session() -> Any:
    """A boto3 session with the usual AWS settings."""
    import boto3

    return boto3.Session()


def prepare_build_wheelhouse() -> Wheelhouse:
    """The release engine's wheels for the pipeline's builds, prepared (or found) in the user's cache."""
    return prepare_wheelhouse(default_cache_root())


#: How ``deploy`` and ``destroy`` run commands, get AWS clients and the release engine's wheels;
#: replaceable, to check the command lines and calls without running them.
runner: Runner = run_command
session_factory: Callable[[], Any] = aws_session
wheelhouse_preparer: Callable[[], Wheelhouse] = prepare_build_wheelhouse


# -- the CDK CLI --------------------------------------------------------------------------------


def cdk_command(
    action: str,
    stack: str,
    config_file: Path | None,
    *,
    outputs_file: Path | None = None,
    approve: bool = False,
    progress: Literal["events"] | None = None,
    wheelhouse: Path | None = None,
) -> list[str]:
    """The ``npx cdk`` command line of ``deploy`` or ``destroy`` of one stack for one site's configuration file.

    Without ``--exclusively``: ``deploy`` of the hosting stack deploys the stacks it depends on (a
    us-east-1 certificate stack) first, and ``destroy`` of a certificate stack removes the hosting
    stack using it, if still there, first. ``progress="events"`` makes the CDK CLI report stack
    events line by line instead of redrawing a block of the terminal, which lines printed meanwhile
    would break. ``wheelhouse``: the release engine's wheels the pipeline ships.
    """
    command = ["npx", "cdk", action, stack]
    if config_file is not None:
        command += ["-c", f"config={config_file}"]
    if wheelhouse is not None:
        command += ["-c", f"{WHEELHOUSE_CONTEXT_KEY}={wheelhouse}"]
    elif action == "destroy":
        # Destroying synthesizes the app too; it deploys no build, so it needs no wheels.
        command += ["-c", f"{WHEELHOUSE_CONTEXT_KEY}={NO_WHEELHOUSE}"]
    if action == "deploy":
        command += ["--require-approval", "never" if approve else "broadening"]
        if progress is not None:
            command += ["--progress", progress]
        if outputs_file is not None:
            command += ["--outputs-file", str(outputs_file)]
    elif action == "destroy":
        command.append("--force")
    return command


def cdk_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` prepared for the CDK CLI: offline settings, and this interpreter first on PATH for ``python3 app.py``."""
    env = {k: v for k, v in base.items() if k not in CDK_ENVIRONMENT_REMOVED}
    env.update(CDK_ENVIRONMENT)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
    return env


def project_root(root: Path | None = None) -> Path:
    """The checkout holding cdk.json and the pinned CDK CLI (default: this package's); deploy and destroy run from there."""
    root = root or PROJECT_ROOT
    if not (root / "cdk.json").is_file():
        raise InvalidInputError(f"{root} has no cdk.json; deploy and destroy run from a checkout of hosting-toolkit")
    if not (root / CDK_BIN).exists():
        raise InvalidInputError(f"the pinned CDK CLI is not installed; run 'npm ci' (or 'make setup') in {root}")
    return root


def config_file_of(config: HostingConfig, root: Path) -> Path | None:
    """The configuration file to synthesize with, as an absolute path (``None``: the defaults)."""
    if config.path is not None:
        return config.path.resolve()
    stray = root / DEFAULT_CONFIG_FILE
    if stray.is_file() and Path.cwd().resolve() != root.resolve():
        raise InvalidInputError(
            f"there is no {DEFAULT_CONFIG_FILE} here, but the CDK app would read {stray}; name one with --config"
        )
    return None


# -- deploy -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """What ``deploy`` did: the stack, its outputs, the connection's state and the DNS records to create.

    ``validation_records``: the certificate's, printed while the deploy waited for them;
    ``dns_records``: those pointing the site's names at the distribution. Both only for a domain
    whose DNS is outside Route 53.
    """

    stack: str
    outputs: dict[str, str]
    connection_status: str | None = None
    validation_records: tuple[DnsRecord, ...] = ()
    dns_records: tuple[DnsRecord, ...] = ()


def connection_status(session: Any, arn: str) -> str | None:
    """``PENDING``, ``AVAILABLE`` or ``ERROR`` for a CodeConnections connection; ``None`` if it cannot be read."""
    service = "codestar-connections" if ":codestar-connections:" in arn else "codeconnections"
    try:
        client = session.client(service, region_name=arn.split(":")[3])
        return str(client.get_connection(ConnectionArn=arn)["Connection"]["ConnectionStatus"])
    except (BotoCoreError, ClientError, KeyError, IndexError):
        return None


def connection_console_url(arn: str) -> str:
    """The console page where a pending connection is approved."""
    parts = arn.split(":")
    region, account, connection = parts[3], parts[4], parts[5].split("/", 1)[-1]
    return (
        f"https://console.aws.amazon.com/codesuite/settings/{account}/{region}/connections/{connection}?region={region}"
    )


def deploy_stack(
    config: HostingConfig,
    *,
    approve: bool,
    root: Path,
    session: Any,
    run: Runner,
    say: Callable[[str], None],
    wheelhouse: Path | None = None,
) -> Deployment:
    """Run ``cdk deploy`` for the site's stack (and the certificate stack it needs) and read back its outputs.

    For a domain whose DNS is outside Route 53, the certificate's validation records are printed
    with ``say`` as soon as ACM has them, while the deploy waits for them. ``wheelhouse``: the
    release engine's wheels the pipeline ships (see ``ReleasePipeline``).
    """
    config_file = config_file_of(config, root)
    watcher = ValidationWatcher(session, config, say)
    with tempfile.TemporaryDirectory(prefix="hosting-deploy-") as tmp:
        outputs_file = Path(tmp) / "outputs.json"
        command = cdk_command(
            "deploy",
            config.stack_name,
            config_file,
            outputs_file=outputs_file,
            approve=approve,
            progress="events" if watcher.active else None,
            wheelhouse=wheelhouse,
        )
        with watcher:
            code = run(command, cdk_environment(os.environ), root)
        if code != 0:
            raise BackendError(f"cdk deploy of {config.stack_name} failed (exit code {code}); its output says why")
        try:
            outputs = json.loads(outputs_file.read_text(encoding="utf-8")).get(config.stack_name, {})
        except (OSError, ValueError) as exc:
            raise BackendError(f"cdk deploy wrote no readable outputs ({exc})") from exc
    outputs = {str(k): str(v) for k, v in outputs.items()}
    status = None
    if isinstance(config.source, CodeConnectionsSource) and outputs.get(OUTPUT_CONNECTION_ARN):
        status = connection_status(session, outputs[OUTPUT_CONNECTION_ARN])
    records: tuple[DnsRecord, ...] = ()
    if config.domain.enabled and not config.domain.hosted_zone_id and outputs.get(OUTPUT_DISTRIBUTION_DOMAIN_NAME):
        records = tuple(site_records(config, outputs[OUTPUT_DISTRIBUTION_DOMAIN_NAME]))
    return Deployment(config.stack_name, outputs, status, tuple(watcher.printed), records)


def dns_lines(config: HostingConfig, deployment: Deployment) -> list[str]:
    """What a deploy says about the site's DNS: who manages its records, or the records to create."""
    domain = config.domain
    if not domain.enabled:
        return []
    names = ", ".join(domain.all_names)
    if domain.hosted_zone_id:
        return [
            f"DNS: the stack manages the records of {names} (certificate validation, A and AAAA aliases) "
            f"in the Route 53 zone {domain.hosted_zone_name} ({domain.hosted_zone_id})"
        ]
    if not deployment.dns_records:
        return [f"point {names} at the distribution's domain name with your DNS provider"]
    return [
        "point the site's names at the distribution with these DNS records at your DNS provider "
        "(at a zone's apex, its ALIAS, ANAME or CNAME flattening):",
        *(f"  {record}" for record in deployment.dns_records),
    ]


def next_steps(config: HostingConfig, deployment: Deployment) -> list[str]:
    """What to do after a deploy, for this configuration's source."""
    source = config.source
    outputs = deployment.outputs
    if isinstance(source, CodeConnectionsSource):
        arn = outputs.get(OUTPUT_CONNECTION_ARN, source.connection_arn)
        steps = []
        if deployment.connection_status != "AVAILABLE":
            state = (deployment.connection_status or "unknown").lower()
            steps += [
                f"approve the connection to {source.provider} once (it is {state}):",
                f"  open {connection_console_url(arn)}",
                f"  choose 'Update pending connection' and allow access to {source.repository}",
            ]
        steps.append(f"then every push to {source.branch} of {source.repository} is built and released")
        return steps
    if isinstance(source, CodeCommitSource):
        return [f"every push to {source.branch} of the CodeCommit repository {source.repository} is built and released"]
    if isinstance(source, ZipSource):
        location = outputs.get(OUTPUT_UPLOAD_LOCATION, f"s3://<upload bucket>/{source.object_key}")
        return [f"release a ZIP of the site by uploading it: aws s3 cp site.zip {location}"]
    return ["release a build folder or ZIP with: hosting-toolkit release BUILD_DIR"]


# -- destroy ------------------------------------------------------------------------------------


def empty_bucket(client: Any, bucket: str) -> int:
    """Delete every object version and delete marker of ``bucket``; how many were deleted."""
    deleted = 0
    try:
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            keys = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            for start in range(0, len(keys), 1000):
                batch = keys[start : start + 1000]
                response = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
                if response.get("Errors"):
                    first = response["Errors"][0]
                    raise BackendError(f"could not empty s3://{bucket}: {first.get('Key')}: {first.get('Message')}")
                deleted += len(batch)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return deleted
        raise BackendError(f"emptying s3://{bucket} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise BackendError(f"emptying s3://{bucket} failed: {exc}") from exc
    return deleted


@dataclass(frozen=True)
class StackBuckets:
    """The buckets of a deployed stack: the site bucket (retained) and the pipeline's own (deleted with it)."""

    site: str
    others: tuple[str, ...]


def _stack(cloudformation: Any, stack: str) -> dict[str, Any] | None:
    """``stack`` as DescribeStacks describes it, or ``None`` when it is not deployed in the client's region."""
    try:
        found: dict[str, Any] = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise BackendError(f"reading stack {stack} failed: {exc}") from exc
    except BotoCoreError as exc:
        raise BackendError(f"reading stack {stack} failed: {exc}") from exc
    return found


def stack_buckets(cloudformation: Any, stack: str) -> StackBuckets:
    """Find the stack's buckets through its outputs and resources."""
    described = _stack(cloudformation, stack)
    if described is None:
        raise NotFoundError(f"stack {stack} is not deployed in this account and region; nothing to destroy")
    try:
        resources = [
            r
            for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
            for r in page.get("StackResourceSummaries", [])
        ]
    except (BotoCoreError, ClientError) as exc:
        raise BackendError(f"reading stack {stack} failed: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    site = outputs.get(OUTPUT_BUCKET_NAME, "")
    buckets = [
        r["PhysicalResourceId"]
        for r in resources
        if r.get("ResourceType") == "AWS::S3::Bucket" and r.get("PhysicalResourceId")
    ]
    return StackBuckets(site, tuple(b for b in buckets if b != site))


def stack_exists(cloudformation: Any, stack: str) -> bool:
    """Whether ``stack`` is deployed (in any state) in the client's region."""
    return _stack(cloudformation, stack) is not None


@dataclass(frozen=True)
class Teardown:
    """What ``destroy`` removed: the stacks, in order, and the hosting stack's buckets."""

    stacks: tuple[str, ...]
    buckets: StackBuckets


def destroy_stack(
    config: HostingConfig,
    *,
    delete_content: bool,
    root: Path,
    session: Any,
    run: Runner,
    say: Callable[[str], None],
) -> Teardown:
    """Remove the site's stack, then its us-east-1 certificate stack when it has one.

    The pipeline's buckets are emptied first so CloudFormation can delete them. The site bucket is
    retained by the stack; with ``delete_content`` it is emptied (every version) before the stack
    goes, so a failure leaves the stack to retry with, then deleted after. The certificate stack
    goes last: CloudFront uses its certificate until the hosting stack is gone. When only the
    certificate stack is left (a failed first deploy, or a destroy stopped between the two), it is
    removed alone.
    """
    config_file = config_file_of(config, root)
    certificate = certificate_stack(config, session.region_name)
    if certificate is not None and not stack_exists(
        session.client("cloudformation", region_name=CERTIFICATE_REGION), certificate
    ):
        certificate = None
    buckets: StackBuckets | None
    try:
        buckets = stack_buckets(session.client("cloudformation"), config.stack_name)
    except NotFoundError:
        if certificate is None:
            raise
        buckets = None
    destroyed: list[str] = []
    if buckets is None:
        say(f"{config.stack_name} is not deployed; destroying its certificate stack {certificate} alone")
    else:
        _destroy_hosting_stack(
            config, buckets, config_file, delete_content=delete_content, root=root, session=session, run=run, say=say
        )
        destroyed.append(config.stack_name)
    if certificate is not None:
        say(f"destroying the certificate stack {certificate} in {CERTIFICATE_REGION}")
        code = run(cdk_command("destroy", certificate, config_file), cdk_environment(os.environ), root)
        if code != 0:
            gone = f"{config.stack_name} is gone, but " if destroyed else ""
            raise BackendError(
                f"{gone}cdk destroy of {certificate} failed (exit code {code}); its output says why, "
                "then run destroy again"
            )
        destroyed.append(certificate)
    return Teardown(tuple(destroyed), buckets or StackBuckets("", ()))


def _destroy_hosting_stack(
    config: HostingConfig,
    buckets: StackBuckets,
    config_file: Path | None,
    *,
    delete_content: bool,
    root: Path,
    session: Any,
    run: Runner,
    say: Callable[[str], None],
) -> None:
    s3 = session.client("s3")
    for bucket in buckets.others:
        say(f"emptying s3://{bucket}: {empty_bucket(s3, bucket)} objects deleted")
    if delete_content and buckets.site:
        say(f"emptying the site bucket s3://{buckets.site}: {empty_bucket(s3, buckets.site)} objects deleted")
    code = run(cdk_command("destroy", config.stack_name, config_file), cdk_environment(os.environ), root)
    if code != 0:
        raise BackendError(f"cdk destroy of {config.stack_name} failed (exit code {code}); its output says why")
    if delete_content and buckets.site:
        empty_bucket(s3, buckets.site)
        try:
            s3.delete_bucket(Bucket=buckets.site)
        except (BotoCoreError, ClientError) as exc:
            raise BackendError(f"the stack is gone, but deleting s3://{buckets.site} failed: {exc}") from exc
        say(f"deleted the site bucket s3://{buckets.site}")


# -- init ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompter:
    """Asks a person; ``init --yes`` has none and fails with a hint where it would ask."""

    choose: Callable[[str, list[str], str | None], str]
    text: Callable[[str, str | None], str]


def typer_prompter() -> Prompter:
    def choose(question: str, choices: list[str], default: str | None) -> str:
        one_of: Any = Literal.__getitem__(tuple(choices))
        return str(typer.prompt(question, type=one_of, default=default, err=True))

    def text(question: str, default: str | None) -> str:
        return str(typer.prompt(question, default=default, err=True)).strip()

    return Prompter(choose, text)


def _describe_candidates(detection: Detection) -> str:
    if detection.candidates:
        return "it could be " + " or ".join(detection.candidates)
    return "no known framework"


def choose_build(
    detection: Detection,
    *,
    framework: str | None = None,
    command: str | None = None,
    output_dir: str | None = None,
    prompter: Prompter | None = None,
) -> BuildConfig:
    """The ``[build]`` for a detected site: what was detected, what was given, and what was asked."""
    name = framework or detection.framework
    if name is None:
        options = [*detection.candidates, "custom"] if detection.candidates else list(FRAMEWORKS)
        if prompter is None:
            raise InvalidInputError(
                f"cannot tell the framework ({_describe_candidates(detection)}); pass --framework "
                f"({', '.join(FRAMEWORKS)})"
            )
        name = prompter.choose("Framework", list(dict.fromkeys(options)), None)
    if name not in FRAMEWORKS:
        raise InvalidInputError(f"{name!r} is not a framework; use one of {', '.join(FRAMEWORKS)}")
    if name == detection.framework and detection.problems:
        raise InvalidInputError(detection.problems[0])
    default_command, default_output = default_build(name)
    out = output_dir or (detection.output_dir if name == detection.framework else None) or default_output
    cmd = command or default_command
    if name == "custom" and not cmd:
        if prompter is None:
            raise InvalidInputError("the 'custom' framework needs --command (what builds the site)")
        cmd = prompter.text("Build command", "npm run build" if detection.has_package_json else None)
    if not out:
        if prompter is None:
            raise InvalidInputError(f"cannot tell where the {name!r} build writes the site; pass --output-dir")
        out = prompter.text("Output folder (relative to the site's folder)", None)
    install = detection.install_command if RECIPES[name].node or name == "custom" else None
    if name == "custom" and not install and detection.has_package_json:
        install = PACKAGE_MANAGER_RECIPES[detection.package_manager].install
    repository = detection.repository
    return BuildConfig(
        framework=name,
        command="" if name == "static" else cmd,
        output_dir=out,
        install_command=install or "",
        app_root=repository.app_root if repository else ".",
        package_manager=detection.package_manager,
        node_version=detection.node_version or BuildConfig().node_version,
    )


def source_of(detection: Detection) -> SourceConfig | None:
    """The ``[source]`` of the checkout's repository, when it is on a supported host."""
    repository = detection.repository
    if repository is None:
        return None
    if repository.kind == "codecommit":
        return CodeCommitSource(repository=repository.repository, branch=repository.branch)
    return CodeConnectionsSource(
        provider=cast(SourceProvider, repository.provider),
        repository=repository.repository,
        branch=repository.branch,
        include_paths=(f"{repository.app_root}/**",) if repository.app_root != "." else (),
    )


def init_config(detection: Detection, build: BuildConfig) -> HostingConfig:
    """The configuration ``init`` writes for a detected site."""
    return HostingConfig(
        site=SiteConfig(name=detection.site_name or SiteConfig().name, mode=RECIPES[build.framework].mode),
        source=source_of(detection),
        build=build,
    )


#: Keys ``init`` writes even at their default, so the file shows the choices made.
INIT_KEPT_KEYS = (
    "site.name",
    "site.mode",
    "source.provider",
    "source.branch",
    "build.framework",
    "build.command",
    "build.output_dir",
)


def init_file_text(config: HostingConfig, folder: Path) -> str:
    """The ``hosting.toml`` text for ``config``; it loads back to the same configuration."""
    header = (
        f"# hosting-toolkit configuration for the site in {folder}, written by 'hosting-toolkit init'.\n"
        "# Every key is explained in hosting.example.toml. Deploy with: hosting-toolkit deploy\n\n"
    )
    text = header + render_config(config, keep=INIT_KEPT_KEYS)
    parse_config(tomllib.loads(text))
    return text


# -- commands -----------------------------------------------------------------------------------


def init(
    ctx: typer.Context,
    site: Annotated[
        Path | None,
        typer.Argument(
            metavar="[SITE_REPO_PATH]", help="The site's folder [default: the current folder].", show_default=False
        ),
    ] = None,
    framework: Annotated[
        str | None, typer.Option("--framework", help=f"Framework, when detection cannot tell: {', '.join(FRAMEWORKS)}.")
    ] = None,
    command: Annotated[str | None, typer.Option("--command", help="Build command [default: the framework's].")] = None,
    output_dir: Annotated[
        str | None, typer.Option("--output-dir", help="Build output folder [default: the framework's].")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Never ask; fail with a hint instead.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing configuration file.")] = False,
) -> None:
    """Detect the site's framework and write hosting.toml with its build command and output folder."""
    session = session_of(ctx)
    folder = (site or Path.cwd()).resolve()
    if not folder.is_dir():
        raise InvalidInputError(f"{folder}: not a folder")
    target = session.config_path or Path(DEFAULT_CONFIG_FILE)
    if target.exists() and not force:
        raise InvalidInputError(f"{target} exists; pass --force to replace it")
    detection = detect(folder)
    err.print(f"looked at {folder}:")
    for line in detection.evidence:
        err.print(f"  {line}")
    build = choose_build(
        detection,
        framework=framework,
        command=command,
        output_dir=output_dir,
        prompter=None if yes else typer_prompter(),
    )
    config = init_config(detection, build)
    target.write_text(init_file_text(config, folder), encoding="utf-8")
    recipe = RECIPES[build.framework]
    steps = f"{build.command} -> {build.output_dir}" if build.command else f"released as it is from {build.output_dir}"
    err.print(f"framework: [bold]{build.framework}[/] ({recipe.title}): {steps}")
    if config.source is None:
        err.print("source: none found; add a [source] (see hosting.example.toml) or release builds yourself")
    else:
        err.print(f"source: {_source_line(config.source)}")
    err.print(f"wrote {target}; review it, then: hosting-toolkit deploy")
    emit_line(str(target))


def _source_line(source: SourceConfig) -> str:
    if isinstance(source, CodeConnectionsSource):
        paths = f", changes under {', '.join(source.include_paths)}" if source.include_paths else ""
        return f"{source.provider} {source.repository}, branch {source.branch}{paths}"
    if isinstance(source, CodeCommitSource):
        return f"CodeCommit {source.repository}, branch {source.branch}"
    return f"ZIP uploads of {source.object_key}"


def deploy(
    ctx: typer.Context,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Deploy without asking to approve IAM and security changes.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the stack's outputs and the DNS records to create as JSON.")
    ] = False,
) -> None:
    """Deploy the site's stacks with the pinned CDK CLI; print the address, DNS records to create and next steps."""
    session = session_of(ctx)
    config = session.config
    root = project_root()
    aws = session_factory()
    what = f"with its release pipeline ({_source_line(config.source)})" if config.source else "without a pipeline"
    certificate = certificate_stack(config, aws.region_name)
    first = f", after its certificate stack {certificate} in {CERTIFICATE_REGION}" if certificate else ""
    wheelhouse = None
    if config.source is not None:
        try:
            wheelhouse = wheelhouse_preparer()
        except WheelhouseError as exc:
            raise BackendError(f"{exc}; nothing was deployed") from exc
        err.print(f"the pipeline ships the release engine's wheels: {wheelhouse.summary()}")
    err.print(f"deploying [bold]{config.stack_name}[/] {what}{first}")
    deployment = deploy_stack(
        config,
        approve=yes,
        root=root,
        session=aws,
        run=runner,
        say=err.print,
        wheelhouse=wheelhouse.path if wheelhouse else None,
    )
    url = deployment.outputs.get(OUTPUT_SITE_URL, "")
    err.print(f"[green]deployed[/] {deployment.stack}: {url}")
    for line in [*dns_lines(config, deployment), *next_steps(config, deployment)]:
        err.print(line)
    if as_json:
        emit_json({"site_url": url, **asdict(deployment)})
    else:
        emit_line(url)


def destroy(
    ctx: typer.Context,
    delete_content: Annotated[
        bool,
        typer.Option("--delete-content", help="Also delete the site bucket with every release (and every version)."),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove everything the site's stacks made; the site bucket and its releases stay unless --delete-content."""
    session = session_of(ctx)
    config = session.config
    root = project_root()
    aws = session_factory()
    certificate = certificate_stack(config, aws.region_name)
    stacks = (
        f"{config.stack_name} and its certificate stack {certificate} in {CERTIFICATE_REGION}"
        if certificate
        else config.stack_name
    )
    kept = "and DELETE every release in the site bucket" if delete_content else "keeping the site bucket"
    if not yes and not typer.confirm(f"destroy {stacks}, {kept}?", err=True):
        raise typer.Exit(1)
    teardown = destroy_stack(config, delete_content=delete_content, root=root, session=aws, run=runner, say=err.print)
    err.print(f"[green]destroyed[/] {' and '.join(teardown.stacks)}")
    buckets = teardown.buckets
    if buckets.site and not delete_content:
        err.print(
            f"kept s3://{buckets.site} with its releases; delete it with the stack next time with --delete-content"
        )


def pipeline_status(session: Session) -> dict[str, Any] | None:
    """The deployed stack's release pipeline and its latest run, for ``status``; ``None`` without a pipeline."""
    if session.local is not None:
        return None
    name = session.target.pipeline_name
    if not name:
        return None
    run = latest_run(session_factory().client("codepipeline"), name)
    return {"name": name, "latest": asdict(run) if run else None}


def pipeline_lines(status: dict[str, Any] | None) -> list[str]:
    """``status`` lines about the pipeline."""
    if status is None:
        return []
    latest = status["latest"]
    if latest is None:
        return [f"pipeline: {status['name']}, not run yet"]
    revision = latest["revision"][:12]
    what = " ".join(part for part in (revision, f'"{latest["summary"]}"' if latest["summary"] else "") if part)
    where = f" at {latest['stage']}" if latest.get("stage") else ""
    lines = [
        f"pipeline: {latest['status']}{where} {what}".rstrip()
        + f" (started {latest['started'][:19].replace('T', ' ')})"
    ]
    if latest.get("reason"):
        lines.append(f"  why: {latest['reason']}")
    return lines
