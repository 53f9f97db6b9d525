"""Read planner: the plan is the cheapest on the wire and never asks a device for what it refuses."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.modbus.planner import ReadRequest, plan_cost, plan_naive, plan_profile, plan_reads
from protocols.modbus.wire import LineTiming
from protocols.profiles import Point, load_profile, parse_profile

BIT_FUNCTIONS = (1, 2)
DATA_TYPE = {1: "u16", 2: "f32", 4: "f64"}
MS = 1e-3
QUOTED = 0.06 * MS
"""The reference quotes milliseconds to one decimal (281.25 as 281.3)."""


def _point(name: str, address: int, width: int = 2, function: int = 3) -> Point:
    data_type = "bit" if function in BIT_FUNCTIONS else DATA_TYPE[width]
    return Point(
        name=name, quantity="voltage_v", kind="gauge", address=address, function=function, data_type=data_type
    )


def _limit(function: int, max_count: int | None) -> int:
    """The spec's limits, written out rather than imported so the tests check them."""
    return 2000 if function in BIT_FUNCTIONS else min(125, max_count or 125)


def _span(group: Sequence[Point]) -> tuple[int, int]:
    return min(p.address for p in group), max(p.end for p in group)


def _allowed(group: Sequence[Point], limit: int, bad: set[int]) -> bool:
    start, end = _span(group)
    return end - start <= limit and bad.isdisjoint(range(start, end))


def _group_cost(group: Sequence[Point], timing: LineTiming) -> float:
    start, end = _span(group)
    return timing.read_s(group[0].function, end - start)


def _splittings(points: list[Point]) -> Iterator[list[list[Point]]]:
    """Every way to cut the sequence into contiguous runs: 2^(n-1) of them."""
    for cuts in itertools.product((False, True), repeat=len(points) - 1):
        groups, current = [], [points[0]]
        for point, cut in zip(points[1:], cuts, strict=False):
            if cut:
                groups.append(current)
                current = []
            current.append(point)
        yield groups + [current]


def _partitions(points: list[Point]) -> Iterator[list[list[Point]]]:
    """Every set partition, runs or not (Bell numbers: keep n small)."""
    if not points:
        yield []
        return
    first, rest = points[0], points[1:]
    for partition in _partitions(rest):
        for k in range(len(partition)):
            yield partition[:k] + [[first] + partition[k]] + partition[k + 1 :]
        yield [[first]] + partition


def _reference_cost(points, timing, max_count, unreadable, groupings=_splittings) -> float:
    """Exhaustive minimum over all groupings per function that respect the limit and unreadable ranges."""
    bad = {a for lo, hi in unreadable for a in range(lo, hi + 1)}
    total = 0.0
    for function in sorted({p.function for p in points}):
        same = sorted((p for p in points if p.function == function), key=lambda p: p.address)
        limit = _limit(function, max_count)
        total += min(
            sum(_group_cost(g, timing) for g in groups)
            for groups in groupings(same)
            if all(_allowed(g, limit, bad) for g in groups)
        )
    return total


def _word(function: int, address: int) -> int:
    """A device's memory, distinct per address; below 0x4000 so no float decodes to NaN."""
    return address % 2 if function in BIT_FUNCTIONS else (37 * address + 11 * function) % 0x4000 + 1


def _assert_valid(plan: list[ReadRequest], points: list[Point], max_count: int | None, unreadable) -> None:
    """Invariants every plan must hold, whatever its cost."""
    bad = {a for lo, hi in unreadable for a in range(lo, hi + 1)}
    assert plan == sorted(plan, key=lambda r: (r.function, r.address))
    assert Counter(p.name for r in plan for p in r.points) == Counter({p.name: 1 for p in points})
    for r in plan:
        assert all(p.function == r.function for p in r.points)
        assert (r.address, r.address + r.count) == _span(r.points), "reads exactly from its first to its last point"
        assert r.count <= _limit(r.function, max_count)
        assert bad.isdisjoint(range(r.address, r.address + r.count))
    # Each value is taken from the point's own registers within the reply.
    for r in plan:
        reply = [_word(r.function, a) for a in range(r.address, r.address + r.count)]
        own = {p.name: p.decode([_word(p.function, a) for a in range(p.address, p.end)]) for p in r.points}
        assert r.decode(reply) == own


timings = st.builds(
    LineTiming,
    baudrate=st.sampled_from([2400, 9600, 19200, 38400, 115200]),
    parity=st.sampled_from(["N", "E", "O"]),
    stopbits=st.sampled_from([1, 2]),
    device_latency_s=st.sampled_from([0.0, 0.003, 0.02, 0.05]),
)
# Real maps are runs of adjacent values with occasional holes; bit gaps past 2000 test the bit limit.
gaps = st.one_of(st.just(0), st.integers(1, 6), st.integers(7, 60), st.integers(1000, 2500))


