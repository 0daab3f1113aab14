"""Tell a site's framework, package manager and repository from its files, without running anything.

Detection never guesses: it reports what it saw, names the one framework the evidence points to,
or none when the evidence points to several or to none, so that ``init`` can ask.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hosting_toolkit.config import NODE_VERSIONS
from hosting_toolkit.pipeline.frameworks import (
    NPM_INSTALL_WITHOUT_LOCKFILE,
    PACKAGE_MANAGER_RECIPES,
    RECIPES,
    YARN_BERRY_INSTALL,
)

_JS_CONFIG = ("js", "mjs", "cjs", "ts", "mts")


@dataclass(frozen=True)
class Signals:
    """How a framework shows itself: npm packages, configuration files, the command in ``scripts.build``."""

    packages: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()


SIGNALS: dict[str, Signals] = {
    "next": Signals(("next",), tuple(f"next.config.{e}" for e in _JS_CONFIG), ("next",)),
    "astro": Signals(("astro",), tuple(f"astro.config.{e}" for e in _JS_CONFIG), ("astro",)),
    "gatsby": Signals(("gatsby",), tuple(f"gatsby-config.{e}" for e in _JS_CONFIG), ("gatsby",)),
    "angular": Signals(("@angular/core", "@angular/cli"), ("angular.json",), ("ng",)),
    "vue": Signals(("@vue/cli-service",), ("vue.config.js", "vue.config.cjs", "vue.config.mjs"), ("vue-cli-service",)),
    "react": Signals(("react-scripts",), (), ("react-scripts",)),
    "vite": Signals(("vite",), tuple(f"vite.config.{e}" for e in _JS_CONFIG), ("vite",)),
    "hugo": Signals((), ("hugo.toml", "hugo.yaml", "hugo.yml", "hugo.json"), ("hugo",)),
}
#: Build tools without a recipe here; finding one means the output folder is the tool's own.
OTHER_TOOLS = {
    "nuxt": "Nuxt",
    "@sveltejs/kit": "SvelteKit",
    "@remix-run/dev": "Remix",
    "@react-router/dev": "React Router",
    "@docusaurus/core": "Docusaurus",
    "vitepress": "VitePress",
    "@11ty/eleventy": "Eleventy",
    "@solidjs/start": "SolidStart",
    "@builder.io/qwik-city": "Qwik City",
}
#: A Hugo site may still name its configuration config.toml, next to these folders.
_HUGO_LEGACY_CONFIG = ("config.toml", "config.yaml", "config.yml")
_HUGO_FOLDERS = ("content", "layouts", "archetypes", "themes")

_NEXT_EXPORT_RE = re.compile(r"""output\s*:\s*["'`]export["'`]""")
_ASTRO_SERVER_RE = re.compile(r"""output\s*:\s*["'`](server|hybrid)["'`]""")
_OUT_DIR_RE = re.compile(r"""\boutDir\s*:\s*["'`]([^"'`]+)["'`]""")
_VUE_OUTPUT_DIR_RE = re.compile(r"""\boutputDir\s*:\s*["'`]([^"'`]+)["'`]""")
_COMMAND_WORD_RE = re.compile(r"[A-Za-z@][\w@/.-]*")


@dataclass(frozen=True)
class Repository:
    """Where the site's source lives, as its git checkout says.

    kind: ``codeconnections`` or ``codecommit``.
    provider: ``github``, ``gitlab`` or ``bitbucket`` for CodeConnections.
    repository: ``owner/name`` (CodeConnections) or the repository name (CodeCommit).
    branch: the branch checked out.
    app_root: the site's folder inside the repository (``.`` at its root).
    """

    kind: str
    provider: str
    repository: str
    branch: str
    app_root: str


@dataclass(frozen=True)
class Detection:
    """What ``detect`` saw in a site's folder.

    framework: the one framework the evidence points to; ``None`` when it points to none or several.
    candidates: every framework some evidence points to.
    evidence: what was seen, one line each.
    problems: what keeps the site from being hosted as static files.
    output_dir: the output folder the project's own configuration sets, relative to the folder
      (``None``: the recipe's default).
    package_manager, install_command: how its dependencies install (``install_command`` is
      ``None`` when the package manager's clean install fits).
    node_version: the Node.js major version the project asks for, when the image has it.
    site_name: a site name from package.json or the folder's name.
    repository: the git repository the folder belongs to, when it is on a supported host.
    has_package_json: the folder is an npm project.
    """

    framework: str | None
    candidates: tuple[str, ...]
    evidence: tuple[str, ...]
    problems: tuple[str, ...] = ()
    output_dir: str | None = None
    package_manager: str = "npm"
    install_command: str | None = None
    node_version: str | None = None
    site_name: str | None = None
    repository: Repository | None = None
    has_package_json: bool = False


@dataclass
class _Seen:
    evidence: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _read_json(path: Path, seen: _Seen) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        seen.evidence.append(f"{path.name} is not readable JSON ({exc.__class__.__name__})")
        return None
    return data if isinstance(data, dict) else None


def _first_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_file()), None)


