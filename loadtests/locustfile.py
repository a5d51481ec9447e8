"""Load test of rmem sessions with locust: many simulated agents sharing Redis.

Each simulated user is an agent with its own session that appends a user turn, reads the last
20 messages back, and appends the assistant's turn; a fraction of users share one hot session
to load the same keys from many connections at once.

    pip install -e ".[load]"
    rmem server --port 6390 &
    RMEM_URL=redis://127.0.0.1:6390/0 locust -f loadtests/locustfile.py --headless \
        -u 50 -r 10 -t 30s --only-summary

Requests are reported as type "rmem" (append, messages_last_20, shared_append).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from locust import User, between, events, task

import rmem

URL = os.environ.get("RMEM_URL", "redis://127.0.0.1:6379/0")
NAMESPACE = os.environ.get("RMEM_LOAD_NAMESPACE", f"load-{uuid.uuid4().hex[:8]}")
_client: rmem.Client | None = None


def shared_client() -> rmem.Client:
    """One client (one connection pool) per locust worker process, as an agent server has."""
    global _client
    if _client is None:
        _client = rmem.Client.from_url(URL, namespace=NAMESPACE, pool_size=256)
    return _client


class AgentUser(User):
    """A simulated agent: a conversation loop on its own session."""

    wait_time = between(0.01, 0.05)

    def on_start(self) -> None:
        self.session = shared_client().session(f"agent-{uuid.uuid4().hex[:12]}", ttl=600)
        self.hot = shared_client().session("hot-shared", ttl=600)

    def _timed(self, name: str, call: Any) -> Any:
        start = time.perf_counter()
        exc: BaseException | None = None
        result = None
        try:
            result = call()
        except rmem.RmemError as err:
            exc = err
        events.request.fire(
            request_type="rmem",
            name=name,
            response_time=(time.perf_counter() - start) * 1000,
            response_length=0,
            exception=exc,
            context={},
        )
        return result

    @task(10)
    def turn(self) -> None:
        self._timed("append", lambda: self.session.append({"role": "user", "content": "hi " * 40}))
        self._timed("messages_last_20", lambda: self.session.messages(last=20))
        self._timed(
            "append", lambda: self.session.append({"role": "assistant", "content": "ok " * 80})
        )

    @task(1)
    def shared(self) -> None:
        self._timed("shared_append", lambda: self.hot.append({"role": "user", "content": "x"}))
