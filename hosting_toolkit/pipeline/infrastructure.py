"""The release pipeline: a change of the site's source is built by CodeBuild and released by the release engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codeconnections as codeconnections
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct, IConstruct

from hosting_toolkit.config import CodeCommitSource, CodeConnectionsSource, HostingConfig, SourceConfig, ZipSource
from hosting_toolkit.contract import ERROR_PAGES_PREFIX, META_PREFIX, RELEASES_PREFIX, SOURCE_ACTION_NAME
from hosting_toolkit.pipeline.buildspec import (
    ENV_BRANCH,
    ENV_BUCKET,
    ENV_COMMIT,
    ENV_EXECUTION,
    ENV_KVS_ARN,
    ENV_MESSAGE,
    ENV_PACKAGE,
    ENV_PREVIEW,
    ENV_RELEASE_ID,
    ENV_REVISION,
    ENV_SITE_CONFIG,
    ENV_SITE_URL,
    ENV_STEP,
    PROJECT_ROOT,
    render_buildspec,
    render_operate_buildspec,
)
from hosting_toolkit.pipeline.config_file import render_config
from hosting_toolkit.pipeline.package_asset import bundling
from hosting_toolkit.pipeline.rollout import ErrorRateAlarm, RolloutStateMachine
from hosting_toolkit.release.records import PENDING_PREFIX
from hosting_toolkit.site.infrastructure import PRIVATE_BUCKET

#: What the build installs from the package asset: the package and the files its build needs. An
#: allowlist, so nothing else in a checkout (a hosting.toml, an .env file, build output) is shipped.
PACKAGE_FILES = ("hosting_toolkit/", "functions/", "pyproject.toml", "requirements.txt", "README.md")
PACKAGE_EXCLUDES = ("/*", *(f"!/{name}" for name in PACKAGE_FILES), "__pycache__/", "*.py[cod]", "*.egg-info/")

#: CodePipeline's provider names of the CodeConnections hosts.
CONNECTION_PROVIDERS = {"github": "GitHub", "gitlab": "GitLab", "bitbucket": "Bitbucket"}
#: CloudFormation allows connection names of at most 32 characters.
CONNECTION_NAME_LIMIT = 32

COMPUTE_TYPES = {
    "small": codebuild.ComputeType.SMALL,
    "medium": codebuild.ComputeType.MEDIUM,
    "large": codebuild.ComputeType.LARGE,
}
#: Amazon Linux 2023 standard 5.0: Node.js 18 to 24 and Python 3.9 to 3.14 through runtime-versions.
BUILD_IMAGE = codebuild.LinuxBuildImage.AMAZON_LINUX_2023_5
#: Artifacts are needed only while an execution runs and for a retry soon after.
ARTIFACT_RETENTION = cdk.Duration.days(30)
#: Dependency caches idle this long are rebuilt from scratch.
CACHE_RETENTION = cdk.Duration.days(30)
#: Replaced ZIP uploads stay recoverable this long.
UPLOAD_VERSION_RETENTION = cdk.Duration.days(30)
BUILD_TIMEOUT = cdk.Duration.minutes(60)
#: One verify, shift or retract step, with the install of the release engine.
OPERATOR_TIMEOUT = cdk.Duration.minutes(20)
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS

#: Never PARALLEL: an older change must not go live after a newer one (see ``ReleasePipeline``).
EXECUTION_MODE = codepipeline.ExecutionMode.SUPERSEDED
#: The AWS managed key of SNS, which encrypts the notification topic.
SNS_MANAGED_KEY = "alias/aws/sns"

#: The KeyValueStore data-plane actions that read the store: its ETag, and the routing state.
KVS_READ_ACTIONS = ("cloudfront-keyvaluestore:DescribeKeyValueStore", "cloudfront-keyvaluestore:GetKey")
#: With the conditional write of a key: the routing state (a switch) or the preview token (verify). IAM
#: cannot limit the store's actions to one key, so only the roles that write a key get ``PutKey``.
KVS_ACTIONS = (*KVS_READ_ACTIONS, "cloudfront-keyvaluestore:PutKey")
#: The preview build's KeyValueStore actions: moving its preview key, listing (the store's limits,
#: the open previews) and deleting (a closed pull request's preview). IAM grants KeyValueStore
#: actions per store, never per key, so these also allow writing ``routing``: the engine run with
#: ``--preview-build`` (``HOSTING_TOOLKIT_PREVIEW``) refuses every key but ``preview:*``.
PREVIEW_KVS_ACTIONS = (*KVS_ACTIONS, "cloudfront-keyvaluestore:ListKeys", "cloudfront-keyvaluestore:DeleteKey")
#: Preview runs wait for each other: one preview's run never replaces another's (SUPERSEDED would)
#: and two pushes to one branch never finish out of order (PARALLEL could).
PREVIEW_EXECUTION_MODE = codepipeline.ExecutionMode.QUEUED


class ReleasePipeline(Construct):
    """Builds the site on every change of its source and releases each build with the release engine.

    A CodePipeline (V2) whose stages take each change to the viewers, and stop it on the way:

    1. Source: a git push through CodeConnections or CodeCommit, or a ZIP upload.
    2. Build: CodeBuild builds the site with ``buildspecs/<framework>.yml`` and, in its post-build
       phase, ``hosting-toolkit release --no-activate`` (the release engine installed from this
       package's CDK asset) stages it as a release; the release id is exported to later stages.
    3. Verify: ``hosting-toolkit verify ID`` runs the ``[verify]`` checks against the staged release
       through the preview path, before any viewer gets it.
    4. Approve (with ``[rollout] approval``): a person approves the verified release.
    5. Rollout: the rollout state machine (``pipeline/rollout.py``) moves viewers to the release in
       the steps of ``[rollout]``, watching the alarms, and takes them back if one fires; a failed
       rollout fails the pipeline run with its reason.

    The pipeline runs in SUPERSEDED mode, never PARALLEL: an execution enters the build stage only
    after the previous one has left it, so releases go live in the order their changes arrived and
    an older commit can never overtake a newer one; while a build runs, a newer change waiting for
    the stage replaces any older one still waiting, so a burst of pushes builds the first and the
    last, not every commit between them.

    Props (keyword-only):

    config: the site configuration; its ``source`` (required) and ``build`` shape the pipeline, and
      the whole configuration reaches the build for the release engine.
    site_bucket: the bucket of releases; the build may write only under ``releases/`` and ``_meta/``.
    release_store: the KeyValueStore holding the routing state; the build may use only this store.
    site_url: the site's address, shown to the approver.
    distribution: the site's distribution: ``verify`` requests its own ``*.cloudfront.net`` name (which
      answers before the site's DNS records exist), and the rollout watches its 5xx error rate
      (default none: ``verify`` requests ``site_url``, and only ``[rollout] alarms`` are watched).
    package_root: the checkout shipped to the build as the release engine (default: the one this
      module belongs to).
    wheelhouse: the prepared wheels of ``engine.lock`` for the build's platform, shipped in the package
      asset, from which every build installs the release engine without a package index (default none:
      the asset has no wheels and every build fails in its install phase, before any viewer moves;
      ``hosting-toolkit deploy`` always passes them).

    With ``[previews]`` (a CodeConnections source only), a second pipeline builds previews: see
    ``_add_previews``; it has no verify, approval or rollout stage and never writes production routing.

    Attributes: ``pipeline``, ``project`` (the build's CodeBuild project), ``build_role``,
    ``verify_project`` and ``operate_project`` (the operator projects of the Verify stage and of the
    rollout), ``rollout`` (the ``RolloutStateMachine``), ``error_rate_alarm``, ``connection_arn`` (for
    a CodeConnections source), ``upload_bucket`` (for a ZIP source), ``preview_pipeline`` and
    ``preview_project`` (with ``[previews]``, else ``None``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: HostingConfig,
        site_bucket: s3.IBucket,
        release_store: cloudfront.IKeyValueStore,
        site_url: str,
        distribution: cloudfront.IDistribution | None = None,
        package_root: Path = PROJECT_ROOT,
        wheelhouse: Path | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if config.source is None:
            raise ValueError("ReleasePipeline: the configuration has no [source] to build from")
        source: SourceConfig = config.source
        name = config.site.name
        self.connection_arn: str | None = None
        self.upload_bucket: s3.Bucket | None = None

        self.artifact_bucket = self._private_bucket(
            "ArtifactBucket",
            lifecycle_rules=[s3.LifecycleRule(id="ExpireArtifacts", expiration=ARTIFACT_RETENTION)],
        )
        self.cache_bucket = self._private_bucket(
            "CacheBucket",
            lifecycle_rules=[s3.LifecycleRule(id="ExpireIdleCaches", expiration=CACHE_RETENTION)],
        )
        self.package = s3_assets.Asset(
            self,
            "ReleaseEngine",
            path=str(package_root),
            ignore_mode=cdk.IgnoreMode.GIT,
            exclude=list(PACKAGE_EXCLUDES),
            # Named by what is shipped, so adding the wheels changes the asset CloudFormation points to.
            asset_hash_type=cdk.AssetHashType.OUTPUT,
            bundling=bundling(root=package_root, files=PACKAGE_FILES, wheelhouse=wheelhouse),
        )
        self.log_group = logs.LogGroup(
            self, "BuildLogs", retention=LOG_RETENTION, removal_policy=cdk.RemovalPolicy.DESTROY
        )

        build = config.build
        variables: dict[str, codebuild.BuildEnvironmentVariable] = {
            ENV_BUCKET: _plain(site_bucket.bucket_name),
            ENV_KVS_ARN: _plain(release_store.key_value_store_arn),
            ENV_SITE_URL: _plain(site_url),
            ENV_PACKAGE: _plain(self.package.s3_object_url),
            ENV_SITE_CONFIG: _plain(render_config(config)),
        }
        variables.update({key: _plain(value) for key, value in build.env.items()})
        variables.update(
            {
                key: codebuild.BuildEnvironmentVariable(
                    value=secret, type=codebuild.BuildEnvironmentVariableType.SECRETS_MANAGER
                )
                for key, secret in build.secrets.items()
            }
        )
        variables.update(
            {
                key: codebuild.BuildEnvironmentVariable(
                    value=parameter, type=codebuild.BuildEnvironmentVariableType.PARAMETER_STORE
                )
                for key, parameter in build.parameters.items()
            }
        )
        self.project = codebuild.PipelineProject(
            self,
            "Build",
            description=f"Builds the '{name}' site ({build.framework}) and releases it with hosting-toolkit",
            environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE, compute_type=COMPUTE_TYPES[build.compute]),
            environment_variables=variables,
            build_spec=codebuild.BuildSpec.from_object_to_yaml(render_buildspec(build)),
            cache=codebuild.Cache.bucket(self.cache_bucket),
            logging=codebuild.LoggingOptions(cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.log_group)),
            timeout=BUILD_TIMEOUT,
            grant_report_group_permissions=False,
        )
        assert self.project.role is not None
        self.build_role: iam.IRole = self.project.role
        self._grant_release(site_bucket, release_store)

        operator_variables = {key: variables[key] for key in (ENV_BUCKET, ENV_KVS_ARN, ENV_PACKAGE, ENV_SITE_CONFIG)}
        # Verify through the distribution's own name: it answers before the site's DNS records exist.
        operator_variables[ENV_SITE_URL] = (
            _plain(f"https://{distribution.distribution_domain_name}")
            if distribution is not None
            else variables[ENV_SITE_URL]
        )
        # CodePipeline runs a project whose source is the pipeline; Step Functions starts one without a source.
        self.verify_project = codebuild.PipelineProject(
            self, "Verify", **self._operator_props(name, "verifies each staged release", operator_variables)
        )
        self.operate_project = codebuild.Project(
            self, "Operate", **self._operator_props(name, "moves viewers between releases", operator_variables)
        )
        assert self.verify_project.role is not None and self.operate_project.role is not None
        self._grant_verify(self.verify_project.role, site_bucket, release_store)
        self._grant_operator(self.operate_project.role, site_bucket, release_store)

        self.error_rate_alarm = (
            ErrorRateAlarm(self, "ErrorRate", distribution=distribution, percent=config.rollout.error_rate_percent)
            if distribution is not None and config.rollout.error_rate_percent > 0
            else None
        )
        own = [self.error_rate_alarm.alarm_name] if self.error_rate_alarm and self.error_rate_alarm.alarm else []
        self.notify_topic = self._notify_topic(config)
        self.rollout_prefix = f"rollout-{name}"
        self.rollout = RolloutStateMachine(
            self,
            "Rollout",
            rollout=config.rollout,
            project=self.operate_project,
            watched=[*own, *config.rollout.alarms],
            named=list(config.rollout.alarms),
            topic=self.notify_topic,
        )

        source_output = codepipeline.Artifact("Source")
        source_action, build_variables = self._source_action(source, name, source_output)
        build_action = actions.CodeBuildAction(
            action_name="BuildAndStage",
            project=self.project,
            input=source_output,
            environment_variables=build_variables,
            variables_namespace="Build",
        )
        release_id = build_action.variable(ENV_RELEASE_ID)
        verify_action = actions.CodeBuildAction(
            action_name="Verify",
            project=self.verify_project,
            input=source_output,
            environment_variables={ENV_STEP: _plain("verify"), ENV_RELEASE_ID: _plain(release_id)},
        )
        stages = [
            codepipeline.StageProps(stage_name="Source", actions=[source_action]),
            codepipeline.StageProps(stage_name="Build", actions=[build_action]),
            codepipeline.StageProps(stage_name="Verify", actions=[verify_action]),
        ]
        if config.rollout.approval:
            stages.append(
                codepipeline.StageProps(
                    stage_name="Approve",
                    actions=[
                        actions.ManualApprovalAction(
                            action_name="Approve",
                            additional_information=(
                                f"Release {release_id} passed its checks. Look at it on the site before any viewer "
                                f"gets it: hosting-toolkit preview {release_id}"
                            ),
                            external_entity_link=site_url,
                            notification_topic=self.notify_topic,
                        )
                    ],
                )
            )
        stages.append(
            codepipeline.StageProps(
                stage_name="Rollout",
                actions=[
                    actions.StepFunctionInvokeAction(
                        action_name="Rollout",
                        state_machine=self.rollout.state_machine,
                        state_machine_input=actions.StateMachineInput.literal({"release": release_id}),
                        execution_name_prefix=self.rollout_prefix,
                    )
                ],
            )
        )
        self.pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_type=codepipeline.PipelineType.V2,
            execution_mode=EXECUTION_MODE,
            artifact_bucket=self.artifact_bucket,
            use_pipeline_role_for_actions=True,
            stages=stages,
        )
        self._wire_source(source, source_action)
        self._acknowledge_findings(site_bucket)
        self.preview_pipeline: codepipeline.Pipeline | None = None
        self.preview_project: codebuild.PipelineProject | None = None
        if config.previews.enabled and isinstance(source, CodeConnectionsSource):
            self._add_previews(config, source, variables, site_bucket, release_store)

    def _add_previews(
        self,
        config: HostingConfig,
        source: CodeConnectionsSource,
        variables: dict[str, codebuild.BuildEnvironmentVariable],
        site_bucket: s3.IBucket,
        release_store: cloudfront.IKeyValueStore,
    ) -> None:
        """The preview pipeline: every push to a previewed branch and every pull-request event runs the
        production build (same buildspec, same engine) with ``HOSTING_TOOLKIT_PREVIEW`` set, which stages
        the release and moves its preview, or removes the preview of a closed pull request. It has no
        verify, approval or rollout stage: it can never move production."""
        previews = config.previews
        project = codebuild.PipelineProject(
            self,
            "PreviewBuild",
            description=f"Builds previews of the '{config.site.name}' site; writes preview keys only",
            environment=codebuild.BuildEnvironment(
                build_image=BUILD_IMAGE, compute_type=COMPUTE_TYPES[config.build.compute]
            ),
            environment_variables={**variables, ENV_PREVIEW: _plain("1")},
            build_spec=codebuild.BuildSpec.from_object_to_yaml(render_buildspec(config.build)),
            cache=codebuild.Cache.bucket(self.cache_bucket, prefix="previews"),
            logging=codebuild.LoggingOptions(cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.log_group)),
            timeout=BUILD_TIMEOUT,
            grant_report_group_permissions=False,
        )
        assert project.role is not None
        self._grant_release(site_bucket, release_store, role=project.role, kvs_actions=PREVIEW_KVS_ACTIONS)
        preview_source = codepipeline.Artifact("PreviewSource")
        checkout = self._checkout(source, preview_source)
        pipeline = codepipeline.Pipeline(
            self,
            "PreviewPipeline",
            pipeline_type=codepipeline.PipelineType.V2,
            execution_mode=PREVIEW_EXECUTION_MODE,
            artifact_bucket=self.artifact_bucket,
            use_pipeline_role_for_actions=True,
            stages=[
                codepipeline.StageProps(stage_name="Source", actions=[checkout]),
                codepipeline.StageProps(
                    stage_name="Preview",
                    actions=[
                        actions.CodeBuildAction(
                            action_name="BuildAndPreview",
                            project=project,
                            input=preview_source,
                            environment_variables={
                                ENV_COMMIT: _plain(checkout.variables.commit_id),
                                ENV_BRANCH: _plain(checkout.variables.branch_name),
                                ENV_EXECUTION: _plain("#{codepipeline.PipelineExecutionId}"),
                                ENV_MESSAGE: _plain(f"preview of {source.repository}"),
                            },
                        )
                    ],
                ),
            ],
        )
        includes = [b for b in previews.branches if not b.startswith("!")]
        # The production branch keeps its own pipeline, whatever the patterns say.
        excludes = [*(b[1:] for b in previews.branches if b.startswith("!")), source.branch]
        pipeline.add_trigger(
            provider_type=codepipeline.ProviderType.CODE_STAR_SOURCE_CONNECTION,
            git_configuration=codepipeline.GitConfiguration(
                source_action=checkout,
                push_filter=[
                    codepipeline.GitPushFilter(
                        branches_includes=includes,
                        branches_excludes=excludes,
                        file_paths_includes=list(source.include_paths) or None,
                        file_paths_excludes=list(source.exclude_paths) or None,
                    )
                ]
                if includes
                else None,
                pull_request_filter=[
                    codepipeline.GitPullRequestFilter(
                        branches_includes=["*"],
                        events=[
                            codepipeline.GitPullRequestEvent.OPEN,
                            codepipeline.GitPullRequestEvent.UPDATED,
                            codepipeline.GitPullRequestEvent.CLOSED,
                        ],
                    )
                ]
                if previews.pull_requests
                else None,
            ),
        )
        assert self.connection_arn is not None
        pipeline.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="UseConnection", actions=["codeconnections:UseConnection"], resources=[self.connection_arn]
            )
        )
        # A policy of its own: the build's default policy is part of the project, which the pipeline
        # references, so the pipeline's ARN there would be a cycle.
        iam.Policy(
            self,
            "PreviewTrigger",
            statements=[
                iam.PolicyStatement(
                    sid="ReadPreviewTrigger",
                    actions=["codepipeline:GetPipelineExecution"],
                    resources=[pipeline.pipeline_arn],
                )
            ],
            roles=[project.role],
        )
        self.preview_project = project
        self.preview_pipeline = pipeline
        self._acknowledge_previews(project, pipeline, site_bucket)

    def _acknowledge_previews(
        self, project: codebuild.PipelineProject, pipeline: codepipeline.Pipeline, site_bucket: s3.IBucket
    ) -> None:
        artifacts = f"Resource::<{self._logical_id(self.artifact_bucket)}.Arn>/*"
        cdk.Validations.of(project).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-CB4",
                reason=(
                    "The preview build's only outputs are preview releases in the site bucket (S3-managed "
                    "encryption) and its cache in the pipeline's private, encrypted cache bucket; a customer "
                    "managed KMS key would add a monthly fee per site without protecting anything more."
                ),
            )
        )
        assert project.role is not None
        site = self._logical_id(site_bucket)
        cdk.Validations.of(project.role).acknowledge(*_wildcards(self._build_reasons(project, site, artifacts)))
        cdk.Validations.of(pipeline.role).acknowledge(
            *_wildcards(
                {
                    "Action::s3:GetObject*": "CDK's grants on the shared artifact bucket: the preview pipeline reads "
                    "the source artifacts it hands to the preview build.",
                    "Action::s3:GetBucket*": "Comes with CDK's grants on the artifact bucket: CodePipeline checks the "
                    "bucket's versioning and location before the preview pipeline uses it.",
                    "Action::s3:List*": "Comes with CDK's grants on the artifact bucket, which belongs to the site's "
                    "own pipelines alone.",
                    "Action::s3:DeleteObject*": "Part of CDK's read-write grant on the artifact bucket, where the "
                    "preview pipeline replaces the artifacts of its own executions.",
                    "Action::s3:Abort*": "Part of CDK's read-write grant on the artifact bucket: the preview pipeline "
                    "may abort a failed multipart upload of a source artifact.",
                    artifacts: "CodePipeline names each preview execution's artifacts at run time, inside the site "
                    "pipelines' own artifact bucket.",
                }
            )
        )

    def _operator_props(
        self, name: str, what: str, variables: dict[str, codebuild.BuildEnvironmentVariable]
    ) -> dict[str, Any]:
        """One step of a release's way to the viewers (``OPERATE_COMMAND``), on the smallest build."""
        return {
            "description": f"Runs hosting-toolkit for the '{name}' site: {what}",
            "environment": codebuild.BuildEnvironment(
                build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType.SMALL
            ),
            "environment_variables": variables,
            "build_spec": codebuild.BuildSpec.from_object_to_yaml(render_operate_buildspec()),
            "logging": codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.log_group)
            ),
            "timeout": OPERATOR_TIMEOUT,
            "grant_report_group_permissions": False,
        }

    # -- resources ---------------------------------------------------------------------------

    def _notify_topic(self, config: HostingConfig) -> sns.ITopic | None:
        """The topic rollouts and approvals are announced on: ``notify_topic_arn``, or the stack's own."""
        rollout = config.rollout
        if rollout.notify_topic_arn:
            return sns.Topic.from_topic_arn(self, "NotifyTopic", rollout.notify_topic_arn)
        if not rollout.notify:
            return None
        topic = sns.Topic(self, "NotifyTopic", display_name=f"{config.site.name} releases", enforce_ssl=True)
        # Encrypted with the AWS managed key of SNS, set on the L1 resource: its key policy lets every
        # principal of the account that may publish use it through SNS, while the L2 ``master_key`` of an
        # alias would grant kms:GenerateDataKey* on every key of the account to each publisher.
        resource = topic.node.default_child
        assert isinstance(resource, sns.CfnTopic)
        resource.kms_master_key_id = SNS_MANAGED_KEY
        for address in rollout.notify:
            topic.add_subscription(subscriptions.EmailSubscription(address))
        return topic

    def _private_bucket(
        self, construct_id: str, *, lifecycle_rules: list[s3.LifecycleRule], versioned: bool = False
    ) -> s3.Bucket:
        """A private, encrypted, TLS-only bucket of the pipeline's own, emptied and deleted by ``destroy``."""
        bucket = s3.Bucket(
            self,
            construct_id,
            **PRIVATE_BUCKET,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=versioned,
            lifecycle_rules=[
                *lifecycle_rules,
                s3.LifecycleRule(
                    id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=cdk.Duration.days(7)
                ),
            ],
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        cdk.Validations.of(bucket).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-S1",
                reason=(
                    f"{construct_id} is private to the pipeline and holds what builds read and write (source "
                    "artifacts, ZIP uploads, the dependency cache), never viewer traffic: only the pipeline, "
                    "its build and the site's owner use it."
                ),
            )
        )
        return bucket

    def _grant_release(
        self,
        site_bucket: s3.IBucket,
        release_store: cloudfront.IKeyValueStore,
        *,
        role: iam.IRole | None = None,
        kvs_actions: tuple[str, ...] = KVS_READ_ACTIONS,
    ) -> None:
        """What the release engine needs in the build (``role``: the build's), and nothing beyond: no ``Resource: "*"``."""
        releases = site_bucket.arn_for_objects(f"{RELEASES_PREFIX}*")
        records = site_bucket.arn_for_objects(f"{META_PREFIX}*")
        statements = [
            # Uploads and server-side copies of unchanged files (GetObject on the source), records,
            # history and the pending marker (conditional PutObject), manifests of earlier releases.
            iam.PolicyStatement(
                sid="ReadAndWriteReleases",
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[releases, records],
            ),
            # The built-in error pages, staged with the first release while nothing is live.
            iam.PolicyStatement(
                sid="WriteErrorPages",
                actions=["s3:PutObject"],
                resources=[site_bucket.arn_for_objects(f"{ERROR_PAGES_PREFIX}*")],
            ),
            # The CRT uploads large files in parts and aborts the parts of a failed upload.
            iam.PolicyStatement(sid="AbortFailedUploads", actions=["s3:AbortMultipartUpload"], resources=[releases]),
            # A completed release removes its pending marker; the build deletes nothing else.
            iam.PolicyStatement(
                sid="RemovePendingMarkers",
                actions=["s3:DeleteObject"],
                resources=[site_bucket.arn_for_objects(f"{PENDING_PREFIX}*")],
            ),
            # The build reads the routing state (is anything live?) and never switches: no PutKey. A
            # preview build also moves its own preview key.
            iam.PolicyStatement(
                sid="ReadRouting" if kvs_actions == KVS_READ_ACTIONS else "MovePreviews",
                actions=list(kvs_actions),
                resources=[release_store.key_value_store_arn],
            ),
            self._list_releases(site_bucket, RELEASES_PREFIX, META_PREFIX),
            self._download_engine(),
        ]
        for statement in statements:
            (role or self.build_role).add_to_principal_policy(statement)

    @staticmethod
    def _list_releases(site_bucket: s3.IBucket, *prefixes: str) -> iam.PolicyStatement:
        """Listing by the prefixes the engine reads; it also makes a missing key there answer 404, not 403."""
        return iam.PolicyStatement(
            sid="ListReleases",
            actions=["s3:ListBucket"],
            resources=[site_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in prefixes]}},
        )

    def _download_engine(self) -> iam.PolicyStatement:
        """The install phase's download of the release engine: the package asset, that one object."""
        return iam.PolicyStatement(
            sid="DownloadReleaseEngine",
            actions=["s3:GetObject"],
            resources=[self.package.bucket.arn_for_objects(self.package.s3_object_key)],
        )

    def _grant_verify(self, role: iam.IRole, site_bucket: s3.IBucket, release_store: cloudfront.IKeyValueStore) -> None:
        """What ``verify`` needs: the release's record, and the preview token it requests the release with."""
        statements = [
            iam.PolicyStatement(
                sid="ReadRecords", actions=["s3:GetObject"], resources=[site_bucket.arn_for_objects(f"{META_PREFIX}*")]
            ),
            # An unknown release id then answers 404 ("no release"), not an access error.
            self._list_releases(site_bucket, META_PREFIX),
            # The preview token is a key of the store, created on first use.
            iam.PolicyStatement(
                sid="UsePreviewToken", actions=list(KVS_ACTIONS), resources=[release_store.key_value_store_arn]
            ),
            self._download_engine(),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)

    def _grant_operator(
        self, role: iam.IRole, site_bucket: s3.IBucket, release_store: cloudfront.IKeyValueStore
    ) -> None:
        """What the rollout's steps and undo need (``canary``, ``activate`` and ``rollback`` underneath): read
        releases, carry assets between them, write history and rollout records, switch traffic."""
        releases = site_bucket.arn_for_objects(f"{RELEASES_PREFIX}*")
        records = site_bucket.arn_for_objects(f"{META_PREFIX}*")
        statements = [
            # Release records and manifests; the files of a release (the source of a carry, its error pages).
            iam.PolicyStatement(sid="ReadReleases", actions=["s3:GetObject"], resources=[releases, records]),
            # Skew protection: before a release takes viewers, the retained releases' hashed assets it lacks
            # are copied into its folder (CopyObject: GetObject on the source, PutObject on the target).
            iam.PolicyStatement(sid="CarryAssets", actions=["s3:PutObject"], resources=[releases]),
            # History entries of each routing change, and the rollout's own record.
            iam.PolicyStatement(sid="WriteHistory", actions=["s3:PutObject"], resources=[records]),
            # Each switch of the live release publishes its error pages at the keys CloudFront fetches.
            iam.PolicyStatement(
                sid="PublishErrorPages",
                actions=["s3:PutObject"],
                resources=[site_bucket.arn_for_objects(f"{ERROR_PAGES_PREFIX}*")],
            ),
            self._list_releases(site_bucket, RELEASES_PREFIX, META_PREFIX),
            iam.PolicyStatement(
                sid="SwitchTraffic", actions=list(KVS_ACTIONS), resources=[release_store.key_value_store_arn]
            ),
            self._download_engine(),
        ]
        for statement in statements:
            role.add_to_principal_policy(statement)

    # -- sources -----------------------------------------------------------------------------

    def _source_action(
        self, source: SourceConfig, name: str, output: codepipeline.Artifact
    ) -> tuple[codepipeline.IAction, dict[str, codebuild.BuildEnvironmentVariable]]:
        """The source action, and the build variables it gives: the commit, or the uploaded version.

        The commit message is not passed on: CodePipeline does not escape quotes and line breaks of a
        variable inside a CodeBuild action's environment, so some messages would break the action.
        """
        if isinstance(source, CodeConnectionsSource):
            if source.connection_arn:
                self.connection_arn = source.connection_arn
            else:
                connection = codeconnections.CfnConnection(
                    self,
                    "Connection",
                    connection_name=f"hosting-{name}"[:CONNECTION_NAME_LIMIT],
                    provider_type=CONNECTION_PROVIDERS[source.provider],
                )
                self.connection_arn = connection.attr_connection_arn
            git = self._checkout(source, output)
            return git, {
                ENV_COMMIT: _plain(git.variables.commit_id),
                ENV_MESSAGE: _plain(f"push to {source.branch} of {source.repository}"),
            }
        if isinstance(source, CodeCommitSource):
            repository = codecommit.Repository.from_repository_name(self, "Repository", source.repository)
            commit = actions.CodeCommitSourceAction(
                action_name=SOURCE_ACTION_NAME,
                repository=repository,
                branch=source.branch,
                output=output,
                trigger=actions.CodeCommitTrigger.EVENTS,
            )
            return commit, {
                ENV_COMMIT: _plain(commit.variables.commit_id),
                ENV_MESSAGE: _plain(f"push to {source.branch} of {source.repository}"),
            }
        self.upload_bucket = self._private_bucket(
            "UploadBucket",
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireReplacedUploads",
                    noncurrent_version_expiration=UPLOAD_VERSION_RETENTION,
                    expired_object_delete_marker=True,
                )
            ],
        )
        # CloudFormation's own EventBridge setting: the L2 ``event_bridge_enabled`` deploys a
        # Lambda-backed custom resource to do the same.
        upload_resource = self.upload_bucket.node.default_child
        assert isinstance(upload_resource, s3.CfnBucket)
        upload_resource.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True)
        )
        upload = actions.S3SourceAction(
            action_name="Upload",
            bucket=self.upload_bucket,
            bucket_key=source.object_key,
            output=output,
            trigger=actions.S3Trigger.NONE,
        )
        return upload, {
            ENV_REVISION: _plain(upload.variables.version_id),
            ENV_MESSAGE: _plain(f"upload of {source.object_key}"),
        }

    def _checkout(
        self, source: CodeConnectionsSource, output: codepipeline.Artifact
    ) -> actions.CodeStarConnectionsSourceAction:
        """The checkout of ``source``'s repository through the connection; a trigger may pick another branch."""
        assert self.connection_arn is not None
        owner, repo = source.repository.rsplit("/", 1)
        return actions.CodeStarConnectionsSourceAction(
            action_name=SOURCE_ACTION_NAME,
            connection_arn=self.connection_arn,
            owner=owner,
            repo=repo,
            branch=source.branch,
            output=output,
        )

    def _wire_source(self, source: SourceConfig, source_action: codepipeline.IAction) -> None:
        """What starts the pipeline: a push on the branch (within the path filters), or an upload of the key."""
        if isinstance(source, CodeConnectionsSource):
            self.pipeline.add_trigger(
                provider_type=codepipeline.ProviderType.CODE_STAR_SOURCE_CONNECTION,
                git_configuration=codepipeline.GitConfiguration(
                    source_action=source_action,
                    push_filter=[
                        codepipeline.GitPushFilter(
                            branches_includes=[source.branch],
                            file_paths_includes=list(source.include_paths) or None,
                            file_paths_excludes=list(source.exclude_paths) or None,
                        )
                    ],
                ),
            )
            # The action grants codestar-connections:UseConnection; connections made since 2024 have
            # codeconnections ARNs, which IAM checks against the codeconnections action.
            assert self.connection_arn is not None
            self.pipeline.role.add_to_principal_policy(
                iam.PolicyStatement(
                    sid="UseConnection",
                    actions=["codeconnections:UseConnection"],
                    resources=[self.connection_arn],
                )
            )
        elif isinstance(source, ZipSource):
            assert self.upload_bucket is not None
            events.Rule(
                self,
                "UploadRule",
                description=f"Starts the release pipeline when s3://<upload bucket>/{source.object_key} is uploaded",
                event_pattern=events.EventPattern(
                    source=["aws.s3"],
                    detail_type=["Object Created"],
                    detail={
                        "bucket": {"name": [self.upload_bucket.bucket_name]},
                        "object": {"key": [source.object_key]},
                    },
                ),
                targets=[targets.CodePipeline(self.pipeline)],
            )

    # -- cdk-nag -----------------------------------------------------------------------------

    def _logical_id(self, construct: IConstruct) -> str:
        element = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
        assert isinstance(element, cdk.CfnElement)
        return str(cdk.Stack.of(self).resolve(element.logical_id))

    def _nag(self, value: str) -> str:
        """A stack attribute as cdk-nag writes it in finding ids: a pseudo parameter as ``<AWS::Region>``, else literal."""
        resolved = cdk.Stack.of(self).resolve(value)
        return f"<{resolved['Ref']}>" if isinstance(resolved, dict) else str(resolved)

    def _build_reasons(self, project: codebuild.PipelineProject, site: str, artifacts: str) -> dict[str, str]:
        """Why each wildcard of a build role running the release engine (production or preview) is needed."""
        stack = cdk.Stack.of(self)
        return {
            "Action::s3:GetObject*": "CDK's read grant: the build reads its execution's source artifact from "
            "the pipeline's artifact bucket and restores its dependency cache from the cache bucket.",
            "Action::s3:GetBucket*": "Comes with CDK's read grants on the pipeline's artifact and cache "
            "buckets, which hold nothing but this pipeline's artifacts and this build's cache.",
            "Action::s3:List*": "Comes with CDK's read grants on the artifact and cache buckets, so the build "
            "finds the source artifact and the cache archive; the site bucket is listed only by prefix.",
            "Action::s3:DeleteObject*": "Part of CDK's read-write grant for CodeBuild's S3 cache, in the cache "
            "bucket only, where CodeBuild replaces the cache archive after each build.",
            "Action::s3:Abort*": "Part of CDK's read-write grant for CodeBuild's S3 cache: CodeBuild may abort a "
            "failed multipart upload of its cache archive, in the cache bucket only.",
            f"Resource::<{self._logical_id(self.cache_bucket)}.Arn>/*": "CodeBuild names the cache archive "
            "itself, so the grant covers the objects of the cache bucket, which holds only this build's cache.",
            artifacts: "CodePipeline names each execution's source artifact at run time, so the build may read "
            "any object of this pipeline's own artifact bucket.",
            f"Resource::arn:{self._nag(stack.partition)}:logs:{self._nag(stack.region)}:"
            f"{self._nag(stack.account)}:log-group:/aws/codebuild/<{self._logical_id(project)}>:*": "CDK's grant on the project's default log group: "
            "CodeBuild names one log stream per build (the build logs to the stack's BuildLogs group).",
            f"Resource::<{site}.Arn>/{RELEASES_PREFIX}*": "The release engine uploads each release under "
            "releases/<id>/, with an id known only at build time; in the site bucket it writes nowhere else "
            "but _meta/.",
            f"Resource::<{site}.Arn>/{META_PREFIX}*": "Release records, manifests, history entries and pending "
            "markers live under _meta/ with names made of release ids and times known only at build time.",
            f"Resource::<{site}.Arn>/{ERROR_PAGES_PREFIX}*": "Write only: the first release stages the "
            "built-in error pages under errors/, where CloudFront's custom error responses fetch them, while "
            "nothing is live yet.",
            f"Resource::<{site}.Arn>/{PENDING_PREFIX}*": "The only deletion allowed: the engine removes a "
            "release's pending marker once the release is complete; no release file can be deleted.",
        }

    def _acknowledge_findings(self, site_bucket: s3.IBucket) -> None:
        cdk.Validations.of(self.project).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-CB4",
                reason=(
                    "The build's only outputs are the release uploads to the site bucket (S3-managed "
                    "encryption) and its cache in a private, encrypted bucket; a customer managed KMS key "
                    "would add a monthly fee per site without protecting anything more."
                ),
            )
        )
        site = self._logical_id(site_bucket)
        artifacts = f"Resource::<{self._logical_id(self.artifact_bucket)}.Arn>/*"
        cdk.Validations.of(self.build_role).acknowledge(*_wildcards(self._build_reasons(self.project, site, artifacts)))
        for project in (self.verify_project, self.operate_project):
            self._acknowledge_operator(project, site, artifacts)
        # The execution ARN prefix CDK grants DescribeExecution on, as cdk-nag writes it (ARN parts of the Ref).
        machine = self._logical_id(self.rollout.state_machine)
        part = [f'{{"Fn::Select":[{i},{{"Fn::Split":[":",{{"Ref":"{machine}"}}]}}]}}' for i in range(7)]
        executions = f"arn:{part[1]}:states:{part[3]}:{part[4]}:execution:{part[6]}:{self.rollout_prefix}*"
        cdk.Validations.of(self.pipeline.role).acknowledge(
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{executions}]",
                reason="CodePipeline names each rollout execution at run time; it may read only the executions of "
                "this pipeline's own rollout state machine, started with this pipeline's prefix.",
            )
        )
        cdk.Validations.of(self.pipeline.role).acknowledge(
            *_wildcards(
                {
                    "Action::s3:GetObject*": "CDK's grants on the pipeline's artifact bucket (and, for ZIP uploads, on "
                    "the upload bucket and key): CodePipeline reads the artifacts it passes between stages.",
                    "Action::s3:GetBucket*": "Comes with CDK's grants on the artifact bucket (and the upload bucket): "
                    "CodePipeline checks a bucket's versioning and location before it uses it.",
                    "Action::s3:List*": "Comes with CDK's grants on the artifact bucket (and the upload bucket), "
                    "which belong to this pipeline alone.",
                    "Action::s3:DeleteObject*": "Part of CDK's read-write grant on the artifact bucket, where "
                    "CodePipeline replaces the artifacts of its own executions.",
                    "Action::s3:Abort*": "Part of CDK's read-write grant on the artifact bucket: CodePipeline may abort "
                    "a failed multipart upload of a source artifact.",
                    artifacts: "CodePipeline names each execution's artifacts at run time, inside this pipeline's own "
                    "artifact bucket.",
                }
            )
        )

    def _acknowledge_operator(self, project: codebuild.Project, site: str, artifacts: str) -> None:
        cdk.Validations.of(project).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-CB4",
                reason=(
                    "The operator build produces no artifact: it reads release records and writes routing "
                    "changes and their history (S3-managed encryption); a customer managed KMS key would add a "
                    "monthly fee per site without protecting anything more."
                ),
            )
        )
        stack = cdk.Stack.of(self)
        reasons = {
            f"Resource::arn:{self._nag(stack.partition)}:logs:{self._nag(stack.region)}:"
            f"{self._nag(stack.account)}:log-group:/aws/codebuild/<{self._logical_id(project)}>:*": "CDK's grant on the "
            "project's default log group: CodeBuild names one log stream per build (the build logs to the stack's "
            "BuildLogs group).",
        }
        if project is self.operate_project:
            reasons.update(
                {
                    f"Resource::<{site}.Arn>/{RELEASES_PREFIX}*": "Read, and written only by server-side copies: a "
                    "switch reads the files of a release whose id is known only at run time (its error pages) and "
                    "copies the retained releases' content-hashed assets into it (skew protection); it uploads "
                    "nothing and deletes nothing.",
                    f"Resource::<{site}.Arn>/{META_PREFIX}*": "Release records are read and history entries and "
                    "rollout records written under _meta/, with names made of release ids, rollout ids and times "
                    "known only at run time.",
                    f"Resource::<{site}.Arn>/{ERROR_PAGES_PREFIX}*": "Write only: each switch publishes the live "
                    "release's not-found and server-error pages to the fixed keys under errors/ that CloudFront's "
                    "custom error responses fetch.",
                }
            )
        else:
            reasons.update(
                {
                    f"Resource::<{site}.Arn>/{META_PREFIX}*": "Read only: verify reads the record of the staged "
                    "release, whose id is known only at run time.",
                    "Action::s3:GetObject*": "CDK's read grant: CodePipeline hands the Verify build the execution's "
                    "source artifact from the pipeline's artifact bucket.",
                    "Action::s3:GetBucket*": "Comes with CDK's read grant on the pipeline's artifact bucket, which "
                    "holds nothing but this pipeline's artifacts.",
                    "Action::s3:List*": "Comes with CDK's read grant on the artifact bucket, which belongs to this "
                    "pipeline alone.",
                    artifacts: "CodePipeline names each execution's source artifact at run time, so the Verify build "
                    "may read any object of this pipeline's own artifact bucket.",
                }
            )
        assert project.role is not None
        cdk.Validations.of(project.role).acknowledge(*_wildcards(reasons))


def _wildcards(reasons: dict[str, str]) -> list[cdk.Acknowledgment]:
    """Acknowledgements of cdk-nag's wildcard findings (``AwsSolutions-IAM5[<finding>]``), each with its reason."""
    return [
        cdk.Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]", reason=reason) for finding, reason in reasons.items()
    ]


def _plain(value: str) -> codebuild.BuildEnvironmentVariable:
    return codebuild.BuildEnvironmentVariable(value=value)
