"""Notify test helpers: the hub app on a real HTTP server (streams need one), an SSE reader, queueing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from cloud.db import session_factory
from cloud.notify.services import notify
from tests.cloud.api.hub_app import Hub
from tests.support.brokers import free_port


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """``app`` on 127.0.0.1 and a free port, in a thread; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the test HTTP server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class SseReader:
    """Reads ``event: notification`` messages off a stream in a thread, each with when it arrived."""

    url: str
    headers: dict[str, str]
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    status: int | None = None
    opened: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=None))
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self.opened.wait(10), "the stream did not open"

    def _read(self) -> None:
        try:
            with self._client.stream("GET", self.url, headers=self.headers) as response:
                self.status = response.status_code
                self.opened.set()
                data: list[str] = []
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("data: "):
                        data.append(line[6:])
                    elif line == "" and data:
                        self.events.append((time.monotonic(), json.loads("".join(data))))
                        data = []
        except (httpx.HTTPError, RuntimeError):  # closed by close(): the page went away
            return

    def wait_for(self, count: int, timeout_s: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while len(self.events) < count:
            assert time.monotonic() < deadline, f"{len(self.events)} of {count} notifications after {timeout_s} s"
            time.sleep(0.005)
        return [e for _, e in self.events]

    def close(self) -> None:
        """Disconnect, as a page closing would (the reader notices at the next line: a keep-alive at the latest)."""
        self._stop.set()
        self._thread.join(5)
        self._client.close()


def queue(hub: Hub, user: str, title: str = "水泵房压力低", **fields: Any) -> int:
    """One notification, committed in a transaction of its own."""
    with session_factory(hub.engine).begin() as session:
        row = notify(
            session,
            kind=fields.pop("kind", "alarm.raised"),
            title=title,
            body="出口压力 150 kPa",
            user_id=hub.users[user].id,
            site_id=hub.ids["site_x"],
            data={"alarm_id": 7},
            **fields,
        )
        assert row is not None
        return row.id
