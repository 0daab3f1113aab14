"""The release commands through the real entry point: Typer's runner, and ``python -m hosting_toolkit``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from hosting_toolkit.cli.main import app
from hosting_toolkit.contract import RELEASE_METADATA_KEY, release_prefix
from hosting_toolkit.errors import ConfigError, InvalidInputError, NotFoundError
from hosting_toolkit.target import LOCAL_KVS_FILE
from tests.fakes.sites import SAMPLE_SITE, sample_site
from tests.integration.conftest import S3Bucket

pytestmark = pytest.mark.integration

RELEASE_JSON_FIELDS = {"id", "files", "bytes", "uploaded_bytes", "copied_files", "activated"}


@pytest.fixture(autouse=True)
def clean_cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No hosting.toml, target or actor from the machine running the tests."""
    for name in ("HOSTING_TOOLKIT_CONFIG", "HOSTING_TOOLKIT_LOCAL", "HOSTING_TOOLKIT_BUCKET", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOSTING_TOOLKIT_ACTOR", "tests")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "target"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def ok(*args: str | Path) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    return result


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# -- through CliRunner ----------------------------------------------------------------------------


def test_release_json_reports_what_was_uploaded(target: Path, tmp_path: Path) -> None:
    site = sample_site(tmp_path / "site")

    data = json.loads(ok("--local", target, "release", site, "--json").stdout)

    assert set(data) >= RELEASE_JSON_FIELDS
    assert data["files"] == len(SAMPLE_SITE)
    assert data["bytes"] == data["uploaded_bytes"] == sum(len(b) for b, _, _ in SAMPLE_SITE.values())
    assert data["copied_files"] == 0
    assert data["activated"] is True
    assert (target / LOCAL_KVS_FILE).exists()


def test_release_prints_the_id_as_the_last_stdout_line(target: Path, tmp_path: Path) -> None:
    result = ok("--local", target, "release", sample_site(tmp_path / "site"), "-m", "first")

    rid = last_line(result.stdout)
    assert result.stdout.strip() == rid
    assert f"release {rid}" in result.stderr
    status = json.loads(ok("--local", target, "status", "--json").stdout)
    assert status["live"] == rid


def test_releases_and_status_show_live_staged_and_pinned(target: Path, tmp_path: Path) -> None:
    first = last_line(ok("--local", target, "release", sample_site(tmp_path / "a"), "-m", "first").stdout)
    second = last_line(ok("--local", target, "release", sample_site(tmp_path / "b", marker="b")).stdout)
    staged = last_line(
        ok("--local", target, "release", sample_site(tmp_path / "c", marker="c"), "--no-activate").stdout
    )

    releases = json.loads(ok("--local", target, "releases", "--json").stdout)
    status = json.loads(ok("--local", target, "status", "--json").stdout)

    assert [(r["id"], r["state"]) for r in releases] == [(staged, "staged"), (second, "live"), (first, "previous")]
    assert releases[-1]["message"] == "first"
    assert releases[0]["files"] == len(SAMPLE_SITE)
    assert status == {"live": second, "canary": None, "weight": 0, "pins": [first], "site_url": None}


def test_activate_and_rollback_to_switch_the_live_release(target: Path, tmp_path: Path) -> None:
    first = last_line(ok("--local", target, "release", sample_site(tmp_path / "a")).stdout)
    second = last_line(
        ok("--local", target, "release", sample_site(tmp_path / "b", marker="b"), "--no-activate").stdout
    )

    activated = ok("--local", target, "activate", second)
    again = ok("--local", target, "activate", second)
    rolled_back = json.loads(ok("--local", target, "rollback", "--to", first, "--json").stdout)

    assert last_line(activated.stdout) == second
    assert "already live" in again.stderr
    assert rolled_back["before"]["live"] == second
    assert rolled_back["after"] == {"live": first, "canary": None, "weight": 0, "pins": [second]}
    assert last_line(ok("--local", target, "rollback").stdout) == second


def test_prune_keep_removes_old_releases_but_never_the_live_one(target: Path, tmp_path: Path) -> None:
    ids = [
        last_line(ok("--local", target, "release", sample_site(tmp_path / n, marker=n), "--no-activate").stdout)
        for n in ("a", "b", "c")
    ]
    ok("--local", target, "activate", ids[0])

    result = json.loads(ok("--local", target, "prune", "--keep", "1", "--json").stdout)

    assert result["removed"] == [ids[1]]
    assert sorted(result["kept"]) == sorted([ids[0], ids[2]])
    assert result["objects_deleted"] == len(SAMPLE_SITE)
    remaining = [r["id"] for r in json.loads(ok("--local", target, "releases", "--json").stdout)]
    assert sorted(remaining) == sorted([ids[0], ids[2]])


def test_invalid_config_exits_2_naming_every_bad_key(target: Path, tmp_path: Path) -> None:
    config = tmp_path / "hosting.toml"
    config.write_text('[site]\nmode = "spaa"\n\n[release]\nkeep = 0\nconcurency = 4\n')

    result = run("--config", config, "--local", target, "status")

    assert result.exit_code == ConfigError.exit_code == 2
    assert "site.mode" in result.stderr
    assert "release.keep" in result.stderr
    assert "release.concurency: unknown key (did you mean 'concurrency'?)" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [("release", "SITE", "--id", "Bad/Id"), ("activate", "../etc"), ("rollback", "--to", "UPPER")],
    ids=["release-id", "activate", "rollback-to"],
)
def test_bad_release_id_exits_3(target: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    site = sample_site(tmp_path / "site")

    result = run("--local", target, *(str(site) if a == "SITE" else a for a in args))

    assert result.exit_code == InvalidInputError.exit_code == 3
    assert "not a valid release id" in result.stderr
    assert not (target / "bucket" / "objects" / "releases").exists()


# -- through the interpreter, as a shell or a pipeline runs it ------------------------------------


def python_m(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hosting_toolkit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
        check=False,
    )


def test_python_m_release_prints_the_id_and_errors_are_one_line(target: Path, tmp_path: Path) -> None:
    released = python_m("--local", target, "release", sample_site(tmp_path / "site"))
    missing = python_m("--local", target, "activate", "no-such-release")

    assert released.returncode == 0, released.stderr
    rid = last_line(released.stdout)
    assert (target / "bucket" / "objects" / release_prefix(rid) / "index.html").exists()
    assert missing.returncode == NotFoundError.exit_code == 5
    assert missing.stdout == ""
    assert missing.stderr.strip().count("\n") == 0
    assert missing.stderr.startswith("error: no release no-such-release")
    assert "Traceback" not in missing.stderr


def test_python_m_bad_input_exits_3_without_a_traceback(target: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    result = python_m("--local", target, "release", empty)

    assert result.returncode == 3
    assert result.stderr.strip().count("\n") == 0
    assert "the build folder is empty" in result.stderr
    assert "Traceback" not in result.stderr


# -- a local target with its objects in an S3 bucket ----------------------------------------------


def test_local_target_with_a_bucket_releases_through_the_s3_endpoint(
    s3_bucket: S3Bucket, target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_bucket.endpoint)
    site = sample_site(tmp_path / "site")

    data = json.loads(ok("--local", target, "--bucket", s3_bucket.name, "release", site, "--json").stdout)
    status = json.loads(ok("--local", target, "--bucket", s3_bucket.name, "status", "--json").stdout)

    head = s3_bucket.head(release_prefix(data["id"]) + "index.html")
    assert head["Metadata"] == {RELEASE_METADATA_KEY: data["id"]}
    assert len(s3_bucket.keys(release_prefix(data["id"]))) == data["files"] == len(SAMPLE_SITE)
    assert status["live"] == data["id"]
    assert not (target / "bucket").exists()
    assert (target / LOCAL_KVS_FILE).exists()


def test_a_staging_that_cannot_place_the_error_pages_fails_and_a_re_run_places_them(
    target: Path, tmp_path: Path
) -> None:
    site = sample_site(tmp_path / "site")
    # A file where the local bucket's errors/ folder belongs: writes there fail, as a refused PutObject does.
    blocker = target / "bucket" / "objects" / "errors"
    blocker.parent.mkdir(parents=True)
    blocker.write_bytes(b"")

    failed = run("--local", target, "release", site, "--id", "v1", "--no-activate")

    assert failed.exit_code == 6
    assert "release v1 is staged, but the built-in error pages could not be placed under errors/" in failed.stderr
    blocker.unlink()
    again = ok("--local", target, "release", site, "--id", "v1", "--no-activate")
    assert last_line(again.stdout) == "v1"
    assert (target / "bucket" / "objects" / "errors" / "404.html").is_file()
