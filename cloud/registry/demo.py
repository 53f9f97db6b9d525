"""The registry of the simulated demo site, built from its site file so the two cannot drift apart.

``make demo`` seeds the hub with it: every device the simulator runs is registered, with its points
mapped to the meter or equipment it measures, so readings land on units from the first minute.
tests/cloud/registry/demo_registry.yaml is this function's output, kept as the documented example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firmware_sims.site import DEMO_SITE, plan_site
from firmware_sims.site_config import load_site

UNITS_PER_FLOOR = 4
"""One lift lobby, four doors (一梯四户): unit 3 of building 1 is 1-0103, unit 5 is 1-0201."""
EQUIPMENT = {
    "pump_station": ("pump", "生活水泵房"),
    "water_tank": ("tank", "生活水箱"),
    "switchroom_env": ("switchroom", "配电房环境"),
}
AREAS = ("89.50", "120.35", "96.80", "143.20")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明")


def unit_code(building: int, unit: int) -> str:
    floor, door = divmod(unit - 1, UNITS_PER_FLOOR)
    return f"{building}-{floor + 1:02d}{door + 1:02d}"


def demo_registry(site_file: str | Path = DEMO_SITE) -> dict[str, Any]:
    """The registry (import-file shape) for a simulated site: buildings of units with a sub meter per
    device, a master meter and a common meter per building, and the pump room as equipment."""
    spec = load_site(site_file)
    buildings: list[dict[str, Any]] = []
    units: list[dict[str, Any]] = []
    meters: list[dict[str, Any]] = []
    equipment: list[dict[str, Any]] = []
    if spec.buildings is not None:
        for n in range(1, spec.buildings.count + 1):
            buildings.append({"code": f"B{n}", "name": f"{n}号楼"})
            codes = [unit_code(n, u) for u in range(1, spec.buildings.units + 1)]
            for u, code in enumerate(codes, start=1):
                units.append(
                    {
                        "code": code,
                        "building": f"B{n}",
                        "floor": (u - 1) // UNITS_PER_FLOOR + 1,
                        "floor_area_m2": AREAS[(u - 1) % len(AREAS)],
                        "owner_name": SURNAMES[(n * 7 + u) % len(SURNAMES)] + GIVEN[(n * 3 + u * 5) % len(GIVEN)],
                        "owner_phone": f"138{n:04d}{u:04d}",
                        "household_size": 1 + (n + u) % 5,
                    }
                )
            if spec.buildings.master_meter is not None:
                meters.append({"code": f"EM-B{n}-MAIN", "kind": "electricity", "role": "master"})
                meters.append(
                    {
                        "code": f"EM-B{n}-PUBLIC",
                        "kind": "electricity",
                        "role": "common",
                        "parent": f"EM-B{n}-MAIN",
                        "serves": codes,
                    }
                )
    has_master = spec.buildings is not None and spec.buildings.master_meter is not None
    edge_devices = []
    for bus in plan_site(spec):
        for d in bus.devices:
            entry: dict[str, Any] = {"name": d.name, "profile": d.meter.profile}
            if d.meter.profile in EQUIPMENT:
                kind, name = EQUIPMENT[d.meter.profile]
                equipment.append({"code": d.asset, "name": name, "type": kind})
                entry["equipment"] = d.asset
            elif d.name.endswith("-master"):
                entry["meter"] = d.asset
            else:  # b<n>-u<uu>-elec / -water
                building, unit, kind = d.name.split("-")
                code = unit_code(int(building[1:]), int(unit[1:]))
                meters.append(
                    {
                        "code": d.asset,
                        "kind": "electricity" if kind == "elec" else "water",
                        "role": "sub",
                        "unit": code,
                        **({"parent": f"EM-{building.upper()}-MAIN"} if kind == "elec" and has_master else {}),
                    }
                )
                entry["meter"] = d.asset
            edge_devices.append(entry)
    return {
        "sites": [
            {
                "code": spec.site,
                "name": "演示小区",
                "buildings": buildings,
                "units": units,
                "meters": meters,
                "equipment": equipment,
                "edges": [{"code": spec.edge, "devices": edge_devices}],
            }
        ]
    }
