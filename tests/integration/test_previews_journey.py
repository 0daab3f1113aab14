"""A pull request's preview from open to close through the real CLI and a local edge over HTTP, with
production asserted unchanged at every step; listing, links, promotion and the preview build's limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner, Result

from hosting_toolkit.cli.main import app
from hosting_toolkit.config import load_config
from hosting_toolkit.contract import PREVIEW_COOKIE, RELEASE_COOKIE, RELEASE_HEADER, ROBOTS_HEADER
from hosting_toolkit.edge.sandbox import FunctionSandbox
from tests.fakes.sites import write_files
from tests.integration.conftest import Edge

pytestmark = [pytest.mark.integration, pytest.mark.node]

CONFIG = """
[site]
mode = "static"

[release]
concurrency = 4
keep = 1

[source]
type = "codeconnections"
repository = "acme/site"
branch = "main"

[domain]
names = ["www.example.com"]

[previews]
domain = "preview.example.com"
"""
COMMIT_1 = "1111aaaa2222bbbb3333cccc4444dddd5555eeee"
COMMIT_2 = "9999ffff8888eeee7777dddd6666cccc5555bbbb"


def site(root: Path, version: str) -> Path:
    return write_files(
        root,
        {
            "index.html": f'<h1>home {version}</h1><script src="/assets/app-{version}.js"></script>',
            f"assets/app-{version}.js": f"console.log('{version}')",
        },
    )


@pytest.fixture
def edge(tmp_path: Path, function_sandbox: FunctionSandbox, clean_cli_env: None) -> Iterator[Edge]:
    (tmp_path / "hosting.toml").write_text(CONFIG)
    running = Edge(tmp_path, load_config(tmp_path / "hosting.toml"), function_sandbox)
    yield running
    running.close()


def cli(edge: Edge, *args: str | Path, preview_build: bool = False) -> Result:
    options = ["--local", str(edge.root / "target"), "--site-url", edge.url]
    if preview_build:
        options.append("--preview-build")
    return CliRunner().invoke(app, [*options, *(str(a) for a in args)])


def build_preview(edge: Edge, folder: Path, *args: str) -> Result:
    """What the preview pipeline's build runs after building ``folder``."""
    return ok(cli(edge, "previews", "build", folder, *args, preview_build=True))


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def production_serves(edge: Edge, release: str) -> None:
    status, headers, body = edge.get("/", {"Host": "www.example.com"})
    assert (status, headers[RELEASE_HEADER]) == (200, release)
    assert body.startswith(f"<h1>home {release}".encode())
    assert ROBOTS_HEADER not in headers


def open_link(edge: Edge, name: str) -> tuple[str, str]:
    """The Host and path of ``preview open NAME``'s link, as a browser would request it."""
    link = json.loads(ok(cli(edge, "preview", "open", name, "--json")).stdout)["url"]
    parts = urlsplit(link)
    assert parts.hostname == f"{name}.localhost" and parts.port == edge.port
    return parts.netloc, f"{parts.path}?{parts.query}"


def test_a_pull_request_preview_from_open_to_close_leaves_production_alone(edge: Edge, tmp_path: Path) -> None:
    ok(cli(edge, "release", site(tmp_path / "prod", "prod1"), "--id", "prod1"))
    production_serves(edge, "prod1")

    # Opened: the preview build stages the release and moves the preview to it.
    build_preview(edge, site(tmp_path / "pr1", "pr1"), "--pr", "42", "--commit", COMMIT_1)
    production_serves(edge, "prod1")
    host, path = open_link(edge, "pr-42")
    status, headers, _ = edge.get(path, {"Host": host})
    assert status == 302 and headers["location"] == "/"
    cookie = headers["set-cookie"].split(";", 1)[0]
    status, headers, body = edge.get("/", {"Host": host, "Cookie": cookie})
    first = COMMIT_1[:12]
    assert (status, headers[RELEASE_HEADER], headers[ROBOTS_HEADER]) == (200, first, "noindex")
    assert body.startswith(b"<h1>home pr1")
    # Without the token the preview host answers 401, never the production site.
    assert edge.get("/", {"Host": host})[0] == 401
    listed = json.loads(ok(cli(edge, "previews", "--json")).stdout)
    assert [(p["name"], p["ref"], p["release"]) for p in listed] == [("pr-42", "pr:42", first)]
    assert listed[0]["url"] == f"http://pr-42.localhost:{edge.port}/"

    # Pushed: the preview moves; a page still open on the first release keeps its assets.
    build_preview(edge, site(tmp_path / "pr2", "pr2"), "--pr", "42", "--commit", COMMIT_2)
    production_serves(edge, "prod1")
    status, headers, body = edge.get("/", {"Host": host, "Cookie": cookie})
    assert (status, headers[RELEASE_HEADER]) == (200, COMMIT_2[:12]) and body.startswith(b"<h1>home pr2")
    pinned = {"Host": host, "Cookie": f"{cookie}; {RELEASE_COOKIE}={first}"}
    assert edge.get("/assets/app-pr1.js", pinned)[:2][0] == 200

    # A failed build leaves the preview where it was.
    failed = cli(edge, "previews", "build", tmp_path / "unused", "--pr", "42", "--build-failed", preview_build=True)
    assert failed.exit_code != 0 and "stays where it was" in failed.stderr
    assert edge.get("/", {"Host": host, "Cookie": cookie})[1][RELEASE_HEADER] == COMMIT_2[:12]

    # Closed (even when its last build failed): the preview is gone; prune retires its releases.
    build_preview(edge, tmp_path / "unused", "--pr", "42", "--closed", "--build-failed")
    production_serves(edge, "prod1")
    assert edge.get("/", {"Host": host, "Cookie": cookie})[0] == 404
    assert json.loads(ok(cli(edge, "previews", "--json")).stdout) == []
    pruned = json.loads(ok(cli(edge, "prune", "--json")).stdout)
    assert sorted(pruned["removed"]) == sorted([first, COMMIT_2[:12]])
    production_serves(edge, "prod1")


