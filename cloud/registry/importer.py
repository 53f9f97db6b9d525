"""Importing a registry file: validate every row first, then write everything in bulk, in one transaction.

Files are YAML (the whole registry, see tests/cloud/registry/demo_registry.yaml) or CSV (a unit roster
as exported from a spreadsheet, one unit per line). Import is idempotent: rows are matched by code, so
a re-import updates what changed and creates nothing twice. Rows absent from the file are left alone;
for a row present in the file, the file is the truth (an omitted optional field is cleared).

Nothing is written unless the whole file is valid; every error names the row and the field.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Hashable, Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import Table, delete, insert, update
from sqlalchemy.orm import Session

from cloud.audit.services import Actor, Change, record
from cloud.registry import facts as stored
from cloud.registry.facts import DeviceKey, Facts, Known, point_facts
from cloud.registry.models import (
    Building,
    Device,
    Edge,
    Equipment,
    Meter,
    MeterRole,
    PointMapping,
    Site,
    Unit,
    meter_serves,
)
from cloud.registry.schemas import (
    BuildingRow,
    Code,
    DeviceRow,
    ImportCounts,
    ImportReport,
    MeterRow,
    Name,
    RegistryDoc,
    SiteDoc,
    UnitRow,
)
from protocols.profiles import Profile, ProfileError, available_profiles, load_profile

MAX_REPORTED_ERRORS = 100
CSV_COLUMNS = (
    "site",
    "site_name",
    "building",
    "building_name",
    "unit",
    "floor",
    "floor_area_m2",
    "owner_name",
    "owner_phone",
    "household_size",
)
_ROW_KINDS = {
    "sites": "site",
    "buildings": "building",
    "units": "unit",
    "meters": "meter",
    "equipment": "equipment",
    "edges": "edge",
    "devices": "device",
    "points": "point",
}
K = TypeVar("K", bound=Hashable)
R = TypeVar("R", bound=BaseModel)


class RegistryImportError(ValueError):
    """The file was not imported; ``errors`` holds one line per problem, naming the row and the field."""

    def __init__(self, origin: str, errors: Sequence[str]) -> None:
        self.origin = origin
        self.errors = list(errors)
        shown = self.errors[:MAX_REPORTED_ERRORS]
        more = len(self.errors) - len(shown)
        n = len(self.errors)
        lines = [f"{origin}: registry not imported, nothing was changed ({n} error{'s' if n != 1 else ''}):"]
        lines += [f"  {e}" for e in shown] + ([f"  ... and {more} more"] if more else [])
        super().__init__("\n".join(lines))


# Reading files.


def load_file(path: str | Path) -> RegistryDoc:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryImportError(str(path), [f"cannot read the file: {exc}"]) from None
    if path.suffix.lower() == ".csv":
        return parse_csv(text, str(path))
    if path.suffix.lower() in (".yaml", ".yml"):
        return parse_yaml(text, str(path))
    raise RegistryImportError(str(path), ["unknown file type: use .yaml, .yml or .csv"])


def parse_yaml(text: str, origin: str = "registry") -> RegistryDoc:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryImportError(origin, [f"not valid YAML: {exc}"]) from None
    return parse_data(data, origin)


def parse_data(data: Any, origin: str = "registry") -> RegistryDoc:
    """A registry already loaded from YAML or JSON (or built by code, as cloud.registry.demo does)."""
    if not isinstance(data, dict):
        raise RegistryImportError(origin, ["the top level must be a mapping with a list of sites"])
    try:
        doc = RegistryDoc.model_validate(data)
    except ValidationError as exc:
        raise RegistryImportError(origin, [_pydantic_error(err, data) for err in exc.errors()]) from None
    for s, site in enumerate(doc.sites):
        _name(site, f"sites[{s}] (site {site.code})")
        for kind in ("buildings", "units", "meters", "equipment", "edges"):
            for i, row in enumerate(getattr(site, kind)):
                _name(row, f"sites[{s}].{kind}[{i}] ({_ROW_KINDS[kind]} {row.code})")
        for e, edge in enumerate(site.edges):
            for d, device in enumerate(edge.devices):
                _name(device, f"sites[{s}].edges[{e}].devices[{d}] (device {device.name})")
                for p, point in enumerate(device.points or []):
                    _name(point, f"sites[{s}].edges[{e}].devices[{d}].points[{p}] (point {point.point})")
    return doc


def parse_csv(text: str, origin: str = "registry.csv") -> RegistryDoc:
    """A unit roster: one unit per line; sites and buildings are named on every line (and must agree)."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        problems = ([f"missing columns: {', '.join(missing)}"] if missing else []) + (
            [f"unknown columns: {', '.join(unknown)}"] if unknown else []
        )
        raise RegistryImportError(
            origin, [f"line 1 (header): {p} (expected: {', '.join(CSV_COLUMNS)})" for p in problems]
        )
    errors: list[str] = []
    sites: dict[str, SiteDoc] = {}
    buildings: dict[tuple[str, str], BuildingRow] = {}
    first_seen: dict[tuple[str, ...], tuple[str, int]] = {}
    for line, raw in enumerate(reader, start=2):
        cells = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        where = f"line {line} (unit {cells['unit'] or '?'})"
        place = _csv_row(_CsvPlace, {c: cells[c] for c in _CsvPlace.model_fields}, where, errors)
        for key, name_column in ((("site", cells["site"]), "site_name"),
                                 (("building", cells["site"], cells["building"]), "building_name")):  # fmt: skip
            name = cells[name_column]
            first = first_seen.setdefault(key, (name, line))
            if first[0] != name:
                errors.append(f"{where}: {name_column}: {name!r} differs from {first[0]!r} on line {first[1]} "
                              f"for the same {key[0]} {key[-1]}")  # fmt: skip
        values = {c: cells[_CSV_UNIT[c]] or (None if c in _CSV_OPTIONAL else "") for c in _CSV_UNIT}
        unit = _csv_row(UnitRow, values, where, errors)
        if place is None or unit is None:
            continue
        site = sites.setdefault(place.site, SiteDoc(code=place.site, name=place.site_name))
        if (place.site, place.building) not in buildings:
            building = BuildingRow(code=place.building, name=place.building_name)
            _name(building, f"line {line} (building {place.building})")
            buildings[(place.site, place.building)] = building
            site.buildings.append(building)
        site.units.append(unit)
    if errors:
        raise RegistryImportError(origin, errors)
    if not sites:
        raise RegistryImportError(origin, ["no units: the file has a header but no lines"])
    for site in sites.values():
        _name(site, f"site {site.code}")
    return RegistryDoc(sites=list(sites.values()))


