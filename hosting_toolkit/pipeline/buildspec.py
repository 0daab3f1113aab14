"""The buildspec the pipeline runs: a framework template from ``buildspecs/`` plus the install of the
release engine and the post-build step that releases the build.

The post-build step is the release engine itself, ``hosting-toolkit release``, installed in the build
from this package's CDK asset: nothing about releasing is written in shell here.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hosting_toolkit.config import BuildConfig
from hosting_toolkit.pipeline.frameworks import PACKAGE_MANAGER_RECIPES, RECIPES

#: The checkout this package runs from: the buildspec templates, and what the build installs.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUILDSPECS_DIR = PROJECT_ROOT / "buildspecs"
REQUIREMENTS_FILE = PROJECT_ROOT / "requirements.txt"

#: Python of the build image that runs the release engine (the package needs 3.11 or later).
PYTHON_VERSION = "3.12"
#: Where the build installs the release engine, in a virtual environment of its own.
TOOLKIT_HOME = "/opt/hosting-toolkit"
#: Requirements that only synthesis needs; the build installs the others, as pinned.
SYNTH_ONLY_REQUIREMENTS = frozenset({"aws-cdk-lib", "constructs", "cdk-nag", "pyyaml"})
#: Inside the package asset: the lock of the release engine's dependencies, and the folder of their wheels.
LOCK_PATH = "hosting_toolkit/pipeline/engine.lock"
WHEELHOUSE_DIR = "wheelhouse"
#: What a build says when the release engine cannot be installed from the package asset.
INSTALL_FAILED = (
    "hosting-toolkit: the release engine's wheels shipped in the package asset are missing or do not match "
    "engine.lock (no package index is used); nothing was released and no viewer moved. Ship them again with "
    "'hosting-toolkit deploy'"
)
#: pip's download cache, kept between builds.
PIP_CACHE_PATH = "/root/.cache/pip/**/*"

# Environment of the build. The CLI reads the target and configuration variables itself
# (``--bucket``, ``--kvs-arn``, ``--site-url``, ``--config``); the others are the pipeline's.
ENV_HOME = "HOSTING_TOOLKIT_HOME"
ENV_APP_ROOT = "HOSTING_TOOLKIT_APP_ROOT"
ENV_OUTPUT_DIR = "HOSTING_TOOLKIT_OUTPUT_DIR"
ENV_PACKAGE = "HOSTING_TOOLKIT_PACKAGE"
ENV_SITE_CONFIG = "HOSTING_TOOLKIT_SITE_CONFIG"
ENV_CONFIG = "HOSTING_TOOLKIT_CONFIG"
ENV_BUCKET = "HOSTING_TOOLKIT_BUCKET"
ENV_KVS_ARN = "HOSTING_TOOLKIT_KVS_ARN"
ENV_SITE_URL = "HOSTING_TOOLKIT_SITE_URL"
#: Set by the pipeline's build action from the source action's variables.
ENV_COMMIT = "HOSTING_TOOLKIT_COMMIT"
ENV_REVISION = "HOSTING_TOOLKIT_REVISION"
ENV_MESSAGE = "HOSTING_TOOLKIT_MESSAGE"

#: Set on the preview pipeline's build: the same buildspec stages the release and moves its preview
#: (``previews build``), with the engine kept to ``preview:`` keys (``--preview-build``).
ENV_PREVIEW = "HOSTING_TOOLKIT_PREVIEW"
#: The branch the preview build checked out, and the preview pipeline's execution (its trigger tells
#: a pull request's number and whether it was closed); CodeBuild names the pipeline that started it
#: in ``CODEBUILD_INITIATOR`` (``codepipeline/<name>``).
ENV_BRANCH = "HOSTING_TOOLKIT_BRANCH"
ENV_EXECUTION = "HOSTING_TOOLKIT_EXECUTION"

ENTER_APP_ROOT = f'cd "$CODEBUILD_SRC_DIR/${ENV_APP_ROOT}"'

#: Writes the configuration the stack was synthesized with where ``--config`` (by its variable) reads it.
WRITE_CONFIG_COMMAND = f'printf \'%s\\n\' "${ENV_SITE_CONFIG}" > "${ENV_CONFIG}"'

#: The release the build staged, exported to the pipeline's later stages (``#{Build.<name>}``).
ENV_RELEASE_ID = "HOSTING_TOOLKIT_RELEASE_ID"
#: What one run of the operator project does: ``verify``, ``shift`` or ``retract`` (see ``OPERATE_COMMAND``).
ENV_STEP = "HOSTING_TOOLKIT_STEP"
#: The share of viewers a ``shift`` gives the release, 1-100.
ENV_PERCENT = "HOSTING_TOOLKIT_PERCENT"
#: The place of a ``shift`` in its rollout, from 0.
ENV_STEP_INDEX = "HOSTING_TOOLKIT_STEP_INDEX"
#: How many minutes the state machine watches a ``shift``, and how many steps its rollout has.
ENV_WATCH_MINUTES = "HOSTING_TOOLKIT_WATCH_MINUTES"
ENV_STEPS = "HOSTING_TOOLKIT_STEPS"
#: The rollout a ``shift`` or ``retract`` belongs to: the state machine's execution name.
ENV_ROLLOUT = "HOSTING_TOOLKIT_ROLLOUT"
#: Why a ``retract`` runs (the alarm that fired, the step that failed), kept in the history.
ENV_REASON = "HOSTING_TOOLKIT_REASON"
#: What a ``shift`` did, exported to the state machine: ``shifted``, ``live``, ``unchanged`` or ``stopped``.
ENV_OUTCOME = "HOSTING_TOOLKIT_OUTCOME"

#: The post-build step. In the preview pipeline's build (``ENV_PREVIEW``) it is ``previews build``:
#: stage the release and move its preview, or remove a closed pull request's preview, even after a
#: failed build. Otherwise it stages the build output as a release, only if the build succeeded, and
#: switches no traffic: the pipeline verifies the release, may wait for an approval, and the rollout
#: state machine moves viewers to it. A git commit gives the release id (its first 12 characters)
#: and the revision; a ZIP upload gives no id, so the engine derives it from the content. A commit
#: built before whose build is not byte-for-byte reproducible conflicts with its earlier release
#: (exit code 4): that earlier release is the one rolled out again.
RELEASE_COMMAND = f"""\
if [ -n "${{{ENV_PREVIEW}:-}}" ]; then
  failed=""; [ "${{CODEBUILD_BUILD_SUCCEEDING:-1}}" = 1 ] || failed=--build-failed
  "${ENV_HOME}/bin/hosting-toolkit" previews build "$CODEBUILD_SRC_DIR/${ENV_APP_ROOT}/${ENV_OUTPUT_DIR}" \
    --branch "${ENV_BRANCH}" --commit "${ENV_COMMIT}" --pipeline "${{CODEBUILD_INITIATOR#codepipeline/}}" \
    --execution "${ENV_EXECUTION}" $failed
