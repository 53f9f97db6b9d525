"""Shared cost (公摊) by largest remainder: shares never negative, always summing exactly to the pool."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.billing.engine import AllocationMethod, allocate, allocate_quantity, loss_pool

AREA, USAGE, EQUAL, WEIGHTS = (
    AllocationMethod.AREA,
    AllocationMethod.USAGE,
    AllocationMethod.EQUAL,
    AllocationMethod.WEIGHTS,
)


def test_by_floor_area() -> None:
    # 100.00 yuan over 89.35 + 120.50 + 65.00 = 274.85 m2:
    #   unit 1: 10000 x 89.35 / 274.85 = 3250.86 -> 3250 (+1: remainder .86 largest) = 3251
    #   unit 2: 10000 x 120.50 / 274.85 = 4384.21 -> 4384
    #   unit 3: 10000 x 65.00 / 274.85 = 2364.93 -> 2364 (+1: remainder .93) = 2365
    result = allocate(10000, {1: D("89.35"), 2: D("120.50"), 3: D("65")}, AREA)
    assert result.shares == {1: 3251, 2: 4384, 3: 2365}
    assert sum(result.shares.values()) == 10000
    assert (result.method, result.fell_back, result.total_basis) == (AREA, False, D("274.85"))


def test_equal_shares_ties_go_to_the_smaller_unit_id() -> None:
    # 10 fen over 3 units: 3 each, the 1 left over to unit 101 (the smallest id).
    assert allocate(10, {103: 0, 101: 0, 102: 0}, EQUAL).shares == {101: 4, 102: 3, 103: 3}


def test_lift_ground_floor_exempt_by_weight_zero() -> None:
    # Floors 1..4 with weights 0, 1, 2, 3: 600 fen -> 0, 100, 200, 300.
    result = allocate(600, {11: 0, 21: 1, 31: 2, 41: 3}, WEIGHTS)
    assert result.shares == {11: 0, 21: 100, 31: 200, 41: 300}


def test_by_usage_with_nobody_using_falls_back_to_equal_and_says_so() -> None:
    result = allocate(1000, {1: D("0"), 2: D("0"), 3: D("0")}, USAGE)
    assert result.shares == {1: 334, 2: 333, 3: 333}
    assert (result.method, result.fell_back) == (EQUAL, True)


def test_all_weights_zero_is_an_error() -> None:
    with pytest.raises(ValueError, match="all weights are 0: every unit is exempt, so nobody can be charged"):
        allocate(1000, {1: 0, 2: 0}, WEIGHTS)


def test_bad_pools_and_bases_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        allocate(-1, {1: 1}, EQUAL)
    with pytest.raises(ValueError, match=r"unit 2: basis -3 must be a number >= 0 \(area\)"):
        allocate(100, {1: 1, 2: -3}, AREA)
    with pytest.raises(ValueError, match="no units to share 100 among"):
        allocate(100, {}, EQUAL)
    assert allocate(0, {}, EQUAL).shares == {}


def test_quantity_pool_is_divided_to_a_ten_thousandth() -> None:
    # 10 kWh over 3 equal units: 3.3334 + 3.3333 + 3.3333
    assert allocate_quantity(D("10"), {1: 1, 2: 1, 3: 1}, WEIGHTS) == {1: D("3.3334"), 2: D("3.3333"), 3: D("3.3333")}


def test_loss_pool_is_master_minus_sub_meters() -> None:
    pool = loss_pool(D("1250.5"), [D("400"), D("500.25"), D("300")])
    assert (pool.quantity, pool.difference, pool.negative) == (D("50.25"), D("50.25"), False)


def test_negative_loss_is_flagged_not_allocated() -> None:
    pool = loss_pool(D("1000"), [D("600"), D("450")])
    assert (pool.quantity, pool.difference, pool.negative) == (D("0"), D("-50"), True)


areas = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False, allow_infinity=False)
bases = st.dictionaries(st.integers(1, 10_000), areas | st.just(D(0)), min_size=1, max_size=60)


@given(pool=st.integers(0, 10**12), bases=bases, method=st.sampled_from(list(AllocationMethod)))
def test_shares_are_never_negative_and_always_sum_to_the_pool(
    pool: int, bases: dict[int, D], method: AllocationMethod
) -> None:
    if method is WEIGHTS and sum(bases.values()) == 0:
        with pytest.raises(ValueError, match="all weights are 0"):
            allocate(pool, bases, method)
        return
    result = allocate(pool, bases, method)
    assert sum(result.shares.values()) == pool
    assert all(share >= 0 for share in result.shares.values())
    assert set(result.shares) == set(bases)
    if not result.fell_back and method is not EQUAL:
        assert all(result.shares[u] == 0 for u, b in bases.items() if b == 0)
        total = sum(bases.values())
        # Largest remainder: each share is within one fen of its exact proportion.
        assert all(abs(result.shares[u] * total - pool * b) < total for u, b in bases.items())


@given(
    pool=st.decimals(min_value=0, max_value=10**7, places=4, allow_nan=False, allow_infinity=False),
    bases=bases,
    method=st.sampled_from([AREA, USAGE, EQUAL]),
)
def test_quantity_shares_sum_exactly_to_the_pool(pool: D, bases: dict[int, D], method: AllocationMethod) -> None:
    shares = allocate_quantity(pool, bases, method)
    assert sum(shares.values(), D(0)) == pool
    assert all(share >= 0 for share in shares.values())
