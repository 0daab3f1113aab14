"""Load and validate ``hosting.toml``: one typed, frozen configuration for the CDK app and the CLI."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from hosting_toolkit.edge.rules import RulesConfig, header_rules, redirect_rules, rewrite_rules
from hosting_toolkit.errors import ConfigError
from hosting_toolkit.validation import suggest, tables

DEFAULT_CONFIG_FILE = "hosting.toml"

SiteMode = Literal["spa", "static"]
SITE_MODES: tuple[str, ...] = ("spa", "static")
_SITE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_ENTRY_RE = re.compile(r"^[A-Za-z0-9._-]+\.html?$")


@dataclass(frozen=True)
class SiteConfig:
    """What the site is and how its URLs map to files.

    name: lowercase name used for the stack and resource descriptions (default ``site``).
    mode: ``spa`` maps extensionless paths to the entry page; ``static`` maps ``/a/`` to
      ``/a/index.html`` and ``/a`` to ``/a.html`` when the release has it, else ``/a/index.html``.
    entry: the page every release must contain (default ``index.html``).
    """

    name: str = "site"
    mode: SiteMode = "spa"
    entry: str = "index.html"


@dataclass(frozen=True)
class HeadersConfig:
    """Security headers added to every response.

    content_security_policy: the CSP header value; omitted when empty (default).
    hsts_max_age: Strict-Transport-Security max-age in seconds (default two years).
    frame_options: ``DENY`` or ``SAMEORIGIN`` (default ``DENY``).
    referrer_policy: Referrer-Policy value (default ``strict-origin-when-cross-origin``).
    """

    content_security_policy: str = ""
    hsts_max_age: int = 63072000
    frame_options: Literal["DENY", "SAMEORIGIN"] = "DENY"
    referrer_policy: str = "strict-origin-when-cross-origin"


REFERRER_POLICIES = (
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
)


@dataclass(frozen=True)
class ReleaseConfig:
    """How releases are uploaded, kept and checked.

    keep: releases ``prune`` keeps besides live, canary and pinned ones (default 10).
    pins: recent live releases kept routable for viewers pinned to them (default 3).
    concurrency: parallel uploads (default 16).
    max_archive_bytes: largest total uncompressed size of a ZIP release (default 2 GiB).
    max_archive_ratio: largest compression ratio of a ZIP entry, against zip bombs (default 200).
    max_files: most files in one release (default 200,000).
    """

    keep: int = 10
    pins: int = 3
    concurrency: int = 16
    max_archive_bytes: int = 2 * 1024**3
    max_archive_ratio: int = 200
    max_files: int = 200_000


RolloutStrategy = Literal["all-at-once", "canary", "linear"]
ROLLOUT_STRATEGIES: tuple[str, ...] = ("all-at-once", "canary", "linear")
#: The longest rollout the pipeline runs, steps and bake time together.
MAX_ROLLOUT_MINUTES = 1440
#: Alarms a rollout reads in one DescribeAlarms page (100 at most), its own error-rate alarm included.
MAX_ROLLOUT_ALARMS = 50


@dataclass(frozen=True)
class RolloutConfig:
    """How a new release takes traffic, and how long a viewer keeps its canary cohort.

    strategy: ``all-at-once`` (default) switches every viewer at once; ``canary`` gives ``percent``
      of viewers the new release for ``interval_minutes``, then everyone; ``linear`` adds
      ``percent`` every ``interval_minutes`` until everyone has it.
    percent: the canary share, or the step of a linear rollout (1-100, default 10).
    interval_minutes: how long a canary or a linear step lasts (default 10).
    bake_minutes: how long the alarms are still watched once everyone has the release (default 10).
    cohort_idle_seconds: a viewer's ``__cohort`` cookie ends after this long without a page
      view (default one hour).
    cohort_max_seconds: a cohort is drawn again after this long, however active the viewer
      (default one day).
    alarms: names of CloudWatch alarms (metric or composite, in the stack's region) that stop a
      rollout and roll it back (default none).
    error_rate_percent: the pipeline's own alarm fires when the distribution's 5xx error rate stays
      above this for 2 of 3 minutes; 0 turns it off (default 5). CloudFront publishes the metric in
      us-east-1 only, so the alarm is made only when the stack runs there.
    approval: the pipeline waits for a person to approve each verified release before its rollout
      starts (default false).
    notify: e-mail addresses subscribed to a notification topic the stack creates (default none).
    notify_topic_arn: an existing SNS topic to notify instead (default none: the stack's own with
      ``notify``, else no notifications). Notified: an approval waiting, a rollout started, each
      step done, a rollout stopped or rolled back automatically (with the reason), a release live.
    """

    strategy: RolloutStrategy = "all-at-once"
    percent: int = 10
    interval_minutes: int = 10
    bake_minutes: int = 10
    cohort_idle_seconds: int = 3600
    cohort_max_seconds: int = 86400
    alarms: tuple[str, ...] = ()
    error_rate_percent: int | float = 5
    approval: bool = False
    notify: tuple[str, ...] = ()
    notify_topic_arn: str = ""

    @property
    def notifies(self) -> bool:
        """Whether rollouts and approvals are announced on a topic."""
        return bool(self.notify or self.notify_topic_arn)

    def steps(self) -> tuple[tuple[int, int], ...]:
        """The rollout as ``(percent of viewers, minutes watched)`` steps; the last is 100% for ``bake_minutes``."""
        if self.strategy == "canary" and self.percent < 100:
            return ((self.percent, self.interval_minutes), (100, self.bake_minutes))
        if self.strategy == "linear" and self.percent < 100:
            shares = range(self.percent, 100, self.percent)
            return (*((share, self.interval_minutes) for share in shares), (100, self.bake_minutes))
        return ((100, self.bake_minutes),)

    @property
    def total_minutes(self) -> int:
        """How long a rollout takes at least: every step's watch."""
        return sum(minutes for _, minutes in self.steps())


@dataclass(frozen=True)
class VerifyCheck:
    """One request ``verify`` sends to a staged release through the preview path.

    path: the path requested (default ``/``).
    status: the status the response must have (default 200).
    text: text the body must contain (default: not checked).
    content_type: what the ``Content-Type`` must start with (default: not checked).
    """

    path: str = "/"
    status: int = 200
    text: str = ""
    content_type: str = ""


@dataclass(frozen=True)
class VerifyConfig:
    """What ``verify`` checks on a staged release before it takes traffic.

    checks: the requests to send, as ``[[verify.checks]]`` tables (default: ``/`` answers 200).
    assets: also check that every same-origin script, stylesheet, link and image the entry page
      references resolves (default true).
    timeout_seconds: time allowed for each request (default 10).
    wait_seconds: how long to wait for the edge to honour the preview token (default 60).
    """

    checks: tuple[VerifyCheck, ...] = (VerifyCheck(),)
    assets: bool = True
    timeout_seconds: int = 10
    wait_seconds: int = 60


SourceProvider = Literal["github", "gitlab", "bitbucket"]
SOURCE_PROVIDERS: tuple[str, ...] = ("github", "gitlab", "bitbucket")


@dataclass(frozen=True)
class CodeConnectionsSource:
    """A git repository on GitHub, GitLab or Bitbucket, reached through an AWS CodeConnections connection.

    provider: ``github``, ``gitlab`` or ``bitbucket`` (default ``github``).
    repository: ``owner/name`` (GitLab subgroups: ``group/subgroup/name``) (required).
    branch: the branch whose pushes are released (default ``main``).
    connection_arn: an existing, approved connection (default: the stack creates one, which must be
      approved once in the console; ``deploy`` prints where).
    include_paths: glob patterns; a push starts the pipeline only if it changes a matching file
      (default none: every push). For monorepos, e.g. ``["apps/web/**"]``.
    exclude_paths: glob patterns of files whose changes alone never start the pipeline (default none).
    """

    type: ClassVar[str] = "codeconnections"
    provider: SourceProvider = "github"
    repository: str = ""
    branch: str = "main"
    connection_arn: str = ""
    include_paths: tuple[str, ...] = ()
    exclude_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class CodeCommitSource:
    """A repository in AWS CodeCommit of the stack's account and region.

    repository: the repository name (required).
    branch: the branch whose pushes are released (default ``main``).
    """

    type: ClassVar[str] = "codecommit"
    repository: str = ""
    branch: str = "main"


@dataclass(frozen=True)
class ZipSource:
    """ZIP files uploaded to a bucket the stack creates; each upload of ``object_key`` is released.

    object_key: the key uploads go to; it must end in ``.zip`` (default ``site.zip``). Every upload
      under this key starts the pipeline, and the release id comes from the content, so a changed
      ZIP uploaded under the same name is a new release.
    """

    type: ClassVar[str] = "zip"
    object_key: str = "site.zip"


SourceConfig = CodeConnectionsSource | CodeCommitSource | ZipSource
#: The ``[source]`` alternatives by their ``type`` key.
SOURCE_TYPES: dict[str, type[CodeConnectionsSource | CodeCommitSource | ZipSource]] = {
    cls.type: cls for cls in (CodeConnectionsSource, CodeCommitSource, ZipSource)
}

#: Build recipes, one ``buildspecs/<name>.yml`` each (``custom`` runs ``build.command``).
FRAMEWORKS: tuple[str, ...] = ("static", "vite", "react", "vue", "angular", "next", "astro", "hugo", "gatsby", "custom")
#: Frameworks whose output folder depends on the project, so ``build.output_dir`` is required.
FRAMEWORKS_NEEDING_OUTPUT_DIR: tuple[str, ...] = ("angular", "custom")
PACKAGE_MANAGERS: tuple[str, ...] = ("npm", "pnpm", "yarn")
#: Node.js major versions of the CodeBuild image (Amazon Linux 2023 standard 5.0).
NODE_VERSIONS: tuple[str, ...] = ("18", "20", "22", "24")
COMPUTE_SIZES: tuple[str, ...] = ("small", "medium", "large")


@dataclass(frozen=True)
class BuildConfig:
    """How the pipeline builds the site before releasing it (used only with a ``[source]``).

    framework: the build recipe, ``buildspecs/<framework>.yml`` (default ``static``: no build).
    command: the build command (default: the recipe's, e.g. ``npm run build``; required for ``custom``).
    output_dir: the build's output folder, relative to ``app_root`` (default: the recipe's, e.g.
      ``dist``; required for ``angular`` and ``custom``).
    install_command: installs the dependencies (default: by ``package_manager`` for Node.js recipes,
      none for ``static``, ``hugo`` and ``custom``).
    app_root: the site's folder inside the repository, for monorepos (default ``.``).
    package_manager: ``npm``, ``pnpm`` or ``yarn`` (default ``npm``).
    node_version: Node.js major version (default ``22``).
    compute: CodeBuild size, ``small`` (3 GB), ``medium`` (7 GB) or ``large`` (15 GB) (default ``small``).
    env: plain environment variables of the build (default none).
    secrets: environment variables read from AWS Secrets Manager, by secret NAME (``name`` or
      ``name:json-key``); the value never appears in the template (default none).
    parameters: environment variables read from SSM Parameter Store, by parameter NAME (default none).
    """

    framework: str = "static"
    command: str = ""
    output_dir: str = ""
    install_command: str = ""
    app_root: str = "."
    package_manager: str = "npm"
    node_version: str = "22"
    compute: str = "small"
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)


