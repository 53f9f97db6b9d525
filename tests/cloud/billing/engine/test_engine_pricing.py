"""Hand-computed bills for every tariff shape in shared/reference/tariffs.md.

Each line's amount is quantity x unit price, rounded half-up to the fen on its own; the arithmetic is in
the comments so the expectations can be checked on paper.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from cloud.billing.engine import ChargeLine, Proration, TouPeriod, price_segment
from tests.cloud.billing.engine.engine_tariffs import tariff

PEAK, VALLEY, SHARP, FLAT = TouPeriod.PEAK, TouPeriod.VALLEY, TouPeriod.SHARP, TouPeriod.FLAT


def table(lines: list[ChargeLine]) -> list[tuple[str, D | None, D | None, int]]:
    return [(line.label, line.quantity, line.unit_price, line.amount_fen) for line in lines]


def test_beijing_monthly_tiers_450_kwh() -> None:
    lines = price_segment(tariff("beijing_electricity"), D("450"))
    # 240 x 0.4883 = 117.192  -> 11719 fen
    # 160 x 0.5383 =  86.128  ->  8613 fen
    #  50 x 0.7883 =  39.415  ->  3942 fen (half-up)
    assert table(lines) == [
        ("电费 第一档", D("240"), D("0.4883"), 11719),
        ("电费 第二档", D("160"), D("0.5383"), 8613),
        ("电费 第三档", D("50"), D("0.7883"), 3942),
    ]
    assert sum(line.amount_fen for line in lines) == 24274
    assert lines[1].detail == {
        "usage": "450",
        "tier": 2,
        "tier_from": "240",
        "tier_to": "400",
        "tier_period": "monthly",
    }
    assert lines[2].detail["tier_to"] is None
    assert lines[0].label_en == "Electricity tier 1"


def test_beijing_usage_inside_tier_one_is_one_line() -> None:
    # 200 x 0.4883 = 97.66 -> 9766 fen
    assert table(price_segment(tariff("beijing_electricity"), D("200"))) == [
        ("电费 第一档", D("200"), D("0.4883"), 9766)
    ]


def test_bound_is_inclusive_exactly_240_kwh_stays_in_tier_one() -> None:
    # "<=240 kWh: 0.4883": 240 x 0.4883 = 117.192 -> 11719
    assert table(price_segment(tariff("beijing_electricity"), D("240"))) == [
        ("电费 第一档", D("240"), D("0.4883"), 11719)
    ]


def test_zero_usage_has_no_usage_lines() -> None:
    assert price_segment(tariff("beijing_electricity"), D("0")) == []


def test_zhejiang_yearly_tiers_crossed_mid_year() -> None:
    # 2,700 kWh used since January; this month 200 kWh: 2,700 -> 2,900 crosses 2,760.
    lines = price_segment(tariff("zhejiang_electricity"), D("200"), accumulated=D("2700"))
    #  60 x 0.538 = 32.28 -> 3228 fen
    # 140 x 0.588 = 82.32 -> 8232 fen
    assert table(lines) == [("电费 第一档", D("60"), D("0.538"), 3228), ("电费 第二档", D("140"), D("0.588"), 8232)]
    assert lines[1].detail["accumulated_before"] == "2700"
    assert lines[1].detail["tier_from"] == "2760" and lines[1].detail["tier_to"] == "4800"


def test_zhejiang_yearly_usage_already_in_tier_two_stays_there() -> None:
    # 3,000 before: 100 x 0.588 = 58.80 -> 5880 fen
    lines = price_segment(tariff("zhejiang_electricity"), D("100"), accumulated=D("3000"))
    assert table(lines) == [("电费 第二档", D("100"), D("0.588"), 5880)]


def test_shanghai_yearly_tiers_crossed_mid_year() -> None:
    # 3,000 before; 400 this month: 120 in tier 1 (to 3,120), 280 in tier 2.
    # 120 x 0.617 =  74.04 ->  7404 fen
    # 280 x 0.667 = 186.76 -> 18676 fen
    lines = price_segment(tariff("shanghai_electricity"), D("400"), accumulated=D("3000"))
    assert table(lines) == [("电费 第一档", D("120"), D("0.617"), 7404), ("电费 第二档", D("280"), D("0.667"), 18676)]


def test_shanghai_tiers_with_peak_and_valley() -> None:
    # 3,000 before; peak 300 + valley 100 = 400: tier 1 takes 120, tier 2 the other 280.
    # Tier 1's 120 split 300:100 -> peak 90, valley 30; tier 2 takes the rest: peak 210, valley 70.
    #  90 x 0.617 =  55.53 ->  5553
    #  30 x 0.307 =   9.21 ->   921
    # 210 x 0.677 = 142.17 -> 14217
    #  70 x 0.337 =  23.59 ->  2359
    lines = price_segment(tariff("shanghai_electricity_tou"), {PEAK: D("300"), VALLEY: D("100")}, accumulated=D("3000"))
    assert table(lines) == [
        ("电费 第一档 峰", D("90"), D("0.617"), 5553),
        ("电费 第一档 谷", D("30"), D("0.307"), 921),
        ("电费 第二档 峰", D("210"), D("0.677"), 14217),
        ("电费 第二档 谷", D("70"), D("0.337"), 2359),
    ]
    assert lines[2].detail["period"] == "peak" and lines[2].detail["tier"] == 2
    assert lines[2].label_en == "Electricity tier 2 peak"


def test_shanghai_tou_split_that_does_not_divide_evenly_uses_largest_remainder() -> None:
    # 3,100 before; peak 33.3333 + valley 66.6667 = 100: tier 1 takes 20, tier 2 80.
    # Tier 1's 20 in proportion 33.3333:66.6667 = 6.66666 : 13.33334 -> floors 6.6666 / 13.3333, the
    # 0.0001 left goes to the larger remainder (peak .6 > valley .4): peak 6.6667, valley 13.3333.
    # Tier 2 takes what is left: peak 33.3333 - 6.6667 = 26.6666, valley 66.6667 - 13.3333 = 53.3334.
    #  6.6667 x 0.617 =  4.1133539 ->  411
    # 13.3333 x 0.307 =  4.0933231 ->  409
    # 26.6666 x 0.677 = 18.0532882 -> 1805
    # 53.3334 x 0.337 = 17.9733558 -> 1797
    lines = price_segment(
        tariff("shanghai_electricity_tou"), {PEAK: D("33.3333"), VALLEY: D("66.6667")}, accumulated=D("3100")
    )
    assert table(lines) == [
        ("电费 第一档 峰", D("6.6667"), D("0.617"), 411),
        ("电费 第一档 谷", D("13.3333"), D("0.307"), 409),
        ("电费 第二档 峰", D("26.6666"), D("0.677"), 1805),
        ("电费 第二档 谷", D("53.3334"), D("0.337"), 1797),
    ]


def test_zhejiang_tou_prices_crossing_into_tier_two() -> None:
    # 2,700 before; peak 150 + valley 50: tier 1 takes 60 split 150:50 -> 45 / 15; tier 2: 105 / 35.
    #  45 x 0.568 = 25.56 -> 2556
    #  15 x 0.288 =  4.32 ->  432
    # 105 x 0.618 = 64.89 -> 6489
    #  35 x 0.338 = 11.83 -> 1183
    lines = price_segment(tariff("zhejiang_electricity_tou"), {PEAK: D("150"), VALLEY: D("50")}, accumulated=D("2700"))
    assert table(lines) == [
        ("电费 第一档 峰", D("45"), D("0.568"), 2556),
        ("电费 第一档 谷", D("15"), D("0.288"), 432),
        ("电费 第二档 峰", D("105"), D("0.618"), 6489),
        ("电费 第二档 谷", D("35"), D("0.338"), 1183),
    ]


def test_zhejiang_tou_in_tier_three() -> None:
    # 5,000 before (past 4,800): peak 80 x 0.868 = 69.44 -> 6944; valley 20 x 0.588 = 11.76 -> 1176
    lines = price_segment(tariff("zhejiang_electricity_tou"), {PEAK: D("80"), VALLEY: D("20")}, accumulated=D("5000"))
    assert table(lines) == [
        ("电费 第三档 峰", D("80"), D("0.868"), 6944),
        ("电费 第三档 谷", D("20"), D("0.588"), 1176),
    ]


def test_beijing_water_components_crossing_tier_one() -> None:
    # Household of 4 (no allowance); 170 m3 before, 15 this month: 10 in tier 1 (to 180), 5 in tier 2.
    # Tier 1 = 2.07 + 1.57 + 1.36 = 5; tier 2 = 4.07 + 1.57 + 1.36 = 7.
    # 10 x 2.07 = 20.70 -> 2070; 10 x 1.57 = 15.70 -> 1570; 10 x 1.36 = 13.60 -> 1360
    #  5 x 4.07 = 20.35 -> 2035;  5 x 1.57 =  7.85 ->  785;  5 x 1.36 =  6.80 ->  680
    # Total 8500 fen = 10 x 5 + 5 x 7 = 85 yuan.
    lines = price_segment(tariff("beijing_water"), D("15"), accumulated=D("170"), household_size=4)
    assert table(lines) == [
        ("水费 第一档 供水", D("10"), D("2.07"), 2070),
        ("水费 第一档 水资源费", D("10"), D("1.57"), 1570),
        ("水费 第一档 污水处理费", D("10"), D("1.36"), 1360),
        ("水费 第二档 供水", D("5"), D("4.07"), 2035),
        ("水费 第二档 水资源费", D("5"), D("1.57"), 785),
        ("水费 第二档 污水处理费", D("5"), D("1.36"), 680),
    ]
    assert sum(line.amount_fen for line in lines) == 8500
    assert all(line.kind == "water" for line in lines)
    assert lines[4].detail["component"] == "resource"


def test_beijing_water_large_household_gets_30_m3_more_on_every_tier_per_extra_person() -> None:
    # 7 persons: 2 beyond 5 -> +60 m3 on each bound: tier 1 to 240, tier 2 to 320.
    # 170 before + 15 stays in tier 1: 15 x 2.07 = 31.05, 15 x 1.57 = 23.55, 15 x 1.36 = 20.40 -> 7500 fen
    lines = price_segment(tariff("beijing_water"), D("15"), accumulated=D("170"), household_size=7)
    assert [line.amount_fen for line in lines] == [3105, 2355, 2040]
    assert {line.detail["tier"] for line in lines} == {1}
    assert lines[0].detail["tier_to"] == "240" and lines[0].detail["household_size"] == 7


def test_beijing_water_household_of_six_crosses_at_210() -> None:
    # 6 persons: +30 -> tier 1 to 210. 200 before + 15: 10 in tier 1 (5 yuan), 5 in tier 2 (7 yuan) = 85 yuan.
    lines = price_segment(tariff("beijing_water"), D("15"), accumulated=D("200"), household_size=6)
    assert [(line.detail["tier"], line.quantity) for line in lines] == [(1, D("10"))] * 3 + [(2, D("5"))] * 3
    assert sum(line.amount_fen for line in lines) == 8500


def test_beijing_water_household_of_five_gets_no_allowance() -> None:
    lines = price_segment(tariff("beijing_water"), D("15"), accumulated=D("170"), household_size=5)
    assert lines[0].detail["tier_to"] == "180"
    assert sum(line.amount_fen for line in lines) == 8500


def test_four_period_time_of_use() -> None:
    # sharp 12.5  x 1.0354 = 12.9425   -> 1294
    # peak  40.25 x 0.8645 = 34.796125 -> 3480
    # flat  20    x 0.5764 = 11.528    -> 1153
    # valley 30.1 x 0.2883 =  8.67783  ->  868
    usage = {VALLEY: D("30.1"), FLAT: D("20"), PEAK: D("40.25"), SHARP: D("12.5")}
    lines = price_segment(tariff("four_period_tou"), usage)
    assert table(lines) == [
        ("电费 尖", D("12.5"), D("1.0354"), 1294),
        ("电费 峰", D("40.25"), D("0.8645"), 3480),
        ("电费 平", D("20"), D("0.5764"), 1153),
        ("电费 谷", D("30.1"), D("0.2883"), 868),
    ]
    assert "tier" not in lines[0].detail


def test_fixed_monthly_charge() -> None:
    # 100 x 0.55 = 55.00 -> 5500 fen, plus the basic charge 5.00 yuan -> 500 fen.
    lines = price_segment(tariff("flat_with_fixed_charge"), D("100"))
    assert table(lines) == [("电费", D("100"), D("0.55"), 5500), ("基本费", None, D("5.00"), 500)]
    assert lines[1].kind == "fixed" and lines[1].label_en == "basic charge"


def test_fixed_charge_is_prorated_by_days_and_still_billed_without_usage() -> None:
    # 10 of 31 days: 500 x 10 / 31 = 161.29 -> 161 fen
    lines = price_segment(tariff("flat_with_fixed_charge"), D("0"), proration=Proration(10, 31))
    assert table(lines) == [("基本费", None, D("5.00"), 161)]
    assert lines[0].detail == {"code": "basic", "days": 10, "month_days": 31}


def test_monthly_thresholds_are_prorated_by_days() -> None:
    # 10 of 31 days: tier 1 to 240 x 10/31 = 77.41935... -> 77.4194; tier 2 to 400 x 10/31 = 129.0323.
    # 100 kWh: 77.4194 x 0.4883 = 37.80389302 -> 3780; 22.5806 x 0.5383 = 12.15513698 -> 1216
    lines = price_segment(tariff("beijing_electricity"), D("100"), proration=Proration(10, 31))
    assert table(lines) == [
        ("电费 第一档", D("77.4194"), D("0.4883"), 3780),
        ("电费 第二档", D("22.5806"), D("0.5383"), 1216),
    ]
    assert lines[1].detail["tier_to"] == "129.0323" and lines[1].detail["days"] == 10


def test_yearly_thresholds_are_not_prorated() -> None:
    lines = price_segment(tariff("shanghai_electricity"), D("400"), accumulated=D("3000"), proration=Proration(10, 31))
    assert [line.quantity for line in lines] == [D("120"), D("280")]


def test_guangzhou_summer_thresholds() -> None:
    # July (summer): tier 1 to 260. 300 kWh: 260 x 0.5902 = 153.452 -> 15345; 40 x 0.6402 = 25.608 -> 2561
    lines = price_segment(tariff("guangzhou_seasonal"), D("300"), month=7)
    assert table(lines) == [("电费 第一档", D("260"), D("0.5902"), 15345), ("电费 第二档", D("40"), D("0.6402"), 2561)]


def test_guangzhou_rest_of_year_thresholds() -> None:
    # January: tier 1 to 200. 300 kWh: 200 x 0.5902 = 118.04 -> 11804; 100 x 0.6402 = 64.02 -> 6402
    lines = price_segment(tariff("guangzhou_seasonal"), D("300"), month=1)
    assert table(lines) == [("电费 第一档", D("200"), D("0.5902"), 11804), ("电费 第二档", D("100"), D("0.6402"), 6402)]


def test_seasonal_tariff_without_month_is_refused() -> None:
    with pytest.raises(ValueError, match=r"seasonal thresholds: pass the month \(1-12\)"):
        price_segment(tariff("guangzhou_seasonal"), D("300"))


def test_usage_shape_must_match_the_tariff() -> None:
    with pytest.raises(ValueError, match="has time of use: pass the usage per period"):
        price_segment(tariff("shanghai_electricity_tou"), D("100"))
    with pytest.raises(ValueError, match="has no time of use: pass the usage as one Decimal"):
        price_segment(tariff("beijing_electricity"), {PEAK: D("100")})
    with pytest.raises(ValueError, match="usage for sharp: the tariff's periods are peak, valley"):
        price_segment(tariff("shanghai_electricity_tou"), {PEAK: D("1"), SHARP: D("1")})


def test_usage_finer_than_a_ten_thousandth_or_negative_is_refused() -> None:
    with pytest.raises(ValueError, match=r"usage 1.23456 has more than 4 decimal places"):
        price_segment(tariff("beijing_electricity"), D("1.23456"))
    with pytest.raises(ValueError, match="usage must not be negative"):
        price_segment(tariff("beijing_electricity"), D("-1"))


def test_accumulated_usage_on_a_monthly_tariff_is_refused() -> None:
    with pytest.raises(ValueError, match="accumulated usage applies to yearly tiers only"):
        price_segment(tariff("beijing_electricity"), D("10"), accumulated=D("5"))
