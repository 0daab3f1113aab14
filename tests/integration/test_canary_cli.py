"""Canary, promote and abort through the CLI entry point, with viewers served by the local edge over HTTP."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from hosting_toolkit.cli.main import app
from hosting_toolkit.config import HostingConfig
from hosting_toolkit.contract import COHORT_COOKIE, RELEASE_COOKIE, RELEASE_HEADER
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.errors import InvalidInputError, NotFoundError
from tests.fakes.sites import write_files
from tests.integration.conftest import Edge

pytestmark = [pytest.mark.integration, pytest.mark.node, pytest.mark.usefixtures("clean_cli_env")]


def seeded_request_ids(seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    while True:
        yield base64.urlsafe_b64encode(rng.randbytes(42)).decode()


@pytest.fixture
def edge(tmp_path: Path, function_sandbox: FunctionSandbox) -> Iterator[Edge]:
    running = Edge(tmp_path, HostingConfig(), function_sandbox, request_ids=seeded_request_ids(1).__next__)
    yield running
    running.close()


def cli(edge: Edge, *args: str | Path) -> Result:
    return CliRunner().invoke(app, ["--local", str(edge.root / "target"), *map(str, args)])


def ok(edge: Edge, *args: str | Path) -> Result:
    result = cli(edge, *args)
    assert result.exit_code == 0, result.stderr
    return result


def site(root: Path, version: str) -> Path:
    return write_files(
        root,
        {
            "index.html": f'<h1>v{version}</h1><script src="/assets/app-{version}.js"></script>',
            f"assets/app-{version}.js": f"console.log({version})",
        },
    )


@pytest.fixture
def two_releases(edge: Edge, tmp_path: Path) -> None:
    ok(edge, "release", site(tmp_path / "v1", "1"), "--id", "v1")
    ok(edge, "release", site(tmp_path / "v2", "2"), "--id", "v2", "--no-activate")


class Viewer:
    """A browser's cookie jar for one viewer of the local edge."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.cookies: dict[str, str] = {}

    def get(self, path: str) -> tuple[int, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        status, response, _ = self.edge.get(path, headers)
        for line in filter(None, response.get("set-cookie", "").split("\n")):
            name, _, value = line.split(";", 1)[0].partition("=")
            self.cookies[name] = value
        # An origin error runs no viewer-response function, so it names no release.
        return status, response.get(RELEASE_HEADER, "")


def test_canary_splits_viewers_by_cohort_and_keeps_each_one_where_it_is(edge: Edge, two_releases: None) -> None:
    change = json.loads(ok(edge, "canary", "v2", "--percent", "30", "--json").stdout)
    assert change["after"] == {"live": "v1", "canary": "v2", "weight": 30, "pins": []}

    viewers = [Viewer(edge) for _ in range(200)]
    first = [viewer.get("/")[1] for viewer in viewers]
    assert 0.2 < first.count("v2") / len(first) < 0.4
    assert all(COHORT_COOKIE in viewer.cookies for viewer in viewers)
    assert [viewer.get("/")[1] for viewer in viewers] == first

    # Each page's assets come from the page's release, whichever cohort the viewer is in.
    for viewer, release in zip(viewers[:40], first[:40], strict=True):
        assert viewer.cookies[RELEASE_COOKIE] == release
        version = release[1]
        assert viewer.get(f"/assets/app-{version}.js") == (200, release)

    ok(edge, "canary", "v2", "--percent", "60")
    raised = [viewer.get("/")[1] for viewer in viewers]
    assert all(after == "v2" for before, after in zip(first, raised, strict=True) if before == "v2")
    assert raised.count("v2") > first.count("v2")


def test_abort_sends_every_viewer_back_to_live(edge: Edge, two_releases: None) -> None:
    ok(edge, "canary", "v2", "--percent", "100")
    viewer = Viewer(edge)
    assert viewer.get("/")[1] == "v2"

    result = ok(edge, "canary", "--abort")

    assert result.stdout.strip() == "v1"
    assert viewer.get("/")[1] == "v1"
    # A page the viewer loaded from the canary before the abort no longer gets its assets: v1 has none.
    assert viewer.get("/assets/app-2.js") == (404, "")
    status = json.loads(ok(edge, "status", "--json").stdout)
    assert (status["live"], status["canary"], status["weight"]) == ("v1", None, 0)
    assert "no canary" in ok(edge, "canary", "--abort").stderr


def test_promote_makes_the_canary_live_and_keeps_old_pages_assets(edge: Edge, two_releases: None) -> None:
    old_page = Viewer(edge)
    assert old_page.get("/")[1] == "v1"
    ok(edge, "canary", "v2", "-p", "10")

    change = json.loads(ok(edge, "canary", "--promote", "--json").stdout)

    assert change["after"] == {"live": "v2", "canary": None, "weight": 0, "pins": ["v1"]}
    assert Viewer(edge).get("/")[1] == "v2"
    assert old_page.get("/assets/app-1.js") == (200, "v1")
    assert old_page.get("/")[1] == "v2"
    states = {r["id"]: r["state"] for r in json.loads(ok(edge, "releases", "--json").stdout)}
    assert states == {"v1": "previous", "v2": "live"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("canary", "v2"), InvalidInputError.exit_code, "use one of"),
        (("canary", "--percent", "5"), InvalidInputError.exit_code, "use one of"),
        (("canary", "--promote", "--abort"), InvalidInputError.exit_code, "use one of"),
        (("canary", "v2", "--percent", "5", "--promote"), InvalidInputError.exit_code, "use one of"),
        (("canary", "v2", "--percent", "101"), InvalidInputError.exit_code, "from 1 to 100"),
        (("canary", "v1", "--percent", "5"), InvalidInputError.exit_code, "already live"),
        (("canary", "ghost", "--percent", "5"), NotFoundError.exit_code, "no release ghost"),
        (("canary", "--promote"), NotFoundError.exit_code, "no canary to promote"),
    ],
)
def test_refused_canary_commands_say_why_and_change_nothing(
    edge: Edge, two_releases: None, args: tuple[str, ...], code: int, message: str
) -> None:
    result = cli(edge, *args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert json.loads(ok(edge, "status", "--json").stdout)["canary"] is None


def test_preview_prints_the_local_link_and_rotates(edge: Edge, two_releases: None) -> None:
    first = json.loads(ok(edge, "preview", "v2", "--json").stdout)
    again = ok(edge, "preview", "v2", "--base-url", edge.url)
    assert first["token_created"] is True
    assert first["url"] == f"http://127.0.0.1:8080/?__preview=v2&__token={first['token']}"
    link = again.stdout.strip()
    assert link == f"{edge.url}/?__preview=v2&__token={first['token']}"

    assert edge.get(link.removeprefix(edge.url))[0] == 302

    ok(edge, "preview", "--rotate")
    assert json.loads(ok(edge, "preview", "v2", "--json").stdout)["token"] != first["token"]
    assert cli(edge, "preview").exit_code == InvalidInputError.exit_code
    assert cli(edge, "preview", "ghost").exit_code == NotFoundError.exit_code


def test_rollback_from_takes_a_releases_viewers_back_whatever_its_share(edge: Edge, two_releases: None) -> None:
    ok(edge, "canary", "v2", "--percent", "30")
    aborted = json.loads(ok(edge, "rollback", "--from", "v2", "--json").stdout)
    viewers = {Viewer(edge).get("/")[1] for _ in range(40)}
    ok(edge, "activate", "v2")
    rolled_back = ok(edge, "rollback", "--from", "v2")
    untouched = ok(edge, "rollback", "--from", "v2")

    assert (aborted["before"]["canary"], aborted["after"]["canary"], aborted["after"]["live"]) == ("v2", None, "v1")
    assert viewers == {"v1"}
    assert "rolled back to v1 (was v2)" in rolled_back.stderr
    assert "v2 has no viewers (live: v1); nothing changed" in untouched.stderr
    assert Viewer(edge).get("/")[1] == "v1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "v2", "--to", "v1"), "use either --to ID or --from ID"),
        (("--from", "v2 --to v1"), "is not a valid release id"),
    ],
)
def test_rollback_from_refuses_what_it_cannot_do_safely(
    edge: Edge, two_releases: None, args: tuple[str, ...], message: str
) -> None:
    result = cli(edge, "rollback", *args)

    assert result.exit_code == 3
    assert message in result.stderr