WwwRedirect = Literal["none", "www-to-apex", "apex-to-www"]
WWW_REDIRECTS: tuple[str, ...] = ("none", "www-to-apex", "apex-to-www")
#: ACM's default quota of names on one certificate; the redirecting ``www`` name counts too.
MAX_DOMAIN_NAMES = 10


@dataclass(frozen=True)
class DomainConfig:
    """The site's own domain names, served over HTTPS (TLS 1.2 or later) with an ACM certificate.

    names: the names the site answers on; the first is its address (default none: only the
      distribution's ``*.cloudfront.net`` name).
    www_redirect: ``www-to-apex`` also answers ``www.<first name>`` and redirects it to the first
      name; ``apex-to-www`` answers the first name without its ``www.`` and redirects it to the
      first name (default ``none``). The redirecting name is on the certificate and in DNS too.
    hosted_zone_id, hosted_zone_name: a Route 53 public hosted zone holding every name; with it,
      the certificate is validated and the A and AAAA alias records are created by the stack
      (default none: ``deploy`` prints the records to create at your DNS provider).
    """

    names: tuple[str, ...] = ()
    www_redirect: WwwRedirect = "none"
    hosted_zone_id: str = ""
    hosted_zone_name: str = ""

    @property
    def enabled(self) -> bool:
        """Whether the site has its own domain names."""
        return bool(self.names)

    @property
    def redirect(self) -> tuple[str, str] | None:
        """``(from, to)``: the name ``www_redirect`` sends to the first name, or ``None``."""
        if not self.names or self.www_redirect not in ("www-to-apex", "apex-to-www"):
            return None
        first = self.names[0]
        if self.www_redirect == "www-to-apex":
            return f"www.{first}", first
        return first.removeprefix("www."), first

    @property
    def all_names(self) -> tuple[str, ...]:
        """Every name on the certificate, the distribution and in DNS: ``names`` and the redirecting one."""
        redirect = self.redirect
        return (*self.names, redirect[0]) if redirect else self.names


