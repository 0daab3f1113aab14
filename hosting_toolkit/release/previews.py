"""Branch and pull-request previews: a stable name (``pr-42``, ``branch-feature-x``) per preview, mapped
to its latest release under its own KVS key ``preview:<name>``.

A preview never touches the routing state: everything here writes ``preview:`` keys only, through
``PreviewKeys``, which refuses any other key, so a preview build running this code cannot move
production even though the KeyValueStore's IAM permissions are per store, not per key. Each preview
also keeps a record under ``_meta/previews/`` naming every release it ever served, so ``prune``
can retire the releases only removed previews reached.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from hosting_toolkit.config import PreviewsConfig
from hosting_toolkit.contract import (
    KVS_KEY_LIMIT,
    KVS_STORE_LIMIT,
    KVS_VALUE_LIMIT,
    LOCAL_PREVIEW_DOMAIN,
    PREVIEW_KEY_PREFIX,
    PREVIEW_NAME_MARK,
    PREVIEW_NAME_MAX,
    PREVIEW_PARAM,
    PREVIEW_TOKEN_KEY,
    PREVIEW_TOKEN_PARAM,
    PreviewState,
    preview_key,
)
from hosting_toolkit.errors import BackendError, InvalidInputError, NotFoundError
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.kvs import KeyValueStore
from hosting_toolkit.release.records import JSON_TYPE
from hosting_toolkit.release.routing import delete_key, rules_marks, update_key

#: Records of every preview, open or removed: ``_meta/previews/<name>.json``.
PREVIEW_RECORDS_PREFIX = "_meta/previews/"
#: The most previews the store takes. Each costs its key and at most one 1 KB value, so this many
#: fit in CloudFront's 5 MB store with room for the routing state and the preview token.
MAX_PREVIEWS = 4000
#: Store bytes kept free for the keys that are not previews (the routing state, the preview token).
RESERVED_BYTES = 16 * 1024
#: The longest ``ref`` kept with a preview (``branch:`` and a branch name git allows), so its state fits one value.
MAX_REF_BYTES = 300
#: Earlier releases of a preview its open pages may still load assets from.
PREVIEW_PINS = 2
#: Hex characters of the hash that keeps two branches from slugging to the same name.
_HASH_CHARS = 8
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", text.lower())).strip("-")


def branch_preview_name(branch: str) -> str:
    """``branch-<slug>``: a DNS label; a branch whose slug is not itself (``feature/x``, ``Fix``, a long
    name) gets a short hash of its name, so no two branches share a preview."""
    if not branch or not isinstance(branch, str):
        raise InvalidInputError("a branch name is needed for a branch preview")
    slug = _slug(branch)
    name = f"branch-{slug}".rstrip("-")
    if slug == branch and len(name) <= PREVIEW_NAME_MAX:
        return name
    digest = hashlib.sha256(branch.encode()).hexdigest()[:_HASH_CHARS]
    head = name[: PREVIEW_NAME_MAX - _HASH_CHARS - 1].rstrip("-")
    return f"{head}-{digest}"


def pull_request_preview_name(number: int | str) -> str:
    """``pr-<number>``."""
    text = str(number).strip()
    if not text.isdigit() or len(f"pr-{text}") > PREVIEW_NAME_MAX or int(text) < 1:
        raise InvalidInputError(f"{number!r} is not a pull request number")
    return f"pr-{int(text)}"


def check_name(name: str) -> str:
    """``name`` if it is a preview name; raises ``InvalidInputError`` otherwise."""
    if not isinstance(name, str) or len(name) > PREVIEW_NAME_MAX or not _NAME_RE.match(name):
        raise InvalidInputError(
            f"{name!r} is not a preview name: 1-{PREVIEW_NAME_MAX} of a-z 0-9 and '-' (e.g. pr-42, branch-feature-x)"
        )
    return name


def branch_previewed(branch: str, patterns: Iterable[str], production_branch: str | None = None) -> bool:
    """Whether pushes to ``branch`` get a preview: it matches an include and no ``!`` exclude, and is not production."""
    if branch == production_branch:
        return False
    patterns = list(patterns)
    includes = [p for p in patterns if not p.startswith("!")]
    excludes = [p[1:] for p in patterns if p.startswith("!")]
    return any(fnmatch.fnmatchcase(branch, p) for p in includes) and not any(
        fnmatch.fnmatchcase(branch, p) for p in excludes
    )


class PreviewKeys:
    """The key-value store as a preview build may use it: ``preview:`` keys only.

    The KeyValueStore's IAM actions cannot be limited to some keys, so this is where a preview build
    is kept away from the routing state: every write and delete of another key is refused here.
    """

    def __init__(self, kvs: KeyValueStore) -> None:
        self._kvs = kvs

    @property
    def description(self) -> str:
        return self._kvs.description

    def _check(self, key: str) -> None:
        if not key.startswith(PREVIEW_KEY_PREFIX):
            raise BackendError(f"a preview may write only {PREVIEW_KEY_PREFIX}* keys, not {key!r}")

    def read(self, key: str) -> tuple[str | None, str]:
        return self._kvs.read(key)

    def snapshot(self) -> tuple[dict[str, str], str]:
        return self._kvs.snapshot()

    def write(self, key: str, value: str, *, if_match: str) -> str:
        self._check(key)
        return self._kvs.write(key, value, if_match=if_match)

    def delete(self, key: str, *, if_match: str) -> str:
        self._check(key)
        return self._kvs.delete(key, if_match=if_match)


@dataclass(frozen=True)
class Preview:
    """One open preview as ``previews`` lists it."""

    name: str
    ref: str
    release: str
    updated: str
    pins: tuple[str, ...] = ()
    url: str = ""


@dataclass
class PreviewRecord:
    """Every release a preview ever served, and whether it was removed (``_meta/previews/<name>.json``)."""

    name: str
    ref: str = ""
    releases: list[str] = field(default_factory=list)
    removed: str = ""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record_key(name: str) -> str:
    return f"{PREVIEW_RECORDS_PREFIX}{name}.json"


def read_record(engine: ReleaseEngine, name: str) -> PreviewRecord | None:
    data = engine.store.get(_record_key(name))
    if data is None:
        return None
    raw = json.loads(data)
    return PreviewRecord(raw["name"], raw.get("ref", ""), list(raw.get("releases", [])), raw.get("removed", ""))


def _write_record(engine: ReleaseEngine, record: PreviewRecord) -> None:
    engine.store.put_bytes(
        _record_key(record.name), json.dumps(asdict(record), separators=(",", ":")).encode(), content_type=JSON_TYPE
    )


def preview_records(engine: ReleaseEngine) -> list[PreviewRecord]:
    """The records of every preview, open or removed."""
    found = []
    for key, _ in engine.store.list(PREVIEW_RECORDS_PREFIX):
        name = key[len(PREVIEW_RECORDS_PREFIX) :].removesuffix(".json")
        record = read_record(engine, name)
        if record is not None:
            found.append(record)
    return found


def _parse(kvs: KeyValueStore, key: str, value: str) -> PreviewState:
    try:
        return PreviewState.from_json(value)
    except ValueError as exc:
        raise BackendError(f"{key} in {kvs.description} is not a preview state: {exc}") from exc


def open_previews(kvs: KeyValueStore) -> list[Preview]:
    """Every open preview in the store, by name."""
    items, _ = kvs.snapshot()
    found = []
    for key, value in sorted(items.items()):
        if key.startswith(PREVIEW_KEY_PREFIX):
            state = _parse(kvs, key, value)
            found.append(Preview(key[len(PREVIEW_KEY_PREFIX) :], state.ref, state.live, state.at, state.pins))
    return found


def store_budget(items: dict[str, str]) -> tuple[int, int]:
    """How many previews the store holds, and how many bytes its keys and values take."""
    count = sum(1 for key in items if key.startswith(PREVIEW_KEY_PREFIX))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in items.items())
    return count, size


def _check_room(kvs: KeyValueStore, key: str) -> None:
    """Refuse a new preview before the store's limits are reached: its key count and 5 MB."""
    items, _ = kvs.snapshot()
    if key in items:
        return
    count, size = store_budget(items)
    if count >= MAX_PREVIEWS:
        raise InvalidInputError(
            f"the key-value store holds {count} previews, the most it takes ({MAX_PREVIEWS}); "
            "remove some with: hosting-toolkit previews remove NAME (or prune the expired ones)"
        )
    if size + len(key.encode()) + KVS_VALUE_LIMIT + RESERVED_BYTES > KVS_STORE_LIMIT:
        raise InvalidInputError(
            f"the key-value store holds {size:,} bytes; one more preview could pass CloudFront's limit of "
            f"{KVS_STORE_LIMIT:,} bytes: remove some with: hosting-toolkit previews remove NAME"
        )


