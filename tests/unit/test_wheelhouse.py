"""engine.lock and the wheelhouses made from it: the lock agrees with requirements.txt, and a wheelhouse is
accepted only when it holds exactly the locked wheels."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest

from hosting_toolkit.pipeline.buildspec import (
    LOCK_PATH,
    PROJECT_ROOT,
    PYTHON_VERSION,
    SYNTH_ONLY_REQUIREMENTS,
    release_requirements,
)
from hosting_toolkit.pipeline.infrastructure import BUILD_IMAGE
from hosting_toolkit.pipeline.wheelhouse import (
    BUILD_BACKEND,
    BUILD_PLATFORM,
    LOCK_FILE,
    NO_WHEELHOUSE,
    Platform,
    WheelhouseError,
    check_wheelhouse,
    download_command,
    lock_digest,
    normalize,
    read_lock,
    shipped_wheelhouse,
    wheelhouse_path,
)


def _pin(requirement: str) -> tuple[str, str]:
    name, version = requirement.split("==")
    return normalize(name.split("[")[0]), version


def test_lock_pins_every_requirement_of_the_build_at_its_version_in_requirements_txt() -> None:
    locked = read_lock()

    for requirement in [*release_requirements(), BUILD_BACKEND]:
        name, version = _pin(requirement)
        assert locked[name].version == version, requirement
    assert not set(locked) & SYNTH_ONLY_REQUIREMENTS
    assert LOCK_FILE == PROJECT_ROOT / LOCK_PATH


def test_lock_holds_the_whole_closure_hashed() -> None:
    locked = read_lock()

    # The transitive dependencies the build needs and requirements.txt does not name.
    assert {"jmespath", "s3transfer", "urllib3", "python-dateutil", "six", "shellingham", "markdown-it-py"} <= set(
        locked
    )
    assert all(entry.hashes for entry in locked.values())
    assert f"CPython {PYTHON_VERSION}" in LOCK_FILE.read_text(encoding="utf-8")


def test_locked_build_backend_satisfies_the_package_build_system() -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (required,) = pyproject["build-system"]["requires"]
    name, minimum = required.split(">=")
    version = read_lock()[normalize(name)].version

    assert tuple(int(part) for part in version.split(".")) >= tuple(int(part) for part in minimum.split("."))


@pytest.mark.parametrize("architecture", ["x86_64", "aarch64"])
def test_download_asks_for_every_manylinux_of_the_build_image_and_checks_hashes(architecture: str) -> None:
    command = download_command(Path("/wheels"), Platform(architecture=architecture))
    platforms = [command[i + 1] for i, word in enumerate(command) if word == "--platform"]

    assert platforms[0] == f"manylinux_2_34_{architecture}"
    assert {f"manylinux_2_17_{architecture}", f"manylinux2014_{architecture}"} <= set(platforms)
    assert {"--only-binary=:all:", "--require-hashes", "--no-deps"} <= set(command)
    assert command[command.index("--python-version") + 1] == PYTHON_VERSION
    assert command[-2:] == ["-r", str(LOCK_FILE)]


def test_wheelhouses_are_named_by_the_lock_and_the_platform(tmp_path: Path) -> None:
    lock = tmp_path / "engine.lock"
    lock.write_text(_lock_line("demo", "1.0", b"one"))
    before = wheelhouse_path(tmp_path, BUILD_PLATFORM, lock)
    lock.write_text(_lock_line("demo", "1.1", b"two"))

    assert before.name == f"{hashlib.sha256(_lock_line('demo', '1.0', b'one').encode()).hexdigest()[:16]}-cp312-x86_64"
    assert wheelhouse_path(tmp_path, BUILD_PLATFORM, lock).name == f"{lock_digest(lock)}-cp312-x86_64"
    assert wheelhouse_path(tmp_path, BUILD_PLATFORM, lock) != before
    assert wheelhouse_path(tmp_path, Platform(architecture="aarch64"), lock).name.endswith("-cp312-aarch64")


def _lock_line(name: str, version: str, content: bytes, marker: str = "") -> str:
    marker = f" ; {marker}" if marker else ""
    return f"{name}=={version}{marker} \\\n    --hash=sha256:{hashlib.sha256(content).hexdigest()}\n    # via x\n"


WHEELS = {"alpha-1.0-py3-none-any.whl": b"alpha wheel", "beta_pkg-2.0-cp312-abi3-manylinux2014_x86_64.whl": b"beta"}


@pytest.fixture
def small_lock(tmp_path: Path) -> tuple[Path, Path]:
    """A lock of two wheels and a Windows-only one, and a wheelhouse holding the two."""
    lock = tmp_path / "engine.lock"
    lock.write_text(
        "# header\n"
        + _lock_line("alpha", "1.0", WHEELS["alpha-1.0-py3-none-any.whl"])
        + _lock_line("beta-pkg", "2.0", WHEELS["beta_pkg-2.0-cp312-abi3-manylinux2014_x86_64.whl"])
        + _lock_line("colorama", "0.4.6", b"windows", "sys_platform == 'win32'")
    )
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name, content in WHEELS.items():
        (wheels / name).write_bytes(content)
    return lock, wheels


def test_a_wheelhouse_of_the_lock_is_accepted_without_its_platform_specific_extras(
    small_lock: tuple[Path, Path],
) -> None:
    lock, wheels = small_lock

    wheelhouse = check_wheelhouse(wheels, lock)

    assert wheelhouse.wheels == tuple(sorted(WHEELS))
    assert wheelhouse.size == sum(len(content) for content in WHEELS.values())
    assert read_lock(lock)["colorama"].marker == "sys_platform == 'win32'"


def test_a_wheelhouse_missing_altering_or_adding_a_wheel_is_refused_with_each_problem(
    small_lock: tuple[Path, Path],
) -> None:
    lock, wheels = small_lock
    (wheels / "alpha-1.0-py3-none-any.whl").unlink()
    (wheels / "beta_pkg-2.0-cp312-abi3-manylinux2014_x86_64.whl").write_bytes(b"beta, altered")
    (wheels / "gamma-1.0-py3-none-any.whl").write_bytes(b"unlocked")

    with pytest.raises(WheelhouseError) as raised:
        check_wheelhouse(wheels, lock)

    message = str(raised.value)
    assert "no wheel of alpha==1.0" in message
    assert "beta_pkg-2.0-cp312-abi3-manylinux2014_x86_64.whl does not match its hash in the lock" in message
    assert "gamma-1.0-py3-none-any.whl is not a wheel of the lock" in message


@pytest.mark.parametrize(
    ("line", "problem"),
    [("boto3>=1.0 \\\n    --hash=sha256:" + "0" * 64, "not pinned"), ("boto3==1.0", "has no --hash")],
)
def test_a_lock_line_unpinned_or_without_hashes_is_refused(line: str, problem: str, tmp_path: Path) -> None:
    lock = tmp_path / "engine.lock"
    lock.write_text(line + "\n")

    with pytest.raises(WheelhouseError, match=problem):
        read_lock(lock)


def test_a_stack_without_pipeline_ships_no_wheelhouse(tmp_path: Path) -> None:
    assert shipped_wheelhouse(None, tmp_path, pipeline=False) is None


def test_a_pipeline_without_prepared_wheels_is_refused_at_synthesis_saying_how_to_prepare_them(
    tmp_path: Path,
) -> None:
    with pytest.raises(WheelhouseError) as raised:
        shipped_wheelhouse(None, tmp_path, pipeline=True)

    assert "'hosting-toolkit deploy', which prepares them" in str(raised.value)
    assert "python -m hosting_toolkit.pipeline.wheelhouse prepare" in str(raised.value)


def test_a_given_wheelhouse_that_is_not_the_lock_is_refused(small_lock: tuple[Path, Path]) -> None:
    _, wheels = small_lock

    with pytest.raises(WheelhouseError, match=r"is not the wheelhouse of engine\.lock"):
        shipped_wheelhouse(str(wheels), wheels.parent, pipeline=True)


def test_a_synthesis_that_deploys_no_build_may_ship_no_wheelhouse(tmp_path: Path) -> None:
    assert shipped_wheelhouse(NO_WHEELHOUSE, tmp_path, pipeline=True) is None


def test_the_prepared_wheelhouse_is_for_the_build_image_cpu_and_python() -> None:
    assert f"-{BUILD_PLATFORM.architecture}-" in BUILD_IMAGE.image_id
    assert BUILD_PLATFORM.python_version == PYTHON_VERSION
