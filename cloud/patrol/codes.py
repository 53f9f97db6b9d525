"""QR images of signed codes: a single PNG or SVG, and the labelled entries of a print-ready sheet.

Error correction level M (15 %): printed codes on walls get scuffed; a ~35-character code still fits
version 3 (29 x 29 modules), readable by a phone at arm's length when printed 3 cm wide.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import qrcode
import qrcode.constants
import qrcode.image.svg
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.patrol.keys import checkpoint_code
from cloud.patrol.models import Checkpoint
from cloud.registry.models import Building, Site


def _qr(code: str, box_size: int = 10) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=4)
    qr.add_data(code)
    qr.make(fit=True)
    return qr


def png(code: str) -> bytes:
    out = io.BytesIO()
    _qr(code).make_image().save(out)
    return out.getvalue()


def svg(code: str) -> str:
    image = _qr(code).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    text: str = image.to_string(encoding="unicode")
    return text


@dataclass(frozen=True)
class SheetEntry:
    """One label of the printed sheet: the code's image and where the checkpoint is, in words."""

    code: str
    svg: str
    site: str
    building: str
    floor: str
    location: str
    name: str


def sheet_entries(session: Session, site: Site, checkpoints: list[Checkpoint]) -> list[SheetEntry]:
    """Entries signed with the site's current key (a sheet printed after a rotation carries the new key)."""
    buildings = {b.id: b.name for b in session.scalars(select(Building).where(Building.site_id == site.id))}
    entries = []
    for checkpoint in checkpoints:
        code = checkpoint_code(session, site.id, checkpoint.id)
        entries.append(
            SheetEntry(
                code=code,
                svg=svg(code),
                site=site.name,
                building=buildings.get(checkpoint.building_id, "") if checkpoint.building_id else "",
                floor=f"{checkpoint.floor}" if checkpoint.floor is not None else "",
                location=checkpoint.location,
                name=checkpoint.name,
            )  # fmt: skip
        )
    return entries