@dataclass(frozen=True)
class LogsConfig:
    """CloudFront standard access logs, delivered to an S3 bucket the stack creates.

    enabled: write a log of every viewer request (default false).
    retention_days: days a log file is kept before it expires (default 90).
    """

    enabled: bool = False
    retention_days: int = 90


@dataclass(frozen=True)
class WafConfig:
    """An AWS WAF web ACL in front of the distribution.

    web_acl_arn: ARN of a WAFv2 web ACL with scope CLOUDFRONT (created in us-east-1) (default none).
    """

    web_acl_arn: str = ""


#: Statuses a missing path may get in ``spa`` mode, with the entry page as its body.
SPA_NOT_FOUND_STATUSES: tuple[int, ...] = (404, 200)


@dataclass(frozen=True)
class ErrorsConfig:
    """The pages viewers get for a missing path or a failing origin, published from the live release.

    not_found: (``static`` mode) the page of each release served with status 404 for a missing
      path (default ``404.html``); a release without it, or an empty value, gets a built-in page.
    server_error: the page of each release served when the origin fails (500, 502, 503, 504),
      with that status (default ``500.html``); a release without it, or an empty value, gets a
      built-in page.
    spa_status: (``spa`` mode) the status of the entry page served for a missing path: 404
      (default; browsers still run the app, while crawlers and asset loaders see a miss) or 200.
    """

    not_found: str = "404.html"
    server_error: str = "500.html"
    spa_status: int = 404

    def not_found_status(self, mode: str) -> int:
        """The status a missing path answers with in ``mode``."""
        return self.spa_status if mode == "spa" else 404


@dataclass(frozen=True)
class PreviewsConfig:
    """Branch and pull-request previews: each gets its own live URL, built by a preview pipeline.

    enabled: true as soon as the ``[previews]`` table is present (default false: no previews).
    branches: glob patterns of the branches whose pushes get a preview; a pattern starting with
      ``!`` excludes (default ``["*"]``: every branch but the production one).
    pull_requests: every open pull request gets a preview, removed when it is closed or merged
      (default true).
    domain: the previews' parent domain: ``pr-42.<domain>`` (wildcard certificate and DNS record in
      the stack) (default none: previews open by a link on the site's own address).
    retention_days: ``prune`` removes previews that have not moved for this long (default 30).
    public: previews open without the preview token (default false: token-protected).
    """

    enabled: bool = False
    branches: tuple[str, ...] = ("*",)
    pull_requests: bool = True
    domain: str = ""
    retention_days: int = 30
    public: bool = False


