"""Shipped device profiles: each loads, and its hand-computed vectors decode and re-encode byte-exact.

The vectors' register words are derived with struct in the YAML comments, independently of the codec, so a
codec or profile mistake shows up here as a wrong value rather than agreeing with itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from protocols.modbus.datatypes import REGISTER_COUNT, DataType, WordOrder
from protocols.profiles import (
    PROFILE_DIR,
    Point,
    Profile,
    ProfileError,
    available_profiles,
    load_profile,
    load_vectors,
    parse_profile,
)

PROFILES = available_profiles()
ERROR_CASES_DIR = Path(__file__).parent / "profile_errors"
ERROR_CASES = sorted(p.name for p in ERROR_CASES_DIR.iterdir() if p.is_dir())
REQUIRED_KEYS = {"point", "registers", "expected"}
VECTOR_KEYS = REQUIRED_KEYS | {"variant", "address", "function"}
MIN_VECTORS = 4


def _codec(point: Point) -> tuple[DataType, WordOrder | None]:
    """What a vector must exercise: the data type, and the word order where it changes the bytes."""
    return point.data_type, point.word_order if REGISTER_COUNT[point.data_type] > 1 else None


def _all_variants(profile_id: str) -> list[Profile]:
    base = load_profile(profile_id)
    return [base, *(load_profile(profile_id, name) for name in base.variants)]


def _shipped_vectors() -> list[Any]:
    params = []
    for profile_id in PROFILES:
        try:
            vectors = load_vectors(profile_id)
        except ProfileError:
            continue  # test_profile_has_vectors_covering_its_codecs reports the missing file
        params += [pytest.param(profile_id, v, id=f"{profile_id}-{i}-{v.get('point')}") for i, v in enumerate(vectors)]
    return params


def test_all_profiles_are_shipped() -> None:
    expected = {
        "acrel_adw300",
        "chint_ddsu666",
        "chint_dtsu666",
        "eastron_sdm120",
        "eastron_sdm630",
        "pump_station",
        "switchroom_env",
        "tuf2000",
        "water_tank",
        "xintai_water",
    }
    assert expected <= set(PROFILES)


@pytest.mark.parametrize("profile_id", PROFILES)
def test_profile_loads_with_every_variant(profile_id: str) -> None:
    profiles = _all_variants(profile_id)
    assert profiles[0].id == profile_id
    assert all(p.variants == {} for p in profiles[1:])
    text = (PROFILE_DIR / profile_id / "profile.yaml").read_text(encoding="utf-8")
    assert text.startswith("#"), "a profile starts with a comment naming its source and quirks"


@pytest.mark.parametrize("profile_id", PROFILES)
def test_profile_has_vectors_covering_its_codecs(profile_id: str) -> None:
    vectors = load_vectors(profile_id)
    assert len(vectors) >= MIN_VECTORS, f"{profile_id} ships {len(vectors)} vectors, want at least {MIN_VECTORS}"
    needed = {_codec(p) for profile in _all_variants(profile_id) for p in profile.points}
    covered = {_codec(load_profile(profile_id, v.get("variant")).point(v["point"])) for v in vectors}
    assert needed <= covered, f"no vector for {sorted(map(str, needed - covered))}"
    untested = set(load_profile(profile_id).variants) - {v.get("variant") for v in vectors}
    assert not untested, f"no vector for variants {sorted(untested)}"


@pytest.mark.parametrize(("profile_id", "vector"), _shipped_vectors())
def test_vector_decodes_and_round_trips(profile_id: str, vector: dict[str, Any]) -> None:
    assert REQUIRED_KEYS <= set(vector) <= VECTOR_KEYS, f"vector keys {sorted(vector)}"
    point = load_profile(profile_id, vector.get("variant")).point(vector["point"])
    if "address" in vector:
        assert point.address == vector["address"]
    if "function" in vector:
        assert point.function == vector["function"]
    value = point.decode(vector["registers"])
    assert value == pytest.approx(vector["expected"], rel=1e-6)
    assert point.encode(value) == vector["registers"]


@pytest.mark.parametrize("profile_id", PROFILES)
def test_points_stay_clear_of_unreadable_ranges(profile_id: str) -> None:
    for profile in _all_variants(profile_id):
        for lo, hi in profile.workarounds.unreadable:
            assert lo <= hi, f"unreadable range {lo}..{hi} is reversed"
            clashes = [p.name for p in profile.points if p.address <= hi and lo < p.end]
            assert not clashes, f"points {clashes} overlap unreadable range {lo}..{hi}"
        for p in profile.points:
            assert p.valid_range is None or p.valid_range[0] < p.valid_range[1], f"{p.name}: empty valid_range"


def test_some_profile_declares_unreadable_gaps() -> None:
    assert any(load_profile(pid).workarounds.unreadable for pid in PROFILES)


def test_variant_rewrites_address_and_function() -> None:
    base = load_profile("chint_dtsu666")
    openems = load_profile("chint_dtsu666", "openems")
    assert (base.point("energy_import").address, base.point("energy_import").function) == (0x401E, 3)
    assert (openems.point("energy_import").address, openems.point("energy_import").function) == (0x4000, 4)
    assert {p.function for p in openems.points} == {4}
    assert openems.point("voltage_a") == base.point("voltage_a").model_copy(update={"function": 4})


def test_variant_point_override_wins_over_variant_function() -> None:
    tasmota = load_profile("chint_ddsu666", "tasmota")
    assert tasmota.point("voltage").function == 4
    assert tasmota.point("device_address").function == 3


def test_variant_scale_override_leaves_other_points() -> None:
    base = load_profile("tuf2000")
    x10 = load_profile("tuf2000", "totaliser_x10")
    assert x10.point("forward_total").scale == 10
    assert x10.point("flow_rate") == base.point("flow_rate")


def test_variant_function_leaves_bit_points_alone() -> None:
    profile = parse_profile(
        {
            "id": "mixed",
            "name": "Mixed",
            "version": 1,
            "category": "equipment",
            "points": [
                {"name": "level", "quantity": "level_m", "kind": "gauge", "address": 0, "data_type": "u16"},
                {"name": "running", "quantity": "run_state", "kind": "state", "address": 0, "function": 2,
                 "data_type": "bit"},
            ],
            "variants": {"input": {"description": "input registers", "function": 4}},
        },
        "inline",
    ).with_variant("input")
    assert profile.point("level").function == 4
    assert profile.point("running").function == 2


def test_unknown_variant_names_the_choices() -> None:
    choices = r"chint_dtsu666 has no variant 'nope'; choose one of \['openems', 'rebranded_101e'\]"
    with pytest.raises(ProfileError, match=choices):
        load_profile("chint_dtsu666", "nope")
    with pytest.raises(ProfileError, match="water_tank has no variant 'nope'; choose one of none"):
        load_profile("water_tank", "nope")


def test_unknown_profile_lists_shipped_ones() -> None:
    with pytest.raises(ProfileError, match="unknown profile 'sdm999'; shipped profiles: acrel_adw300, "):
        load_profile("sdm999")


def test_water_tank_broken_loop_is_out_of_range() -> None:
    level = load_profile("water_tank").point("level")
    assert level.out_of_range(level.decode([0]))
    assert not level.out_of_range(level.decode([3900]))
    assert level.out_of_range(level.decode([21000]))


def test_error_cases_exist() -> None:
    assert len(ERROR_CASES) >= 7


@pytest.mark.parametrize("case", ERROR_CASES)
def test_profile_error_case(case: str) -> None:
    folder = ERROR_CASES_DIR / case
    expected = (folder / "expected_error.txt").read_text(encoding="utf-8").strip()
    with pytest.raises(ProfileError) as raised:
        load_profile(str(folder / "profile.yaml"))
    assert expected in str(raised.value)
    assert str(folder / "profile.yaml") in str(raised.value), "the message names the file"
