"""A month that a tariff change falls inside is split at the change; each part is priced with its version."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from cloud.billing.engine import TariffVersion, parse_tariff, price_month, split_month, tier_year_start
from tests.cloud.billing.engine.engine_tariffs import tariff

OLD = tariff("beijing_electricity")
NEW = parse_tariff(
    {
        "utility": "electricity",
        "name": "北京居民阶梯电价（调价后，示例）",
        "unit": "kWh",
        "tiers": [{"up_to": 240, "price": "0.5183"}, {"up_to": 400, "price": "0.5683"}, {"price": "0.8183"}],
    }
)
VERSIONS = [TariffVersion(date(2024, 1, 1), OLD, 1), TariffVersion(date(2026, 11, 11), NEW, 2)]


def test_a_change_inside_the_month_splits_it_at_local_midnight() -> None:
    first, second = split_month(2026, 11, VERSIONS)
    assert (first.version.id, first.first_day, first.last_day) == (1, date(2026, 11, 1), date(2026, 11, 10))
    assert (second.version.id, second.first_day, second.last_day) == (2, date(2026, 11, 11), date(2026, 11, 30))
    # 00:00 in Shanghai is 16:00 UTC the day before.
    assert first.start == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert first.end == second.start == datetime(2026, 11, 10, 16, tzinfo=UTC)
    assert second.end == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert (first.proration.days, first.proration.month_days) == (10, 30)
    assert (second.proration.days, second.proration.month_days) == (20, 30)


def test_a_month_without_a_change_is_one_whole_segment_with_the_latest_version() -> None:
    (only,) = split_month(2026, 12, VERSIONS)
    assert only.version.id == 2 and only.proration.whole and only.proration.month_days == 31


def test_monthly_tiers_across_a_change_are_prorated_per_segment() -> None:
    first, second = split_month(2026, 11, VERSIONS)
    # Days 1-10 (10/30): tier 1 to 240 x 10/30 = 80, tier 2 to 400 x 10/30 = 133.3333. 100 kWh:
    #   80 x 0.4883 = 39.064 -> 3906;  20 x 0.5383 = 10.766 -> 1077
    # Days 11-30 (20/30): tier 1 to 160, tier 2 to 266.6667. 200 kWh:
    #  160 x 0.5183 = 82.928 -> 8293;  40 x 0.5683 = 22.732 -> 2273
    lines = price_month([(first, D("100")), (second, D("200"))])
    assert [(line.label, line.quantity, line.unit_price, line.amount_fen) for line in lines] == [
        ("电费 第一档（11月1日-11月10日）", D("80"), D("0.4883"), 3906),
        ("电费 第二档（11月1日-11月10日）", D("20"), D("0.5383"), 1077),
        ("电费 第一档（11月11日-11月30日）", D("160"), D("0.5183"), 8293),
        ("电费 第二档（11月11日-11月30日）", D("40"), D("0.5683"), 2273),
    ]
    assert lines[0].detail["tariff_version"] == 1 and lines[3].detail["tariff_version"] == 2
    assert lines[1].detail["tier_to"] == "133.3333" and lines[1].detail["segment_to"] == "2026-11-10"
    assert lines[0].label_en == "Electricity tier 1 (2026-11-01 to 2026-11-10)"


def test_yearly_tiers_carry_the_accumulation_across_a_change() -> None:
    old = tariff("shanghai_electricity")
    new = parse_tariff(
        {
            "utility": "electricity",
            "name": "上海（调价后，示例）",
            "unit": "kWh",
            "tier_period": "yearly",
            "tiers": [{"up_to": 3120, "price": "0.627"}, {"up_to": 4800, "price": "0.677"}, {"price": "0.927"}],
        }
    )
    first, second = split_month(2026, 7, [TariffVersion(date(2020, 1, 1), old), TariffVersion(date(2026, 7, 16), new)])
    # 3,000 before July. Days 1-15: 100 kWh, all tier 1 (3,000 -> 3,100): 100 x 0.617 = 61.70 -> 6170.
    # Days 16-31 start at 3,100: 50 kWh -> 20 in tier 1 (to 3,120) x 0.627 = 12.54 -> 1254,
    #                                       30 in tier 2 x 0.677 = 20.31 -> 2031.
    lines = price_month([(first, D("100")), (second, D("50"))], accumulated=D("3000"))
    assert [(line.quantity, line.unit_price, line.amount_fen) for line in lines] == [
        (D("100"), D("0.617"), 6170),
        (D("20"), D("0.627"), 1254),
        (D("30"), D("0.677"), 2031),
    ]
    assert lines[1].detail["accumulated_before"] == "3100"


def test_a_month_before_any_tariff_is_refused() -> None:
    with pytest.raises(
        ValueError, match="no tariff version is in force on 2023-12-01; add one effective on or before it"
    ):
        split_month(2023, 12, VERSIONS)


def test_two_versions_on_one_day_are_refused() -> None:
    with pytest.raises(ValueError, match=r"two tariff versions take effect on the same day \(2026-11-11\)"):
        split_month(2026, 11, [*VERSIONS, TariffVersion(date(2026, 11, 11), OLD)])


def test_tier_year_start() -> None:
    water = tariff("beijing_water")
    assert tier_year_start(water, 2026, 11) == (2026, 1)
    shifted = parse_tariff({**water.model_dump(mode="json", exclude_none=True), "year_start_month": 7})
    assert tier_year_start(shifted, 2026, 3) == (2025, 7)
    assert tier_year_start(shifted, 2026, 7) == (2026, 7)
