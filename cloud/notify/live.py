"""Live push within one hub process: pages streaming a user's notifications wait here and are woken the moment
a transaction that queued one for that user commits.

The stream itself reads the ``notifications`` table, so nothing depends on this wake-up arriving: a page
connected to another replica sees the row on its next poll. Thread-safe: commits happen on worker threads,
streams wait on the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(eq=False)
class Subscription:
    user_id: int
    event: asyncio.Event
    loop: asyncio.AbstractEventLoop


class LiveHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: dict[int, set[Subscription]] = defaultdict(set)

    def subscribe(self, user_id: int) -> Subscription:
        """Call on the event loop that will wait on ``subscription.event``."""
        sub = Subscription(user_id, asyncio.Event(), asyncio.get_running_loop())
        with self._lock:
            self._subs[user_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.user_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.user_id]

    def publish(self, user_ids: Iterable[int]) -> None:
        """Wake every stream of these users (from any thread)."""
        with self._lock:
            targets = [s for u in set(user_ids) for s in self._subs.get(u, ())]
        for sub in targets:
            try:
                sub.loop.call_soon_threadsafe(sub.event.set)
            except RuntimeError:  # its loop has closed: the stream is gone
                self.unsubscribe(sub)

    def listeners(self, user_id: int) -> int:
        with self._lock:
            return len(self._subs.get(user_id, ()))


HUB = LiveHub()
"""This process's hub."""


class Wakeup:
    """Wakes every waiting thread; a wake-up that comes while a thread is busy is not lost: it waits for a
    generation after the one it saw before starting its work."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        with self._cond:
            return self._generation

    def set(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait_after(self, seen: int, timeout_s: float) -> bool:
        """True if woken since generation ``seen``, False after ``timeout_s``."""
        with self._cond:
            return self._cond.wait_for(lambda: self._generation != seen, timeout_s)


DISPATCH = Wakeup()
"""Set after a commit that queued notifications: wakes this process's dispatcher at once."""
