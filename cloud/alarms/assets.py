"""What an edge's (site, edge, device, point) is in the registry, and how alarms name it, cached for one pass."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.registry.models import Device, Edge, Equipment, Meter, PointMapping, Site


@dataclass(frozen=True)
class Asset:
    site_id: int
    equipment_id: int | None
    meter_id: int | None
    label: str
    """Equipment name, meter code, or the device's own name when the point is not mapped."""


class Assets:
    """Registry look-ups for one evaluation pass (the registry does not change under it)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._sites: dict[str, int | None] = {}
        self._points: dict[tuple[str, str, str, str | None], Asset | None] = {}
        self._labels: dict[str, str] = {}

    def site_id(self, code: str) -> int | None:
        if code not in self._sites:
            self._sites[code] = self._session.scalar(select(Site.id).where(Site.code == code))
        return self._sites[code]

    def point(self, site: str, edge: str, device: str | None, point: str | None) -> Asset | None:
        """The meter or equipment a device's point is mapped to (the device's equipment for device-wide
        events); None when the site is unknown to the registry."""
        site_id = self.site_id(site)
        if site_id is None:
            return None
        if device is None:
            return Asset(site_id, None, None, edge)
        key = (site, edge, device, point)
        if key not in self._points:
            self._points[key] = self._lookup(site_id, edge, device, point)
        return self._points[key]

    def _lookup(self, site_id: int, edge: str, device: str, point: str | None) -> Asset:
        found = self._session.execute(
            select(Device.id, Device.equipment_id)
            .join(Edge, Edge.id == Device.edge_id)
            .where(Edge.site_id == site_id, Edge.code == edge, Device.name == device)
        ).first()
        if found is None:
            return Asset(site_id, None, None, device)
        device_id, equipment_id = found
        meter_id = None
        if point is not None:
            mapped = self._session.execute(
                select(PointMapping.meter_id, PointMapping.equipment_id).where(
                    PointMapping.device_id == device_id, PointMapping.point == point
                )
            ).first()
            if mapped is not None:
                meter_id, equipment_id = mapped[0], mapped[1] if mapped[1] is not None else equipment_id
        return Asset(site_id, equipment_id, meter_id, self.label(equipment_id, meter_id) or device)

    def label(self, equipment_id: int | None, meter_id: int | None) -> str | None:
        if equipment_id is not None:
            key = f"e{equipment_id}"
            if key not in self._labels:
                name = self._session.scalar(select(Equipment.name).where(Equipment.id == equipment_id))
                self._labels[key] = name or ""
            return self._labels[key] or None
        if meter_id is not None:
            key = f"m{meter_id}"
            if key not in self._labels:
                self._labels[key] = self._session.scalar(select(Meter.code).where(Meter.id == meter_id)) or ""
            return self._labels[key] or None
        return None


def asset_key(equipment_id: int | None, meter_id: int | None) -> str:
    """Alarms of a hub rule are per meter or equipment."""
    return f"meter:{meter_id}" if meter_id is not None else f"equipment:{equipment_id}"