def stage_preview(engine: ReleaseEngine, name: str, release_id: str, ref: str = "") -> PreviewState:
    """Move the preview ``name`` to a complete release in one conditional write of its own key.

    The preview's previous release stays pinned for the pages still open on it; nothing else in the
    store is written.
    """
    check_name(name)
    if len(ref.encode()) > MAX_REF_BYTES:
        raise InvalidInputError(f"what the preview shows ({ref[:40]}...) is over {MAX_REF_BYTES} bytes; git allows 255")
    engine.require_complete(release_id)
    key = preview_key(name)
    if len(key.encode()) > KVS_KEY_LIMIT:
        raise InvalidInputError(f"the preview name {name!r} is too long for a KVS key")
    kvs = PreviewKeys(engine.kvs)
    _check_room(kvs, key)
    moved_at = _now()
    written: list[PreviewState] = []

    def change(current: str | None) -> str | None:
        # A copy of the token, so a private preview host reads one key, not two. Read on every try: a
        # rotation rewrites this key after replacing the token, and a conflict with it retries here.
        token = kvs.read(PREVIEW_TOKEN_KEY)[0] or ""
        before = _parse(kvs, key, current) if current else None
        if before is not None and before.live == release_id and before.token == token:
            written.append(before)
            return current
        earlier = (before.live, *before.pins) if before else ()
        pins = tuple(dict.fromkeys(p for p in earlier if p != release_id))[:PREVIEW_PINS]
        rules = rules_marks(engine.kvs, (release_id, *pins), known=earlier, marks=before.rules if before else ())
        if before is not None and before.live == release_id:
            state = replace(before, token=token)
        else:
            state = PreviewState(
                live=release_id,
                pins=pins,
                ref=ref or (before.ref if before else ""),
                at=moved_at,
                rules=rules,
                token=token,
            )
        written.append(state)
        return state.to_json()

    update_key(kvs, key, change)
    record = read_record(engine, name) or PreviewRecord(name)
    record.ref = ref or record.ref
    if release_id not in record.releases:
        record.releases.append(release_id)
    record.removed = ""
    _write_record(engine, record)
    return written[-1]


