"""cdk.json and app.py: offline settings, feature flags, configuration lookup and clean failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import WHEELHOUSE_EXIT_CODE
from hosting_toolkit.config import HostingConfig
from hosting_toolkit.errors import ConfigError
from tests.cdk_helpers import APP_PY, ROOT, SynthesizedStack, cdk_context, cdk_json, subprocess_env, synth_hosting_stack

BROKEN_CONFIG = """\
[site]
name = "My Site"
mode = "spa-ish"
"""


def run_app(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run app.py as the CDK CLI does, with its cloud assembly in ``tmp_path/cdk.out``."""
    return subprocess.run(
        [sys.executable, str(APP_PY)],
        cwd=ROOT,
        env=subprocess_env(dict(os.environ), CDK_OUTDIR=str(tmp_path / "cdk.out"), **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cdk_json_runs_the_python_app() -> None:
    assert cdk_json()["app"] == "python3 app.py"


def test_cdk_json_keeps_synth_offline() -> None:
    settings = cdk_json()
    assert settings["notices"] is False
    assert settings["versionReporting"] is False
    assert settings["context"]["cli-telemetry"] is False


@pytest.fixture(scope="module")
def default_site(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    return synth_hosting_stack(HostingConfig(), tmp_path_factory.mktemp("context"))


@pytest.mark.synth
def test_stack_tests_build_the_app_from_cdk_json_context(default_site: SynthesizedStack) -> None:
    context = cdk_context()
    assert {key: default_site.app.node.try_get_context(key) for key in context} == context


@pytest.mark.synth
def test_every_feature_flag_has_its_recommended_value(default_site: SynthesizedStack) -> None:
    manifest = json.loads((default_site.outdir / "manifest.json").read_text(encoding="utf-8"))
    flags = manifest["artifacts"]["aws-cdk-lib/feature-flag-report"]["properties"]["flags"]
    differing = {
        name: (flag.get("userValue"), flag["recommendedValue"])
        for name, flag in flags.items()
        if "recommendedValue" in flag and flag.get("userValue") != flag["recommendedValue"]
    }
    assert differing == {}, "regenerate: npx cdk flags --unstable=flags --set --recommended --unconfigured --yes"


@pytest.mark.synth
def test_app_reports_a_broken_config_on_stderr_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "hosting.toml"
    config.write_text(BROKEN_CONFIG, encoding="utf-8")

    result = run_app(tmp_path, HOSTING_TOOLKIT_CONFIG=str(config))

    assert result.returncode == ConfigError.exit_code
    assert str(config) in result.stderr
    assert "site.name" in result.stderr
    assert "site.mode" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()


@pytest.mark.synth
def test_app_reports_a_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"

    result = run_app(tmp_path, HOSTING_TOOLKIT_CONFIG=str(missing))

    assert result.returncode == ConfigError.exit_code
    assert f"{missing}: file not found" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.synth
def test_context_config_wins_over_the_environment_and_passes_the_checks(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[site]\nname = "from-context"\n', encoding="utf-8")
    broken = tmp_path / "broken.toml"
    broken.write_text(BROKEN_CONFIG, encoding="utf-8")
    context = {**cdk_context(), "config": str(good)}

    result = run_app(tmp_path, CDK_CONTEXT_JSON=json.dumps(context), HOSTING_TOOLKIT_CONFIG=str(broken))

    assert result.returncode == 0, result.stderr
    outdir = tmp_path / "cdk.out"
    assert (outdir / "hosting-from-context.template.json").exists()
    report = json.loads((outdir / "validation-report.json").read_text(encoding="utf-8"))
    assert [r for r in report["pluginReports"] if r.get("conclusion") != "success"] == []


@pytest.mark.synth
def test_app_refuses_a_pipeline_without_its_release_engine_wheels_and_says_how_to_prepare_them(
    tmp_path: Path,
) -> None:
    config = tmp_path / "hosting.toml"
    config.write_text('[site]\nname = "docs"\n[source]\ntype = "zip"\n', encoding="utf-8")

    result = run_app(tmp_path, HOSTING_TOOLKIT_CONFIG=str(config), XDG_CACHE_HOME=str(tmp_path / "empty-cache"))

    assert result.returncode == WHEELHOUSE_EXIT_CODE
    assert "none are prepared for engine.lock" in result.stderr
    assert "Deploy with 'hosting-toolkit deploy', which prepares them" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()