elif [ "${{CODEBUILD_BUILD_SUCCEEDING:-1}}" != 1 ]; then
  echo "hosting-toolkit: the build failed, so nothing is released" >&2; false
else
  rid="${{{ENV_COMMIT}:0:12}}"
  code=0
  staged=$("${ENV_HOME}/bin/hosting-toolkit" release "$CODEBUILD_SRC_DIR/${ENV_APP_ROOT}/${ENV_OUTPUT_DIR}" \\
    ${{rid:+--id "$rid"}} --revision "${{{ENV_COMMIT}:-${{{ENV_REVISION}:-}}}}" --message "${{{ENV_MESSAGE}:-}}" \\
    --no-activate) || code=$?
  if [ "$code" = 4 ] && [ -n "$rid" ]; then
    echo "hosting-toolkit: commit $rid was released before from other bytes; rolling out that release" >&2
    staged="$rid"; code=0
  fi
  if [ "$code" = 0 ]; then export {ENV_RELEASE_ID}="$staged"; fi
  (exit "$code")
fi"""

#: The operator project's only command: one step of a release's way to the viewers, run by the
#: pipeline (``verify``) and by the rollout state machine (``shift``, ``retract``). A shift is a
#: ``rollout step``: it moves viewers only while the routing is as the rollout left it, and exports
#: what it did (``ENV_OUTCOME``) for the state machine, which stops on ``stopped``. A retract is a
#: ``rollout undo`` under the same condition. Every value is passed quoted, so no variable can add
#: arguments.
OPERATE_COMMAND = f"""\
ht="${ENV_HOME}/bin/hosting-toolkit"
case "${{{ENV_STEP}:-}}" in
  verify) "$ht" verify "${ENV_RELEASE_ID}" ;;
  shift)
    outcome=$("$ht" rollout step "${ENV_RELEASE_ID}" --percent "${ENV_PERCENT}" --index "${ENV_STEP_INDEX}" \\
      --of "${{{ENV_STEPS}:-0}}" --watch "${{{ENV_WATCH_MINUTES}:-0}}" --rollout "${ENV_ROLLOUT}") || exit $?
    export {ENV_OUTCOME}="$outcome" ;;
  retract) "$ht" rollout undo "${ENV_RELEASE_ID}" --rollout "${ENV_ROLLOUT}" --reason "${{{ENV_REASON}:-}}" ;;
  *) echo "hosting-toolkit: unknown step '${{{ENV_STEP}:-}}' (verify, shift or retract)" >&2; exit 2 ;;
