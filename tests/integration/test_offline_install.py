"""The release engine installed as every build installs it, a rollback's included: the install phase of the
synthesized buildspecs run command by command with bash, in a clean environment whose only package index is
unreachable, from the package asset of a stack synthesized with the wheelhouse ``hosting-toolkit deploy``
prepares, downloaded from moto_server S3. Then the installed engine runs: ``--help``, and a rollback on a local
target. A wheelhouse missing a wheel, or with one altered, fails the install phase with one clear line.

The wheelhouse is for this machine's CPU and Python ``PYTHON_VERSION`` when it has it (the build's), else the
interpreter running the tests; it comes from the user's cache, and from PyPI the first time (``wheels`` marker).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hosting_toolkit.config import HostingConfig, SiteConfig, ZipSource
from hosting_toolkit.contract import RoutingState
from hosting_toolkit.pipeline.buildspec import (
    ENV_CONFIG,
    ENV_HOME,
    ENV_PACKAGE,
    ENV_SITE_CONFIG,
    INSTALL_FAILED,
    LOCK_PATH,
    WHEELHOUSE_DIR,
    install_toolkit_commands,
)
from hosting_toolkit.pipeline.wheelhouse import Wheelhouse, read_lock
from hosting_toolkit.release.kvs import LocalKeyValueStore
from hosting_toolkit.target import LOCAL_KVS_FILE
from tests.cdk_helpers import synth_hosting_stack
from tests.fakes.moto import AWS_TEST_ENV
from tests.fakes.sites import write_files
from tests.integration.conftest import BuildPython, S3Bucket, offline_environment, zip_folder

pytestmark = [pytest.mark.integration, pytest.mark.synth, pytest.mark.wheels]

CONFIG = HostingConfig(site=SiteConfig(name="docs"), source=ZipSource("drops/site.zip"))
PACKAGE_KEY = "assets/package.zip"


@dataclass(frozen=True)
class Shipped:
    """The package asset of a stack synthesized with the wheelhouse, and its projects' install phases."""

    asset: Path
    installs: dict[str, list[str]]
    site_config: str


@pytest.fixture(scope="module")
def shipped(engine_wheels: Wheelhouse, tmp_path_factory: pytest.TempPathFactory) -> Shipped:
    stack = synth_hosting_stack(CONFIG, tmp_path_factory.mktemp("shipped"), wheelhouse=engine_wheels.path)
    assert stack.stack.pipeline is not None
    (asset,) = stack.outdir.glob("asset.*")
    installs: dict[str, list[str]] = {}
    site_config = ""
    for which in ("project", "operate_project"):
        project = stack.template_json["Resources"][stack.logical_id(getattr(stack.stack.pipeline, which))]
        spec: dict[str, Any] = yaml.safe_load(project["Properties"]["Source"]["BuildSpec"])
        installs[which] = spec["phases"]["install"]["commands"]
        variables = {v["Name"]: v["Value"] for v in project["Properties"]["Environment"]["EnvironmentVariables"]}
        site_config = variables[ENV_SITE_CONFIG]
    return Shipped(asset, installs, site_config)


@dataclass
class Container:
    """A fresh build container: its own toolkit home, the build image's python3 and the AWS CLI, no index."""

    root: Path
    env: dict[str, str]

    @property
    def home(self) -> Path:
        return self.root / "toolkit"

    def install(self, commands: list[str]) -> tuple[subprocess.CompletedProcess[str] | None, int, str]:
        """The install phase: each command in turn, as CodeBuild runs them; the first failure ends it."""
        log = []
        for ran, command in enumerate(commands):
            done = subprocess.run(
                ["bash", "-c", command], env=self.env, cwd=self.root, capture_output=True, text=True, timeout=300
            )
            log.append(done.stderr)
            if done.returncode != 0:
                return done, ran, "".join(log)
        return None, len(commands), "".join(log)

    def engine(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.home / "bin" / "hosting-toolkit"), *args],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
        )


def container(tmp_path: Path, s3_bucket: S3Bucket, build_python: BuildPython, site_config: str) -> Container:
    root = tmp_path / "container"
    root.mkdir()
    venv_bin = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin"
    tools = [str(build_python.bin), str(Path(__file__).resolve().parents[2] / ".venv" / "bin"), str(venv_bin)]
    env = {
        # The build image's tools (its python3, the AWS CLI), its shell's, and nothing else of this machine.
        "PATH": os.pathsep.join([*tools, "/usr/bin", "/bin"]),
        "HOME": str(root),
        "LANG": "C.UTF-8",
        **AWS_TEST_ENV,
        "AWS_CONFIG_FILE": str(root / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "no-aws-config"),
        "AWS_ENDPOINT_URL_S3": s3_bucket.endpoint,
        ENV_HOME: str(root / "toolkit"),
        ENV_CONFIG: str(root / "toolkit" / "hosting.toml"),
        ENV_PACKAGE: f"s3://{s3_bucket.name}/{PACKAGE_KEY}",
        ENV_SITE_CONFIG: site_config,
        "HOSTING_TOOLKIT_NO_WAIT": "1",
    }
    return Container(root, offline_environment(env))