@st.composite
def layouts(draw):
    """Non-overlapping points of up to three function codes, minus those an unreadable range hits."""
    points = []
    for function in draw(st.lists(st.sampled_from([1, 2, 3, 4]), min_size=1, max_size=3, unique=True)):
        address = draw(st.integers(0, 300))
        for k in range(draw(st.integers(1, 10))):
            width = 1 if function in BIT_FUNCTIONS else draw(st.sampled_from([1, 2, 4]))
            points.append(_point(f"f{function}_{k}", address, width, function))
            address += width + draw(gaps)
    top = max(p.end for p in points)
    ranges = draw(st.lists(st.tuples(st.integers(0, top), st.integers(0, 8)), max_size=2))
    unreadable = [(lo, lo + size) for lo, size in ranges]
    points = [p for p in points if not any(lo < p.end and p.address <= hi for lo, hi in unreadable)]
    max_count = draw(st.none() | st.integers(4, 24))
    return points, draw(timings), max_count, unreadable


# --- Optimality and invariants on random layouts -------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(layouts())
def test_plan_is_optimal_and_valid(layout):
    points, timing, max_count, unreadable = layout
    plan = plan_reads(points, timing, max_count=max_count, unreadable=unreadable)
    _assert_valid(plan, points, max_count, unreadable)
    best = _reference_cost(points, timing, max_count, unreadable)
    assert plan_cost(plan, timing) == pytest.approx(best, abs=1e-12)
    assert plan_cost(plan, timing) <= plan_cost(plan_naive(points), timing) + 1e-12
    assert plan_reads(points[::-1], timing, max_count=max_count, unreadable=unreadable) == plan, "order-independent"


@st.composite
def overlapping_layouts(draw):
    """A few points piled onto a dozen registers, as when one register is read as two quantities."""
    points = [
        _point(f"p{k}", draw(st.integers(0, 12)), draw(st.sampled_from([1, 2, 4])))
        for k in range(draw(st.integers(1, 6)))
    ]
    unreadable = draw(st.lists(st.tuples(st.integers(0, 16), st.integers(0, 2)), max_size=1))
    unreadable = [(lo, lo + size) for lo, size in unreadable]
    points = [p for p in points if not any(lo < p.end and p.address <= hi for lo, hi in unreadable)]
    return points, draw(timings), draw(st.integers(4, 12)), unreadable


@settings(max_examples=150, deadline=None)
@given(overlapping_layouts())
def test_overlapping_and_repeated_points_still_get_the_cheapest_plan(layout):
    points, timing, max_count, unreadable = layout
    plan = plan_reads(points + points[:1], timing, max_count=max_count, unreadable=unreadable)
    _assert_valid(plan, points, max_count, unreadable)
    best = _reference_cost(points, timing, max_count, unreadable, groupings=_partitions)
    assert plan_cost(plan, timing) == pytest.approx(best, abs=1e-12)


# --- Worked examples ------------------------------------------------------------------------------


def test_reference_numbers_at_9600_8n1():
    timing = LineTiming(9600, "N", 1)
    one = plan_reads([_point("v", 0)], timing)
    assert plan_cost(one, timing) == pytest.approx(25.0 * MS, abs=QUOTED)

    sixty = [_point(f"v{k}", 2 * k) for k in range(30)]
    assert plan_cost(plan_naive(sixty), timing) == pytest.approx(750.0 * MS, abs=QUOTED)
    plan = plan_reads(sixty, timing)
    assert [(r.address, r.count) for r in plan] == [(0, 60)]
    assert plan_cost(plan, timing) == pytest.approx(145.8 * MS, abs=QUOTED)

    full = [_point(f"r{k}", k, width=1) for k in range(125)]
    plan = plan_reads(full, timing)
    assert [(r.address, r.count) for r in plan] == [(0, 125)]
    assert plan_cost(plan, timing) == pytest.approx(281.3 * MS, abs=QUOTED)
    assert [r.count for r in plan_reads(full + [_point("r125", 125, width=1)], timing)] == [125, 1]


def test_gap_is_merged_only_below_break_even():
    # 9600 8N1, 20 ms latency: a second request costs 8 request + 5 response-overhead bytes and two
    # t3.5 silences = 20 characters = 20.83 ms, plus 20 ms latency = 40.83 ms. Each unwanted register
    # read instead costs 2 characters = 2.083 ms. Break-even: 40.83 / 2.083 = 19.6 registers.
    timing = LineTiming(9600, "N", 1, device_latency_s=0.020)
    worth = plan_reads([_point("a", 0), _point("b", 2 + 19)], timing)
    not_worth = plan_reads([_point("a", 0), _point("b", 2 + 20)], timing)
    assert [(r.address, r.count) for r in worth] == [(0, 23)]
    assert [(r.address, r.count) for r in not_worth] == [(0, 2), (22, 2)]


