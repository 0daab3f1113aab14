"""Run CloudFront Functions locally through one persistent Node.js sandbox worker.

The worker (``functions/sandbox/worker.mjs``) loads each function's rendered code into its own
``node:vm`` context with CloudFront's limits (10 KB, only the ``cloudfront`` and ``crypto``
modules, no eval, timers or network) and a KeyValueStore stub that behaves like the real one.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import queue
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any

from hosting_toolkit.edge.code import FUNCTIONS_DIR
from hosting_toolkit.errors import ToolkitError

WORKER_FILE = FUNCTIONS_DIR / "sandbox" / "worker.mjs"
NODE_FLAGS = ("--experimental-vm-modules", "--no-warnings")
#: Time one invocation (or a function's top-level code) may run before the worker stops it;
#: CloudFront's own budget is far lower.
DEFAULT_INVOKE_TIMEOUT_MS = 1000
#: How long to wait for the worker to answer one request before giving up on it.
DEFAULT_ANSWER_TIMEOUT_S = 30.0


class SandboxError(ToolkitError):
    """The function sandbox refused a function or could not run it."""


@dataclass(frozen=True)
class Invocation:
    """What one run of a function's ``handler(event)`` returned.

    ``result`` is the returned request or response (``None`` when the handler failed), ``error``
    the handler's exception or timeout, ``logs`` what it wrote with ``console.log``.
    """

    result: dict[str, Any] | None
    kvs_reads: int
    duration_us: float
    error: str | None = None
    logs: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """Whether the handler returned normally."""
        return self.error is None


class _Worker:
    """One running worker process and the threads draining its output."""

    def __init__(self, node: str) -> None:
        self.process = subprocess.Popen(
            [node, *NODE_FLAGS, str(WORKER_FILE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.stderr: collections.deque[str] = collections.deque(maxlen=20)
        assert self.process.stdout is not None and self.process.stderr is not None
        self._threads = [
            threading.Thread(target=self._read_stdout, args=(self.process.stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(self.process.stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_stdout(self, stream: IO[bytes]) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def _read_stderr(self, stream: IO[bytes]) -> None:
        for line in stream:
            self.stderr.append(line.decode("utf-8", "replace").rstrip())

    def send(self, payload: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(payload).encode() + b"\n")
        self.process.stdin.flush()

    def death_note(self) -> str:
        """Exit code and last stderr lines of a worker that stopped answering."""
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        self._threads[1].join(timeout=1)
        detail = " | ".join(line for line in self.stderr if line)
        status = f"exit code {code}" if code is not None else "still running"
        return f"{status}{': ' + detail if detail else ''}"

    def stop(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for thread in self._threads:
            thread.join(timeout=1)


class FunctionSandbox:
    """A thread-safe client of one lazily started Node worker that loads and invokes edge functions.

    If the worker dies, the failing call raises ``SandboxError``; the next call starts a new
    worker and loads every function again.
    """

    def __init__(
        self,
        *,
        node: str | None = None,
        invoke_timeout_ms: int = DEFAULT_INVOKE_TIMEOUT_MS,
        answer_timeout_s: float = DEFAULT_ANSWER_TIMEOUT_S,
    ) -> None:
        if invoke_timeout_ms < 1:
            raise ValueError(f"invoke_timeout_ms must be at least 1, not {invoke_timeout_ms}")
        self._node = node
        self._invoke_timeout_ms = invoke_timeout_ms
        self._answer_timeout_s = answer_timeout_s
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._loaded: dict[str, str] = {}
        self._ids = itertools.count(1)

    def __enter__(self) -> FunctionSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def worker_pid(self) -> int | None:
        """Process id of the running worker, if one is running."""
        worker = self._worker
        return worker.process.pid if worker is not None and worker.process.poll() is None else None

    @property
    def loaded(self) -> tuple[str, ...]:
        """Names of the loaded functions."""
        return tuple(self._loaded)

    def load(self, name: str, code: str) -> None:
        """Check ``code`` against CloudFront's limits and load it as ``name``; raises ``SandboxError``."""
        with self._lock:
            self._ensure_worker()
            self._load(name, code)

    def invoke(self, name: str, event: Mapping[str, Any], kvs: Mapping[str, str] | None = None) -> Invocation:
        """Run ``handler(event)`` of function ``name`` with the KeyValueStore holding ``kvs``."""
        answer = self._invoke(name, {"op": "invoke", "event": event}, kvs)
        return self._invocation(name, answer)

    def invoke_many(
        self, name: str, events: Sequence[Mapping[str, Any]], kvs: Mapping[str, str] | None = None
    ) -> list[Invocation]:
        """Run ``handler(event)`` for each event in turn, with the same store, in one round trip to the worker.

        Each event has the usual time limit; the first that runs over it stops the whole batch.
        """
        answer = self._invoke(name, {"op": "invoke_many", "events": list(events)}, kvs)
        results = answer.get("results")
        if not answer.get("ok") or not isinstance(results, list) or len(results) != len(events):
            raise SandboxError(f"sandbox could not run '{name}': {answer.get('error')}")
        return [self._invocation(name, item) for item in results]

    def _invoke(self, name: str, payload: dict[str, Any], kvs: Mapping[str, str] | None) -> dict[str, Any]:
        store = dict(kvs or {})
        for key, value in store.items():
            if not isinstance(value, str):
                raise TypeError(f"KVS value of {key!r} must be a string, not {type(value).__name__}")
        with self._lock:
            if name not in self._loaded:
                raise SandboxError(f"no function named '{name}' is loaded in the sandbox")
            self._ensure_worker()
            return self._call({**payload, "name": name, "kvs": store, "timeout_ms": self._invoke_timeout_ms})

    @staticmethod
    def _invocation(name: str, answer: dict[str, Any]) -> Invocation:
        if "duration_us" not in answer:
            raise SandboxError(f"sandbox could not run '{name}': {answer.get('error')}")
        result = answer.get("result")
        return Invocation(
            result=result if isinstance(result, dict) else None,
            kvs_reads=int(answer.get("kvs_reads", 0)),
            duration_us=float(answer["duration_us"]),
            error=None if answer.get("ok") else str(answer.get("error") or "the handler failed"),
            logs=tuple(str(line) for line in answer.get("logs", ())),
        )

    def close(self) -> None:
        """Stop the worker; a later call starts a new one."""
        with self._lock:
            if self._worker is not None:
                self._worker.stop()
                self._worker = None

    def _ensure_worker(self) -> None:
        if self._worker is not None and self._worker.process.poll() is None:
            return
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        node = self._node or shutil.which("node")
        if not node:
            raise SandboxError(
                "Node.js ('node') is not on PATH; install Node.js 20 or later to run edge functions locally"
            )
        try:
            self._worker = _Worker(node)
        except OSError as exc:
            raise SandboxError(f"cannot start the function sandbox with {node}: {exc}") from exc
        for name, code in list(self._loaded.items()):
            self._load(name, code)

    def _load(self, name: str, code: str) -> None:
        answer = self._call({"op": "load", "name": name, "code": code, "timeout_ms": self._invoke_timeout_ms})
        if not answer.get("ok"):
            raise SandboxError(str(answer.get("error") or f"sandbox refused '{name}'"))
        self._loaded[name] = code

    def _call(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its answer; the caller holds the lock."""
        worker = self._worker
        assert worker is not None
        request_id = next(self._ids)
        try:
            worker.send({"id": request_id, **payload})
        except (BrokenPipeError, OSError) as exc:
            self._worker = None
            raise SandboxError(f"function sandbox worker stopped ({worker.death_note()})") from exc
        while True:
            try:
                line = worker.lines.get(timeout=self._answer_timeout_s)
            except queue.Empty:
                self._worker = None
                worker.process.kill()
                worker.stop()
                raise SandboxError(
                    f"function sandbox worker did not answer within {self._answer_timeout_s:g} s; it was stopped"
                ) from None
            if line is None:
                self._worker = None
                note = worker.death_note()
                worker.stop()
                raise SandboxError(f"function sandbox worker stopped ({note})")
            try:
                answer = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(answer, dict) and answer.get("id") == request_id:
                return answer
