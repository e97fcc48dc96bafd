"""The API key middleware vLLM loads: every path but /health and /metrics needs the key."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from typing import Any

import pytest

from tests.conftest import REPO

PATH = REPO / "runtime_assets" / "serve" / "api_key_guard.py"
spec = importlib.util.spec_from_file_location("api_key_guard_under_test", PATH)
assert spec is not None
assert spec.loader is not None
guard = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = guard
spec.loader.exec_module(guard)

KEY = "s3cr3tKey"


class App:
    """The wrapped vLLM app: records what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.paths.append(scope.get("path", scope["type"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(
    middleware: Any, path: str, *, authorization: str | None = None, method: str = "POST", kind: str = "http"
) -> int:
    headers = [(b"content-type", b"application/json")]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode()))
    scope = {"type": kind, "path": path, "method": method, "headers": headers, "root_path": ""}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    return int(sent[0].get("status", sent[0].get("code", 0)))


@pytest.fixture
def app() -> App:
    return App()


@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/invocations", "/tokenize", "/pooling", "/score", "/version", "/"]
)
def test_every_model_path_needs_the_key(app: App, path: str) -> None:
    middleware = guard.RequireApiKey(app, api_key=KEY)
    assert call(middleware, path) == 401
    assert call(middleware, path, authorization="Bearer wrong") == 401
    assert call(middleware, path, authorization=f"Basic {KEY}") == 401
    assert call(middleware, path, authorization=f"Bearer {KEY}") == 200
    assert call(middleware, path, authorization=f"bearer {KEY}") == 200
    assert app.paths == [path, path]


@pytest.mark.parametrize("path", ["/health", "/metrics", "/metrics/"])
def test_probes_and_the_metrics_scrape_need_no_key(app: App, path: str) -> None:
    assert call(guard.RequireApiKey(app, api_key=KEY), path, method="GET") == 200


def test_preflight_and_lifespan_pass(app: App) -> None:
    middleware = guard.RequireApiKey(app, api_key=KEY)
    assert call(middleware, "/v1/models", method="OPTIONS") == 200


def test_websockets_without_the_key_are_closed(app: App) -> None:
    middleware = guard.RequireApiKey(app, api_key=KEY)
    assert call(middleware, "/v1/realtime", kind="websocket") == 1008
    assert app.paths == []


def test_the_401_is_json(app: App) -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {}

    middleware = guard.RequireApiKey(app, api_key=KEY)
    asyncio.run(middleware({"type": "http", "path": "/invocations", "method": "POST", "headers": []}, receive, send))
    assert sent[1]["body"] == b'{"error": "Unauthorized"}'
    assert (b"www-authenticate", b"Bearer") in sent[0]["headers"]


def test_key_comes_from_vllm_api_key(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", KEY)
    # vLLM's add_middleware builds the class with the app only (keyword or positional).
    middleware = guard.RequireApiKey(app=app)
    assert call(middleware, "/v1/models", authorization=f"Bearer {KEY}") == 200
    monkeypatch.setenv("VLLM_API_KEY", "")
    with pytest.raises(RuntimeError, match="VLLM_API_KEY is empty: refusing to serve without an API key"):
        guard.RequireApiKey(app)
