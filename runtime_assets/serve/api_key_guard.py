"""vLLM middleware: the API key on every path, not only on ``/v1``.

vLLM checks ``VLLM_API_KEY`` (or ``--api-key``) on paths under ``/v1`` only; it serves
others without a key, some of which run the model (``/invocations``, ``/tokenize``,
``/pooling``, ``/score``...). The EKS Deployment loads this module into vLLM's server with
``--middleware api_key_guard.RequireApiKey`` (vLLM's option for extra ASGI middleware; the
module is mounted from the endpoint's ConfigMap and put on ``PYTHONPATH``), so every
request needs ``Authorization: Bearer <key>`` except:

- ``/health``: the kubelet's probes and the load balancer's health check;
- ``/metrics``: the managed Prometheus collector's scrape (counters, no prompts);
- ``OPTIONS`` preflights, as vLLM itself lets them through.

The key is read from ``VLLM_API_KEY`` when vLLM builds its app; an empty key stops the
server from starting rather than serve without one. A pure ASGI class with the standard
library only, so it runs in any vLLM image and is tested without one.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/health", "/metrics"})
KEY_VARIABLE = "VLLM_API_KEY"


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


class RequireApiKey:
    """ASGI middleware: 401 unless ``Authorization: Bearer <VLLM_API_KEY>`` (see the module)."""

    def __init__(self, app: App, api_key: str | None = None) -> None:
        key = os.environ.get(KEY_VARIABLE, "") if api_key is None else api_key
        if not key:
            raise RuntimeError(f"{KEY_VARIABLE} is empty: refusing to serve without an API key")
        self.app = app
        self._key = _digest(key)

    def _allowed(self, scope: Scope) -> bool:
        path = str(scope.get("path", ""))
        root = str(scope.get("root_path", "") or "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        if scope.get("method") == "OPTIONS" or path in OPEN_PATHS or path.startswith("/metrics/"):
            return True
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and secrets.compare_digest(_digest(token.strip()), self._key)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in ("http", "websocket") or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": "Unauthorized"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
