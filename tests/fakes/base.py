"""What both provider fakes share: a threaded HTTP server, injected faults, rate limits and latency."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Access logs would drown a benchmark's output; errors are still logged."""


@dataclass(frozen=True)
class Fault:
    """An injected answer: `status` (with Retry-After when throttling), before or after delivering."""

    status: int
    retry_after: float | None = None
    after_delivery: bool = False


class _Bucket:
    """Token bucket of `limit` requests per second with a burst of `limit`, as providers state limits."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.tokens = limit
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.limit, self.tokens + (now - self.at) * self.limit)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class FakeServer:
    """A provider fake serving on 127.0.0.1 (a free port) from a daemon thread until `stop()`.

    Subclasses implement `handle(request)`; they ask `take_fault()` for injected failures and
    `over_rate(key, limit)` for rate limits, which count `violations`.
    """

    def __init__(self, latency_ms: float = 0) -> None:
        self.latency_ms = latency_ms
        self.violations = 0
        self.lock = threading.RLock()
        self._faults: deque[Fault] = deque()
        self._buckets: dict[Any, _Bucket] = {}
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # A short poll keeps stop() (and so each test's teardown) quick.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next(self, n: int = 1, status: int = 500, after_delivery: bool = False) -> None:
        """Answer the next `n` requests with `status`; `after_delivery` delivers first (a lost reply)."""
        with self.lock:
            self._faults.extend(Fault(status, after_delivery=after_delivery) for _ in range(n))

    def throttle_next(self, n: int = 1, retry_after: float = 1) -> None:
        """Answer the next `n` requests with 429 and `Retry-After: retry_after`."""
        with self.lock:
            self._faults.extend(Fault(429, retry_after=retry_after) for _ in range(n))

    def take_fault(self) -> Fault | None:
        with self.lock:
            return self._faults.popleft() if self._faults else None

    def over_rate(self, key: Any, limit: float | None) -> bool:
        """Whether this request exceeds `limit` per second for `key` (and so counts a violation)."""
        if limit is None:
            return False
        with self.lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.limit != limit:
                bucket = self._buckets[key] = _Bucket(limit)
            if bucket.take():
                return False
            self.violations += 1
            return True

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        return self.handle(Request(environ))(environ, start_response)
