"""A tariff typed wrong is refused with a message that names the field and says what to fix."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest
from pydantic import ValidationError

from cloud.billing.engine import dump_tariff, parse_tariff
from tests.cloud.billing.engine.engine_tariffs import TARIFFS, tariff


def shanghai_tou(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((TARIFFS / "shanghai_electricity_tou.json").read_text(encoding="utf-8"))
    return document | changes


def refused(document: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_tariff(document)
    return str(caught.value)


def test_overlapping_tou_windows() -> None:
    message = refused(
        shanghai_tou(
            tou=[
                {"period": "peak", "windows": [{"start": "06:00", "end": "22:00"}]},
                {"period": "valley", "windows": [{"start": "21:00", "end": "06:00"}]},
            ]
        )
    )
    assert (
        "tou: windows overlap: peak 06:00-22:00 and valley 21:00-06:00 both cover 21:00-21:30; "
        "each time of day must belong to exactly one period" in message
    )


def test_tou_windows_that_leave_part_of_the_day_uncovered() -> None:
    message = refused(
        shanghai_tou(
            tou=[
                {"period": "peak", "windows": [{"start": "06:00", "end": "12:00"}, {"start": "13:00", "end": "21:30"}]},
                {"period": "valley", "windows": [{"start": "22:00", "end": "06:00"}]},
            ]
        )
    )
    assert (
        "tou: 12:00-13:00, 21:30-22:00 not covered by any period; the windows must cover the whole day (24 hours)"
        in message
    )


def test_tou_window_off_the_half_hour_grid() -> None:
    message = refused(
        shanghai_tou(
            tou=[
                {"period": "peak", "windows": [{"start": "06:15", "end": "22:00"}]},
                {"period": "valley", "windows": [{"start": "22:00", "end": "06:15"}]},
            ]
        )
    )
    assert (
        "tou.0.windows.0" in message
        and '"06:15" must be between 00:00 and 23:30 and on the hour or half hour' in message
    )


def test_tier_thresholds_not_increasing() -> None:
    document = json.loads((TARIFFS / "beijing_electricity.json").read_text(encoding="utf-8"))
    document["tiers"][1]["up_to"] = 240
    message = refused(document)
    assert (
        "tiers: tier thresholds must increase: tier 2 ends at 240 kWh but tier 1 already ends at 240 kWh; "
        "give each tier a larger upper bound than the one below" in message
    )


def test_only_the_last_tier_is_open_ended() -> None:
    document = json.loads((TARIFFS / "beijing_electricity.json").read_text(encoding="utf-8"))
    del document["tiers"][1]["up_to"]
    assert "tiers[1].up_to is missing: only the last tier may be open-ended" in refused(document)
    document["tiers"][1]["up_to"] = 400
    document["tiers"][2]["up_to"] = 1000
    assert "tiers[2].up_to: the last tier has no upper bound; remove up_to (or add a tier above 1000 kWh)" in refused(
        document
    )


def test_missing_price_for_a_tou_period_in_a_tier() -> None:
    document = shanghai_tou()
    del document["tiers"][1]["tou"]["valley"]
    assert "tiers[1].tou: no price for valley (谷) in tier 2; add tiers[1].tou.valley" in refused(document)


def test_price_for_a_period_the_tariff_does_not_define() -> None:
    document = shanghai_tou()
    document["tiers"][0]["tou"]["sharp"] = "1.1"
    assert "tiers[0].tou.sharp: the tariff does not define sharp; remove it or declare it in tou" in refused(document)


def test_tier_priced_the_wrong_way() -> None:
    document = shanghai_tou()
    document["tiers"][2] = {"price": "0.977"}
    assert "tiers[2]: remove price; this tariff needs a price per time-of-use period in tou" in refused(document)
    plain = json.loads((TARIFFS / "beijing_electricity.json").read_text(encoding="utf-8"))
    del plain["tiers"][0]["price"]
    assert "tiers[0]: no price; this tariff needs a single price in price" in refused(plain)


def test_missing_component_price() -> None:
    document = json.loads((TARIFFS / "beijing_water.json").read_text(encoding="utf-8"))
    del document["tiers"][2]["components"]["sewage"]
    assert "tiers[2].components: no price for sewage (污水处理费) in tier 3; add tiers[2].components.sewage" in refused(
        document
    )


def test_negative_price() -> None:
    document = json.loads((TARIFFS / "beijing_electricity.json").read_text(encoding="utf-8"))
    document["tiers"][0]["price"] = "-0.4883"
    message = refused(document)
    assert "tiers.0.price" in message
    assert "a price must not be negative (got -0.4883); use 0 for a free tier or period" in message


def test_price_given_as_a_float_is_refused() -> None:
    document = json.loads((TARIFFS / "beijing_electricity.json").read_text(encoding="utf-8"))
    document["tiers"][0]["price"] = 0.4883
    assert 'write 0.4883 as a string ("0.4883"): floats lose exact decimal values' in refused(document)


def test_price_with_too_many_decimals() -> None:
    document = json.loads((TARIFFS / "beijing_electricity.json").read_text(encoding="utf-8"))
    document["tiers"][0]["price"] = "0.4883001"
    assert "price 0.4883001 has more than 6 decimal places" in refused(document)


def test_unknown_field_is_refused_not_ignored() -> None:
    message = refused(shanghai_tou(tier_periods="yearly"))
    assert "tier_periods" in message and "Extra inputs are not permitted" in message


def test_tou_and_components_together_are_refused() -> None:
    document = shanghai_tou(components=[{"code": "supply", "label": "供电", "label_en": "supply"}])
    assert "components: a tariff cannot have both time of use and components; choose one" in refused(document)


def test_seasons_need_monthly_tiers_and_one_bound_per_tier_but_the_last() -> None:
    document = json.loads((TARIFFS / "guangzhou_seasonal.json").read_text(encoding="utf-8"))
    assert "seasonal thresholds apply to monthly tiers only" in refused(document | {"tier_period": "yearly"})
    document["seasons"][0]["up_to"] = [260]
    assert "seasons[0].up_to: give 2 bounds (one per tier except the last), got 1" in refused(document)


def test_a_stored_document_reads_back_identical() -> None:
    original = tariff("beijing_water")
    stored = json.loads(json.dumps(dump_tariff(original)))
    assert stored["tiers"][0]["components"]["supply"] == "2.07"
    again = parse_tariff(stored)
    assert again == original
    assert again.tiers[0].components == {"supply": D("2.07"), "resource": D("1.57"), "sewage": D("1.36")}
