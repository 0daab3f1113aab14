"""Local servers for integration tests: moto_server for S3 and the fake KeyValueStore data plane."""

from __future__ import annotations

import http.client
import os
import secrets
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from hosting_toolkit.config import HostingConfig, ReleaseConfig, SiteConfig
from hosting_toolkit.edge.sandbox import FunctionSandbox
from hosting_toolkit.local.edge import LocalEdge, new_request_id
from hosting_toolkit.local.server import make_server
from hosting_toolkit.pipeline.buildspec import PYTHON_VERSION
from hosting_toolkit.pipeline.wheelhouse import (
    Platform,
    Wheelhouse,
    WheelhouseError,
    default_cache_root,
    prepare_wheelhouse,
)
from hosting_toolkit.release.engine import ReleaseEngine
from hosting_toolkit.release.kvs import AwsKeyValueStore, KeyValueStore, LocalKeyValueStore, kvs_client
from hosting_toolkit.release.s3 import S3ObjectStore, s3_client
from hosting_toolkit.release.storage import ObjectStore
from hosting_toolkit.target import local_target
from tests.fakes.kvs_server import FakeKeyValueStoreServer, running_kvs_server
from tests.fakes.moto import AWS_ENV_TO_CLEAR, AWS_TEST_ENV, MotoServer

#: Upload workers in tests: enough to exercise the thread pool, few enough for two cores.
TEST_CONCURRENCY = 8


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Dummy credentials and region; no profile or config file of the machine leaks in."""
    for name in AWS_ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    nowhere = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))


@pytest.fixture
def clean_cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No hosting.toml, target or actor from the machine running a CLI test; it runs in its own folder."""
    for name in ("HOSTING_TOOLKIT_CONFIG", "HOSTING_TOOLKIT_LOCAL", "HOSTING_TOOLKIT_BUCKET", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOSTING_TOOLKIT_ACTOR", "tests")
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto_server process per test session (per xdist worker)."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto_server.log").start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class S3Calls:
    """S3 requests a client made, with their parameters, recorded by a botocore event hook."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any) -> S3Calls:
        client.meta.events.register("before-parameter-build.s3", self._record)
        return self

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self._lock:
            self.calls.append((model.name, dict(params)))

    def of(self, operation: str) -> list[dict[str, Any]]:
        with self._lock:
            return [params for name, params in self.calls if name == operation]

    def writes_under(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` written by PutObject, CopyObject or multipart uploads."""
        writes = ("PutObject", "CopyObject", "CreateMultipartUpload")
        with self._lock:
            return [p["Key"] for name, p in self.calls if name in writes and p["Key"].startswith(prefix)]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()


@dataclass
class S3Bucket:
    """A fresh bucket in moto_server, a client to inspect it, and stores that write to it."""

    endpoint: str
    name: str
    client: Any

    def store(self, *, native: bool = False) -> S3ObjectStore:
        """A store on this bucket; ``native`` uploads files through the CRT, as the CLI's targets do."""
        client = s3_client(concurrency=TEST_CONCURRENCY, endpoint_url=self.endpoint)
        return S3ObjectStore(client, self.name, concurrency=TEST_CONCURRENCY, native=native)

    def keys(self, prefix: str = "") -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        return [
            o["Key"] for page in paginator.paginate(Bucket=self.name, Prefix=prefix) for o in page.get("Contents", [])
        ]

    def head(self, key: str) -> dict[str, Any]:
        return dict(self.client.head_object(Bucket=self.name, Key=key))

    def body(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())


@pytest.fixture
def s3_bucket(moto_server: MotoServer, aws_env: None) -> S3Bucket:
    """An empty bucket in a freshly reset moto_server."""
    moto_server.reset()
    client = boto3.client("s3", endpoint_url=moto_server.endpoint)
    name = f"site-{secrets.token_hex(4)}"
    client.create_bucket(Bucket=name)
    return S3Bucket(moto_server.endpoint, name, client)


@pytest.fixture(scope="session")
def kvs_server() -> Iterator[FakeKeyValueStoreServer]:
    """The fake KeyValueStore data plane, one per test session."""
    with running_kvs_server() as server:
        yield server


@pytest.fixture(scope="session")
def kvs_test_client(kvs_server: FakeKeyValueStoreServer) -> Any:
    """The engine's KeyValueStore client for the fake server, built once (loading the model is slow)."""
    session = boto3.Session(
        aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=AWS_TEST_ENV["AWS_DEFAULT_REGION"],
    )
    return kvs_client(endpoint_url=kvs_server.url, session=session)


@dataclass
class FakeKvs:
    """A fresh store in the fake server and the engine's AWS backend pointed at it."""

    server: FakeKeyValueStoreServer
    arn: str
    store: AwsKeyValueStore


@pytest.fixture
def fake_kvs(kvs_server: FakeKeyValueStoreServer, kvs_test_client: Any) -> FakeKvs:
    """An empty store; the server's request counts start at zero."""
    kvs_server.reset()
    arn = kvs_server.create_store()
    return FakeKvs(kvs_server, arn, AwsKeyValueStore(kvs_test_client, arn))


