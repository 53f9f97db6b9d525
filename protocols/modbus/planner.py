"""Read planner: which Modbus requests fetch a device's wanted points in the least wire time.

Each request pays a fixed price (request frame, two t3.5 silences, the device's latency), so reading a
few unwanted registers between two points is often cheaper than a second request. The planner decides
exactly where to merge, within what the device accepts: a request size limit and address ranges it
refuses to read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby

from protocols.modbus.wire import BIT_FUNCTIONS, LineTiming
from protocols.modbus.wire import max_count as protocol_max_count
from protocols.profiles import Point, Profile


@dataclass(frozen=True)
class ReadRequest:
    """One read transaction and the points whose values arrive in its reply."""

    function: int
    address: int
    count: int
    points: tuple[Point, ...]

    def decode(self, registers: list[int]) -> dict[str, float]:
        """Point name -> engineering value, from the reply (one 0/1 per bit for functions 1 and 2)."""
        if len(registers) != self.count:
            raise ValueError(
                f"read of function {self.function} at {self.address}: "
                f"expected {self.count} values, got {len(registers)}"
            )
        return {p.name: p.decode(registers[p.address - self.address : p.end - self.address]) for p in self.points}


def plan_reads(
    points: Iterable[Point],
    timing: LineTiming,
    *,
    max_count: int | None = None,
    unreadable: Sequence[tuple[int, int]] = (),
) -> list[ReadRequest]:
    """The requests with the least total ``timing.read_s`` that read every point whole.

    ``max_count`` caps register reads only (device quirks concern registers; bit reads keep the
    protocol's 2000). ``unreadable`` holds inclusive address ranges no request may touch. Points may
    overlap (one register read as two quantities); exact repeats are read once. Sorted by (function, address).
    """
    if max_count is not None and max_count < 1:
        raise ValueError(f"max_count must be at least 1, got {max_count}")
    plan: list[ReadRequest] = []
    ordered = sorted(_unique(points), key=lambda p: (p.function, p.address, p.end, p.name))
    for function, group in groupby(ordered, key=lambda p: p.function):
        limit = protocol_max_count(function)
        if max_count is not None and function not in BIT_FUNCTIONS:
            limit = min(limit, max_count)
        plan += _plan_function(function, list(group), timing, limit, unreadable)
    return plan


def plan_naive(points: Iterable[Point]) -> list[ReadRequest]:
    """One request per point, as common gateways poll: the baseline the planner is measured against."""
    return [ReadRequest(p.function, p.address, p.register_count, (p,)) for p in points]


def plan_cost(requests: Iterable[ReadRequest], timing: LineTiming) -> float:
    """Seconds the requests occupy the line."""
    return sum(timing.read_s(r.function, r.count) for r in requests)


def plan_profile(profile: Profile, timing: LineTiming, point_names: Iterable[str] | None = None) -> list[ReadRequest]:
    """Plan for a profile's points (all, or those named) honouring its workarounds."""
    points = profile.points if point_names is None else [profile.point(name) for name in point_names]
    quirks = profile.workarounds
    return plan_reads(points, timing, max_count=quirks.max_registers_per_request, unreadable=quirks.unreadable)


def _unique(points: Iterable[Point]) -> list[Point]:
    """Drop exact repeats; refuse two different points under one name, as their values would collide."""
    by_name: dict[str, Point] = {}
    for p in points:
        if by_name.setdefault(p.name, p) != p:
            raise ValueError(f"point {p.name} is given twice with different definitions")
    return list(by_name.values())


def _first_hit(start: int, end: int, unreadable: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    """The first inclusive unreadable range that addresses start..end-1 touch, if any."""
    return next(((lo, hi) for lo, hi in unreadable if lo < end and start <= hi), None)


def _plan_function(
    function: int, points: list[Point], timing: LineTiming, limit: int, unreadable: Sequence[tuple[int, int]]
) -> list[ReadRequest]:
    """Optimal split of one function's address-sorted points into runs, one request per run.

    best[j] is the cheapest plan for points[:j]; its last request reads points[cut[j]:j]. Growing a run
    leftwards only widens its span, so once it breaks a limit or touches an unreadable range, every
    longer run does too and the inner loop stops: O(n * points per request).
    """
    for p in points:
        if p.register_count > limit:
            raise ValueError(f"point {p.name}: {p.register_count} registers exceed the limit of {limit} per request")
        if hit := _first_hit(p.address, p.end, unreadable):
            raise ValueError(
                f"point {p.name}: addresses {p.address}..{p.end - 1} overlap unreadable range {hit[0]}..{hit[1]}"
            )
    n = len(points)
    best = [0.0] + [math.inf] * n
    cut = [0] * (n + 1)
    span_end = [0] * (n + 1)
    for j in range(1, n + 1):
        end = 0
        for i in range(j - 1, -1, -1):
            end = max(end, points[i].end)
            count = end - points[i].address
            if count > limit or _first_hit(points[i].address, end, unreadable):
                break
            cost = best[i] + timing.read_s(function, count)
            if cost < best[j]:
                best[j], cut[j], span_end[j] = cost, i, end
    requests = []
    j = n
    while j:
        i = cut[j]
        start = points[i].address
        requests.append(ReadRequest(function, start, span_end[j] - start, tuple(points[i:j])))
        j = i
    return requests[::-1]