def test_a_branch_preview_and_its_removal_by_name(edge: Edge, tmp_path: Path) -> None:
    ok(cli(edge, "release", site(tmp_path / "prod", "prod1"), "--id", "prod1"))
    build_preview(edge, site(tmp_path / "b", "b1"), "--branch", "feature/x", "--commit", COMMIT_1)
    name = json.loads(ok(cli(edge, "previews", "--json")).stdout)[0]["name"]
    assert name.startswith("branch-feature-x-")
    # The production branch never gets a preview.
    result = build_preview(edge, site(tmp_path / "m", "m1"), "--branch", "main")
    assert "gets no preview" in result.stderr
    host, path = open_link(edge, name)
    assert edge.get(path, {"Host": host})[0] == 302
    # A signed link that expires opens it without handing out the token.
    signed = json.loads(ok(cli(edge, "preview", "open", name, "--expires", "5", "--json")).stdout)
    assert signed["expires"] > 0
    parts = urlsplit(signed["url"])
    status, headers, _ = edge.get(f"/?{parts.query}", {"Host": parts.netloc})
    cookie = headers["set-cookie"].split(";", 1)[0]
    assert status == 302 and edge.get("/", {"Host": parts.netloc, "Cookie": cookie})[0] == 200
    assert ok(cli(edge, "previews", "remove", name)).stdout.strip() == name
    assert "no open preview" in ok(cli(edge, "previews", "remove", name)).stderr
    production_serves(edge, "prod1")


def test_promote_preview_verifies_then_activates_through_the_engine(edge: Edge, tmp_path: Path) -> None:
    ok(cli(edge, "release", site(tmp_path / "prod", "prod1"), "--id", "prod1"))
    build_preview(edge, site(tmp_path / "pr", "pr1"), "--pr", "7", "--commit", COMMIT_1)
    # A preview build can never promote, nor switch production any other way.
    refused = cli(edge, "promote-preview", "pr-7", preview_build=True)
    assert refused.exit_code != 0 and "cannot promote" in refused.stderr
    refused = cli(edge, "activate", COMMIT_1[:12], preview_build=True)
    assert refused.exit_code != 0 and "preview:" in refused.stderr
    production_serves(edge, "prod1")

    promoted = json.loads(ok(cli(edge, "promote-preview", "pr-7", "--json")).stdout)
    assert promoted["after"]["live"] == COMMIT_1[:12]
    status, headers, _ = edge.get("/", {"Host": "www.example.com"})
    assert (status, headers[RELEASE_HEADER]) == (200, COMMIT_1[:12])
    assert PREVIEW_COOKIE not in headers.get("set-cookie", "")


def test_previews_commands_refuse_bad_input_with_one_line(edge: Edge) -> None:
    for args in (("preview", "open", "pr-404"), ("previews", "remove", "Bad_Name"), ("previews", "stage", "x")):
        result = cli(edge, *args)
        assert result.exit_code != 0
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_serve_answers_name_localhost_as_the_preview_host(edge: Edge, tmp_path: Path) -> None:
    """The real ``serve`` command in its own process: ``NAME.localhost`` is the preview, any other host production."""
    import http.client
    import subprocess
    import sys

    ok(cli(edge, "release", site(tmp_path / "prod", "prod1"), "--id", "prod1"))
    build_preview(edge, site(tmp_path / "pr", "pr1"), "--pr", "3", "--commit", COMMIT_1)
    token = json.loads(ok(cli(edge, "preview", "open", "pr-3", "--json")).stdout)["url"].split("__token=", 1)[1]
    command = [str(Path(sys.executable).parent / "hosting-toolkit"), "--config", str(tmp_path / "hosting.toml")]
    server = subprocess.Popen(
        [*command, "--local", str(edge.root / "target"), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(urlsplit(server.stdout.readline().strip()).port or 0)

        def get(host: str, cookie: str = "") -> tuple[int, str | None]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/", headers={"Host": host, **({"Cookie": cookie} if cookie else {})})
            response = connection.getresponse()
            response.read()
            connection.close()
            return response.status, response.getheader(RELEASE_HEADER)

        preview_cookie = f"{PREVIEW_COOKIE}=~pr-3.{token}"
        assert get(f"pr-3.localhost:{port}", preview_cookie) == (200, COMMIT_1[:12])
        assert get(f"pr-3.localhost:{port}")[0] == 401
        assert get(f"127.0.0.1:{port}") == (200, "prod1")
        # On the site's own host the same cookie is the main-domain preview link's, which needs the token too.
        assert get(f"127.0.0.1:{port}", preview_cookie) == (200, COMMIT_1[:12])
        assert get(f"127.0.0.1:{port}", f"{PREVIEW_COOKIE}=~pr-3.wrong") == (200, "prod1")
    finally:
        server.terminate()
        server.wait(timeout=10)