def test_chint_dtsu666_needs_fewer_requests_than_a_gateway():
    profile = load_profile("chint_dtsu666")
    timing = LineTiming(9600, "N", 1, device_latency_s=0.020)
    plan = plan_profile(profile, timing)
    naive = plan_naive(profile.points)
    quirks = profile.workarounds
    _assert_valid(plan, profile.points, quirks.max_registers_per_request, quirks.unreadable)
    assert len(plan) < len(naive)
    assert plan_cost(plan, timing) < plan_cost(naive, timing)
    assert max(r.count for r in plan) <= 125


def test_chosen_points_only():
    profile = load_profile("chint_dtsu666")
    plan = plan_profile(profile, LineTiming(), ["frequency", "voltage_ab"])
    assert sorted(p.name for r in plan for p in r.points) == ["frequency", "voltage_ab"]


def _profile(workarounds: dict) -> dict:
    """60 adjacent floats in input registers, as an Eastron SDM630 holds them."""
    point = {"quantity": "voltage_v", "kind": "gauge", "function": 4}
    points = [{**point, "name": f"v{k}", "address": 2 * k} for k in range(60)]
    return {
        "id": "sdm",
        "name": "SDM630-style",
        "version": 1,
        "category": "electricity_meter",
        "points": points,
        "workarounds": workarounds,
    }


def test_sdm630_style_limit_of_80_registers():
    profile = parse_profile(_profile({"max_registers_per_request": 80}), "test")
    plan = plan_profile(profile, LineTiming(9600, device_latency_s=0.02))
    assert len(plan) == 2
    assert all(r.count <= 80 for r in plan)
    assert sum(r.count for r in plan) == 120


def test_unreadable_gap_splits_a_request():
    points = [_point("a", 0), _point("b", 2), _point("c", 6), _point("d", 8)]
    assert [(r.address, r.count) for r in plan_reads(points, LineTiming())] == [(0, 10)]
    assert [(r.address, r.count) for r in plan_reads(points, LineTiming(), unreadable=[(4, 5)])] == [(0, 4), (6, 4)]
    profile = parse_profile(_profile({"unreadable": [[20, 21]]}), "test")
    wanted = [p.name for p in profile.points if p.name != "v10"]
    assert [(r.address, r.count) for r in plan_profile(profile, LineTiming(), wanted)] == [(0, 20), (22, 98)]


def test_point_straddling_an_unreadable_range_is_refused_by_name():
    points = [_point("voltage_a", 0), _point("energy_total", 10)]
    with pytest.raises(ValueError, match="point energy_total: addresses 10..11 overlap unreadable range 11..20"):
        plan_reads(points, LineTiming(), unreadable=[(11, 20)])


def test_point_larger_than_the_limit_is_refused_by_name():
    with pytest.raises(ValueError, match="energy_f64"):
        plan_reads([_point("energy_f64", 0, width=4)], LineTiming(), max_count=2)


def test_bit_reads_ignore_the_register_limit():
    coils = [_point(f"c{k}", k, function=1) for k in range(100)]
    assert [(r.function, r.count) for r in plan_reads(coils, LineTiming(), max_count=10)] == [(1, 100)]


def test_one_register_read_as_two_points_is_read_once():
    whole = Point(name="total", quantity="energy_import_kwh", kind="counter", address=0, data_type="u32")
    low = Point(name="low_word", quantity="energy_import_kwh", kind="counter", address=1, data_type="u16")
    (request,) = plan_reads([whole, low, whole], LineTiming())
    assert (request.address, request.count) == (0, 2)
    assert request.decode([1, 2]) == {"total": 65538.0, "low_word": 2.0}


def test_same_name_for_different_points_is_refused():
    with pytest.raises(ValueError, match="point a is given twice"):
        plan_reads([_point("a", 0), _point("a", 4)], LineTiming())


def test_reply_of_the_wrong_length_is_refused():
    (request,) = plan_reads([_point("a", 0)], LineTiming())
    with pytest.raises(ValueError, match="expected 2 values, got 1"):
        request.decode([0])


def test_reference_cost_is_exhaustive():
    """Guard the guard: the reference sees all 2^(n-1) splittings and agrees with a hand count."""
    points = [_point(f"p{k}", 30 * k) for k in range(5)]  # gaps of 28 registers: never worth merging
    assert sum(1 for _ in _splittings(points)) == 16
    assert sum(1 for _ in _partitions(points)) == 52
    timing = LineTiming(9600)
    assert _reference_cost(points, timing, None, ()) == pytest.approx(5 * timing.read_s(3, 2))
