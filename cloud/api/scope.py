"""Which rows a user may see, in one place: every query the API runs for a user goes through ``Scope``.

Staff see their sites (admins may have all); owners see their own units, those units' meters and
readings, and the buildings and sites they live in, and nothing of other units. A row out of scope is
answered 404, exactly as a row that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import HTTPException, status
from sqlalchemy import ColumnElement, and_, false, select, true
from sqlalchemy.orm import Session

from cloud.auth.models import Role, User
from cloud.auth.services import reach
from cloud.db import SiteOwned, UnitOwned
from cloud.ingest.models import DeadLetter, EdgeStateRow
from cloud.registry.models import Building, Device, Edge, Equipment, Meter, PointMapping, Site, Unit
from cloud.timeseries.models import Series

T = TypeVar("T")


@dataclass(frozen=True)
class Scope:
    role: Role
    all_sites: bool
    site_ids: frozenset[int]
    unit_ids: frozenset[int]
    """Owners only."""

    @classmethod
    def of(cls, session: Session, user: User) -> Scope:
        """The scope of a signed-in user, for the API and the console alike."""
        r = reach(session, user)
        return cls(user.role, r.all_sites, r.site_ids, r.unit_ids)

    @property
    def owner(self) -> bool:
        return self.role is Role.OWNER

    def _sites(self, column: Any) -> ColumnElement[bool]:
        if self.owner:
            return column.in_(select(Unit.site_id).where(Unit.id.in_(self.unit_ids)))
        return true() if self.all_sites else column.in_(self.site_ids)

    def _site_codes(self, column: Any) -> ColumnElement[bool]:
        if self.owner:
            return false()
        return true() if self.all_sites else column.in_(select(Site.code).where(Site.id.in_(self.site_ids)))

    def where(self, model: type[Any]) -> ColumnElement[bool]:
        """The condition that keeps ``model`` rows to this scope (refuses models it does not know)."""
        if model is Site:
            return self._sites(Site.id)
        if model is Building:
            if self.owner:
                return Building.id.in_(select(Unit.building_id).where(Unit.id.in_(self.unit_ids)))
            return self._sites(Building.site_id)
        if model is Unit:
            return Unit.id.in_(self.unit_ids) if self.owner else self._sites(Unit.site_id)
        if model is Meter:
            return Meter.unit_id.in_(self.unit_ids) if self.owner else self._sites(Meter.site_id)
        if model in (Equipment, Edge, Device):
            return false() if self.owner else self._sites(model.site_id)
        if model is Series:
            if self.owner:
                return Series.id.in_(
                    select(Series.id)
                    .join(Site, Site.code == Series.site)
                    .join(Edge, and_(Edge.site_id == Site.id, Edge.code == Series.edge))
                    .join(Device, and_(Device.edge_id == Edge.id, Device.name == Series.device))
                    .join(PointMapping, and_(PointMapping.device_id == Device.id, PointMapping.point == Series.point))
                    .join(Meter, Meter.id == PointMapping.meter_id)
                    .where(Meter.unit_id.in_(self.unit_ids))
                )
            return self._site_codes(Series.site)
        if model in (EdgeStateRow, DeadLetter):
            return self._site_codes(model.site)
        owned: Any = model  # the markers declare no columns; their models have site_id (and unit_id)
        if issubclass(model, UnitOwned):
            return owned.unit_id.in_(self.unit_ids) if self.owner else self._sites(owned.site_id)
        if issubclass(model, SiteOwned):
            return false() if self.owner else self._sites(owned.site_id)
        raise TypeError(f"no scope rule for {model.__name__}: add one here before exposing it")

    def get(self, session: Session, model: type[T], id: int) -> T:
        """The row with this id if the user may see it; 404 otherwise (missing or not theirs alike)."""
        row: T | None = session.scalars(select(model).where(model.id == id, self.where(model))).first()  # type: ignore[attr-defined]
        if row is None:
            label = re.sub(r"(?<!^)(?=[A-Z])", " ", model.__name__).lower()  # DeadLetter -> dead letter
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{label} {id} not found")
        return row
