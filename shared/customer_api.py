"""The customer-data API: read endpoints that ask who is calling, on a listener of their own.

`/health` and `/metrics` stay on the service's own port (open to the platform's probes and
scrapers); endpoints that return a customer's data (`/limits/{customer_id}`, and any later read
endpoint) are served here, on `CW_API_HOST`:`CW_<SERVICE>_API_PORT`, and only to a caller with a
bearer token from `CW_API_TOKENS`:

- no token, a malformed header or an unknown token: 401, the same bytes every time, before any
  lookup, so a refusal says nothing about whether the customer exists;
- each token has its own rate limit (429 with `Retry-After`);
- each request is written to the audit log under the token's name (`api_request`), never the token.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
import uvicorn

from shared.access import RateLimiter, caller_of
from shared.settings import Settings

__all__ = ["ApiListener", "CustomerApi", "Reply", "Route"]

log = structlog.get_logger("creditwindow.api")

# A route's handler: the path after the route's prefix in, a status and a JSON body out.
Reply = tuple[int, Mapping[str, Any]]
Route = tuple[str, str, Callable[[str], Awaitable[Reply]]]  # prefix, name for the audit log, handler

_JSON = (b"content-type", b"application/json")
_UNAUTHORIZED = json.dumps({"error": "unauthorized"}).encode()
_UNAUTHORIZED_HEADERS = [_JSON, (b"www-authenticate", b'Bearer realm="creditwindow"'), (b"cache-control", b"no-store")]


class CustomerApi:
    """An ASGI app of GET routes by path prefix, behind bearer tokens and per-token rate limits."""

    def __init__(
        self,
        routes: Sequence[Route],
        *,
        tokens: Mapping[str, str],
        limiter: RateLimiter,
        clock: Callable[[], float] = time.monotonic,
        audit: Any = None,
    ) -> None:
        self.routes = tuple(routes)
        self.tokens = dict(tokens)
        self.limiter = limiter
        self.clock = clock
        self.audit = audit if audit is not None else log  # structlog-like: .info / .warning(event, **fields)

    @classmethod
    def from_settings(cls, settings: Settings, routes: Sequence[Route]) -> CustomerApi:
        tokens = {name: token.get_secret_value() for name, token in settings.api_tokens.items()}
        return cls(routes, tokens=tokens, limiter=RateLimiter(rate_per_s=settings.api_rate_per_s, burst=settings.api_burst))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # no lifespan, no websockets
        path: str = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        client = (scope.get("client") or ("-", 0))[0]
        caller = caller_of(headers.get("authorization"), self.tokens)
        if caller is None:
            self.audit.warning("api_refused", status=401, client=client, why="missing" if "authorization" not in headers else "invalid")
            await _send(send, 401, _UNAUTHORIZED, _UNAUTHORIZED_HEADERS)
            return
        wait_s = self.limiter.wait_s(caller, self.clock())
        if wait_s > 0:
            retry = str(RateLimiter.retry_after(wait_s)).encode()
            self.audit.warning("api_rate_limited", caller=caller, client=client, retry_after_s=int(retry))
            await _send(send, 429, json.dumps({"error": "rate_limited"}).encode(), [_JSON, (b"retry-after", retry)])
            return
        status, body, route_name, subject = await self._route(scope.get("method", "GET"), path)
        self.audit.info("api_request", caller=caller, route=route_name, customer_id=subject, status=status, client=client)
        await _send(send, status, json.dumps(body, default=str, ensure_ascii=False).encode(), [_JSON, (b"cache-control", b"no-store")])

    async def _route(self, method: str, path: str) -> tuple[int, Mapping[str, Any], str, str | None]:
        for prefix, name, handler in self.routes:
            if path.startswith(prefix) and len(path) > len(prefix):
                if method != "GET":
                    return 405, {"error": "method_not_allowed"}, name, None
                subject = path[len(prefix) :]
                status, body = await handler(subject)
                return status, body, name, subject
        return 404, {"error": "not_found"}, "-", None


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _EmbeddedServer(uvicorn.Server):
    # The process's main server owns the signals; this one stops when told to.
    def capture_signals(self):  # type: ignore[no-untyped-def,override]
        import contextlib

        return contextlib.nullcontext()


class ApiListener:
    """Serves an ASGI app on its own socket inside the running process (beside the service's server)."""

    def __init__(self, app: Any, *, host: str, port: int, name: str = "customer_api") -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self.address = ""
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Bind (OSError if the port is taken), serve in the background, return `http://host:port`."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        config = uvicorn.Config(self.app, lifespan="off", log_config=None, access_log=False, host=self.host, port=self.port)
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name=self.name)
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError(f"{self.name} stopped while starting")
            await asyncio.sleep(0.01)
        port = sock.getsockname()[1]
        host = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self.address = f"http://{host}:{port}"
        log.info(f"{self.name}_listening", url=self.address)
        return self.address

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server, self._task = None, None
