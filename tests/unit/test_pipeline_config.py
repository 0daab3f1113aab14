"""``[source]`` and ``[build]`` in hosting.toml: typed alternatives, every problem reported together, and the
configuration written back as TOML for the build."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from hosting_toolkit.config import (
    BuildConfig,
    CodeCommitSource,
    CodeConnectionsSource,
    HostingConfig,
    SiteConfig,
    ZipSource,
    load_config,
    parse_config,
)
from hosting_toolkit.errors import ConfigError
from hosting_toolkit.pipeline.config_file import render_config

REPO_ROOT = Path(__file__).resolve().parents[2]
CONNECTION_ARN = "arn:aws:codeconnections:eu-west-1:111111111111:connection/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"


def parse(document: str) -> HostingConfig:
    return parse_config(tomllib.loads(document))


def problems_of(document: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(document)
    return caught.value.problems


def test_without_source_there_is_no_pipeline_and_build_has_defaults() -> None:
    config = parse('[site]\nname = "docs"\n')

    assert config.source is None
    assert config.build == BuildConfig()
    assert (config.build.framework, config.build.node_version, config.build.app_root) == ("static", "22", ".")


def test_codeconnections_source_with_path_filters() -> None:
    config = parse(
        '[source]\ntype = "codeconnections"\nprovider = "gitlab"\nrepository = "group/sub/site"\nbranch = "release/v2"\n'
        f'connection_arn = "{CONNECTION_ARN}"\ninclude_paths = ["apps/web/**"]\nexclude_paths = ["**/*.md"]\n'
    )

    assert config.source == CodeConnectionsSource(
        provider="gitlab",
        repository="group/sub/site",
        branch="release/v2",
        connection_arn=CONNECTION_ARN,
        include_paths=("apps/web/**",),
        exclude_paths=("**/*.md",),
    )


def test_codecommit_and_zip_sources() -> None:
    assert parse('[source]\ntype = "codecommit"\nrepository = "site"\n').source == CodeCommitSource(repository="site")
    assert parse('[source]\ntype = "zip"\n').source == ZipSource(object_key="site.zip")
    assert parse('[source]\ntype = "zip"\nobject_key = "uploads/docs.zip"\n').source == ZipSource("uploads/docs.zip")


def test_build_with_environment_secrets_and_parameters() -> None:
    config = parse(
        '[build]\nframework = "next"\nnode_version = 20\napp_root = "apps/web"\npackage_manager = "pnpm"\ncompute = "medium"\n'
        '[build.env]\nNEXT_PUBLIC_API = "https://api.example.com"\n'
        '[build.secrets]\nNPM_TOKEN = "ci/npm-token"\nSENTRY_AUTH = "ci/sentry:auth_token"\n'
        '[build.parameters]\nANALYTICS_ID = "/site/analytics-id"\n'
    )

    assert config.build == BuildConfig(
        framework="next",
        node_version="20",
        app_root="apps/web",
        package_manager="pnpm",
        compute="medium",
        env={"NEXT_PUBLIC_API": "https://api.example.com"},
        secrets={"NPM_TOKEN": "ci/npm-token", "SENTRY_AUTH": "ci/sentry:auth_token"},
        parameters={"ANALYTICS_ID": "/site/analytics-id"},
    )


def test_missing_or_unknown_source_type_is_reported_with_the_types() -> None:
    assert problems_of('[source]\nrepository = "a/b"\n') == [
        "source.type: missing; use one of 'codeconnections', 'codecommit', 'zip'"
    ]
    assert problems_of('[source]\ntype = "github"\n') == [
        "source.type: 'github' is not a source type (known: codecommit, codeconnections, zip)"
    ]
    assert problems_of('[source]\ntype = "codecomit"\nrepository = "a"\n') == [
        "source.type: 'codecomit' is not a source type (did you mean 'codecommit'?)"
    ]


def test_keys_of_another_source_type_are_errors_with_a_hint() -> None:
    problems = problems_of('[source]\ntype = "zip"\nrepository = "acme/site"\nobjectkey = "a.zip"\n')

    assert problems == [
        "source.repository: not a key of a 'zip' source (known: object_key)",
        "source.objectkey: not a key of a 'zip' source (did you mean 'object_key'?)",
    ]


def test_every_source_and_build_problem_is_reported_together() -> None:
    problems = problems_of(
        '[source]\ntype = "codeconnections"\nprovider = "gitub"\nrepository = "website"\nbranch = "-x"\n'
        'connection_arn = "arn:aws:iam::111111111111:role/x"\ninclude_paths = ["a", "b", "c", "d", "e", "f", "g", "h", "i"]\n'
        '[build]\nframework = "nextjs"\noutput_dir = "../out"\napp_root = "/abs"\npackage_manager = "bun"\n'
        'node_version = 16\ncompute = "huge"\ncommand = "a\\nb"\n'
        '[build.env]\nAWS_REGION = "x"\nPORT = 8080\n"bad name" = "x"\n'
        '[build.secrets]\nTOKEN = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:x"\nPORT = "p"\n'
        '[build.parameters]\nKEY = "not a name"\n'
    )

    keys = [p.split(":", 1)[0] for p in problems]
    assert keys == [
        "source.provider",
        "source.repository",
        "source.branch",
        "source.connection_arn",
        "source.include_paths",
        "build.framework",
        "build.command",
        "build.output_dir",
        "build.app_root",
        "build.package_manager",
        "build.node_version",
        "build.compute",
        "build.env.AWS_REGION",
        "build.env.PORT",
        "build.env.bad name",
        "build.secrets.TOKEN",
        "build.parameters.KEY",
        "build",
    ]
    by_key = dict(zip(keys, problems, strict=True))
    assert "did you mean 'github'?" in by_key["source.provider"]
    assert "did you mean 'next'?" in by_key["build.framework"]
    assert "CodePipeline takes at most 8" in by_key["source.include_paths"]
    assert "give the Secrets Manager secret's name, not its ARN" in by_key["build.secrets.TOKEN"]
    assert "expected text in quotes, got 8080" in by_key["build.env.PORT"]
    assert "are the build's own" in by_key["build.env.AWS_REGION"]
    assert by_key["build"] == "build: PORT is set more than once across build.env, build.secrets and build.parameters"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        ('framework = "custom"\noutput_dir = "_site"', "build.command: the 'custom' framework needs the command"),
        ('framework = "custom"\ncommand = "make"', "build.output_dir: the 'custom' framework needs"),
        ('framework = "angular"', "reads it from angular.json"),
        ('framework = "static"\ncommand = "make"', "use framework = 'custom' to run one"),
    ],
    ids=["custom-command", "custom-output", "angular-output", "static-command"],
)
def test_framework_requirements(build: str, message: str) -> None:
    problems = problems_of(f"[build]\n{build}\n")

    assert len(problems) == 1
    assert message in problems[0]


@pytest.mark.parametrize("key", ["../site.zip", "/site.zip", "site.tar.gz", "a//b.zip"])
def test_zip_object_key_must_be_a_relative_zip_key(key: str) -> None:
    assert problems_of(f'[source]\ntype = "zip"\nobject_key = "{key}"\n')[0].startswith("source.object_key:")


SOURCES = [
    None,
    CodeConnectionsSource(
        provider="bitbucket", repository="acme/site", connection_arn=CONNECTION_ARN, include_paths=("web/**",)
    ),
    CodeCommitSource(repository="site", branch="prod"),
    ZipSource("drops/site.zip"),
]


@pytest.mark.parametrize("source", SOURCES, ids=["none", "codeconnections", "codecommit", "zip"])
def test_written_configuration_loads_back_to_the_same(source: object) -> None:
    config = HostingConfig(
        site=SiteConfig(name="docs", mode="static", entry="home.html"),
        source=source,  # type: ignore[arg-type]
        build=BuildConfig(
            framework="custom",
            command='make SITE="docs" html',
            output_dir="_build/html",
            env={"GREETING": "héllo\ttab \\ back"},
            secrets={"TOKEN": "ci/token"},
            parameters={"ID": "/docs/id"},
        ),
    )

    assert parse(render_config(config)) == config


def test_written_configuration_leaves_out_defaults_unless_kept() -> None:
    assert render_config(HostingConfig()) == "\n"
    assert render_config(HostingConfig(), keep=["build.framework"]) == '[build]\nframework = "static"\n'
    assert render_config(HostingConfig(source=ZipSource())) == '[source]\ntype = "zip"\n'


def test_example_configuration_documents_every_source_type() -> None:
    text = (REPO_ROOT / "hosting.example.toml").read_text(encoding="utf-8")

    for kind in ("codeconnections", "codecommit", "zip"):
        block = []
        for line in text.split(f'# type = "{kind}"\n', 1)[1].splitlines():
            if not line.startswith("# "):
                break
            block.append(line.removeprefix("# "))
        source = parse(f'[source]\ntype = "{kind}"\n' + "\n".join(block)).source
        assert source is not None and source.type == kind
    load_config(REPO_ROOT / "hosting.example.toml")


def test_replacing_the_source_keeps_the_rest() -> None:
    config = parse('[site]\nname = "docs"\n[source]\ntype = "zip"\n')

    assert replace(config, source=None) == parse('[site]\nname = "docs"\n')