esac"""

_REQUIREMENT_RE = re.compile(r"^([A-Za-z0-9._-]+)(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!_-]+$")


def release_requirements(requirements_file: Path = REQUIREMENTS_FILE) -> list[str]:
    """The pinned requirements of the release engine: ``requirements.txt`` without the synthesis-only ones."""
    pins = []
    for raw in requirements_file.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _REQUIREMENT_RE.match(line)
        if match is None:
            raise ValueError(f"{requirements_file}: {line!r} is not pinned as name==version")
        if match.group(1).lower().replace("_", "-") not in SYNTH_ONLY_REQUIREMENTS:
            pins.append(line)
    return pins


def install_toolkit_commands() -> list[str]:
    """Install the release engine into its own virtual environment from the package asset alone, then its
    configuration.

    The asset ships the hash-locked wheels of the engine's whole closure (``WHEELHOUSE_DIR``, ``LOCK_PATH``),
    so no command reaches a package index: a build (a rollback included) needs nothing outside AWS, and a
    wheel missing or altered fails the install phase, before any step that moves viewers.
    """
    package = f"${ENV_HOME}/package"
    pip = f'"${ENV_HOME}/bin/pip" install --quiet --disable-pip-version-check --no-index'
    return [
        f'python3 -m venv "${ENV_HOME}"',
        f'aws s3 cp "${ENV_PACKAGE}" "${ENV_HOME}/package.zip" --only-show-errors',
        f'rm -rf "{package}" && "${ENV_HOME}/bin/python" -m zipfile -e "${ENV_HOME}/package.zip" "{package}"',
        f'{pip} --find-links "{package}/{WHEELHOUSE_DIR}" --only-binary=:all: --require-hashes -r "{package}/{LOCK_PATH}"'
        f" || {{ echo {shlex.quote(INSTALL_FAILED)} >&2; exit 1; }}",
        f'{pip} --no-deps --no-build-isolation "{package}"',
        WRITE_CONFIG_COMMAND,
    ]


@dataclass(frozen=True)
class Template:
    """The framework-specific part of a buildspec, read from ``buildspecs/<framework>.yml``."""

    variables: dict[str, str]
    install: list[str]
    build: list[str]
    cache: list[str]


_TEMPLATE_KEYS = {"version", "env", "phases", "cache"}


def load_template(framework: str, directory: Path = BUILDSPECS_DIR) -> Template:
    """The template of ``framework``; it may only set variables, install and build commands, and cache paths."""
    # Only synthesis and init render buildspecs: the build installs the release engine without PyYAML.
    import yaml

    path = directory / f"{framework}.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(data) - _TEMPLATE_KEYS
    phases = data.get("phases") or {}
    unknown |= {f"phases.{name}" for name in set(phases) - {"install", "build"}}
    unknown |= {f"env.{name}" for name in set(data.get("env") or {}) - {"variables"}}
    if unknown or data.get("version") != 0.2:
        raise ValueError(
            f"{path}: a template is version 0.2 and sets only env.variables, phases.install, "
            f"phases.build and cache.paths (found {sorted(unknown) or data.get('version')})"
        )
    variables = {str(k): str(v) for k, v in ((data.get("env") or {}).get("variables") or {}).items()}
    return Template(
        variables=variables,
        install=list((phases.get("install") or {}).get("commands") or []),
        build=list((phases.get("build") or {}).get("commands") or []),
        cache=list((data.get("cache") or {}).get("paths") or []),
    )


def default_build(framework: str) -> tuple[str, str]:
    """The build command and output folder a framework's template gives (either may be empty)."""
    template = load_template(framework)
    return " && ".join(template.build), template.variables.get(ENV_OUTPUT_DIR, "")


