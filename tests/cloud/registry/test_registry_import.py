"""Registry import: the example file, idempotence, per-row errors, all-or-nothing, CSV rosters, scale."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from cloud.audit.models import AuditEntry
from cloud.audit.services import Actor
from cloud.db import session_factory
from cloud.registry.demo import demo_registry
from cloud.registry.importer import RegistryImportError, import_registry, load_file, parse_data
from cloud.registry.models import Building, Device, Meter, PointMapping, Site, Unit
from cloud.registry.schemas import ImportReport
from firmware_sims.site import DEMO_SITE, plan_site
from firmware_sims.site_config import load_site

EXAMPLE = Path(__file__).parent / "demo_registry.yaml"
ACTOR = Actor("cli:test")


def run(engine: Engine, data: Any) -> ImportReport:
    with session_factory(engine).begin() as session:
        return import_registry(session, parse_data(data), ACTOR)


def count(engine: Engine, model: type[Any]) -> int:
    with session_factory(engine)() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def errors_of(engine: Engine, data: Any) -> list[str]:
    with pytest.raises(RegistryImportError) as caught:
        run(engine, data)
    return caught.value.errors


def small_site(**sections: Any) -> dict[str, Any]:
    site = {
        "code": "s1", "name": "一号小区",
        "buildings": [{"code": "B1", "name": "1号楼"}],
        "units": [{"code": "1-0101", "building": "B1", "floor": 1, "floor_area_m2": "90.00",
                   "owner_name": "张三", "owner_phone": "13800000001", "household_size": 3}],
        "meters": [{"code": "EM-MAIN", "kind": "electricity", "role": "master"},
                   {"code": "EM-0101", "kind": "electricity", "role": "sub", "unit": "1-0101", "parent": "EM-MAIN"}],
        "edges": [{"code": "e1", "devices": [{"name": "m0101", "profile": "chint_ddsu666", "meter": "EM-0101"}]}],
    }  # fmt: skip
    site.update(sections)
    return {"sites": [site]}


def test_the_example_file_is_the_demo_generator_output() -> None:
    assert load_file(EXAMPLE).model_dump() == parse_data(demo_registry()).model_dump()


def test_demo_registry_registers_every_simulated_device(engine: Engine) -> None:
    report = run(engine, demo_registry())
    assert report.summary() == (
        "site: 1 new, 0 updated, 0 unchanged; building: 2 new, 0 updated, 0 unchanged; "
        "unit: 48 new, 0 updated, 0 unchanged; equipment: 3 new, 0 updated, 0 unchanged; "
        "meter: 100 new, 0 updated, 0 unchanged; edge: 1 new, 0 updated, 0 unchanged; "
        "device: 101 new, 0 updated, 0 unchanged"
    )
    simulated = {d.name for bus in plan_site(load_site(DEMO_SITE)) for d in bus.devices}
    with session_factory(engine)() as session:
        assert set(session.scalars(select(Device.name))) == simulated
        unmapped = select(Device.name).where(~Device.id.in_(select(PointMapping.device_id)))
        assert list(session.scalars(unmapped)) == []
        u03 = session.scalars(select(Meter).where(Meter.code == "EM-B1-U03")).one()
        assert session.get_one(Unit, u03.unit_id).code == "1-0103"
        assert session.get_one(Meter, u03.parent_id).code == "EM-B1-MAIN"
        public = session.scalars(select(Meter).where(Meter.code == "EM-B2-PUBLIC")).one()
        assert [u.code for u in public.serves][:3] == ["2-0101", "2-0102", "2-0103"] and len(public.serves) == 24
        pump = session.scalars(select(PointMapping).join(Device).where(Device.name == "pump-station")).all()
        assert {p.point for p in pump} >= {"outlet_pressure", "running"} and all(p.equipment_id for p in pump)


def test_importing_again_changes_nothing_and_audits_nothing(engine: Engine) -> None:
    first = run(engine, demo_registry())
    rows = {m: count(engine, m) for m in (Site, Building, Unit, Meter, Device, PointMapping)}
    audited = count(engine, AuditEntry)
    again = run(engine, demo_registry())
    assert first.audit_entries == audited == 256
    assert again.audit_entries == 0
    assert all(c.created == c.updated == 0 for c in again.counts.values())
    assert again.counts["unit"].unchanged == 48 and again.counts["device"].unchanged == 101
    assert {m: count(engine, m) for m in rows} == rows
    assert count(engine, AuditEntry) == audited


def test_a_changed_row_is_updated_in_place_and_audited_with_before_and_after(engine: Engine) -> None:
    run(engine, demo_registry())
    changed = demo_registry()
    site = changed["sites"][0]
    site["units"][2]["owner_phone"] = "139 0000 1111"
    site["units"][2]["floor_area_m2"] = "97.5"
    site["meters"][1]["serves"] = site["meters"][1]["serves"][:2]  # EM-B1-PUBLIC now serves two units
    site["edges"][0]["devices"][-1]["points"] = [{"point": "temperature"}]  # switchroom: temperature only
    report = run(engine, changed)
    assert {k: (c.created, c.updated) for k, c in report.counts.items() if c.created or c.updated} == {
        "unit": (0, 1), "meter": (0, 1), "device": (0, 1)
    }  # fmt: skip
    assert count(engine, Unit) == 48
    with session_factory(engine)() as session:
        entries = {e.entity: e for e in session.scalars(select(AuditEntry).where(AuditEntry.action == "update"))}
        unit, meter, device = entries["unit"], entries["meter"], entries["device"]
        assert unit.before is not None and unit.after is not None and meter.after and device.after
        assert (unit.actor, unit.label) == ("cli:test", "demo-site/1-0103")
        assert {k: (unit.before[k], unit.after[k]) for k in unit.after if unit.before[k] != unit.after[k]} == {
            "owner_phone": ("13800010003", "13900001111"), "floor_area_m2": ("96.80", "97.50")
        }  # fmt: skip
        assert meter.after["serves"] == ["1-0101", "1-0102"]
        assert device.after["points"] == {"temperature": {"quantity": "temperature_c", "equipment": "SWR-ENV-01"}}
        switchroom = select(PointMapping.point).join(Device).where(Device.name == "switchroom-env")
        assert list(session.scalars(switchroom)) == ["temperature"]


def test_every_bad_row_is_reported_by_row_and_field(engine: Engine) -> None:
    data = small_site(
        units=[
            {"code": "1-0101", "building": "B1", "floor": 1, "floor_area_m2": "90", "owner_phone": "12345"},
            {"code": "1-0102", "building": "B9", "floor": 1, "floor_area_m2": "-3"},
        ],
    )
    assert errors_of(engine, data) == [
        "sites[0].units[0] (unit 1-0101): owner_phone: '12345' is not a mainland mobile number (11 digits starting with 1)",
        "sites[0].units[1] (unit 1-0102): floor_area_m2: floor area must be positive, got -3",
    ]
    data = small_site(
        buildings=[{"code": "B1", "name": "1号楼"}, {"code": "B1", "name": "又一个"}],
        units=[{"code": "1-0102", "building": "B9", "floor": 1, "floor_area_m2": "80"}],
        meters=[
            {"code": "EM-MAIN", "kind": "electricity", "role": "master"},
            {"code": "EM-A", "kind": "electricity", "role": "sub"},
            {"code": "EM-B", "kind": "electricity", "role": "common", "unit": "1-0102", "serves": ["9-9999"]},
            {"code": "WM-A", "kind": "water", "role": "sub", "unit": "1-0102", "parent": "EM-MAIN"},
            {"code": "EM-L1", "kind": "electricity", "role": "master", "parent": "EM-L2"},
            {"code": "EM-L2", "kind": "electricity", "role": "master", "parent": "EM-L1"},
        ],
        equipment=[{"code": "PUMP", "name": "泵", "type": "pump"}],
        edges=[{"code": "e1", "devices": [
            {"name": "d1", "profile": "no_such_profile", "meter": "EM-A"},
            {"name": "d2", "profile": "chint_ddsu666", "meter": "EM-NONE"},
            {"name": "d3", "profile": "chint_ddsu666"},
            {"name": "d4", "profile": "chint_ddsu666", "meter": "EM-A", "points": [{"point": "watts"}]},
            {"name": "d4", "profile": "chint_ddsu666", "equipment": "PUMP"},
        ]}],
    )  # fmt: skip
    errors = errors_of(engine, data)
    assert errors[:-1] == [
        "sites[0].buildings[1] (building B1): code: duplicate building B1 (first at sites[0].buildings[0] (building B1))",
        "sites[0].edges[0].devices[4] (device d4): name: duplicate device d4 (first at sites[0].edges[0].devices[3] (device d4))",
        "sites[0].units[0] (unit 1-0102): building: no building B9 in site s1",
        "sites[0].meters[1] (meter EM-A): unit: a sub meter belongs to a unit: give its unit code",
        "sites[0].meters[2] (meter EM-B): unit: only sub meters belong to a unit; a common meter has none (a common meter lists the units it serves under serves)",
        "sites[0].meters[2] (meter EM-B): serves: no unit 9-9999 in site s1",
        "sites[0].meters[3] (meter WM-A): parent: parent EM-MAIN is an electricity meter; the parent of a water meter must be a water meter",
        "sites[0].meters[4] (meter EM-L1): parent: meters form a loop: EM-L1 -> EM-L2 -> EM-L1",
        "sites[0].meters[5] (meter EM-L2): parent: meters form a loop: EM-L2 -> EM-L1 -> EM-L2",
        "sites[0].edges[0].devices[0] (device d1): profile: unknown profile no_such_profile (known: "
        + errors[9].split("(known: ")[1],
        "sites[0].edges[0].devices[1] (device d2): meter: no meter EM-NONE in site s1",
        "sites[0].edges[0].devices[2] (device d3): meter: give the meter or the equipment the device feeds (or list its points)",
    ]
    assert errors[-1].startswith(
        "sites[0].edges[0].devices[3].points[0] (point watts): point: profile chint_ddsu666 has no point watts (it has: voltage, current,"
    )
    assert count(engine, Site) == count(engine, AuditEntry) == 0


def test_a_parent_stays_a_master_while_stored_meters_hang_below_it(engine: Engine) -> None:
    run(engine, small_site())
    demoted = small_site(meters=[{"code": "EM-MAIN", "kind": "electricity", "role": "common"}])
    assert errors_of(engine, demoted) == [
        "sites[0].meters[0] (meter EM-MAIN): role: meter EM-0101 has EM-MAIN as its parent, so EM-MAIN must stay a master meter"
    ]


def test_one_bad_row_and_nothing_is_written(engine: Engine) -> None:
    run(engine, small_site())
    before = {m: count(engine, m) for m in (Site, Unit, Meter, Device, PointMapping, AuditEntry)}
    data = demo_registry()
    data["sites"].append(small_site()["sites"][0])
    data["sites"][1]["units"][0]["owner_name"] = "李四"  # a valid change to a stored site...
    data["sites"][0]["units"][47]["household_size"] = -1  # ...and one bad row among hundreds of good ones
    assert errors_of(engine, data) == [
        "sites[0].units[47] (unit 2-0604): household_size: Input should be greater than or equal to 0"
    ]
    assert {m: count(engine, m) for m in before} == before
    with session_factory(engine)() as session:
        assert session.scalars(select(Unit.owner_name)).one() == "张三"


def test_a_csv_roster_imports_units_and_its_errors_name_the_line(engine: Engine, tmp_path: Path) -> None:
    roster = tmp_path / "roster.csv"
    header = "site,site_name,building,building_name,unit,floor,floor_area_m2,owner_name,owner_phone,household_size\n"
    roster.write_text(
        header
        + "s1,一号小区,B1,1号楼,1-0101,1,89.5,张三,+86 138 0000 0001,3\n"
        + "s1,一号小区,B1,1号楼,1-0102,1,120.35,,,\n"
        + "s1,一号小区,B2,2号楼,2-0101,1,99,王五,13800000003,2\n",
        encoding="utf-8",
    )
    with session_factory(engine).begin() as session:
        report = import_registry(session, load_file(roster), ACTOR)
    assert report.counts["unit"].created == 3 and report.counts["building"].created == 2
    with session_factory(engine)() as session:
        first = session.scalars(select(Unit).where(Unit.code == "1-0101")).one()
        assert (first.owner_phone, str(first.floor_area_m2)) == ("13800000001", "89.50")
        vacant = session.scalars(select(Unit).where(Unit.code == "1-0102")).one()
        assert (vacant.owner_name, vacant.owner_phone, vacant.household_size) == (None, None, None)

    roster.write_text(
        header
        + "s1,一号小区,B1,1号楼,1-0101,1,89.5,张三,1380000,3\n"
        + "s1,Another name,B1,1号楼,1-0102,one,120.35,,,\n",
        encoding="utf-8",
    )
    with pytest.raises(RegistryImportError) as caught:
        load_file(roster)
    assert caught.value.errors == [
        "line 2 (unit 1-0101): owner_phone: '1380000' is not a mainland mobile number (11 digits starting with 1)",
        "line 3 (unit 1-0102): site_name: 'Another name' differs from '一号小区' on line 2 for the same site s1",
        "line 3 (unit 1-0102): floor: Input should be a valid integer, unable to parse string as an integer",
    ]
    roster.write_text("site,unit\ns1,1-0101\n", encoding="utf-8")
    with pytest.raises(RegistryImportError, match="line 1 \\(header\\): missing columns: site_name, building"):
        load_file(roster)


def big_site(units: int) -> dict[str, Any]:
    """A site of ``units`` flats in buildings of 250, each with an electricity and a water meter on an edge."""
    site = copy.deepcopy(small_site()["sites"][0]) | {"code": "big", "buildings": [], "units": [], "meters": []}
    devices: list[dict[str, Any]] = []
    for b in range(1, units // 250 + 1):
        site["buildings"].append({"code": f"B{b}", "name": f"{b}号楼"})
        site["meters"].append({"code": f"EM-B{b}", "kind": "electricity", "role": "master"})
        for u in range(250):
            code = f"{b}-{u // 4 + 1:02d}{u % 4 + 1:02d}"
            site["units"].append({"code": code, "building": f"B{b}", "floor": u // 4 + 1, "floor_area_m2": "88.20",
                                  "owner_name": "王伟", "owner_phone": f"139{b:04d}{u:04d}", "household_size": 3})  # fmt: skip
            site["meters"] += [
                {"code": f"EM-{code}", "kind": "electricity", "role": "sub", "unit": code, "parent": f"EM-B{b}"},
                {"code": f"WM-{code}", "kind": "water", "role": "sub", "unit": code},
            ]
            devices += [{"name": f"e-{code}", "profile": "chint_ddsu666", "meter": f"EM-{code}"},
                        {"name": f"w-{code}", "profile": "xintai_water", "meter": f"WM-{code}"}]  # fmt: skip
    site["edges"] = [{"code": "e1", "devices": devices}]
    return {"sites": [site]}


def test_a_site_of_5000_units_imports_in_seconds(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    """Timing printed, not asserted: 5,000 units, 10,020 meters, 10,000 devices, ~65,000 point mappings."""
    data = big_site(5000)
    started = time.perf_counter()
    first = run(engine, data)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    again = run(engine, data)
    again_s = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n[{engine.dialect.name}] 5,000-unit site: first import {first_s:.1f} s ({first.summary()}); "
              f"re-import {again_s:.1f} s (no changes)")  # fmt: skip
    assert first.counts["unit"].created == 5000 and first.counts["device"].created == 10000
    assert again.audit_entries == 0 and count(engine, Unit) == 5000
