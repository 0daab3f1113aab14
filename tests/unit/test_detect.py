"""Framework detection on one fixture site per framework, written by the tests as each framework's starter lays it out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hosting_toolkit.pipeline.detect import Repository, detect, find_repository, parse_remote
from hosting_toolkit.pipeline.frameworks import NPM_INSTALL_WITHOUT_LOCKFILE, YARN_BERRY_INSTALL
from tests.fakes.sites import write_files


def package_json(*, deps: dict[str, str] | None = None, dev: dict[str, str] | None = None, build: str = "") -> str:
    data: dict[str, Any] = {"name": "my-site", "private": True}
    if build:
        data["scripts"] = {"dev": "whatever", "build": build}
    if deps:
        data["dependencies"] = deps
    if dev:
        data["devDependencies"] = dev
    return json.dumps(data)


ANGULAR_JSON = {
    "version": 1,
    "projects": {
        "shop": {
            "projectType": "application",
            "architect": {
                "build": {
                    "builder": "@angular-devkit/build-angular:application",
                    "options": {"outputPath": "dist/shop", "browser": "src/main.ts"},
                }
            },
        }
    },
}

#: One site per framework: its files, and the framework and output folder detection must find.
FIXTURES: dict[str, tuple[dict[str, str], str | None]] = {
    "static": ({"index.html": "<!doctype html>", "about/index.html": "<!doctype html>"}, None),
    "vite": (
        {
            "package.json": package_json(
                deps={"react": "^18"}, dev={"vite": "^5", "typescript": "^5"}, build="tsc -b && vite build"
            ),
            "vite.config.ts": "import { defineConfig } from 'vite'\nexport default defineConfig({})\n",
            "package-lock.json": "{}",
            "index.html": "<!doctype html>",
        },
        None,
    ),
    "react": (
        {
            "package.json": package_json(deps={"react": "^18", "react-scripts": "5.0.1"}, build="react-scripts build"),
            "package-lock.json": "{}",
            "public/index.html": "<!doctype html>",
        },
        None,
    ),
    "vue": (
        {
            "package.json": package_json(
                deps={"vue": "^3"}, dev={"@vue/cli-service": "~5.0.0"}, build="vue-cli-service build"
            ),
            "vue.config.js": "module.exports = { outputDir: 'www' }\n",
            "package-lock.json": "{}",
        },
        "www",
    ),
    "angular": (
        {
            "package.json": package_json(
                deps={"@angular/core": "^18"},
                dev={"@angular/cli": "^18", "@angular-devkit/build-angular": "^18"},
                build="ng build",
            ),
            "angular.json": json.dumps(ANGULAR_JSON),
            "package-lock.json": "{}",
        },
        "dist/shop/browser",
    ),
    "next": (
        {
            "package.json": package_json(deps={"next": "14.2.3", "react": "^18"}, build="next build"),
            "next.config.mjs": "const nextConfig = {\n  output: 'export',\n  images: { unoptimized: true },\n}\nexport default nextConfig\n",
            "package-lock.json": "{}",
        },
        None,
    ),
    "astro": (
        {
            "package.json": package_json(deps={"astro": "^4"}, build="astro check && astro build"),
            "astro.config.mjs": "import { defineConfig } from 'astro/config';\nexport default defineConfig({});\n",
            "package-lock.json": "{}",
        },
        None,
    ),
    "hugo": (
        {"hugo.toml": "baseURL = 'https://example.org/'\ntitle = 'Docs'\n", "content/_index.md": "# Docs\n"},
        None,
    ),
    "gatsby": (
        {
            "package.json": package_json(deps={"gatsby": "^5", "react": "^18"}, build="gatsby build"),
            "gatsby-config.ts": "export default { siteMetadata: {} }\n",
            "package-lock.json": "{}",
        },
        None,
    ),
}


def site(root: Path, files: dict[str, str]) -> Path:
    return write_files(root, dict(files))


@pytest.mark.parametrize("framework", sorted(FIXTURES))
def test_each_frameworks_starter_is_detected(framework: str, tmp_path: Path) -> None:
    files, output = FIXTURES[framework]

    detection = detect(site(tmp_path / framework, files))

    assert detection.framework == framework, detection.evidence
    assert detection.candidates == (framework,)
    assert detection.output_dir == output
    assert detection.problems == ()
    assert detection.evidence


def test_evidence_says_what_was_seen(tmp_path: Path) -> None:
    detection = detect(site(tmp_path, FIXTURES["vite"][0]))

    assert detection.evidence == (
        "package.json depends on vite",
        "vite.config.ts is there",
        'package.json scripts.build is "tsc -b && vite build"',
        "package-lock.json: dependencies install with npm",
    )


def test_angular_browser_builder_writes_into_the_output_path_itself(tmp_path: Path) -> None:
    config = json.loads(json.dumps(ANGULAR_JSON))
    config["projects"]["shop"]["architect"]["build"]["builder"] = "@angular-devkit/build-angular:browser"
    files = {**FIXTURES["angular"][0], "angular.json": json.dumps(config)}

    assert detect(site(tmp_path, files)).output_dir == "dist/shop"


def test_angular_output_path_object_names_base_and_browser_folder(tmp_path: Path) -> None:
    config = json.loads(json.dumps(ANGULAR_JSON))
    config["projects"]["shop"]["architect"]["build"]["options"]["outputPath"] = {"base": "build", "browser": ""}
    files = {**FIXTURES["angular"][0], "angular.json": json.dumps(config)}

    assert detect(site(tmp_path, files)).output_dir == "build"


def test_next_without_static_export_is_a_problem(tmp_path: Path) -> None:
    files = {**FIXTURES["next"][0], "next.config.mjs": "export default { reactStrictMode: true }\n"}

    detection = detect(site(tmp_path, files))

    assert detection.framework == "next"
    assert len(detection.problems) == 1
    assert "output: 'export'" in detection.problems[0]


def test_astro_server_output_is_a_problem_and_out_dir_is_read(tmp_path: Path) -> None:
    files = {
        **FIXTURES["astro"][0],
        "astro.config.mjs": "export default defineConfig({ output: 'server', outDir: './build' })\n",
    }

    detection = detect(site(tmp_path, files))

    assert detection.output_dir == "build"
    assert "server output" in detection.problems[0]


def test_hugo_legacy_config_with_content_folder_and_publish_dir(tmp_path: Path) -> None:
    detection = detect(site(tmp_path, {"config.toml": "publishDir = 'docs'\n", "content/post.md": "hi"}))

    assert detection.framework == "hugo"
    assert detection.output_dir == "docs"


def test_a_lone_config_toml_is_not_hugo(tmp_path: Path) -> None:
    detection = detect(site(tmp_path, {"config.toml": "x = 1\n"}))

    assert detection.framework is None
    assert detection.candidates == ()
    assert "no framework, build script or index.html found" in detection.evidence


def test_two_frameworks_without_a_deciding_build_script_are_ambiguous(tmp_path: Path) -> None:
    files = {"package.json": package_json(deps={"next": "14", "gatsby": "5"}), "package-lock.json": "{}"}

    detection = detect(site(tmp_path, files))

    assert detection.framework is None
    assert detection.candidates == ("next", "gatsby")


def test_the_build_script_decides_between_frameworks_it_names_one_of(tmp_path: Path) -> None:
    files = {
        **FIXTURES["next"][0],
        "package.json": package_json(
            deps={"next": "14"}, dev={"vite": "5", "@storybook/react-vite": "8"}, build="next build"
        ),
    }

    detection = detect(site(tmp_path, files))

    assert detection.candidates == ("next", "vite")
    assert detection.framework == "next"


def test_a_build_tool_without_a_recipe_is_never_taken_for_vite(tmp_path: Path) -> None:
    files = {
        "package.json": package_json(dev={"@sveltejs/kit": "^2", "vite": "^5"}, build="vite build"),
        "vite.config.js": "export default {}\n",
        "package-lock.json": "{}",
    }

    detection = detect(site(tmp_path, files))

    assert detection.framework is None
    assert "SvelteKit is in the dependencies; it has no recipe here (use 'custom')" in detection.evidence


def test_unknown_build_script_leaves_the_framework_open(tmp_path: Path) -> None:
    files = {"package.json": package_json(dev={"@11ty/eleventy": "^2"}, build="eleventy"), "package-lock.json": "{}"}

    detection = detect(site(tmp_path, files))

    assert (detection.framework, detection.candidates) == (None, ())
    assert detection.has_package_json


def test_index_html_with_a_build_script_is_not_taken_as_static(tmp_path: Path) -> None:
    files = {"package.json": package_json(build="node build.js"), "index.html": "<!doctype html>"}

    assert detect(site(tmp_path, files)).framework is None


@pytest.mark.parametrize(
    ("lockfiles", "manager", "install"),
    [
        ({"package-lock.json": "{}"}, "npm", None),
        ({"pnpm-lock.yaml": ""}, "pnpm", None),
        ({"yarn.lock": ""}, "yarn", None),
        ({"yarn.lock": "", ".yarnrc.yml": "nodeLinker: node-modules\n"}, "yarn", YARN_BERRY_INSTALL),
        ({}, "npm", NPM_INSTALL_WITHOUT_LOCKFILE),
    ],
    ids=["npm", "pnpm", "yarn", "yarn-berry", "no-lockfile"],
)
def test_package_manager_from_the_lockfile(
    tmp_path: Path, lockfiles: dict[str, str], manager: str, install: str | None
) -> None:
    files = {"package.json": package_json(dev={"vite": "5"}, build="vite build"), **lockfiles}

    detection = detect(site(tmp_path, files))

    assert (detection.package_manager, detection.install_command) == (manager, install)


def test_workspace_lockfile_at_the_repository_root_installs_from_there(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write_files(
        tmp_path, {"pnpm-lock.yaml": "", "apps/web/package.json": package_json(dev={"vite": "5"}, build="vite build")}
    )

    detection = detect(tmp_path / "apps" / "web")

    assert detection.package_manager == "pnpm"
    assert detection.install_command == "cd ../.. && corepack enable && pnpm install --frozen-lockfile"


@pytest.mark.parametrize(("content", "version"), [("20\n", "20"), ("v22.11.0", "22"), ("16", None), ("lts/iron", None)])
def test_node_version_from_nvmrc_when_the_image_has_it(tmp_path: Path, content: str, version: str | None) -> None:
    files = {**FIXTURES["vite"][0], ".nvmrc": content}

    assert detect(site(tmp_path, files)).node_version == version


@pytest.mark.parametrize(
    ("name", "expected"),
    [("@acme/Marketing_Site", "marketing-site"), ("x", None), ("9lives", None)],
)
def test_site_name_comes_from_package_json(tmp_path: Path, name: str, expected: str | None) -> None:
    files = {"package.json": json.dumps({"name": name}), "index.html": ""}

    assert detect(site(tmp_path, files)).site_name == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@github.com:acme/website.git", ("codeconnections", "github", "acme/website")),
        ("https://github.com/acme/website", ("codeconnections", "github", "acme/website")),
        ("ssh://git@gitlab.com/group/sub/website.git", ("codeconnections", "gitlab", "group/sub/website")),
        ("https://user@bitbucket.org/acme/website.git", ("codeconnections", "bitbucket", "acme/website")),
        ("https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/website", ("codecommit", "", "website")),
        ("codecommit::eu-west-1://website", ("codecommit", "", "website")),
        ("git@example.com:acme/website.git", None),
        ("/srv/git/website.git", None),
    ],
)
def test_remote_urls_of_supported_hosts(url: str, expected: tuple[str, str, str] | None) -> None:
    assert parse_remote(url) == expected


def test_repository_branch_and_app_root_from_the_checkout(tmp_path: Path) -> None:
    write_files(
        tmp_path / ".git",
        {
            "config": '[core]\n\tbare = false\n[remote "origin"]\n\turl = git@github.com:acme/website.git\n'
            '\tfetch = +refs/heads/*:refs/remotes/origin/*\n[branch "trunk"]\n\tremote = origin\n',
            "HEAD": "ref: refs/heads/trunk\n",
        },
    )
    (tmp_path / "sites" / "docs").mkdir(parents=True)

    assert find_repository(tmp_path / "sites" / "docs") == Repository(
        "codeconnections", "github", "acme/website", "trunk", "sites/docs"
    )
    assert find_repository(tmp_path) == Repository("codeconnections", "github", "acme/website", "trunk", ".")


def test_checkout_without_a_supported_remote_has_no_repository(tmp_path: Path) -> None:
    write_files(tmp_path / ".git", {"config": "[core]\n\tbare = false\n", "HEAD": "ref: refs/heads/main\n"})

    assert find_repository(tmp_path) is None
