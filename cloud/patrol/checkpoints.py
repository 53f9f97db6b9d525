"""Registering checkpoints: where they are (site, building, floor, location, coordinates) and how presence
is proven there (a fixed scanner reading badges, or a QR code the guard's phone scans)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from cloud.patrol.models import Checkpoint, CheckpointMethod
from cloud.registry.models import Building


class CheckpointError(ValueError):
    """A checkpoint that cannot be registered as given; the message says what to fix."""


@dataclass(frozen=True)
class CheckpointSpec:
    code: str
    name: str
    method: CheckpointMethod
    building_id: int | None = None
    floor: int | None = None
    location: str = ""
    x_m: float | None = None
    y_m: float | None = None
    lat: float | None = None
    lon: float | None = None
    geofence_m: int | None = None


def create_checkpoint(session: Session, site_id: int, spec: CheckpointSpec) -> Checkpoint:
    if session.scalar(select(exists().where(Checkpoint.site_id == site_id, Checkpoint.code == spec.code))):
        raise CheckpointError(f"checkpoint code {spec.code!r} is taken at this site")
    if spec.building_id is not None:
        building = session.get(Building, spec.building_id)
        if building is None or building.site_id != site_id:
            raise CheckpointError(f"building {spec.building_id} is not at this site")
    if spec.geofence_m is not None and (spec.lat is None or spec.lon is None):
        raise CheckpointError("a geofence needs the checkpoint's lat and lon")
    checkpoint = Checkpoint(site_id=site_id, **spec.__dict__)
    session.add(checkpoint)
    session.flush()
    return checkpoint