def _under(app_root: str, path: str) -> str:
    return path if app_root == "." else f"{app_root}/{path}"


def install_command(build: BuildConfig) -> str | None:
    """The command installing the site's dependencies: configured, or the package manager's clean install."""
    if build.install_command:
        return build.install_command
    if RECIPES[build.framework].node:
        return PACKAGE_MANAGER_RECIPES[build.package_manager].install
    return None


def render_buildspec(build: BuildConfig) -> dict[str, Any]:
    """The buildspec (version 0.2) the pipeline's CodeBuild project runs for ``build``."""
    recipe = RECIPES[build.framework]
    template = load_template(build.framework)
    variables = {
        ENV_HOME: TOOLKIT_HOME,
        ENV_CONFIG: f"{TOOLKIT_HOME}/hosting.toml",
        ENV_APP_ROOT: build.app_root,
        **template.variables,
    }
    if build.output_dir:
        variables[ENV_OUTPUT_DIR] = build.output_dir
    if ENV_OUTPUT_DIR not in variables:
        raise ValueError(f"build.output_dir: the {build.framework!r} framework needs the build's output folder")

    runtimes = {"python": PYTHON_VERSION}
    uses_node = recipe.node or build.framework == "custom"
    if uses_node:
        runtimes["nodejs"] = build.node_version
    dependencies = install_command(build)
    install = [
        *install_toolkit_commands(),
        ENTER_APP_ROOT,
        *([dependencies] if dependencies else []),
        *template.install,
    ]
    phases: dict[str, Any] = {"install": {"runtime-versions": runtimes, "commands": install}}
    build_commands = [build.command] if build.command else template.build
    if build_commands:
        phases["build"] = {"on-failure": "ABORT", "commands": [ENTER_APP_ROOT, *build_commands]}
    phases["post_build"] = {"commands": [RELEASE_COMMAND]}

    cache = [PIP_CACHE_PATH]
    if recipe.node:
        cache += PACKAGE_MANAGER_RECIPES[build.package_manager].cache_paths
    cache += [_under(build.app_root, path) for path in template.cache]
    return {
        "version": 0.2,
        "env": {"shell": "bash", "variables": variables, "exported-variables": [ENV_RELEASE_ID]},
        "phases": phases,
        "cache": {"paths": cache},
    }


def render_operate_buildspec() -> dict[str, Any]:
    """The buildspec of the operator project: install the release engine, then run ``OPERATE_COMMAND``."""
    return {
        "version": 0.2,
        "env": {
            "shell": "bash",
            "variables": {ENV_HOME: TOOLKIT_HOME, ENV_CONFIG: f"{TOOLKIT_HOME}/hosting.toml"},
            "exported-variables": [ENV_OUTCOME],
        },
        "phases": {
            "install": {
                "runtime-versions": {"python": PYTHON_VERSION},
                "commands": install_toolkit_commands(),
            },
            "build": {"commands": [OPERATE_COMMAND]},
        },
        "cache": {"paths": [PIP_CACHE_PATH]},
    }