def make_config(*, mode: str = "spa", **release: Any) -> HostingConfig:
    """A configuration for tests: small upload concurrency unless given."""
    release.setdefault("concurrency", TEST_CONCURRENCY)
    return HostingConfig(site=SiteConfig(mode=mode), release=ReleaseConfig(**release))  # type: ignore[arg-type]


EngineFactory = Callable[..., ReleaseEngine]


@pytest.fixture
def make_engine(tmp_path: Any) -> EngineFactory:
    """Build an engine on any store and KVS; the KVS defaults to a local file."""

    def build(
        store: ObjectStore, kvs: KeyValueStore | None = None, *, config: HostingConfig | None = None
    ) -> ReleaseEngine:
        return ReleaseEngine(
            store,
            kvs or LocalKeyValueStore(tmp_path / "kvs.json"),
            config or make_config(),
            actor="tests",
        )

    return build


class Edge:
    """A local edge serving a local target over HTTP, and the engine feeding that target."""

    def __init__(
        self,
        root: Path,
        config: HostingConfig,
        sandbox: FunctionSandbox,
        *,
        request_ids: Callable[[], str] = new_request_id,
    ) -> None:
        self.root = root
        target = local_target(root / "target", config)
        assert isinstance(target.kvs, LocalKeyValueStore)
        self.engine = ReleaseEngine(target.store, target.kvs, config, actor="test")
        self.local_edge = LocalEdge(
            store=target.store, kvs=target.kvs, config=config, sandbox=sandbox, request_ids=request_ids
        )
        self.server = make_server(self.local_edge, "127.0.0.1", 0)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self._connection: http.client.HTTPConnection | None = None

    def get(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on a kept-alive connection; repeated headers (``set-cookie``) are joined by newlines."""
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self._connection.request(method, path, headers=headers or {})
                response = self._connection.getresponse()
                body = response.read()
                break
            except (http.client.HTTPException, OSError):
                self._connection.close()
                self._connection = None
                if attempt == 2:
                    raise
        found: dict[str, str] = {}
        for name, value in response.getheaders():
            key = name.lower()
            found[key] = f"{found[key]}\n{value}" if key in found else value
        return response.status, found, body

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self.server.shutdown()
        self.server.server_close()


# -- the release engine's wheels, installed as the build installs them --------------------------

#: Where a build's pip would find an index if it looked for one: a closed port, so any index access fails.
UNREACHABLE_INDEX = "http://127.0.0.1:9/simple"
#: What may lead pip or the AWS CLI to the network, or to this machine's own package mirrors.
NETWORK_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy")


def offline_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with no pip setting, configuration file or proxy of this machine, and an unreachable index."""
    clean = {k: v for k, v in env.items() if not k.startswith("PIP_") and k not in NETWORK_VARIABLES}
    clean.update(PIP_INDEX_URL=UNREACHABLE_INDEX, PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1")
    return clean


@dataclass(frozen=True)
class BuildPython:
    """The interpreter standing in for the build image's ``python3``, and a folder whose ``python3`` it is."""

    executable: Path
    version: str
    bin: Path


def _find_build_python() -> Path | None:
    """CPython ``PYTHON_VERSION`` on this machine (the build image's), if it has one that runs."""
    candidates = [shutil.which(f"python{PYTHON_VERSION}")]
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in Path(pyenv).glob(f"versions/{PYTHON_VERSION}.*/bin/python{PYTHON_VERSION}"))
    for candidate in filter(None, candidates):
        done = subprocess.run([candidate, "-c", "import ensurepip"], capture_output=True, check=False)
        if done.returncode == 0:
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def build_python(tmp_path_factory: pytest.TempPathFactory) -> BuildPython:
    """Python PYTHON_VERSION when this machine has it (the build's own), else the interpreter running the tests."""
    executable = _find_build_python() or Path(sys.executable)
    version = subprocess.run(
        [str(executable), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    folder = tmp_path_factory.mktemp("build-image-bin")
    (folder / "python3").symlink_to(executable)
    return BuildPython(executable, version, folder)


@pytest.fixture(scope="session")
def engine_wheels(build_python: BuildPython) -> Wheelhouse:
    """The wheelhouse of engine.lock for ``build_python`` on this machine's CPU, as ``hosting-toolkit deploy``
    prepares it: downloaded from PyPI the first time, then reused from the user's cache (keyed by the lock)."""
    platform = Platform(python_version=build_python.version, architecture=os.uname().machine)
    try:
        return prepare_wheelhouse(default_cache_root(), platform)
    except WheelhouseError as exc:
        pytest.skip(f"the release engine's wheels could not be prepared (PyPI is needed once per lock): {exc}")


def zip_folder(folder: Path, archive: Path, *, replace: Mapping[str, bytes | None] | None = None) -> Path:
    """``folder`` as the ZIP a CDK asset is uploaded as; ``replace`` maps paths to other bytes, or to none to omit them."""
    replace = replace or {}
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            name = path.relative_to(folder).as_posix()
            if not path.is_file() or (name in replace and replace[name] is None):
                continue
            data = replace.get(name)
            if data is None:
                out.write(path, name)
            else:
                out.writestr(name, data)
    return archive