@dataclass(frozen=True)
class HostingConfig:
    """The whole validated configuration."""

    site: SiteConfig = field(default_factory=SiteConfig)
    headers: HeadersConfig = field(default_factory=HeadersConfig)
    release: ReleaseConfig = field(default_factory=ReleaseConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    source: SourceConfig | None = None
    build: BuildConfig = field(default_factory=BuildConfig)
    domain: DomainConfig = field(default_factory=DomainConfig)
    logs: LogsConfig = field(default_factory=LogsConfig)
    waf: WafConfig = field(default_factory=WafConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    errors: ErrorsConfig = field(default_factory=ErrorsConfig)
    previews: PreviewsConfig = field(default_factory=PreviewsConfig)
    path: Path | None = None

    @property
    def stack_name(self) -> str:
        """CloudFormation stack name for this site."""
        return f"hosting-{self.site.name}"

    @property
    def served_domain(self) -> DomainConfig:
        """``domain`` with the previews' wildcard name (``*.<previews.domain>``) after the site's names:
        what the certificate, the distribution and the DNS records cover."""
        if not (self.previews.enabled and self.previews.domain and self.domain.names):
            return self.domain
        return replace(self.domain, names=(*self.domain.names, f"*.{self.previews.domain}"))


_SECTIONS: dict[str, type] = {
    "site": SiteConfig,
    "headers": HeadersConfig,
    "release": ReleaseConfig,
    "rollout": RolloutConfig,
    "verify": VerifyConfig,
    "build": BuildConfig,
    "domain": DomainConfig,
    "logs": LogsConfig,
    "waf": WafConfig,
    "rules": RulesConfig,
    "errors": ErrorsConfig,
    "previews": PreviewsConfig,
}


def _check_int(problems: list[str], key: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(f"{key}: expected a whole number, got {value!r}")
    elif not low <= value <= high:
        problems.append(f"{key}: {value} is out of range; use {low} to {high}")


def _validate_site(problems: list[str], s: SiteConfig) -> None:
    if not isinstance(s.name, str) or not _SITE_NAME_RE.match(s.name):
        problems.append(
            f"site.name: {s.name!r} is not a valid name; use 2-32 lowercase letters, digits "
            "and hyphens, starting with a letter (e.g. 'marketing-site')"
        )
    if s.mode not in SITE_MODES:
        problems.append(f"site.mode: {s.mode!r} is not a mode; use 'spa' or 'static'")
    if not isinstance(s.entry, str) or not _ENTRY_RE.match(s.entry):
        problems.append(f"site.entry: {s.entry!r} must be an .html file name at the release root (e.g. 'index.html')")


def _validate_headers(problems: list[str], h: HeadersConfig) -> None:
    if not isinstance(h.content_security_policy, str) or any(c in h.content_security_policy for c in "\r\n"):
        problems.append("headers.content_security_policy: must be one line of text")
    _check_int(problems, "headers.hsts_max_age", h.hsts_max_age, 0, 10 * 63072000)
    if h.frame_options not in ("DENY", "SAMEORIGIN"):
        problems.append(f"headers.frame_options: {h.frame_options!r} is not valid; use 'DENY' or 'SAMEORIGIN'")
    if h.referrer_policy not in REFERRER_POLICIES:
        problems.append(
            f"headers.referrer_policy: {h.referrer_policy!r} is not a policy{suggest(str(h.referrer_policy), list(REFERRER_POLICIES))}"
        )


def _validate_release(problems: list[str], r: ReleaseConfig) -> None:
    _check_int(problems, "release.keep", r.keep, 1, 1000)
    _check_int(problems, "release.pins", r.pins, 0, 10)
    _check_int(problems, "release.concurrency", r.concurrency, 1, 256)
    _check_int(problems, "release.max_archive_bytes", r.max_archive_bytes, 1024, 1024**4)
    _check_int(problems, "release.max_archive_ratio", r.max_archive_ratio, 2, 100_000)
    _check_int(problems, "release.max_files", r.max_files, 1, 10_000_000)


def _check_line(problems: list[str], key: str, value: Any, *, required: bool = False) -> None:
    if not isinstance(value, str) or any(c in value for c in "\r\n"):
        problems.append(f"{key}: must be one line of text")
    elif required and not value.strip():
        problems.append(f"{key}: must not be empty")


def _validate_rollout(problems: list[str], r: RolloutConfig) -> None:
    if r.strategy not in ROLLOUT_STRATEGIES:
        problems.append(
            f"rollout.strategy: {r.strategy!r} is not a strategy{suggest(str(r.strategy), list(ROLLOUT_STRATEGIES))}"
        )
    _check_int(problems, "rollout.percent", r.percent, 1, 100)
    _check_int(problems, "rollout.interval_minutes", r.interval_minutes, 1, 1440)
    _check_int(problems, "rollout.bake_minutes", r.bake_minutes, 0, 1440)
    _check_int(problems, "rollout.cohort_idle_seconds", r.cohort_idle_seconds, 60, 7 * 86400)
    # Browsers keep a cookie at most 400 days.
    _check_int(problems, "rollout.cohort_max_seconds", r.cohort_max_seconds, 60, 400 * 86400)
    idle, most = r.cohort_idle_seconds, r.cohort_max_seconds
    if isinstance(idle, int) and isinstance(most, int) and most < idle:
        problems.append(
            f"rollout.cohort_max_seconds: {most} is shorter than rollout.cohort_idle_seconds ({idle}); "
            "the maximum lifetime must be at least the idle one"
        )
    if not isinstance(r.approval, bool):
        problems.append(f"rollout.approval: expected true or false, got {r.approval!r}")
    rate = r.error_rate_percent
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 100:
        problems.append(f"rollout.error_rate_percent: {rate!r} is not a percentage from 0 (off) to 100")
    if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (r.percent, r.interval_minutes)) and (
        isinstance(r.bake_minutes, int) and r.strategy in ROLLOUT_STRATEGIES
    ):
        total = r.total_minutes
        if total > MAX_ROLLOUT_MINUTES:
            problems.append(
                f"rollout: the {r.strategy} rollout takes {total} minutes ({len(r.steps())} steps); "
                f"keep it within {MAX_ROLLOUT_MINUTES} (a day): raise rollout.percent or shorten rollout.interval_minutes"
            )
    _validate_notify(problems, r)
    if not isinstance(r.alarms, tuple):
        problems.append(f"rollout.alarms: expected a list of CloudWatch alarm names, got {r.alarms!r}")
        return
    for i, name in enumerate(r.alarms):
        if not isinstance(name, str) or not 1 <= len(name) <= 255 or any(c in name for c in "\r\n"):
            problems.append(f"rollout.alarms[{i}]: {name!r} is not an alarm name (1-255 characters)")
    if len(set(r.alarms)) != len(r.alarms):
        problems.append("rollout.alarms: lists an alarm more than once")
    if len(r.alarms) > MAX_ROLLOUT_ALARMS:
        problems.append(
            f"rollout.alarms: {len(r.alarms)} alarms; a rollout watches at most {MAX_ROLLOUT_ALARMS} "
            "(combine them in a composite alarm)"
        )


_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_TOPIC_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
#: Subscriptions a stack creates at most (each is confirmed by its recipient).
MAX_NOTIFY_ADDRESSES = 10


def _validate_notify(problems: list[str], r: RolloutConfig) -> None:
    if not isinstance(r.notify, tuple):
        problems.append(f"rollout.notify: expected a list of e-mail addresses, got {r.notify!r}")
    else:
        for i, address in enumerate(r.notify):
            if not isinstance(address, str) or not _EMAIL_RE.match(address):
                problems.append(f"rollout.notify[{i}]: {address!r} is not an e-mail address")
        if len(set(r.notify)) != len(r.notify):
            problems.append("rollout.notify: lists an address more than once")
        if len(r.notify) > MAX_NOTIFY_ADDRESSES:
            problems.append(
                f"rollout.notify: {len(r.notify)} addresses; give at most {MAX_NOTIFY_ADDRESSES}, or a mailing list"
            )
    if not isinstance(r.notify_topic_arn, str) or (r.notify_topic_arn and not _TOPIC_ARN_RE.match(r.notify_topic_arn)):
        problems.append(
            f"rollout.notify_topic_arn: {r.notify_topic_arn!r} is not an SNS topic ARN "
            "(arn:aws:sns:REGION:ACCOUNT:NAME)"
        )
    elif r.notify_topic_arn.endswith(".fifo"):
        problems.append("rollout.notify_topic_arn: a FIFO topic cannot deliver e-mail; use a standard topic")
    if r.notify_topic_arn and isinstance(r.notify, tuple) and r.notify:
        problems.append(
            "rollout.notify: give either e-mail addresses (the stack creates the topic) or rollout.notify_topic_arn "
            "(subscribe them to that topic yourself), not both"
        )


def _validate_verify(problems: list[str], v: VerifyConfig) -> None:
    if not isinstance(v.checks, tuple):
        problems.append(f"verify.checks: expected [[verify.checks]] tables, got {v.checks!r}")
    elif not v.checks:
        problems.append('verify.checks: give at least one check (e.g. path = "/")')
    if not isinstance(v.assets, bool):
        problems.append(f"verify.assets: expected true or false, got {v.assets!r}")
    _check_int(problems, "verify.timeout_seconds", v.timeout_seconds, 1, 300)
    _check_int(problems, "verify.wait_seconds", v.wait_seconds, 0, 3600)


def _verify_checks(problems: list[str], value: Any) -> Any:
    """``[[verify.checks]]`` tables as ``VerifyCheck``s; problems are reported with their index."""
    if not isinstance(value, list):
        return value  # _validate_verify says what is wrong with it
    return tables(problems, "verify.checks", value, [f.name for f in fields(VerifyCheck)], _verify_check)


def _verify_check(problems: list[str], key: str, table: dict[str, Any]) -> VerifyCheck:
    check = VerifyCheck(**{k: v for k, v in table.items() if k in {f.name for f in fields(VerifyCheck)}})
    if not isinstance(check.path, str) or not check.path.startswith("/") or any(c in check.path for c in " \r\n#"):
        problems.append(f"{key}.path: {check.path!r} must be a path starting with '/' (e.g. '/about')")
    _check_int(problems, f"{key}.status", check.status, 100, 599)
    _check_line(problems, f"{key}.text", check.text)
    _check_line(problems, f"{key}.content_type", check.content_type)
    return check


def _as_tuple(problems: list[str], value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _node_version(problems: list[str], value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


#: Keys whose TOML value needs converting before the section is built.
_CONVERT: dict[tuple[str, str], Callable[[list[str], Any], Any]] = {
    ("verify", "checks"): _verify_checks,
    ("rollout", "alarms"): _as_tuple,
    ("rollout", "notify"): _as_tuple,
    ("build", "node_version"): _node_version,
    ("domain", "names"): _as_tuple,
    ("previews", "branches"): _as_tuple,
    ("rules", "redirects"): redirect_rules,
    ("rules", "rewrites"): rewrite_rules,
    ("rules", "headers"): header_rules,
}


_REPOSITORY_PATH_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
_CODECOMMIT_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_BRANCH_RE = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
_CONNECTION_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"
)
_OBJECT_KEY_RE = re.compile(r"^[A-Za-z0-9._/-]{1,1020}\.zip$")
_RELATIVE_PATH_RE = re.compile(r"^[A-Za-z0-9._@+-]+(/[A-Za-z0-9._@+-]+)*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}(:[A-Za-z0-9_.-]{1,256})?$")
_PARAMETER_NAME_RE = re.compile(r"^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
#: Environment the build sets itself; a site's variables may not replace it.
_RESERVED_ENV_PREFIXES = ("AWS_", "CODEBUILD_", "HOSTING_TOOLKIT_")
#: CodePipeline accepts at most this many patterns per trigger filter list.
_MAX_PATH_FILTERS = 8


def _parse_source(problems: list[str], table: dict[str, Any]) -> SourceConfig | None:
    """The ``[source]`` alternative its ``type`` names, with the keys of that type only."""
    kinds = list(SOURCE_TYPES)
    kind = table.get("type")
    if kind is None:
        problems.append(f"source.type: missing; use one of {', '.join(repr(k) for k in kinds)}")
        return None
    if kind not in SOURCE_TYPES:
        problems.append(f"source.type: {kind!r} is not a source type{suggest(str(kind), kinds)}")
        return None
    cls = SOURCE_TYPES[kind]
    known = [f.name for f in fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, item in table.items():
        if key == "type":
            continue
        if key not in known:
            problems.append(f"source.{key}: not a key of a {kind!r} source{suggest(key, known)}")
        else:
            kwargs[key] = tuple(item) if isinstance(item, list) else item
    return cls(**kwargs)


def _check_branch(problems: list[str], key: str, value: Any) -> None:
    if (
        not isinstance(value, str)
        or not _BRANCH_RE.match(value)
        or value.startswith(("-", "/"))
        or value.endswith(("/", ".lock"))
        or ".." in value
    ):
        problems.append(f"{key}: {value!r} is not a branch name (e.g. 'main')")


def _check_path_filters(problems: list[str], key: str, value: Any) -> None:
    if not isinstance(value, tuple) or not all(isinstance(p, str) and p.strip() for p in value):
        problems.append(f"{key}: expected a list of glob patterns (e.g. ['apps/web/**'])")
    elif len(value) > _MAX_PATH_FILTERS:
        problems.append(f"{key}: {len(value)} patterns; CodePipeline takes at most {_MAX_PATH_FILTERS}")


def _validate_source(problems: list[str], source: SourceConfig | None) -> None:
    if isinstance(source, CodeConnectionsSource):
        if source.provider not in SOURCE_PROVIDERS:
            problems.append(
                f"source.provider: {source.provider!r} is not a provider{suggest(str(source.provider), list(SOURCE_PROVIDERS))}"
            )
        if not isinstance(source.repository, str) or not _REPOSITORY_PATH_RE.match(source.repository):
            problems.append(f"source.repository: {source.repository!r} must be 'owner/name' (e.g. 'acme/website')")
        _check_branch(problems, "source.branch", source.branch)
        if source.connection_arn and (
            not isinstance(source.connection_arn, str) or not _CONNECTION_ARN_RE.match(source.connection_arn)
        ):
            problems.append(
                f"source.connection_arn: {source.connection_arn!r} is not a connection ARN "
                "(arn:aws:codeconnections:<region>:<account>:connection/<id>); leave it out to have the stack create one"
            )
        _check_path_filters(problems, "source.include_paths", source.include_paths)
        _check_path_filters(problems, "source.exclude_paths", source.exclude_paths)
    elif isinstance(source, CodeCommitSource):
        if not isinstance(source.repository, str) or not _CODECOMMIT_NAME_RE.match(source.repository):
            problems.append(f"source.repository: {source.repository!r} must be a CodeCommit repository name")
        _check_branch(problems, "source.branch", source.branch)
    elif isinstance(source, ZipSource) and (
        not isinstance(source.object_key, str)
        or not _OBJECT_KEY_RE.match(source.object_key)
        or source.object_key.startswith("/")
        or "//" in source.object_key
        or ".." in source.object_key
    ):
        problems.append(
            f"source.object_key: {source.object_key!r} must be a relative key ending in '.zip' (e.g. 'site.zip')"
        )


def _check_relative_path(problems: list[str], key: str, value: Any, *, allow_empty: bool) -> None:
    if value == "" and allow_empty:
        return
    if value == ".":
        return
    parts = value.split("/") if isinstance(value, str) else []
    if not isinstance(value, str) or not _RELATIVE_PATH_RE.match(value) or any(p in (".", "..") for p in parts):
        problems.append(f"{key}: {value!r} must be a folder relative to the repository, without '..' (e.g. 'dist')")


def _check_variables(problems: list[str], key: str, table: Any, name_re: re.Pattern[str], what: str) -> None:
    if not isinstance(table, dict):
        problems.append(f"{key}: expected a table of NAME = value")
        return
    for name, value in table.items():
        if not _ENV_NAME_RE.match(name):
            problems.append(f"{key}.{name}: not an environment variable name (letters, digits and _)")
        elif name.startswith(_RESERVED_ENV_PREFIXES):
            problems.append(
                f"{key}.{name}: names starting with {', '.join(_RESERVED_ENV_PREFIXES)} are the build's own"
            )
        if not isinstance(value, str):
            problems.append(f"{key}.{name}: expected text in quotes, got {value!r}")
        elif name_re is _ANY_TEXT:
            if not name_re.match(value):
                problems.append(f"{key}.{name}: must be one line of text")
        elif value.startswith("arn:"):
            problems.append(f"{key}.{name}: give the {what}'s name, not its ARN")
        elif not name_re.match(value):
            problems.append(f"{key}.{name}: {value!r} is not a {what} name")


_ANY_TEXT = re.compile(r"^[^\r\n]*$")


def _validate_build(problems: list[str], b: BuildConfig) -> None:
    if b.framework not in FRAMEWORKS:
        problems.append(
            f"build.framework: {b.framework!r} is not a framework{suggest(str(b.framework), list(FRAMEWORKS))}"
        )
    for key in ("command", "install_command"):
        _check_line(problems, f"build.{key}", getattr(b, key))
    _check_relative_path(problems, "build.output_dir", b.output_dir, allow_empty=True)
    _check_relative_path(problems, "build.app_root", b.app_root, allow_empty=False)
    if b.framework == "custom" and not b.command:
        problems.append("build.command: the 'custom' framework needs the command that builds the site")
    if b.framework == "static" and b.command:
        problems.append("build.command: the 'static' framework runs no build; use framework = 'custom' to run one")
    if b.framework in FRAMEWORKS_NEEDING_OUTPUT_DIR and not b.output_dir:
        hint = " ('hosting-toolkit init' reads it from angular.json)" if b.framework == "angular" else ""
        problems.append(f"build.output_dir: the {b.framework!r} framework needs the build's output folder{hint}")
    if b.package_manager not in PACKAGE_MANAGERS:
        problems.append(
            f"build.package_manager: {b.package_manager!r} is not supported{suggest(str(b.package_manager), list(PACKAGE_MANAGERS))}"
        )
    if b.node_version not in NODE_VERSIONS:
        problems.append(
            f"build.node_version: {b.node_version!r} is not available; use one of {', '.join(NODE_VERSIONS)}"
        )
    if b.compute not in COMPUTE_SIZES:
        problems.append(f"build.compute: {b.compute!r} is not a size; use one of {', '.join(COMPUTE_SIZES)}")
    _check_variables(problems, "build.env", b.env, _ANY_TEXT, "value")
    _check_variables(problems, "build.secrets", b.secrets, _SECRET_NAME_RE, "Secrets Manager secret")
    _check_variables(problems, "build.parameters", b.parameters, _PARAMETER_NAME_RE, "SSM parameter")
    tables = [t for t in (b.env, b.secrets, b.parameters) if isinstance(t, dict)]
    names = [name for table in tables for name in table]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"build: {name} is set more than once across build.env, build.secrets and build.parameters")


_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_HOSTED_ZONE_ID_RE = re.compile(r"^Z[A-Z0-9]{1,31}$")
_WEB_ACL_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:wafv2:us-east-1:\d{12}:global/webacl/[A-Za-z0-9_-]{1,128}/[0-9a-f-]{36}$"
)


def _check_hostname(problems: list[str], key: str, value: Any) -> bool:
    if not isinstance(value, str) or not _HOSTNAME_RE.match(value):
        hint = " (use lowercase)" if isinstance(value, str) and _HOSTNAME_RE.match(value.lower()) else ""
        wildcard = "; wildcard names are not supported" if isinstance(value, str) and "*" in value else ""
        problems.append(f"{key}: {value!r} is not a domain name{hint}{wildcard} (e.g. 'www.example.com')")
        return False
    return True


def _validate_domain(problems: list[str], d: DomainConfig) -> None:
    if not isinstance(d.names, tuple):
        problems.append(f"domain.names: expected a list of domain names, got {d.names!r}")
        return
    valid = all([_check_hostname(problems, f"domain.names[{i}]", name) for i, name in enumerate(d.names)])
    if len(set(d.names)) != len(d.names):
        problems.append("domain.names: lists a name more than once")
    if d.www_redirect not in WWW_REDIRECTS:
        problems.append(
            f"domain.www_redirect: {d.www_redirect!r} is not a redirect{suggest(str(d.www_redirect), list(WWW_REDIRECTS))}"
        )
    elif d.www_redirect != "none" and not d.names:
        problems.append("domain.www_redirect: needs domain.names; the redirect goes to the first name")
    elif valid and d.names:
        first = d.names[0]
        if d.www_redirect == "www-to-apex" and first.startswith("www."):
            problems.append(
                f"domain.www_redirect: 'www-to-apex' redirects www.<first name> to the first name, which is {first!r}; "
                "list the name without 'www.' first, or use 'apex-to-www'"
            )
        elif d.www_redirect == "apex-to-www" and (not first.startswith("www.") or "." not in first[4:]):
            problems.append(
                f"domain.www_redirect: 'apex-to-www' redirects to the first name, which must start with 'www.' "
                f"(it is {first!r})"
            )
        elif d.redirect is not None and d.redirect[0] in d.names:
            problems.append(
                f"domain.names: {d.redirect[0]!r} is redirected by domain.www_redirect; leave it out of the list"
            )
    if len(d.all_names) > MAX_DOMAIN_NAMES:
        problems.append(
            f"domain.names: {len(d.all_names)} names with the redirecting one; a certificate holds at most "
            f"{MAX_DOMAIN_NAMES} (ACM's default quota)"
        )
    zone_id, zone_name = d.hosted_zone_id, d.hosted_zone_name
    if not isinstance(zone_id, str) or (zone_id and not _HOSTED_ZONE_ID_RE.match(zone_id)):
        hint = "; give it without the '/hostedzone/' prefix" if isinstance(zone_id, str) and "/" in zone_id else ""
        problems.append(
            f"domain.hosted_zone_id: {zone_id!r} is not a Route 53 hosted zone id (e.g. 'Z0123456789ABCDEFGHIJ'){hint}"
        )
        return
    if zone_name and not _check_hostname(problems, "domain.hosted_zone_name", zone_name):
        return
    if bool(zone_id) != bool(zone_name):
        problems.append("domain: give both hosted_zone_id and hosted_zone_name, or neither")
    elif zone_id and not d.names:
        problems.append("domain.hosted_zone_id: needs domain.names, the names to create in the zone")
    elif zone_id and valid:
        for name in d.all_names:
            if name != zone_name and not name.endswith(f".{zone_name}"):
                problems.append(f"domain.names: {name!r} is not in the hosted zone {zone_name!r}")


def _validate_logs(problems: list[str], logs: LogsConfig) -> None:
    if not isinstance(logs.enabled, bool):
        problems.append(f"logs.enabled: expected true or false, got {logs.enabled!r}")
    _check_int(problems, "logs.retention_days", logs.retention_days, 1, 3650)


def _validate_waf(problems: list[str], waf: WafConfig) -> None:
    if waf.web_acl_arn and (not isinstance(waf.web_acl_arn, str) or not _WEB_ACL_ARN_RE.match(waf.web_acl_arn)):
        problems.append(
            f"waf.web_acl_arn: {waf.web_acl_arn!r} is not the ARN of a CloudFront web ACL "
            "(arn:aws:wafv2:us-east-1:<account>:global/webacl/<name>/<id>; scope CLOUDFRONT, created in us-east-1)"
        )


_PAGE_PATH_RE = re.compile(r"^[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*(/[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)*\.html?$")


def _validate_errors(problems: list[str], e: ErrorsConfig) -> None:
    for key in ("not_found", "server_error"):
        value = getattr(e, key)
        if value != "" and (not isinstance(value, str) or not _PAGE_PATH_RE.match(value)):
            problems.append(
                f"errors.{key}: {value!r} must be the path of an .html file inside the release, without "
                "a leading '/' or '..' (e.g. '404.html'), or empty for the built-in page"
            )
    if e.spa_status not in SPA_NOT_FOUND_STATUSES or isinstance(e.spa_status, bool):
        problems.append(f"errors.spa_status: {e.spa_status!r} is not supported; use 404 or 200")


_BRANCH_PATTERN_RE = re.compile(r"^!?[A-Za-z0-9._/*?\[\]-]{1,255}$")
#: CodePipeline takes at most this many branch patterns in one trigger filter.
MAX_BRANCH_PATTERNS = 8


def _validate_previews(problems: list[str], p: PreviewsConfig, config: HostingConfig) -> None:
    for key in ("enabled", "pull_requests", "public"):
        if not isinstance(getattr(p, key), bool):
            problems.append(f"previews.{key}: expected true or false, got {getattr(p, key)!r}")
    if not isinstance(p.branches, tuple) or not all(isinstance(b, str) for b in p.branches):
        problems.append(
            f"previews.branches: expected a list of branch patterns (e.g. ['*', '!main']), got {p.branches!r}"
        )
    else:
        for i, pattern in enumerate(p.branches):
            if not _BRANCH_PATTERN_RE.match(pattern) or ".." in pattern:
                problems.append(
                    f"previews.branches[{i}]: {pattern!r} is not a branch pattern (e.g. 'feature/*', '!release/*')"
                )
        includes = [b for b in p.branches if not b.startswith("!")]
        if p.branches and not includes:
            problems.append("previews.branches: only excludes; add the branches to preview (e.g. '*')")
        if len(includes) > MAX_BRANCH_PATTERNS or len(p.branches) - len(includes) > MAX_BRANCH_PATTERNS:
            problems.append(
                f"previews.branches: CodePipeline takes at most {MAX_BRANCH_PATTERNS} includes and excludes"
            )
    _check_int(problems, "previews.retention_days", p.retention_days, 1, 3650)
    if p.domain and _check_hostname(problems, "previews.domain", p.domain):
        d = config.domain
        if p.domain in d.all_names:
            problems.append(f"previews.domain: {p.domain!r} is one of domain.names; use a name of its own")
        if d.hosted_zone_name and p.domain != d.hosted_zone_name and not p.domain.endswith(f".{d.hosted_zone_name}"):
            problems.append(f"previews.domain: {p.domain!r} is not in the hosted zone {d.hosted_zone_name!r}")
        if not d.names:
            problems.append(
                "previews.domain: needs domain.names; the distribution answers on its own names and the previews'"
            )
        elif 1 + len(d.all_names) > MAX_DOMAIN_NAMES:
            problems.append(
                f"previews.domain: the wildcard name is one too many for a certificate ({MAX_DOMAIN_NAMES})"
            )
    if not p.enabled:
        return
    source = config.source
    if isinstance(source, CodeCommitSource):
        problems.append(
            "previews: CodeCommit sources cannot trigger on other branches or pull requests (CodePipeline triggers "
            "with branch and pull-request filters exist only for CodeConnections sources); use a 'codeconnections' "
            "source, or remove [previews]"
        )
    elif isinstance(source, ZipSource):
        problems.append(
            "previews: a 'zip' source has no branches or pull requests; use a git source, or remove [previews]"
        )


#: Sections that are typed alternatives, parsed by their own function.
_ALTERNATIVES: dict[str, Callable[[list[str], dict[str, Any]], Any]] = {"source": _parse_source}


def parse_config(data: dict[str, Any], path: Path | None = None) -> HostingConfig:
    """Validate a parsed TOML document; every problem is reported together in one ``ConfigError``."""
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _SECTIONS and name not in _ALTERNATIVES:
            problems.append(f"[{name}]: unknown section{suggest(name, [*_SECTIONS, *_ALTERNATIVES])}")
            continue
        if not isinstance(value, dict):
            problems.append(f"{name}: expected a [{name}] table")
            continue
        if name in _ALTERNATIVES:
            sections[name] = _ALTERNATIVES[name](problems, value)
            continue
        cls = _SECTIONS[name]
        known = [f.name for f in fields(cls)]
        # Writing the [previews] table turns previews on; ``enabled = false`` keeps it written but off.
        kwargs: dict[str, Any] = {"enabled": True} if name == "previews" else {}
        for key, item in value.items():
            if key not in known:
                problems.append(f"{name}.{key}: unknown key{suggest(key, known)}")
            else:
                convert = _CONVERT.get((name, key))
                kwargs[key] = convert(problems, item) if convert else item
        sections[name] = cls(**kwargs)
    config = HostingConfig(path=path, **sections)
    _validate_site(problems, config.site)
    _validate_headers(problems, config.headers)
    _validate_release(problems, config.release)
    _validate_rollout(problems, config.rollout)
    _validate_verify(problems, config.verify)
    _validate_source(problems, config.source)
    _validate_build(problems, config.build)
    _validate_domain(problems, config.domain)
    _validate_logs(problems, config.logs)
    _validate_waf(problems, config.waf)
    _validate_errors(problems, config.errors)
    _validate_previews(problems, config.previews, config)
    if problems:
        raise ConfigError(problems, str(path) if path else None)
    return config


def load_config(path: str | Path | None = None, *, required: bool = False) -> HostingConfig:
    """Load ``path`` (default ``./hosting.toml``); without a file, the defaults unless ``required``."""
    explicit = path is not None
    file = Path(path) if path is not None else Path(DEFAULT_CONFIG_FILE)
    if not file.exists():
        if explicit or required:
            raise ConfigError(["file not found; create it from hosting.example.toml"], str(file))
        return HostingConfig()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], str(file)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read the file: {exc}"], str(file)) from exc
    return parse_config(data, file)