def remove_preview(engine: ReleaseEngine, name: str) -> PreviewState | None:
    """Delete the preview's key (one conditional delete); its releases become prunable. ``None``: it was not open."""
    check_name(name)
    key = preview_key(name)
    change = delete_key(PreviewKeys(engine.kvs), key)
    record = read_record(engine, name)
    if record is not None and not record.removed:
        record.removed = _now()
        _write_record(engine, record)
    return None if change.before is None else _parse(engine.kvs, key, change.before)


def expire_previews(engine: ReleaseEngine, config: PreviewsConfig, *, now: datetime | None = None) -> list[str]:
    """Remove the previews that have not moved for ``retention_days``; the names removed."""
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=config.retention_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    removed = []
    for preview in open_previews(engine.kvs):
        if preview.updated and preview.updated < cutoff:

            def newer(value: str, seen: str = preview.updated) -> bool:
                return PreviewState.from_json(value).at != seen

            change = delete_key(PreviewKeys(engine.kvs), preview_key(preview.name), unless=newer)
            if change.after is None and change.before is not None:
                record = read_record(engine, preview.name)
                if record is not None:
                    record.removed = _now()
                    _write_record(engine, record)
                removed.append(preview.name)
    return removed


def preview_releases(engine: ReleaseEngine) -> tuple[set[str], set[str]]:
    """``(open, retired)``: releases an open preview serves or pins, and those only removed previews reached.

    A site that never had a preview costs no listing of the store's keys.
    """
    records = preview_records(engine)
    if not records:
        return set(), set()
    open_ids = {r for p in open_previews(engine.kvs) for r in (p.release, *p.pins)}
    ever = {r for record in records for r in record.releases}
    return open_ids, ever - open_ids


def require_open(engine: ReleaseEngine, name: str) -> Preview:
    """The open preview ``name``; raises ``NotFoundError`` otherwise."""
    check_name(name)
    key = preview_key(name)
    value, _ = engine.kvs.read(key)
    if value is None:
        raise NotFoundError(f"no open preview {name}; 'previews' lists them")
    state = _parse(engine.kvs, key, value)
    return Preview(name, state.ref, state.live, state.at, state.pins)


def preview_link(name: str, *, domain: str, base_url: str | None, token: str | None) -> str:
    """A working link to the preview ``name``: its own host with a preview domain, else the site's address."""
    if domain:
        scheme = "http" if domain == LOCAL_PREVIEW_DOMAIN else "https"
        host = f"{scheme}://{name}.{domain}"
        if base_url and domain == LOCAL_PREVIEW_DOMAIN:
            port = base_url.rstrip("/").rsplit(":", 1)[-1]
            host += f":{port}" if port.isdigit() else ""
        return f"{host}/" + (f"?{urlencode({PREVIEW_TOKEN_PARAM: token})}" if token else "")
    query = {PREVIEW_PARAM: PREVIEW_NAME_MARK + name}
    if token:
        query[PREVIEW_TOKEN_PARAM] = token
    return (base_url or "").rstrip("/") + "/?" + urlencode(query, safe=PREVIEW_NAME_MARK)