class _CsvPlace(BaseModel):
    site: Code
    site_name: Name
    building: Code
    building_name: Name


_CSV_UNIT = {"code": "unit", "building": "building", "floor": "floor", "floor_area_m2": "floor_area_m2",
             "owner_name": "owner_name", "owner_phone": "owner_phone", "household_size": "household_size"}  # fmt: skip
"""UnitRow field -> CSV column."""
_CSV_OPTIONAL = {"owner_name", "owner_phone", "household_size"}
"""Empty cells in these columns mean "none" (a vacant unit); in the others they are errors."""


def _csv_row(model: type[R], values: dict[str, Any], where: str, errors: list[str]) -> R | None:
    """The validated row, or None with its errors added (named by CSV column: unit, not code)."""
    try:
        row = model.model_validate(values)
    except ValidationError as exc:
        for err in exc.errors():
            loc = [_CSV_UNIT.get(str(err["loc"][0]), err["loc"][0]), *err["loc"][1:]] if err["loc"] else []
            errors.append(f"{where}: {_field(loc)}: {_message(err)}")
        return None
    _name(row, where)
    return row


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _name(row: BaseModel, origin: str) -> None:
    row._origin = origin  # type: ignore[attr-defined]


def _origin(row: BaseModel) -> str:
    """Where the row came from; rows built by code (API calls) are named by kind and key instead."""
    origin = getattr(row, "_origin", "")
    if origin:
        return str(origin)
    key = next((getattr(row, f) for f in ("code", "name", "point") if hasattr(row, f)), "")
    return f"{type(row).__name__.removesuffix('Row').removesuffix('Doc').lower()} {key}".strip()


