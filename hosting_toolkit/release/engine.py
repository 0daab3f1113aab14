"""The release engine: create immutable releases, switch traffic, roll back and prune.

The CLI and the pipeline's post-build step both call this module; nothing about releasing is
written anywhere else.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from hosting_toolkit.config import HostingConfig
from hosting_toolkit.contract import (
    ERROR_PAGES_PREFIX,
    FOLDER_INDEX_METADATA_KEY,
    RELEASE_METADATA_KEY,
    RoutingState,
    is_release_id,
    release_prefix,
    rules_key,
)
from hosting_toolkit.errors import BackendError, InvalidInputError, NotFoundError, ReleaseConflictError, ToolkitError
from hosting_toolkit.release.archive import extract_archive
from hosting_toolkit.release.content import is_content_hashed
from hosting_toolkit.release.error_pages import (
    PublishedPage,
    page_sources,
    place_built_in_pages,
    publish_error_pages,
)
from hosting_toolkit.release.kvs import KeyValueStore
from hosting_toolkit.release.manifest import (
    FileEntry,
    Manifest,
    is_folder_index,
    manifest_json,
    scan_directory,
)
from hosting_toolkit.release.records import (
    HISTORY_PREFIX,
    JSON_TYPE,
    PENDING_PREFIX,
    RECORDS_PREFIX,
    HistoryEntry,
    PendingMarker,
    ReleaseRecord,
    manifest_key,
    now,
    pending_key,
    record_key,
)
from hosting_toolkit.release.release_rules import CompiledRules, read_rules
from hosting_toolkit.release.routing import RoutingChange, delete_key, read_routing, update_key, update_routing
from hosting_toolkit.release.storage import ObjectStore

T = TypeVar("T")

#: History actions that change the live release (``canary`` and ``abort`` leave it as it is).
LIVE_ACTIONS = ("activate", "rollback", "promote")
#: Times the error pages are published again when the live release changes while they are written.
ERROR_PAGE_ATTEMPTS = 3

log = logging.getLogger(__name__)


class Progress:
    """Receives progress of long steps; the CLI draws bars, the default draws nothing."""

    def begin(self, label: str, total: int) -> None:
        """A step of ``total`` units starts."""

    def advance(self, amount: int = 1) -> None:
        """``amount`` units of the current step are done (called from worker threads)."""

    def end(self) -> None:
        """The current step is over."""

    def note(self, message: str) -> None:
        """A line worth showing a person."""


@dataclass(frozen=True)
class ReleaseResult:
    """What ``create`` did, in the figures scripts read from ``release --json``."""

    id: str
    files: int
    bytes: int
    uploaded_files: int
    uploaded_bytes: int
    copied_files: int
    resumed_files: int
    already_existed: bool
    activated: bool
    base_release: str | None = None
    carried_files: int = 0
    carried_bytes: int = 0
    #: Redirect, rewrite and header rules of its ``_redirects``/``_headers`` (and implicit ones).
    rules: int = 0


@dataclass(frozen=True)
class ReleaseInfo:
    """One line of ``releases``."""

    id: str
    state: str
    created: str
    files: int
    bytes: int
    message: str = ""
    revision: str = ""


@dataclass(frozen=True)
class PruneResult:
    """Releases removed by ``prune`` and how many objects went with them."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    objects_deleted: int = 0