def _text(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _relative_dir(value: str) -> str | None:
    """An output folder as configured (``./build/``) in the form ``build.output_dir`` takes."""
    cleaned = value.strip().removeprefix("./").rstrip("/")
    if not cleaned or cleaned.startswith("/") or ".." in cleaned.split("/"):
        return None
    return cleaned


def detect(folder: Path) -> Detection:
    """Detect the framework and build settings of the site in ``folder``."""
    seen = _Seen()
    package = _read_json(folder / "package.json", seen) if (folder / "package.json").is_file() else None
    packages: set[str] = set()
    build_script = ""
    if package is not None:
        for key in ("dependencies", "devDependencies"):
            table = package.get(key)
            if isinstance(table, dict):
                packages |= set(table)
        scripts = package.get("scripts")
        if isinstance(scripts, dict) and isinstance(scripts.get("build"), str):
            build_script = scripts["build"]

    script_words = set(_COMMAND_WORD_RE.findall(build_script))
    candidates: list[str] = []
    by_script: list[str] = []
    for name, signals in SIGNALS.items():
        found = False
        for pkg in signals.packages:
            if pkg in packages:
                seen.evidence.append(f"package.json depends on {pkg}")
                found = True
        config_file = _first_file(folder, signals.files)
        if config_file is not None:
            seen.evidence.append(f"{config_file.name} is there")
            found = True
        if name == "hugo" and config_file is None:
            legacy = _first_file(folder, _HUGO_LEGACY_CONFIG)
            folders = [d for d in _HUGO_FOLDERS if (folder / d).is_dir()]
            if legacy is not None and folders:
                seen.evidence.append(f"{legacy.name} is there with {', '.join(f + '/' for f in folders)}")
                found = True
        if script_words & set(signals.commands):
            by_script.append(name)
            found = True
        if found:
            candidates.append(name)
    if build_script:
        seen.evidence.append(f'package.json scripts.build is "{build_script}"')
    others = sorted(title for pkg, title in OTHER_TOOLS.items() if pkg in packages)
    for title in others:
        seen.evidence.append(f"{title} is in the dependencies; it has no recipe here (use 'custom')")

    # A tool without a recipe decides nothing: its output folder is its own (SvelteKit builds with vite).
    framework: str | None = None
    if others:
        framework = None
    elif len(by_script) == 1:
        framework = by_script[0]
    elif len(candidates) == 1:
        framework = candidates[0]
    elif not candidates and not build_script:
        if (folder / "index.html").is_file():
            seen.evidence.append("index.html is there and nothing builds it")
            framework = "static"
            candidates.append("static")
        else:
            seen.evidence.append("no framework, build script or index.html found")

    output_dir = _output_dir(framework, folder, seen) if framework else None
    package_manager, install = (
        _package_manager(folder, seen) if framework is None or RECIPES[framework].node else ("npm", None)
    )
    return Detection(
        framework=framework,
        candidates=tuple(candidates),
        evidence=tuple(seen.evidence),
        problems=tuple(seen.problems),
        output_dir=output_dir,
        package_manager=package_manager,
        install_command=install,
        node_version=_node_version(folder, seen),
        site_name=_site_name(folder, package),
        repository=find_repository(folder),
        has_package_json=package is not None,
    )


def _output_dir(framework: str, folder: Path, seen: _Seen) -> str | None:
    """The output folder the project's configuration sets; also notes what rules out static hosting."""
    if framework == "next":
        config = _first_file(folder, SIGNALS["next"].files)
        if config is None or not _NEXT_EXPORT_RE.search(_text(config)):
            seen.problems.append(
                f"{config.name if config else 'next.config.js'} does not set output: 'export', so the app needs a "
                "Next.js server; add output: 'export' to host it as static files"
            )
        return None
    if framework == "angular":
        return _angular_output(folder, seen)
    if framework in ("astro", "vite"):
        config = _first_file(folder, SIGNALS[framework].files)
        text = _text(config)
        if framework == "astro" and _ASTRO_SERVER_RE.search(text):
            seen.problems.append(
                f"{config.name if config else 'astro.config'} asks for server output; use static output"
            )
        match = _OUT_DIR_RE.search(text)
        if match and (out := _relative_dir(match.group(1))):
            seen.evidence.append(f"{config.name if config else 'the config'} sets outDir {out}")
            return out
        return None
    if framework == "vue":
        match = _VUE_OUTPUT_DIR_RE.search(_text(_first_file(folder, SIGNALS["vue"].files)))
        return _relative_dir(match.group(1)) if match else None
    if framework == "hugo":
        config = _first_file(folder, ("hugo.toml", "config.toml"))
        if config is not None:
            try:
                publish = tomllib.loads(_text(config)).get("publishDir")
            except tomllib.TOMLDecodeError:
                publish = None
            if isinstance(publish, str) and (out := _relative_dir(publish)):
                seen.evidence.append(f"{config.name} sets publishDir {out}")
                return out
    return None


def _angular_output(folder: Path, seen: _Seen) -> str | None:
    """Where ``ng build`` writes the site: outputPath of the build target, plus browser/ for the application builder."""
    path = folder / "angular.json"
    data = _read_json(path, seen) if path.is_file() else None
    projects = data.get("projects") if data else None
    if not isinstance(projects, dict) or not projects:
        seen.evidence.append("angular.json names no project")
        return None
    assert data is not None
    name = data.get("defaultProject") if data.get("defaultProject") in projects else next(iter(projects))
    project = projects[name] if isinstance(projects[name], dict) else {}
    target = (project.get("architect") or project.get("targets") or {}).get("build") or {}
    builder = str(target.get("builder", ""))
    output = (target.get("options") or {}).get("outputPath")
    application = builder.endswith(":application")
    if isinstance(output, dict):
        base = str(output.get("base", f"dist/{name}"))
        browser = str(output.get("browser", "browser"))
        result = f"{base}/{browser}" if browser else base
    elif isinstance(output, str):
        result = f"{output}/browser" if application else output
    elif application:
        result = f"dist/{name}/browser"
    else:
        seen.evidence.append(f"angular.json: project {name} sets no outputPath")
        return None
    out = _relative_dir(result)
    if out:
        seen.evidence.append(f"angular.json: project {name} ({builder or 'no builder'}) builds into {out}")
    return out


def _package_manager(folder: Path, seen: _Seen) -> tuple[str, str | None]:
    """The package manager by lockfile, here or in a parent up to the repository root (a workspace)."""
    root = _git_root(folder)
    current = folder
    while True:
        for manager in PACKAGE_MANAGER_RECIPES.values():
            lockfile = _first_file(current, manager.lockfiles)
            if lockfile is None:
                continue
            where = "" if current == folder else f" in {os.path.relpath(current, folder)}"
            seen.evidence.append(f"{lockfile.name}{where}: dependencies install with {manager.name}")
            install = manager.install
            if manager.name == "yarn" and (current / ".yarnrc.yml").is_file():
                install = YARN_BERRY_INSTALL
            if current != folder:
                install = f"cd {os.path.relpath(current, folder)} && {install}"
            return manager.name, (None if install == manager.install else install)
        if root is None or current == root or current.parent == current:
            break
        current = current.parent
    if (folder / "package.json").is_file():
        seen.evidence.append("no lockfile: dependencies install with npm install, not from a lockfile")
        return "npm", NPM_INSTALL_WITHOUT_LOCKFILE
    return "npm", None


def _node_version(folder: Path, seen: _Seen) -> str | None:
    for name in (".nvmrc", ".node-version"):
        text = _text(folder / name).strip() if (folder / name).is_file() else ""
        match = re.match(r"^v?(\d+)", text)
        if match:
            if match.group(1) in NODE_VERSIONS:
                seen.evidence.append(f"{name} asks for Node.js {match.group(1)}")
                return match.group(1)
            seen.evidence.append(f"{name} asks for Node.js {text}, which the build image lacks")
    return None


def _site_name(folder: Path, package: dict[str, Any] | None) -> str | None:
    raw = package.get("name") if package and isinstance(package.get("name"), str) else folder.resolve().name
    name = re.sub(r"[^a-z0-9-]+", "-", str(raw).split("/")[-1].lower()).strip("-")[:32].strip("-")
    return name if re.match(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$", name) else None


def _git_root(folder: Path) -> Path | None:
    for candidate in (folder.resolve(), *folder.resolve().parents):
        if (candidate / ".git").is_dir():
            return candidate
    return None


_HOSTS = {"github.com": "github", "gitlab.com": "gitlab", "bitbucket.org": "bitbucket"}
_REMOTE_RE = re.compile(r"^(?:[a-z+]+://)?(?:[^@/]+@)?(?P<host>[^/:]+)(?::\d+)?[:/](?P<path>.+?)(?:\.git)?/?$")
_CODECOMMIT_RE = re.compile(
    r"^(?:(?:https|ssh)://(?:[^@/]+@)?git-codecommit\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/v1/repos/"
    r"|codecommit:(?::[a-z0-9-]+:)?//(?:[^@/]+@)?)(?P<name>[A-Za-z0-9_.-]+)$"
)


def parse_remote(url: str) -> tuple[str, str, str] | None:
    """``(kind, provider, repository)`` of a git remote URL on a supported host, else ``None``."""
    url = url.strip()
    codecommit = _CODECOMMIT_RE.match(url)
    if codecommit:
        return "codecommit", "", codecommit.group("name")
    match = _REMOTE_RE.match(url)
    if match and match.group("host").lower() in _HOSTS and "/" in match.group("path"):
        return "codeconnections", _HOSTS[match.group("host").lower()], match.group("path")
    return None


def find_repository(folder: Path) -> Repository | None:
    """The repository of the checkout ``folder`` is in, from ``.git/config`` and ``.git/HEAD``."""
    root = _git_root(folder)
    if root is None:
        return None
    config = _text(root / ".git" / "config")
    section = re.search(r'^\[remote "origin"\]\s*$(?P<body>.*?)(?=^\[|\Z)', config, re.MULTILINE | re.DOTALL)
    url = re.search(r"^\s*url\s*=\s*(\S+)\s*$", section.group("body"), re.MULTILINE) if section else None
    remote = parse_remote(url.group(1)) if url else None
    if remote is None:
        return None
    head = re.match(r"^ref:\s*refs/heads/(\S+)", _text(root / ".git" / "HEAD"))
    branch = head.group(1) if head else "main"
    app_root = Path(os.path.relpath(folder.resolve(), root)).as_posix()
    return Repository(remote[0], remote[1], remote[2], branch, app_root)