def _message(err: Any) -> str:
    return str(err["msg"]).removeprefix("Value error, ")


def _field(loc: Sequence[Any]) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[") or "(row)"


def _pydantic_error(err: Any, data: Any) -> str:
    """'sites[0].units[17] (unit 1-0218): owner_phone: ...' from a pydantic error location."""
    loc, node, path, where, rest = err["loc"], data, "", "", list(err["loc"])
    for i, part in enumerate(loc):
        if isinstance(part, int) and i > 0 and loc[i - 1] in _ROW_KINDS and isinstance(node, list):
            node = node[part] if part < len(node) else None
            path += f"[{part}]"
            label = node.get("code", node.get("name", node.get("point"))) if isinstance(node, dict) else None
            where, rest = f"{path} ({_ROW_KINDS[loc[i - 1]]} {label if label is not None else '?'})", list(loc[i + 1 :])
        elif isinstance(part, str):
            node = node.get(part) if isinstance(node, dict) else None
            path += f".{part}" if path else part
        else:
            path += f"[{part}]"
    return f"{where or '(top level)'}: {_field(rest)}: {_message(err)}"


# Checking rows against each other and the database, then writing.


class _Stored:
    """What the database holds for one site, loaded only for the kinds the file touches."""

    def __init__(self, session: Session, site_id: int | None) -> None:
        self.session, self.site_id = session, site_id

    def _load(self, loader: Callable[[Session, int], dict[K, Known]]) -> dict[K, Known]:
        return {} if self.site_id is None else loader(self.session, self.site_id)

    @cached_property
    def buildings(self) -> dict[str, Known]:
        return self._load(stored.buildings)

    @cached_property
    def units(self) -> dict[str, Known]:
        return self._load(stored.units)

    @cached_property
    def equipment(self) -> dict[str, Known]:
        return self._load(stored.equipment)

    @cached_property
    def meters(self) -> dict[str, Known]:
        return self._load(stored.meters)

    @cached_property
    def edges(self) -> dict[str, Known]:
        return self._load(stored.edges)

    @cached_property
    def devices(self) -> dict[DeviceKey, Known]:
        return self._load(stored.devices)


class _Importer:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.errors: list[str] = []
        self.changes: list[Change] = []
        self.counts: dict[str, ImportCounts] = {}
        self._profiles: dict[str, Profile | None] = {}

    def error(self, row: BaseModel, field: str, message: str) -> None:
        self.errors.append(f"{_origin(row)}: {field}: {message}")

    def unique(self, rows: Iterable[R], kind: str, field: str = "code") -> dict[str, R]:
        """Rows by their key field; a repeated key is an error on the repeat (never silently dropped)."""
        out: dict[str, R] = {}
        for row in rows:
            key = getattr(row, field)
            if key in out:
                self.error(row, field, f"duplicate {kind} {key} (first at {_origin(out[key])})")
            else:
                out[key] = row
        return out

    def profile(self, name: str) -> Profile | None:
        if name not in self._profiles:
            try:
                self._profiles[name] = load_profile(name)
            except ProfileError:
                self._profiles[name] = None
        return self._profiles[name]

    # -- checking

    def check_site(self, doc: SiteDoc, db: _Stored) -> dict[str, dict[Any, Facts]]:
        """The facts the file wants for each kind of row, after checking every reference."""
        buildings = self.unique(doc.buildings, "building")
        units = self.unique(doc.units, "unit")
        equipment = self.unique(doc.equipment, "equipment")
        meters = self.unique(doc.meters, "meter")
        edges = self.unique(doc.edges, "edge")
        devices = {e.code: self.unique(e.devices, "device", "name") for e in edges.values()}
        where = f"in site {doc.code}"

        building_codes = set(buildings) | (set(db.buildings) if units else set())
        for u in units.values():
            if u.building not in building_codes:
                self.error(u, "building", f"no building {u.building} {where}")
        has_devices = any(e.devices for e in edges.values())
        needs_units = bool(meters or has_devices)
        unit_codes = set(units) | (set(db.units) if needs_units else set())
        equipment_codes = set(equipment) | (set(db.equipment) if has_devices else set())

        meter_facts = {
            code: {
                "code": code,
                "kind": m.kind.value,
                "role": m.role.value,
                "parent": m.parent,
                "unit": m.unit,
                "serves": sorted(set(m.serves)),
            }
            for code, m in meters.items()
        }
        for m in meters.values():
            self.check_meter(m, unit_codes, where)
        merged = {code: k.facts for code, k in db.meters.items()} if (meters or has_devices) else {}
        merged.update(meter_facts)
        self.check_hierarchy(merged, meters, where)

        device_facts = {
            (edge, name): self.check_device(edge, d, merged, unit_codes, equipment_codes, where)
            for edge, named in devices.items()
            for name, d in named.items()
        }
        return {
            "site": {doc.code: {"code": doc.code, "name": doc.name}},
            "building": {c: {"code": c, "name": b.name} for c, b in buildings.items()},
            "unit": {c: u.model_dump(exclude={"_origin"}) for c, u in units.items()},
            "equipment": {c: e.model_dump() for c, e in equipment.items()},
            "meter": meter_facts,
            "edge": {c: {"code": c} for c in edges},
            "device": device_facts,
        }

    def check_meter(self, m: MeterRow, unit_codes: set[str], where: str) -> None:
        if m.role is MeterRole.SUB and m.unit is None:
            self.error(m, "unit", "a sub meter belongs to a unit: give its unit code")
        if m.role is not MeterRole.SUB and m.unit is not None:
            self.error(
                m,
                "unit",
                f"only sub meters belong to a unit; {_a(m.role)} meter has none "
                "(a common meter lists the units it serves under serves)",
            )
        if m.role is not MeterRole.COMMON and m.serves:
            self.error(m, "serves", f"only common meters serve units; this is {_a(m.role)} meter")
        if m.unit is not None and m.unit not in unit_codes:
            self.error(m, "unit", f"no unit {m.unit} {where}")
        unknown = sorted(set(m.serves) - unit_codes)
        if unknown:
            self.error(m, "serves", f"no unit {', '.join(unknown)} {where}")

    def check_hierarchy(self, merged: dict[str, Facts], rows: dict[str, MeterRow], where: str) -> None:
        """Parents are master meters of the same kind, with no loops, counting meters already stored."""
        for code, m in merged.items():
            parent_code = m["parent"]
            if parent_code is None:
                continue
            parent = merged.get(parent_code)
            row = rows.get(code)
            if parent is None:
                if row is not None:
                    self.error(row, "parent", f"no meter {parent_code} {where}")
                continue
            for fact, wanted in (("role", MeterRole.MASTER.value), ("kind", m["kind"])):
                if parent[fact] == wanted:
                    continue
                if row is not None:
                    if fact == "role":
                        must = "a parent must be a master meter"
                    else:
                        must = f"the parent of {_a(wanted)} meter must be {_a(wanted)} meter"
                    self.error(row, "parent", f"parent {parent_code} is {_a(parent[fact])} meter; {must}")
                else:
                    self.error(
                        rows[parent_code],
                        fact,
                        f"meter {code} has {parent_code} as its parent, so {parent_code} must stay {_a(wanted)} meter",
                    )
        for code, row in rows.items():
            chain, current = [code], merged[code]["parent"]
            while current is not None and current in merged and current not in chain:
                chain.append(current)
                current = merged[current]["parent"]
            if current == code:
                self.error(row, "parent", f"meters form a loop: {' -> '.join([*chain, code])}")

    def check_device(
        self, edge: str, d: DeviceRow, meters: dict[str, Facts], units: set[str], equipment: set[str], where: str
    ) -> Facts:
        profile = self.profile(d.profile)
        if profile is None:
            self.error(d, "profile", f"unknown profile {d.profile} (known: {', '.join(available_profiles())})")
        if d.meter is not None and d.equipment is not None:
            self.error(d, "equipment", "a device feeds one meter or one equipment; map single points under points")
        for field, code, known in (
            ("meter", d.meter, meters),
            ("equipment", d.equipment, equipment),
            ("unit", d.unit, units),
        ):
            if code is not None and code not in known:
                self.error(d, field, f"no {field} {code} {where}")
        unit = d.unit if d.unit is not None else meters.get(d.meter or "", {}).get("unit")
        points: dict[str, Facts] = {}
        if d.points is None:
            if d.meter is None and d.equipment is None:
                self.error(d, "meter", "give the meter or the equipment the device feeds (or list its points)")
            elif profile is not None:
                points = {p.name: point_facts(p.quantity.value, d.meter, d.equipment) for p in profile.points}
        else:
            for p in self.unique(d.points, "point", "point").values():
                known_point = next((q for q in profile.points if q.name == p.point), None) if profile else None
                if profile is not None and known_point is None:
                    names = ", ".join(q.name for q in profile.points)
                    self.error(p, "point", f"profile {d.profile} has no point {p.point} (it has: {names})")
                meter = p.meter if p.meter is not None or p.equipment is not None else d.meter
                equip = p.equipment if p.meter is not None or p.equipment is not None else d.equipment
                if (meter is None) == (equip is None):
                    self.error(p, "meter", "a point feeds exactly one meter or one equipment")
                for field, code, known in (("meter", p.meter, meters), ("equipment", p.equipment, equipment)):
                    if code is not None and code not in known:
                        self.error(p, field, f"no {field} {code} {where}")
                quantity = p.quantity.value if p.quantity else known_point.quantity.value if known_point else ""
                points[p.point] = point_facts(quantity, meter, equip)
        return {
            "edge": edge,
            "name": d.name,
            "profile": d.profile,
            "unit": unit,
            "equipment": d.equipment,
            "points": points,
        }

    # -- writing

    def upsert(
        self,
        kind: str,
        model: type[Any],
        site_id: int | None,
        known: dict[K, Known],
        wanted: dict[K, Facts],
        to_row: Callable[[Facts], dict[str, Any]],
        label: Callable[[K], str],
    ) -> tuple[dict[K, int], list[K], list[K]]:
        """Insert new rows and update changed ones in bulk.

        Returns the ids of every known and wanted row, and the keys of the rows created and of those updated.
        """
        counts = self.counts.setdefault(kind, ImportCounts())
        ids = {k: v.id for k, v in known.items()}
        new = [k for k in wanted if k not in known]
        changed = [k for k in wanted if k in known and known[k].facts != wanted[k]]
        if new:
            rows = [to_row(wanted[k]) for k in new]
            created = self.session.scalars(insert(model).returning(model.id, sort_by_parameter_order=True), rows)
            ids.update(zip(new, created.all(), strict=True))
        if changed:
            self.session.execute(update(model), [{"id": ids[k], **to_row(wanted[k])} for k in changed])
        counts.created += len(new)
        counts.updated += len(changed)
        counts.unchanged += len(wanted) - len(new) - len(changed)
        for k in new + changed:
            before = known[k].facts if k in known else None
            self.changes.append(
                Change(
                    "update" if before else "create",
                    kind,
                    ids[k],
                    label(k),
                    before,
                    wanted[k],
                    site_id if site_id is not None else ids[k],
                )
            )
        return ids, new, changed

    def write_site(self, code: str, wanted: dict[str, dict[Any, Facts]], known_site: Known | None, db: _Stored) -> None:
        """Upsert one site's rows, parents before children; stored rows are loaded only where the file needs them."""
        site, _, _ = self.upsert(
            "site", Site, None, {code: known_site} if known_site else {}, wanted["site"], lambda f: f, lambda k: k
        )
        sid = site[code]

        def label(k: Any) -> str:
            return f"{code}/{'/'.join(k) if isinstance(k, tuple) else k}"

        def upsert(
            kind: str,
            model: type[Any],
            stored_rows: Callable[[], dict[Any, Known]],
            referenced: bool,
            to_row: Callable[[Facts], dict[str, Any]],
        ) -> tuple[dict[Any, int], list[Any], list[Any]]:
            known = stored_rows() if wanted[kind] or referenced else {}
            return self.upsert(kind, model, sid, known, wanted[kind], to_row, label)

        def ref(ids: dict[str, int], code: str | None) -> int | None:
            return ids[code] if code is not None else None

        has = {kind: bool(rows) for kind, rows in wanted.items()}
        b_ids, _, _ = upsert("building", Building, lambda: db.buildings, has["unit"], lambda f: {"site_id": sid, **f})
        u_ids, _, _ = upsert(
            "unit",
            Unit,
            lambda: db.units,
            has["meter"] or has["device"],
            lambda f: {
                **{k: v for k, v in f.items() if k != "building"},
                "site_id": sid,
                "building_id": b_ids[f["building"]],
            },
        )
        e_ids, _, _ = upsert(
            "equipment", Equipment, lambda: db.equipment, has["device"], lambda f: {"site_id": sid, **f}
        )
        meters, known_meters = wanted["meter"], db.meters if has["meter"] or has["device"] else {}
        m_ids = {c: k.id for c, k in known_meters.items()}
        pending, changed_meters = dict(meters), []
        while pending:  # parents first, so each row is written with its parent id (the check ruled out loops)
            ready = {c: f for c, f in pending.items() if f["parent"] is None or f["parent"] in m_ids}
            ids, _, changed = self.upsert(
                "meter",
                Meter,
                sid,
                known_meters,
                ready,
                lambda f: {
                    "site_id": sid,
                    "code": f["code"],
                    "kind": f["kind"],
                    "role": f["role"],
                    "unit_id": ref(u_ids, f["unit"]),
                    "parent_id": ref(m_ids, f["parent"]),
                },
                label,
            )
            m_ids.update(ids)
            changed_meters += changed
            pending = {c: f for c, f in pending.items() if c not in ready}
        if changed_meters:
            changed_ids = [m_ids[c] for c in changed_meters]
            self.session.execute(delete(meter_serves).where(meter_serves.c.meter_id.in_(changed_ids)))
        serves = [
            {"meter_id": m_ids[c], "unit_id": u_ids[u]}
            for c, f in meters.items()
            for u in f["serves"]
            if c not in known_meters or c in changed_meters
        ]
        if serves:
            self.session.execute(insert(meter_serves), serves)
        edge_ids, _, _ = upsert("edge", Edge, lambda: db.edges, has["device"], lambda f: {"site_id": sid, **f})
        d_ids, new_devices, changed_devices = upsert(
            "device",
            Device,
            lambda: db.devices,
            False,
            lambda f: {
                "site_id": sid,
                "edge_id": edge_ids[f["edge"]],
                "name": f["name"],
                "profile": f["profile"],
                "unit_id": ref(u_ids, f["unit"]),
                "equipment_id": ref(e_ids, f["equipment"]),
            },
        )
        if changed_devices:  # a changed device gets its whole point map again
            changed_ids = [d_ids[k] for k in changed_devices]
            self.session.execute(delete(PointMapping).where(PointMapping.device_id.in_(changed_ids)))
        if new_devices or changed_devices:
            mappings = [
                {
                    "device_id": d_ids[k],
                    "point": point,
                    "quantity": p["quantity"],
                    "meter_id": ref(m_ids, p.get("meter")),
                    "equipment_id": ref(e_ids, p.get("equipment")),
                }
                for k in new_devices + changed_devices
                for point, p in wanted["device"][k]["points"].items()
            ]
            if mappings:
                self.session.execute(insert(cast(Table, PointMapping.__table__)), mappings)


def import_registry(session: Session, doc: RegistryDoc, actor: Actor, origin: str = "registry") -> ImportReport:
    """Check the whole document, then write it and its audit entries inside the caller's transaction.

    Raises RegistryImportError (and writes nothing) if any row is invalid.
    """
    importer = _Importer(session)
    sites = importer.unique(doc.sites, "site")
    known_sites = stored.sites(session, sites)
    plans = []
    for code, site_doc in sites.items():
        db = _Stored(session, known_sites[code].id if code in known_sites else None)
        plans.append((code, importer.check_site(site_doc, db), db))
    if importer.errors:
        raise RegistryImportError(origin, importer.errors)
    for code, wanted, db in plans:
        importer.write_site(code, wanted, known_sites.get(code), db)
    entries = record(session, actor, importer.changes)
    order = ("site", "building", "unit", "equipment", "meter", "edge", "device")
    return ImportReport(counts={k: importer.counts[k] for k in order if k in importer.counts}, audit_entries=entries)
