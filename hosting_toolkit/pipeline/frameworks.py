"""The build recipes the pipeline knows, and the package managers that install their dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from hosting_toolkit.config import SiteMode


@dataclass(frozen=True)
class Framework:
    """One build recipe; its commands and output folder are in ``buildspecs/<name>.yml``.

    title: the name ``init`` shows.
    node: the build needs Node.js and the site's npm dependencies.
    mode: the site mode its output suits: ``spa`` for client-routed apps, ``static`` for a page per route.
    """

    name: str
    title: str
    node: bool
    mode: SiteMode


RECIPES: dict[str, Framework] = {
    f.name: f
    for f in (
        Framework("static", "static files, no build", node=False, mode="static"),
        Framework("vite", "Vite", node=True, mode="spa"),
        Framework("react", "Create React App", node=True, mode="spa"),
        Framework("vue", "Vue CLI", node=True, mode="spa"),
        Framework("angular", "Angular CLI", node=True, mode="spa"),
        Framework("next", "Next.js static export", node=True, mode="static"),
        Framework("astro", "Astro", node=True, mode="static"),
        Framework("hugo", "Hugo", node=False, mode="static"),
        Framework("gatsby", "Gatsby", node=True, mode="static"),
        Framework("custom", "a custom build command", node=False, mode="static"),
    )
}


@dataclass(frozen=True)
class PackageManager:
    """How one package manager installs a site's locked dependencies, and where it keeps its download cache.

    lockfiles: the files that show a project uses it, most specific first.
    install: the clean install from the lockfile.
    cache_paths: its download cache in the CodeBuild image (the build runs as root), kept between builds.
    """

    name: str
    lockfiles: tuple[str, ...]
    install: str
    cache_paths: tuple[str, ...]


PACKAGE_MANAGER_RECIPES: dict[str, PackageManager] = {
    p.name: p
    for p in (
        PackageManager(
            "npm",
            ("package-lock.json", "npm-shrinkwrap.json"),
            "npm ci --no-audit --no-fund",
            ("/root/.npm/**/*",),
        ),
        PackageManager(
            "pnpm",
            ("pnpm-lock.yaml",),
            "corepack enable && pnpm install --frozen-lockfile",
            ("/root/.local/share/pnpm/store/**/*",),
        ),
        PackageManager(
            "yarn",
            ("yarn.lock",),
            "corepack enable && yarn install --frozen-lockfile",
            ("/usr/local/share/.cache/yarn/**/*",),
        ),
    )
}

#: Yarn 2 and later (a ``.yarnrc.yml`` beside the lockfile) install from the lockfile with ``--immutable``.
YARN_BERRY_INSTALL = "corepack enable && yarn install --immutable"
#: Without a lockfile there is nothing to install cleanly from.
NPM_INSTALL_WITHOUT_LOCKFILE = "npm install --no-audit --no-fund"