def default_actor() -> str:
    """Who is acting: the pipeline's build id, an explicit name, or user@host."""
    for variable in ("HOSTING_TOOLKIT_ACTOR", "CODEBUILD_BUILD_ID"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class ReleaseEngine:
    """Releases of one site in one bucket and one key-value store."""

    def __init__(
        self,
        store: ObjectStore,
        kvs: KeyValueStore,
        config: HostingConfig,
        *,
        actor: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.store = store
        self.kvs = kvs
        self.config = config
        self.actor = actor or default_actor()
        self.progress = progress or Progress()
        #: The rollout (and its reason) on whose behalf switches are made, while ``automated`` runs.
        self._automation: tuple[str, str] | None = None

    # -- reading -----------------------------------------------------------------------------

    def record(self, release_id: str) -> ReleaseRecord | None:
        """The record of a complete release, or ``None``."""
        data = self.store.get(record_key(release_id))
        return None if data is None else ReleaseRecord.from_json(data)

    def manifest(self, release_id: str) -> list[FileEntry]:
        data = self.store.get(manifest_key(release_id))
        return [] if data is None else [FileEntry.from_record(row) for row in json.loads(data)]

    def status(self) -> RoutingState:
        return read_routing(self.kvs)[0]

    def records(self) -> list[ReleaseRecord]:
        """Every complete release, newest first."""
        keys = [key for key, _ in self.store.list(RECORDS_PREFIX) if key.endswith(".json")]
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = [r for r in pool.map(lambda k: self.store.get(k), keys) if r is not None]
        return sorted((ReleaseRecord.from_json(r) for r in found), key=lambda r: (r.created, r.id), reverse=True)

    def history(self) -> list[HistoryEntry]:
        """Every switch of the live release, oldest first."""
        entries = [HistoryEntry.from_key(key) for key, _ in self.store.list(HISTORY_PREFIX)]
        return sorted((e for e in entries if e is not None), key=lambda e: e.time)

    def switches(self, limit: int | None = None) -> list[HistoryEntry]:
        """The newest ``limit`` routing switches (all by default), newest first, with actor and reason."""
        keys = sorted(
            (key for key, _ in self.store.list(HISTORY_PREFIX) if HistoryEntry.from_key(key) is not None),
            key=lambda key: key[len(HISTORY_PREFIX) :],
            reverse=True,
        )
        chosen = keys if limit is None else keys[:limit]
        with ThreadPoolExecutor(max_workers=8) as pool:
            bodies = list(pool.map(self.store.get, chosen))
        entries = []
        for key, body in zip(chosen, bodies, strict=True):
            listed = HistoryEntry.from_key(key)
            if body is not None:
                entries.append(HistoryEntry.from_json(body))
            elif listed is not None:
                entries.append(listed)
        return entries

    def pending(self) -> list[PendingMarker]:
        markers = []
        for key, _ in self.store.list(PENDING_PREFIX):
            data = self.store.get(key)
            if data is not None:
                markers.append(PendingMarker.from_json(data))
        return markers

    def list_releases(self) -> list[ReleaseInfo]:
        """Complete and incomplete releases with their state, newest first."""
        state = self.status()
        ever_live = {e.to_release for e in self.history() if e.action in LIVE_ACTIONS}
        infos = []
        for record in self.records():
            if record.id == state.live:
                label = "live"
            elif record.id == state.canary:
                label = "canary"
            elif record.id in state.pins:
                label = "previous"
            elif record.id in ever_live:
                label = "retired"
            else:
                label = "staged"
            infos.append(
                ReleaseInfo(
                    record.id, label, record.created, record.files, record.bytes, record.message, record.revision
                )
            )
        complete = {i.id for i in infos}
        for marker in self.pending():
            if marker.id not in complete:
                infos.append(ReleaseInfo(marker.id, "incomplete", marker.started, 0, 0))
        return sorted(infos, key=lambda i: (i.created, i.id), reverse=True)

    # -- creating ----------------------------------------------------------------------------

    def create(
        self,
        source: Path,
        *,
        release_id: str | None = None,
        message: str = "",
        revision: str = "",
        activate: bool = True,
    ) -> ReleaseResult:
        """Turn a build folder or ZIP file into a complete release, then (by default) make it live."""
        if release_id is not None and not is_release_id(release_id):
            raise InvalidInputError(
                f"{release_id!r} is not a valid release id: use 1-40 of a-z 0-9 . _ - starting with a letter or digit"
            )
        if not source.exists():
            raise InvalidInputError(f"{source}: no such file or folder")
        if source.is_file():
            limits = self.config.release
            with tempfile.TemporaryDirectory(prefix="hosting-release-") as tmp:
                self.progress.note(f"checking archive {source.name}")
                folder = extract_archive(
                    source,
                    Path(tmp),
                    entry=self.config.site.entry,
                    max_bytes=limits.max_archive_bytes,
                    max_ratio=limits.max_archive_ratio,
                    max_files=limits.max_files,
                )
                return self._create_from_folder(folder, release_id, message, revision, activate, source.name)
        return self._create_from_folder(source, release_id, message, revision, activate, str(source))

    def _scan(self, folder: Path) -> Manifest:
        self.progress.begin("hashing", sum(len(files) for _, _, files in os.walk(folder)))
        try:
            manifest = scan_directory(
                folder,
                entry=self.config.site.entry,
                static_aliases=self.config.site.mode == "static",
                max_files=self.config.release.max_files,
                on_progress=self.progress.advance,
            )
        finally:
            self.progress.end()
        return manifest

    def _create_from_folder(
        self, folder: Path, release_id: str | None, message: str, revision: str, activate: bool, source: str
    ) -> ReleaseResult:
        manifest = self._scan(folder)
        rules = self._compile_rules(folder, manifest)
        rid = release_id or manifest.content_id()
        content_hash = manifest.content_hash
        existing = self.record(rid)
        if existing is not None:
            if existing.content_hash != content_hash:
                raise ReleaseConflictError(
                    f"release {rid} already exists with other content; releases are immutable, use another --id"
                )
            self.progress.note(f"release {rid} already exists with the same content; nothing uploaded")
            if activate:
                self._carry(rid, manifest.entries)
            activated = self._activate_if(activate, rid)
            count = len(rules.redirects) + len(rules.headers)
            return ReleaseResult(rid, manifest.files, manifest.bytes, 0, 0, 0, 0, True, activated, rules=count)

        marker = PendingMarker(rid, content_hash, now())
        claimed = self.store.put_bytes(pending_key(rid), marker.to_json(), content_type=JSON_TYPE, if_absent=True)
        if not claimed:
            data = self.store.get(pending_key(rid))
            other = PendingMarker.from_json(data) if data else None
            if other is not None and other.content_hash != content_hash:
                raise ReleaseConflictError(
                    f"release {rid} is being uploaded with other content (started {other.started}); "
                    "use another --id, or 'prune' the incomplete release first"
                )
            self.progress.note(f"resuming the incomplete release {rid}")

        result = self._upload(rid, manifest)
        carried = self._carry(rid, manifest.entries)
        self._verify(rid, manifest, carried)
        result = replace(result, carried_files=len(carried), carried_bytes=sum(e.size for _, e in carried))
        self.store.put_bytes(manifest_key(rid), manifest_json(manifest).encode(), content_type=JSON_TYPE)
        # Staging writes nothing to the KVS (the build's role may only read it): the rules key, kept in
        # the record, is written by ``require_complete`` before any switch, verify or preview of it.
        record = ReleaseRecord(
            id=rid,
            content_hash=content_hash,
            created=now(),
            files=manifest.files,
            bytes=manifest.bytes,
            source=source,
            revision=revision,
            message=message,
            actor=self.actor,
            rules=rules.to_json(),
        )
        self.store.put_bytes(record_key(rid), record.to_json(), content_type=JSON_TYPE)
        self.store.delete([pending_key(rid)])
        activated = self._activate_if(activate, rid)
        return replace(result, activated=activated, rules=len(rules.redirects) + len(rules.headers))

    def _compile_rules(self, folder: Path, manifest: Manifest) -> CompiledRules:
        """The build's ``_redirects``/``_headers`` rules, checked before anything is uploaded."""
        site = self.config.site
        rules = read_rules(folder, [e.path for e in manifest.entries], mode=site.mode, entry=site.entry)
        for note in rules.notes:
            self.progress.note(note)
        if not rules.empty:
            size = len(rules.to_json().encode())
            self.progress.note(
                f"rules: {len(rules.redirects)} redirects and rewrites, {len(rules.headers)} header rules "
                f"({size:,} of 1,024 bytes)"
            )
        return rules

    def _ensure_rules(self, rid: str, value: str) -> None:
        """Write a release's compiled rules to its KVS key (absent without rules) unless it holds them already."""
        if value:
            update_key(self.kvs, rules_key(rid), lambda current: value)

    def _activate_if(self, activate: bool, rid: str) -> bool:
        if activate:
            self.require_complete(rid)
            self._published(self._confirm(self._switch("activate", rid), rid))
        elif self.status().live is None:
            self._placeholder_error_pages(rid)
        return activate

    def _placeholder_error_pages(self, rid: str) -> None:
        """Place the built-in error pages while nothing is live; a failure fails the staging command."""
        try:
            place_built_in_pages(self.store)
        except (ToolkitError, OSError) as exc:
            raise BackendError(
                f"release {rid} is staged, but the built-in error pages could not be placed under "
                f"{ERROR_PAGES_PREFIX} ({exc}); until they are, CloudFront answers a missing path with an "
                "S3 error document: allow the build to write them, then run the same command again"
            ) from exc

    def _base_files(self) -> tuple[str | None, dict[str, tuple[str, str]]]:
        """Files of the live and the newest complete release: path -> (release, sha256)."""
        state = self.status()
        candidates: list[str] = []
        if state.live:
            candidates.append(state.live)
        records = self.records()
        if records and records[0].id not in candidates:
            candidates.append(records[0].id)
        files: dict[str, tuple[str, str]] = {}
        for base in reversed(candidates):
            for entry in self.manifest(base):
                if entry.alias_of is None:
                    files[entry.path] = (base, entry.sha256)
        return (candidates[0] if candidates else None), files

    def _upload(self, rid: str, manifest: Manifest) -> ReleaseResult:
        prefix = release_prefix(rid)
        present = {key[len(prefix) :]: size for key, size in self.store.list(prefix)}
        base_release, base_files = self._base_files()
        static = self.config.site.mode == "static"

        def metadata_of(entry: FileEntry) -> dict[str, str]:
            if static and is_folder_index(entry):
                return {RELEASE_METADATA_KEY: rid, FOLDER_INDEX_METADATA_KEY: "1"}
            return {RELEASE_METADATA_KEY: rid}

        uploads: list[FileEntry] = []
        copies: list[tuple[str, FileEntry]] = []
        aliases: list[FileEntry] = []
        resumed = 0
        for entry in manifest.entries:
            if present.get(entry.path) == entry.size:
                resumed += 1
            elif entry.alias_of is not None:
                aliases.append(entry)
            elif (base := base_files.get(entry.path)) and base[1] == entry.sha256 and base[0] != rid:
                copies.append((release_prefix(base[0]) + entry.path, entry))
            else:
                uploads.append(entry)

        def upload(entry: FileEntry) -> int:
            self.store.put_file(
                prefix + entry.path,
                manifest.sources[entry.path],
                content_type=entry.content_type,
                cache_control=entry.cache_control,
                metadata=metadata_of(entry),
            )
            return entry.size

        def copy(item: tuple[str, FileEntry]) -> int:
            source_key, entry = item
            try:
                self.store.copy(
                    source_key,
                    prefix + entry.path,
                    content_type=entry.content_type,
                    cache_control=entry.cache_control,
                    metadata=metadata_of(entry),
                )
            except BackendError:
                # The base release was pruned meanwhile: upload the file instead.
                upload(entry)
                return entry.size
            return 0

        def copy_alias(entry: FileEntry) -> int:
            self.store.copy(
                prefix + str(entry.alias_of),
                prefix + entry.path,
                content_type=entry.content_type,
                cache_control=entry.cache_control,
                metadata=metadata_of(entry),
            )
            return 0

        uploaded = sum(e.size for e in uploads)
        fallback_bytes = 0
        self.progress.begin(f"uploading {rid}", len(uploads) + len(copies) + len(aliases))
        try:
            self._run(upload, uploads)
            fallback_bytes = sum(self._run(copy, copies))
            self._run(copy_alias, aliases)
        finally:
            self.progress.end()
        return ReleaseResult(
            id=rid,
            files=manifest.files,
            bytes=manifest.bytes,
            uploaded_files=len(uploads),
            uploaded_bytes=uploaded + fallback_bytes,
            copied_files=len(copies) + len(aliases),
            resumed_files=resumed,
            already_existed=False,
            activated=False,
            base_release=base_release,
        )

    def retained(self) -> list[str]:
        """Releases ``prune`` keeps: live, canary, pins and the ``release.keep`` newest, newest first."""
        state = self.status()
        records = [r.id for r in self.records()]
        protected = {r for r in (state.live, state.canary, *state.pins) if r}
        kept = set(records[: self.config.release.keep]) | protected
        return [r for r in records if r in kept]

    def _carry(self, rid: str, own: Iterable[FileEntry]) -> list[tuple[str, FileEntry]]:
        """Copy the content-hashed assets of the retained releases that ``rid`` lacks into its folder.

        Skew protection for every open page: whichever release a viewer's cookie or cohort picks, an
        asset a page of a retained release asks for is there, with its own bytes and headers (and the
        metadata of the release it belongs to). Only a release's own files are carried, never HTML or
        files carried before, so the cost is bounded by retention; a name two retained releases hold
        with different bytes is not a real content hash and is not carried. Carried files are not part
        of the manifest, so the content id stays a function of the build. Returns (source release,
        entry) of every asset carried now or before.
        """
        own_paths = {e.path for e in own}
        found: dict[str, tuple[str, FileEntry]] = {}
        clashing: set[str] = set()
        for source in self.retained():
            if source == rid:
                continue
            for entry in self.manifest(source):
                path = entry.path
                if entry.alias_of is not None or path in own_paths or entry.content_type.startswith("text/html"):
                    continue
                if not is_content_hashed(path):
                    continue
                if path in found and found[path][1].sha256 != entry.sha256:
                    clashing.add(path)
                found.setdefault(path, (source, entry))
        carried = [item for path, item in sorted(found.items()) if path not in clashing]
        if clashing:
            log.warning("warning: %d asset names have other bytes in other releases; not carried", len(clashing))
        prefix = release_prefix(rid)
        present = {key[len(prefix) :]: size for key, size in self.store.list(prefix)}
        todo = [item for item in carried if present.get(item[1].path) != item[1].size]

        def copy(item: tuple[str, FileEntry]) -> int:
            source, entry = item
            try:
                self.store.copy(
                    release_prefix(source) + entry.path,
                    prefix + entry.path,
                    content_type=entry.content_type,
                    cache_control=entry.cache_control,
                    metadata={RELEASE_METADATA_KEY: source},
                )
            except BackendError:
                # The source release was pruned meanwhile: nothing can ask for its assets any more.
                carried.remove(item)
            return entry.size

        if todo:
            self.progress.begin(f"carrying assets of retained releases into {rid}", len(todo))
            try:
                self._run(copy, todo)
            finally:
                self.progress.end()
        return carried

    def _run(self, work: Callable[[T], int], items: Iterable[T]) -> list[int]:
        """Run ``work`` over ``items`` with bounded parallelism; the first failure stops the rest."""
        results: list[int] = []
        limit = self.config.release.concurrency
        with ThreadPoolExecutor(max_workers=limit) as pool:
            in_flight: set[Future[int]] = set()
            try:
                for item in items:
                    if len(in_flight) >= limit * 4:
                        done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        results.extend(f.result() for f in done)
                    future = pool.submit(work, item)
                    future.add_done_callback(lambda _f: self.progress.advance(1))
                    in_flight.add(future)
                for future in in_flight:
                    results.append(future.result())
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise
        return results

    def _verify(self, rid: str, manifest: Manifest, carried: Iterable[tuple[str, FileEntry]] = ()) -> None:
        """Every file of the manifest (and every carried asset) is in the bucket with its size before the
        release is complete."""
        prefix = release_prefix(rid)
        present = {key[len(prefix) :]: size for key, size in self.store.list(prefix)}
        wanted = [*manifest.entries, *(entry for _, entry in carried)]
        missing = [e.path for e in wanted if present.get(e.path) != e.size]
        if missing:
            raise BackendError(
                f"release {rid}: {len(missing)} files missing or truncated after upload (e.g. {missing[0]}); "
                "run the same command again to complete it"
            )

    # -- switching ---------------------------------------------------------------------------

    def require_complete(self, release_id: str) -> ReleaseRecord:
        """The record of a complete release; raises ``InvalidInputError`` or ``NotFoundError`` otherwise."""
        if not is_release_id(release_id):
            raise InvalidInputError(f"{release_id!r} is not a valid release id")
        record = self.record(release_id)
        if record is None:
            if self.store.get(pending_key(release_id)) is not None:
                raise InvalidInputError(
                    f"release {release_id} is incomplete and cannot be activated; run its release command again"
                )
            raise NotFoundError(f"no release {release_id}; 'releases' lists them")
        self._ensure_rules(release_id, record.rules)
        return record

    def _pins_after(self, state: RoutingState, new_live: str) -> tuple[str, ...]:
        pins = [p for p in ((state.live,) if state.live else ()) + state.pins if p and p != new_live]
        return tuple(dict.fromkeys(pins))[: self.config.release.pins]

    @staticmethod
    def _fit(state: RoutingState) -> RoutingState:
        """``state`` without its oldest pins until it fits in one KVS value."""
        while True:
            try:
                state.to_json()
                return state
            except ValueError:
                state = replace(state, pins=state.pins[:-1])

    @contextlib.contextmanager
    def automated(self, rollout: str, reason: str = "") -> Iterator[None]:
        """Mark every switch made in the block as automatic: made by ``rollout``, for ``reason``."""
        previous = self._automation
        self._automation = (rollout, reason)
        try:
            yield
        finally:
            self._automation = previous

    def _record(self, action: str, change: RoutingChange, source: str | None, target: str | None) -> None:
        if change.after == change.before:
            return
        rollout, reason = self._automation or ("", "")
        entry = HistoryEntry(
            now(), action, self.actor, source, target, automatic=bool(rollout), reason=reason, rollout=rollout
        )
        try:
            self.store.put_bytes(entry.key(), entry.to_json(), content_type=JSON_TYPE)
        except BackendError as exc:
            raise BackendError(
                f"{action} {target}: routing changed, but its history entry was not written: {exc}"
            ) from exc

    def _switch(self, action: str, target: str) -> RoutingChange:
        def change(state: RoutingState) -> RoutingState:
            if state.live == target and state.canary is None:
                return state
            return self._fit(RoutingState(live=target, pins=self._pins_after(state, target)))

        result = update_routing(self.kvs, change)
        self._record(action, result, result.before.live, target)
        return result

    def live_state(self, state: RoutingState, target: str) -> RoutingState:
        """``state`` with ``target`` live for every viewer: the canary cleared, the old live release pinned."""
        return self._fit(RoutingState(live=target, pins=self._pins_after(state, target)))

    def canary_state(self, state: RoutingState, target: str, percent: int) -> RoutingState:
        """``state`` with ``percent`` of viewers on ``target`` as the canary."""
        return self._fit(replace(state, canary=target, weight=percent))

    def change_routing(
        self,
        action: Callable[[RoutingChange], str],
        change: Callable[[RoutingState], RoutingState],
        *,
        source: str | None,
        target: str,
    ) -> RoutingChange:
        """One conditional routing write of ``change`` (which may raise to refuse), recorded as ``action(result)``.

        For callers that guard a switch with their own condition (a rollout step); a switch that changes
        the live release publishes its error pages, as ``activate`` does.
        """
        result = update_routing(self.kvs, change)
        self._record(action(result), result, source if source is not None else result.before.live, target)
        confirmed = self._confirm(result, target)
        if confirmed.after.live != confirmed.before.live:
            return self._published(confirmed)
        return confirmed

    def prepare(self, release_id: str) -> None:
        """Give a complete release the retained releases' hashed assets it lacks, before it takes viewers."""
        self._carry(release_id, self.manifest(self.require_complete(release_id).id))

    def activate(self, release_id: str) -> RoutingChange:
        """Make a complete release live with one conditional KVS write, then publish its error pages.

        Activating the live release again writes no routing and publishes its error pages again. The
        release first gets the content-hashed assets of the retained releases it lacks (server-side
        copies), so pages of every retained release keep finding their assets.
        """
        self._carry(release_id, self.manifest(self.require_complete(release_id).id))
        return self._published(self._confirm(self._switch("activate", release_id), release_id))

    def canary(self, release_id: str, percent: int) -> RoutingChange:
        """Send ``percent`` of viewers, by their stable cohort, to a complete release: one KVS write.

        Raising the percentage keeps every viewer already in the canary there.
        """
        if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
            raise InvalidInputError(f"the canary percentage must be a whole number from 1 to 100, not {percent}")
        self._carry(release_id, self.manifest(self.require_complete(release_id).id))

        def change(state: RoutingState) -> RoutingState:
            if state.live is None:
                raise InvalidInputError("nothing is live yet: activate a release before starting a canary")
            if state.live == release_id:
                raise InvalidInputError(f"{release_id} is already live")
            return self._fit(replace(state, canary=release_id, weight=percent))

        result = update_routing(self.kvs, change)
        self._record("canary", result, result.before.live, release_id)
        return self._confirm(result, release_id)

    def promote(self) -> RoutingChange:
        """Make the canary live for every viewer: the live release becomes a pin, the canary is cleared."""
        target = self.status().canary
        if target is None:
            raise NotFoundError("there is no canary to promote; start one with: hosting-toolkit canary ID --percent N")

        def change(state: RoutingState) -> RoutingState:
            if state.canary != target:
                raise ReleaseConflictError(f"the canary changed from {target} to {state.canary or 'none'} meanwhile")
            return self._fit(RoutingState(live=target, pins=self._pins_after(state, target)))

        result = update_routing(self.kvs, change)
        self._record("promote", result, result.before.live, target)
        return self._published(self._confirm(result, target))

    def abort(self) -> RoutingChange:
        """Send every viewer back to the live release: the canary is cleared, nothing else changes.

        Without a canary, nothing is written, so an abort can safely be repeated.
        """
        result = update_routing(self.kvs, lambda state: replace(state, canary=None, weight=0))
        self._record("abort", result, result.before.canary, result.before.live)
        return result

    def retract(self, release_id: str) -> RoutingChange | None:
        """Send ``release_id``'s viewers back: a canary is aborted, a live release rolled back to the one before.

        Returns ``None`` when the release has no traffic (it never got any, or something else replaced
        it meanwhile): nothing is written then, so a retract can safely be repeated. What a failed
        rollout undoes.
        """
        state = self.status()
        if state.canary == release_id:
            return self.abort()
        if state.live == release_id:
            return self.rollback()
        return None

    def _confirm(self, change: RoutingChange, target: str) -> RoutingChange:
        """Undo a switch whose release a concurrent ``prune`` deleted between the check and the write."""
        if change.before == change.after or self.record(target) is not None:
            return change

        def undo(state: RoutingState) -> RoutingState:
            return change.before if state == change.after else state

        update_routing(self.kvs, undo)
        raise NotFoundError(f"release {target} was pruned while it was being activated; routing restored")

    def rollback(self, to: str | None = None) -> RoutingChange:
        """Return to the previous live release (or ``to``): one KVS write, nothing uploaded."""
        if to is not None:
            self._carry(to, self.manifest(self.require_complete(to).id))
            return self._published(self._confirm(self._switch("rollback", to), to))
        state = self.status()
        earlier = [e.from_release for e in reversed(self.history()) if e.from_release and e.action in LIVE_ACTIONS]
        candidates = list(state.pins) + earlier
        for candidate in dict.fromkeys(candidates):
            if candidate != state.live and self.record(candidate) is not None:
                self._carry(candidate, self.manifest(candidate))
                return self._published(self._confirm(self._switch("rollback", candidate), candidate))
        raise NotFoundError("there is no previous release to roll back to")

    # -- error pages -------------------------------------------------------------------------

    def publish_error_pages(self, live: str | None = None) -> tuple[PublishedPage, ...]:
        """Publish the error pages of the live release (``live``: the one just made live) to ``errors/``.

        The live release is read again after writing: when another switch overtook this one, its
        pages are written instead, so the pages always end up belonging to the release that is live.
        """
        live = live or self.status().live
        for _ in range(ERROR_PAGE_ATTEMPTS):
            if live is None:
                return ()
            pages = publish_error_pages(self.store, self.config, live)
            current = self.status().live
            if current == live:
                wanted = page_sources(self.config)
                for page in pages:
                    if page.source is None and wanted[page.key]:
                        self.progress.note(f"{live} has no {wanted[page.key]}: {page.key} is the built-in page")
                return pages
            live = current
        raise ReleaseConflictError("the live release kept changing while its error pages were written")

    def _published(self, change: RoutingChange) -> RoutingChange:
        """Publish the error pages after a switch; a failure leaves the switch in place and is a warning."""
        live = change.after.live
        try:
            self.publish_error_pages(live)
        except (ToolkitError, OSError) as exc:
            log.warning(
                "warning: %s is live, but its error pages were not published (%s); "
                "publish them with: hosting-toolkit activate %s",
                live,
                exc,
                live,
            )
        return change

    # -- pruning -----------------------------------------------------------------------------

    def prune(self, keep: int | None = None, *, stale_after: timedelta = timedelta(hours=24)) -> PruneResult:
        """Delete releases beyond the ``keep`` newest, never the live, canary or pinned ones."""
        keep = self.config.release.keep if keep is None else keep
        if keep < 0:
            raise InvalidInputError("--keep must be 0 or more")
        from hosting_toolkit.release.previews import expire_previews, open_previews, preview_releases

        if self.config.previews.enabled:
            expire_previews(self, self.config.previews)
        state = self.status()
        protected = {r for r in (state.live, state.canary, *state.pins) if r}
        records = self.records()
        # Releases of open previews are kept; those only removed previews reached are retired, and
        # neither counts against ``keep``, which is about production's releases.
        previewed, retired = preview_releases(self)
        ever_live = {e.to_release for e in self.history() if e.action in LIVE_ACTIONS}
        preview_only = (previewed | retired) - ever_live - protected
        protected |= previewed
        counted = [r for r in records if r.id not in preview_only]
        kept = [r.id for r in counted[:keep]]
        doomed = [r.id for r in counted[keep:] if r.id not in protected]
        doomed += [r.id for r in records if r.id in preview_only and r.id not in protected]
        removed: list[str] = []
        deleted = 0
        self.progress.begin("pruning", len(doomed))
        try:
            for rid in doomed:
                record_data = self.store.get(record_key(rid))
                if record_data is None:
                    continue
                self.store.delete([record_key(rid)])
                latest = self.status()
                if rid in {latest.live, latest.canary, *latest.pins} or (
                    (previewed or retired) and rid in {r for p in open_previews(self.kvs) for r in (p.release, *p.pins)}
                ):
                    # Activated (or previewed) while we looked: put the record back and keep the release.
                    self.store.put_bytes(record_key(rid), record_data, content_type=JSON_TYPE)
                    kept.append(rid)
                    continue
                deleted += self.store.delete([k for k, _ in self.store.list(release_prefix(rid))])
                self.store.delete([manifest_key(rid)])
                delete_key(self.kvs, rules_key(rid))
                removed.append(rid)
                self.progress.advance()
            cutoff = (datetime.now(UTC) - stale_after).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            for marker in self.pending():
                if marker.started < cutoff and self.record(marker.id) is None:
                    deleted += self.store.delete([k for k, _ in self.store.list(release_prefix(marker.id))])
                    delete_key(self.kvs, rules_key(marker.id))
                    self.store.delete([pending_key(marker.id)])
                    removed.append(marker.id)
        finally:
            self.progress.end()
        return PruneResult(removed, sorted(set(kept) | (protected & {r.id for r in records})), deleted)
