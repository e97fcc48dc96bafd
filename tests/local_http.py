"""A local HTTP server that records JSON requests and answers as a test tells it to."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any


class RecordingServer:
    """Listens on 127.0.0.1, records ``(method, path, json body)`` and replies ``status``/``body``,
    or what ``routes`` maps the request path (with its query) to."""

    def __init__(
        self, *, status: int = 200, body: bytes = b"", routes: dict[str, tuple[int, bytes]] | None = None
    ) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.status = status
        self.body = body
        self.routes = dict(routes or {})
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = self.rfile.read(length)
                outer.requests.append((self.command, self.path, json.loads(payload) if payload else None))
                outer.headers.append(dict(self.headers))
                status, body = outer.routes.get(self.path, (outer.status, outer.body))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_GET = _record

            def log_message(self, *_args: object) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def bodies(self) -> list[Any]:
        return [body for _, _, body in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
