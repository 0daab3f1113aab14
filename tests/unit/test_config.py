"""Loading and validating ``hosting.toml``: every problem reported together, with key names and hints."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hosting_toolkit.config import HostingConfig, ReleaseConfig, SiteConfig, load_config, parse_config
from hosting_toolkit.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]


def problems_of(document: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(document))
    return caught.value.problems


def test_defaults_when_there_is_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    config = load_config()

    assert config == HostingConfig()
    assert (config.site.mode, config.site.entry, config.release.keep) == ("spa", "index.html", 10)
    assert config.stack_name == "hosting-site"


def test_missing_file_is_an_error_when_named_or_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ConfigError, match=r"missing\.toml: file not found"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"hosting\.toml: file not found"):
        load_config(required=True)


def test_valid_file_is_loaded_into_typed_sections(tmp_path: Path) -> None:
    path = tmp_path / "hosting.toml"
    path.write_text(
        '[site]\nname = "marketing-site"\nmode = "static"\n\n'
        '[headers]\nframe_options = "SAMEORIGIN"\n\n[release]\nkeep = 3\npins = 0\n'
    )

    config = load_config(path)

    assert config.site == SiteConfig(name="marketing-site", mode="static")
    assert config.headers.frame_options == "SAMEORIGIN"
    assert config.release == ReleaseConfig(keep=3, pins=0)
    assert config.path == path
    assert config.stack_name == "hosting-marketing-site"


def test_example_file_in_the_repository_is_valid() -> None:
    load_config(REPO_ROOT / "hosting.example.toml")


def test_every_problem_is_reported_together_with_its_key() -> None:
    problems = problems_of(
        "[site]\n"
        'name = "Bad Name"\n'
        'mode = "spaa"\n'
        'entry = "../index.php"\n'
        "[headers]\n"
        'content_security_policy = "a\\nb"\n'
        "hsts_max_age = -1\n"
        'frame_options = "ALLOW"\n'
        'referrer_policy = "strict-origin-when-crossorigin"\n'
        "[release]\n"
        "keep = 0\n"
        "pins = 11\n"
        'concurrency = "8"\n'
        "max_archive_ratio = true\n"
    )

    keys = [p.split(":", 1)[0] for p in problems]
    assert keys == [
        "site.name",
        "site.mode",
        "site.entry",
        "headers.content_security_policy",
        "headers.hsts_max_age",
        "headers.frame_options",
        "headers.referrer_policy",
        "release.keep",
        "release.pins",
        "release.concurrency",
        "release.max_archive_ratio",
    ]
    by_key = dict(zip(keys, problems, strict=True))
    assert "e.g. 'marketing-site'" in by_key["site.name"]
    assert "use 'spa' or 'static'" in by_key["site.mode"]
    assert "did you mean 'strict-origin-when-cross-origin'?" in by_key["headers.referrer_policy"]
    assert "use 1 to 1000" in by_key["release.keep"]
    assert "expected a whole number, got '8'" in by_key["release.concurrency"]
    assert "expected a whole number, got True" in by_key["release.max_archive_ratio"]


def test_unknown_keys_and_sections_suggest_the_close_name() -> None:
    problems = problems_of('[site]\nmdoe = "spa"\n[relase]\nkeep = 1\n[release]\nkepe = 2\nnothing_like_it = 1\n')

    assert "site.mdoe: unknown key (did you mean 'mode'?)" in problems
    assert "[relase]: unknown section (did you mean 'release'?)" in problems
    assert "release.kepe: unknown key (did you mean 'keep'?)" in problems
    unknown = next(p for p in problems if p.startswith("release.nothing_like_it"))
    assert "known: concurrency, keep, max_archive_bytes, max_archive_ratio, max_files, pins" in unknown


def test_section_that_is_not_a_table_is_reported() -> None:
    assert problems_of('site = "spa"\n') == ["site: expected a [site] table"]


def test_error_message_names_the_file_and_lists_each_problem(tmp_path: Path) -> None:
    path = tmp_path / "hosting.toml"
    path.write_text("[release]\nkeep = 0\npins = -1\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: 2 problems:")
    assert "\n  - release.keep: 0 is out of range" in message
    assert "\n  - release.pins: -1 is out of range" in message
    assert caught.value.exit_code == 2


def test_single_problem_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "hosting.toml"
    path.write_text('[site]\nmode = "ssr"\n')

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert str(caught.value) == f"{path}: site.mode: 'ssr' is not a mode; use 'spa' or 'static'"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"[site\nmode = 'spa'\n", "not valid TOML"), (b"\xff\xfe[site]", "cannot read the file")],
    ids=["bad-toml", "not-utf8"],
)
def test_unparseable_file_is_a_config_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "hosting.toml"
    path.write_bytes(content)

    with pytest.raises(ConfigError, match=message):
        load_config(path)