def upload(s3_bucket: S3Bucket, asset: Path, tmp_path: Path, replace: dict[str, bytes | None] | None = None) -> None:
    archive = zip_folder(asset, tmp_path / "package.zip", replace=replace)
    s3_bucket.client.upload_file(str(archive), s3_bucket.name, PACKAGE_KEY)


def test_the_shipped_wheelhouse_is_the_prepared_one(shipped: Shipped, engine_wheels: Wheelhouse) -> None:
    shipped_wheels = sorted(p.name for p in (shipped.asset / WHEELHOUSE_DIR).iterdir())

    assert shipped_wheels == sorted(engine_wheels.wheels)
    assert (shipped.asset / LOCK_PATH).is_file()


@pytest.mark.parametrize("which", ["operate_project", "project"])
def test_the_engine_installs_with_no_index_and_rolls_back_a_local_target(
    which: str,
    shipped: Shipped,
    s3_bucket: S3Bucket,
    build_python: BuildPython,
    engine_wheels: Wheelhouse,
    tmp_path: Path,
) -> None:
    upload(s3_bucket, shipped.asset, tmp_path)
    box = container(tmp_path, s3_bucket, build_python, shipped.site_config)
    # The build project's install phase goes on with the site's own dependencies.
    commands = shipped.installs[which][: len(install_toolkit_commands())]

    started = time.monotonic()
    failed, _, log = box.install(commands)
    seconds = time.monotonic() - started

    assert failed is None, log
    print(f"offline install of {len(engine_wheels.wheels)} wheels ({engine_wheels.megabytes:.1f} MB): {seconds:.1f} s")
    assert (box.home / "hosting.toml").read_text(encoding="utf-8").strip() == shipped.site_config.strip()
    frozen = subprocess.run(
        [str(box.home / "bin" / "python"), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    ).stdout
    pins = [line.split("==") for line in frozen.splitlines() if "==" in line]
    installed = {name.lower().replace("_", "-"): version for name, version in pins}
    for name, locked in read_lock().items():
        if not locked.marker:
            assert installed[name] == locked.version, name
    assert not {"aws-cdk-lib", "constructs", "cdk-nag", "pyyaml"} & set(installed)

    helped = box.engine("--help")
    assert helped.returncode == 0, helped.stderr
    assert "rollback" in helped.stdout

    target = box.root / "target"
    for release, title in (("one", "first"), ("two", "second")):
        write_files(box.root / release, {"index.html": f"<title>{title}</title>"})
        done = box.engine("--local", str(target), "release", str(box.root / release), "--id", release)
        assert done.returncode == 0, done.stderr
    rolled = box.engine("--local", str(target), "rollback", "--no-wait")

    assert rolled.returncode == 0, rolled.stderr
    value, _ = LocalKeyValueStore(target / LOCAL_KVS_FILE).read("routing")
    assert RoutingState.from_json(value).live == "one"


def _a_wheel(wheelhouse: Wheelhouse, project: str) -> str:
    (name,) = [w for w in wheelhouse.wheels if w.lower().startswith(f"{project}-")]
    return name


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("missing", "No matching distribution found for awscrt=="),
        ("altered", "DO NOT MATCH THE HASHES"),
    ],
)
def test_a_wheelhouse_missing_or_altering_a_wheel_fails_the_install_phase(
    change: str,
    reason: str,
    shipped: Shipped,
    s3_bucket: S3Bucket,
    build_python: BuildPython,
    engine_wheels: Wheelhouse,
    tmp_path: Path,
) -> None:
    wheel = f"{WHEELHOUSE_DIR}/{_a_wheel(engine_wheels, 'awscrt')}"
    altered = (shipped.asset / wheel).read_bytes() + b"\0" if change == "altered" else None
    upload(s3_bucket, shipped.asset, tmp_path, {wheel: altered})
    box = container(tmp_path, s3_bucket, build_python, shipped.site_config)
    commands = shipped.installs["operate_project"]

    failed, ran, log = box.install(commands)

    assert failed is not None
    assert "--require-hashes" in commands[ran]
    assert log.strip().splitlines()[-1] == INSTALL_FAILED
    assert reason in log
    assert not (box.home / "bin" / "hosting-toolkit").exists()
    assert not (box.home / "hosting.toml").exists()
