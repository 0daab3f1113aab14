"""Rendering the buildspec of every framework: the template's commands, the release engine's install and the release step."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hosting_toolkit.config import FRAMEWORKS, BuildConfig
from hosting_toolkit.pipeline.buildspec import (
    BUILDSPECS_DIR,
    ENTER_APP_ROOT,
    ENV_APP_ROOT,
    ENV_CONFIG,
    ENV_HOME,
    ENV_OUTPUT_DIR,
    INSTALL_FAILED,
    LOCK_PATH,
    PIP_CACHE_PATH,
    PYTHON_VERSION,
    RELEASE_COMMAND,
    REQUIREMENTS_FILE,
    SYNTH_ONLY_REQUIREMENTS,
    TOOLKIT_HOME,
    WHEELHOUSE_DIR,
    WRITE_CONFIG_COMMAND,
    default_build,
    install_toolkit_commands,
    load_template,
    release_requirements,
    render_buildspec,
    render_operate_buildspec,
)
from hosting_toolkit.pipeline.frameworks import PACKAGE_MANAGER_RECIPES, RECIPES

#: What each framework builds with and where its output lands, as its buildspec template says.
EXPECTED = {
    "static": (None, "."),
    "vite": ("npm run build", "dist"),
    "react": ("npm run build", "build"),
    "vue": ("npm run build", "dist"),
    "angular": ("npm run build", "dist/shop/browser"),
    "next": ("npm run build", "out"),
    "astro": ("npm run build", "dist"),
    "hugo": ("hugo --minify", "public"),
    "gatsby": ("npm run build", "public"),
    "custom": ("bundle exec jekyll build", "_site"),
}
NODE_FRAMEWORKS = ["vite", "react", "vue", "angular", "next", "astro", "gatsby"]
INSTALL = install_toolkit_commands()


def build_for(framework: str, **overrides: Any) -> BuildConfig:
    """A valid ``[build]`` for ``framework`` (angular and custom need an output folder, custom a command)."""
    settings: dict[str, Any] = {"framework": framework}
    if framework == "angular":
        settings["output_dir"] = "dist/shop/browser"
    if framework == "custom":
        settings.update(command="bundle exec jekyll build", output_dir="_site")
    settings.update(overrides)
    return BuildConfig(**settings)


def render(framework: str, **overrides: Any) -> dict[str, Any]:
    return render_buildspec(build_for(framework, **overrides))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_framework_has_a_template_and_a_recipe(framework: str) -> None:
    assert (BUILDSPECS_DIR / f"{framework}.yml").is_file()
    assert RECIPES[framework].name == framework


def test_no_template_without_a_framework() -> None:
    assert sorted(p.stem for p in BUILDSPECS_DIR.glob("*.yml")) == sorted(FRAMEWORKS)
    assert list(RECIPES) == list(FRAMEWORKS)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_buildspec_builds_with_the_frameworks_command_into_its_output_folder(framework: str) -> None:
    spec = render(framework)
    command, output = EXPECTED[framework]

    assert spec["version"] == 0.2
    assert spec["env"]["shell"] == "bash"
    assert spec["env"]["variables"][ENV_OUTPUT_DIR] == output
    if command is None:
        assert "build" not in spec["phases"]
    else:
        assert spec["phases"]["build"] == {"on-failure": "ABORT", "commands": [ENTER_APP_ROOT, command]}


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_buildspec_installs_the_release_engine_first_and_releases_after_the_build(framework: str) -> None:
    spec = render(framework)
    install = spec["phases"]["install"]["commands"]

    assert install[: len(INSTALL)] == INSTALL
    assert install[len(INSTALL)] == ENTER_APP_ROOT
    assert spec["phases"]["post_build"] == {"commands": [RELEASE_COMMAND]}
    assert spec["env"]["variables"][ENV_HOME] == TOOLKIT_HOME
    assert spec["env"]["variables"][ENV_CONFIG] == f"{TOOLKIT_HOME}/hosting.toml"
    assert spec["env"]["variables"][ENV_APP_ROOT] == "."
    assert PIP_CACHE_PATH in spec["cache"]["paths"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_node_frameworks_get_node_and_a_clean_install_others_only_python(framework: str) -> None:
    spec = render(framework)
    runtimes = spec["phases"]["install"]["runtime-versions"]
    after_toolkit = spec["phases"]["install"]["commands"][len(INSTALL) + 1 :]

    assert runtimes["python"] == PYTHON_VERSION
    if framework in NODE_FRAMEWORKS:
        assert runtimes["nodejs"] == "22"
        assert after_toolkit[0] == "npm ci --no-audit --no-fund"
        assert "/root/.npm/**/*" in spec["cache"]["paths"]
    else:
        assert "npm ci --no-audit --no-fund" not in after_toolkit
        assert ("nodejs" in runtimes) == (framework == "custom")


def test_hugo_installs_the_pinned_extended_binary_in_the_app_root() -> None:
    spec = render("hugo")
    install = spec["phases"]["install"]["commands"]

    assert install[len(INSTALL)] == ENTER_APP_ROOT
    assert "hugo_extended_${HUGO_VERSION}_linux-amd64.tar.gz" in install[len(INSTALL) + 1]
    assert spec["env"]["variables"]["HUGO_VERSION"].count(".") == 2


def test_configured_command_output_install_and_node_version_replace_the_defaults() -> None:
    spec = render(
        "vite",
        command="npm run build:prod",
        output_dir="build/site",
        install_command="npm install --legacy-peer-deps",
        node_version="20",
    )

    assert spec["phases"]["build"]["commands"] == [ENTER_APP_ROOT, "npm run build:prod"]
    assert spec["env"]["variables"][ENV_OUTPUT_DIR] == "build/site"
    assert spec["phases"]["install"]["commands"][len(INSTALL) + 1 :] == ["npm install --legacy-peer-deps"]
    assert spec["phases"]["install"]["runtime-versions"]["nodejs"] == "20"


@pytest.mark.parametrize("manager", ["pnpm", "yarn"])
def test_package_manager_chooses_the_install_and_the_cache(manager: str) -> None:
    spec = render("next", package_manager=manager)
    recipe = PACKAGE_MANAGER_RECIPES[manager]

    assert spec["phases"]["install"]["commands"][len(INSTALL) + 1 :] == [recipe.install]
    assert spec["cache"]["paths"] == [PIP_CACHE_PATH, *recipe.cache_paths, ".next/cache/**/*"]


def test_framework_caches_are_kept_under_the_app_root_of_a_monorepo() -> None:
    spec = render("gatsby", app_root="apps/www")

    assert spec["env"]["variables"][ENV_APP_ROOT] == "apps/www"
    assert spec["cache"]["paths"][-2:] == ["apps/www/.cache/**/*", "apps/www/public/**/*"]


def test_custom_build_installs_nothing_unless_told() -> None:
    plain = render("custom")
    told = render("custom", install_command="bundle install")

    assert plain["phases"]["install"]["commands"][len(INSTALL) + 1 :] == []
    assert told["phases"]["install"]["commands"][len(INSTALL) + 1 :] == ["bundle install"]


def test_missing_output_folder_is_refused() -> None:
    with pytest.raises(ValueError, match="needs the build's output folder"):
        render_buildspec(BuildConfig(framework="angular"))


def test_default_build_reads_the_template() -> None:
    assert default_build("next") == ("npm run build", "out")
    assert default_build("static") == ("", ".")
    assert default_build("custom") == ("", "")


def test_template_may_set_only_its_own_parts(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("version: 0.2\nphases:\n  post_build:\n    commands: [rm -rf /]\n")

    with pytest.raises(ValueError, match=r"phases\.post_build"):
        load_template("bad", tmp_path)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_rendered_buildspec_round_trips_through_yaml(framework: str) -> None:
    spec = render_buildspec(build_for(framework))

    assert yaml.safe_load(yaml.safe_dump(spec)) == spec


def test_release_engine_requirements_are_the_pinned_runtime_ones_without_cdk() -> None:
    pins = release_requirements()
    names = [shlex.split(p)[0].split("[")[0].split("==")[0].lower() for p in pins]

    assert {"boto3", "botocore", "awscrt", "typer", "rich"} <= set(names)
    assert not set(names) & SYNTH_ONLY_REQUIREMENTS
    assert all("==" in p for p in pins)
    assert "botocore[crt]==" in " ".join(pins)
    lines = [line.strip() for line in REQUIREMENTS_FILE.read_text().splitlines() if line.strip() and line[0] != "#"]
    assert len(lines) == len(pins) + len(SYNTH_ONLY_REQUIREMENTS)


@pytest.mark.parametrize("spec", ["build", "operate"])
def test_release_engine_installs_from_the_package_asset_alone(spec: str) -> None:
    rendered = render("static") if spec == "build" else render_operate_buildspec()
    install = rendered["phases"]["install"]["commands"]
    pips = [shlex.split(c.split(" || ", 1)[0]) for c in install if c.startswith(f'"${ENV_HOME}/bin/pip"')]

    assert install[: len(INSTALL)] == INSTALL
    assert len(pips) == 2
    assert all("--no-index" in pip for pip in pips)
    locked, package = pips
    assert locked[locked.index("--find-links") + 1] == f"${ENV_HOME}/package/{WHEELHOUSE_DIR}"
    assert locked[locked.index("-r") + 1] == f"${ENV_HOME}/package/{LOCK_PATH}"
    assert {"--require-hashes", "--only-binary=:all:"} <= set(locked)
    assert {"--no-deps", "--no-build-isolation"} <= set(package)
    assert package[-1] == f"${ENV_HOME}/package"
    words = " ".join(install)
    for index_access in ("--index-url", "--extra-index-url", "http://", "https://", "pypi"):
        assert index_access not in words


def test_failed_install_of_the_locked_wheels_ends_the_phase_with_one_clear_line() -> None:
    (command,) = [c for c in INSTALL if "--require-hashes" in c]

    assert command.endswith(f"|| {{ echo {shlex.quote(INSTALL_FAILED)} >&2; exit 1; }}")
    assert "no viewer moved" in INSTALL_FAILED


def test_unpinned_requirement_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "requirements.txt"
    file.write_text("boto3>=1\n")

    with pytest.raises(ValueError, match="not pinned"):
        release_requirements(file)


@pytest.mark.parametrize("command", [RELEASE_COMMAND, WRITE_CONFIG_COMMAND, *INSTALL])
def test_build_commands_are_valid_bash(command: str) -> None:
    result = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
