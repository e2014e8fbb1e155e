"""A real HTTP receiver on 127.0.0.1 (random port) standing in for a partner's webhook endpoint.

It checks every request's signature on its own (HMAC-SHA256 over "<timestamp>.<body>", recomputed
here, not with the service's code), answers from a script, and records what it saw.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shared.clock import Clock, SystemClock


@dataclass(frozen=True)
class Seen:
    idempotency_key: str
    attempt: int
    signature_ok: bool
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receiver:
    key: bytes
    # (idempotency key, how many requests with that key came before) -> status to answer
    answer: Callable[[str, int], int] = lambda key, before: 200
    delay_s: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The partner's own clock, against which a signature's timestamp must be fresh: the system's where
    # the fleet runs on it (end to end), the test's clock where the test owns the time.
    clock: Clock = field(default_factory=SystemClock)

    def accepted(self) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if 200 <= s.status < 300]

    def tries(self, idempotency_key: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.idempotency_key == idempotency_key]

    def _signature_ok(self, timestamp: str, body: bytes, signature: str) -> bool:
        if not timestamp.isdigit() or abs(self.clock.now().timestamp() - int(timestamp)) > 300:
            return False
        expected = "sha256=" + hmac.new(self.key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)


@contextmanager
def running_receiver(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            key = self.headers.get("Idempotency-Key", "")
            ok = receiver._signature_ok(
                self.headers.get("X-Creditwindow-Timestamp", ""), body, self.headers.get("X-Creditwindow-Signature", "")
            )
            with receiver.lock:
                before = sum(1 for s in receiver.seen if s.idempotency_key == key)
            status = receiver.answer(key, before) if ok else 401
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            with receiver.lock:
                receiver.seen.append(
                    Seen(
                        key,
                        int(self.headers.get("X-Creditwindow-Attempt", "0")),
                        ok,
                        status,
                        json.loads(body),
                        dict(self.headers),
                    )
                )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # several dispatchers connect at once: do not refuse them

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
