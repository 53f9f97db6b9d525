"""The poller: reads every device on its schedule and turns answers into records for the outbox.

Each device runs its own task; its bus hub serialises transactions, so a slow or dead device only costs
its own deadline, and its breaker limits that to one timeout per backoff window. Schedules are absolute
(next = previous due + interval), so a late poll never shifts the ones after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.bus import BusError, BusHub, DeviceException
from edge.config import DeviceConfig
from edge.counters import CounterTracker
from edge.health import Breaker, DeviceHealth
from edge.rules import RuleEngine
from protocols.messages import EventType, Quality
from protocols.modbus.planner import ReadRequest, plan_profile
from protocols.profiles import Point, Profile
from protocols.quantities import PointKind

log = logging.getLogger(__name__)
Record = dict[str, Any]
Sink = Callable[[list[Record]], Awaitable[None]]
"""Commits records durably (the outbox); polling waits for it, so a reading counts only once stored."""


COINCIDENT_S = 0.005
"""Groups due within this of each other are polled together."""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class PollGroup:
    """Points read on one interval (profile poll groups with equal intervals are merged)."""

    name: str
    interval_s: float
    points: tuple[Point, ...]


def poll_groups(device: DeviceConfig, profile: Profile) -> list[PollGroup]:
    """The device's points by poll interval: profile groups, intervals overridden by the device config."""
    wanted = set(device.points) if device.points else None
    by_interval: dict[float, list[str]] = {}
    for group, default_interval in profile.poll_groups.items():
        by_interval.setdefault(device.poll_intervals.get(group, default_interval), []).append(group)
    groups = []
    for interval, names in sorted(by_interval.items()):
        points = tuple(p for p in profile.points if p.group in names and (wanted is None or p.name in wanted))
        if points:
            groups.append(PollGroup("+".join(names), interval, points))
    return groups


@dataclass
class DevicePoller:
    device: DeviceConfig
    profile: Profile
    hub: BusHub
    sink: Sink
    counters: CounterTracker
    rules: RuleEngine
    groups: list[PollGroup] = field(init=False)
    health: DeviceHealth = field(default_factory=DeviceHealth)

    def __post_init__(self) -> None:
        bus = self.hub.config
        self.breaker = Breaker(bus.backoff_initial_s, bus.backoff_max_s)
        self.groups = poll_groups(self.device, self.profile)
        self._plans: dict[frozenset[str], list[ReadRequest]] = {}

    @property
    def name(self) -> str:
        return self.device.name

    def plan(self, groups: Sequence[PollGroup]) -> list[ReadRequest]:
        """Requests for groups due together, planned jointly so neighbouring registers share a read."""
        key = frozenset(g.name for g in groups)
        if key not in self._plans:
            self._plans[key] = plan_profile(self.profile, self.hub.timing, [p.name for g in groups for p in g.points])
        return self._plans[key]

    async def run(self, stagger_s: float = 0.0) -> None:
        """Poll forever, each group on its own absolute schedule; groups due together share one poll."""
        start = time.monotonic() + stagger_s
        due = {g.name: start for g in self.groups}
        while True:
            delay = min(due.values()) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            ready = [g for g in self.groups if due[g.name] <= now + COINCIDENT_S]
            await self.poll(ready)
            for group in ready:
                due[group.name] += group.interval_s
                behind = time.monotonic() - due[group.name]
                if behind > 0:
                    skipped = int(behind // group.interval_s) + 1
                    log.warning(
                        "%s/%s: bus overloaded, skipping %d poll(s) of %s",
                        self.hub.name,
                        self.name,
                        skipped,
                        group.name,
                    )
                    due[group.name] += skipped * group.interval_s

    async def poll(self, groups: Sequence[PollGroup] | None = None) -> bool:
        """One poll of the given groups (default: all); returns whether the device answered."""
        now = time.monotonic()
        self.health.polls += 1
        if not self.breaker.allows(now):
            self.health.skipped_in_backoff += 1
            return False
        values: dict[str, float] = {}
        for request in self.plan(groups or self.groups):
            started = time.perf_counter()
            try:
                registers = await self.hub.read(self.device.unit_id, request)
            except DeviceException as exc:
                self.health.record_error(exc.kind, f"{request.function:02d}@{request.address}: {exc}")
                log.debug("%s: %s", self.name, exc)
                continue
            except BusError as exc:
                self.health.record_error(exc.kind, str(exc))
                await self._trip(exc)
                return False
            self.health.record_ok(time.time(), time.perf_counter() - started)
            values.update(request.decode(registers))
        if not values:
            return False
        if self.breaker.open:
            self.breaker.reset()
            log.info("%s/%s: answering again", self.hub.name, self.name)
            await self.sink([self._event(EventType.DEVICE_ONLINE, None, f"{self.name} answers again", {})])
        await self.sink(self._records(values))
        self.counters.save()
        return True

    async def _trip(self, exc: BusError) -> None:
        was_open = self.breaker.open
        window = self.breaker.trip(time.monotonic())
        if not was_open:
            log.warning("%s/%s: %s; backing off %.0fs", self.hub.name, self.name, exc, window)
            await self.sink(
                [self._event(EventType.DEVICE_OFFLINE, None, str(exc), {"error": exc.kind, "backoff_s": window})]
            )

    def _records(self, values: dict[str, float]) -> list[Record]:
        ts = now_ms()
        records: list[Record] = []
        for name, value in values.items():
            point = self.profile.point(name)
            quality = Quality.OUT_OF_RANGE if point.out_of_range(value) else Quality.GOOD
            records.append(
                {
                    "kind": "reading",
                    "ts": ts,
                    "device": self.name,
                    "point": name,
                    "quantity": point.quantity.value,
                    "value": value,
                    "quality": quality.value,
                }
            )
            records.extend(self._checks(point, value, ts))
        return records

    def _checks(self, point: Point, value: float, ts: int) -> list[Record]:
        events = []
        if point.kind is PointKind.COUNTER:
            jump = self.counters.observe(self.name, point.name, value, point.rollover)
            if jump:
                events.append(
                    self._event(
                        jump.type, point.name, jump.message, {"previous": jump.previous, "current": jump.current}, ts
                    )
                )
        for change in self.rules.evaluate(self.name, point.name, value, time.monotonic()):
            rule = change.rule
            events.append(
                self._event(
                    change.type,
                    point.name,
                    change.message,
                    {
                        "rule": rule.name,
                        "value": value,
                        "severity": rule.severity,
                        "limit": rule.above if rule.above is not None else rule.below,
                        "hysteresis": rule.hysteresis,
                    },
                    ts,
                )
            )
        return events

    def _event(
        self, type_: EventType, point: str | None, message: str, data: dict[str, Any], ts: int | None = None
    ) -> Record:
        return {
            "kind": "event",
            "ts": ts or now_ms(),
            "type": type_.value,
            "device": self.name,
            "point": point,
            "message": message,
            "data": data,
        }
