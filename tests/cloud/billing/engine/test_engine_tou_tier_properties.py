"""Property: however usage falls over tiers and time-of-use periods, the line quantities add up exactly."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from cloud.billing.engine import TariffDocument, TouPeriod, parse_tariff, price_segment
from tests.cloud.billing.engine.engine_tariffs import tariff

SHANGHAI = tariff("shanghai_electricity_tou")
FOUR_TIERED = parse_tariff(
    {
        "utility": "electricity",
        "name": "four periods, three tiers",
        "unit": "kWh",
        "tier_period": "yearly",
        "tou": [
            {"period": "sharp", "windows": [{"start": "19:00", "end": "21:00"}]},
            {"period": "peak", "windows": [{"start": "08:00", "end": "19:00"}]},
            {"period": "flat", "windows": [{"start": "21:00", "end": "23:00"}]},
            {"period": "valley", "windows": [{"start": "23:00", "end": "08:00"}]},
        ],
        "tiers": [
            {"up_to": "100.5", "tou": {"sharp": "1.1", "peak": "0.9", "flat": "0.6", "valley": "0.3"}},
            {"up_to": "250.0001", "tou": {"sharp": "1.2", "peak": "1.0", "flat": "0.7", "valley": "0.4"}},
            {"tou": {"sharp": "1.5", "peak": "1.3", "flat": "0.9", "valley": "0.5"}},
        ],
    }
)
quantity = st.decimals(min_value=0, max_value=5_000, places=4, allow_nan=False, allow_infinity=False)


@given(
    document=st.sampled_from([SHANGHAI, FOUR_TIERED]),
    accumulated=quantity,
    amounts=st.lists(quantity, min_size=4, max_size=4),
)
def test_tou_tier_line_quantities_sum_exactly_to_the_usage(
    document: TariffDocument, accumulated: D, amounts: list[D]
) -> None:
    periods = document.tou_periods()
    usage = dict(zip(periods, amounts, strict=False))
    lines = price_segment(document, usage, accumulated=accumulated)
    assert all(line.quantity is not None and line.quantity > 0 for line in lines)
    per_period: dict[str, D] = defaultdict(D)
    per_tier: dict[int, D] = defaultdict(D)
    for line in lines:
        assert line.quantity is not None
        per_period[line.detail["period"]] += line.quantity
        per_tier[line.detail["tier"]] += line.quantity
    assert sum(per_tier.values(), D(0)) == sum(usage.values(), D(0))
    assert {p: per_period[p.value] for p in periods if usage[p]} == {p: q for p, q in usage.items() if q}
    # The tiers get what the total decides: the part of [accumulated, accumulated + usage] in each tier.
    bounds = [D(0)] + [t.up_to for t in document.tiers[:-1] if t.up_to is not None] + [None]
    end = accumulated + sum(usage.values(), D(0))
    for tier in range(1, len(bounds)):
        low, high = bounds[tier - 1], bounds[tier]
        assert low is not None
        expected = max(D(0), (end if high is None else min(high, end)) - max(low, accumulated))
        assert per_tier.get(tier, D(0)) == expected
    # Each line's amount is its own quantity x price rounded half-up to the fen.
    for line in lines:
        assert line.quantity is not None and line.unit_price is not None
        assert line.amount_fen == int(
            (line.quantity * line.unit_price * 100 + D("0.5")).to_integral_value(rounding="ROUND_FLOOR")
        )


@given(peak=quantity, valley=quantity)
def test_tier_split_follows_the_period_proportions_within_a_ten_thousandth(peak: D, valley: D) -> None:
    lines = price_segment(SHANGHAI, {TouPeriod.PEAK: peak, TouPeriod.VALLEY: valley}, accumulated=D("3000"))
    total = peak + valley
    for line in lines:
        if line.detail["tier"] == 1 and total:
            tier_quantity = sum((x.quantity for x in lines if x.detail["tier"] == 1 and x.quantity), D(0))
            share = peak if line.detail["period"] == "peak" else valley
            assert line.quantity is not None
            assert abs(line.quantity - tier_quantity * share / total) < D("0.0001")
