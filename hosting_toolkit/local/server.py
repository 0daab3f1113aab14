"""``hosting-toolkit serve``: the local edge over HTTP, one persistent function worker for all requests."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hosting_toolkit.local.edge import LocalEdge


def make_server(
    edge: LocalEdge, host: str, port: int, *, log: Callable[[str], None] | None = None
) -> ThreadingHTTPServer:
    """An HTTP server answering every request through ``edge``; ``port`` 0 picks a free one."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "hosting-toolkit-edge"
        sys_version = ""
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK hold every kept-alive response back by about 40 ms.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            # http.server folds a leading '//' in self.path; the edge must see the path as sent.
            parts = self.requestline.split(" ")
            raw_path = parts[1] if len(parts) == 3 else self.path
            response = edge.handle(self.command, raw_path, list(self.headers.items()), self.client_address[0])
            self.send_response(response.status, response.reason)
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            if response.body:
                self.wfile.write(response.body)
            if log is not None:
                log(
                    f"{self.command} {raw_path} -> {response.status}"
                    f" release={response.release or '-'} ({response.duration_ms:.1f} ms)"
                )

        do_GET = do_HEAD = do_OPTIONS = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


@contextlib.contextmanager
def serving(edge: LocalEdge, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``edge`` from a background thread while the block runs; yields the base URL."""
    server = make_server(edge, host, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def print_log(line: str) -> None:
    sys.stderr.write(line + "\n")
