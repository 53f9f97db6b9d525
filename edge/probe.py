"""Commissioning: read one device once, or find which unit ids answer on a bus.

Prints raw registers next to decoded values so a field engineer can see at once whether wiring,
unit id, function code and word order are right.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge.bus import BusError, BusHub, DeviceException
from edge.config import Bus
from protocols.modbus.datatypes import WordOrder, decode_raw
from protocols.modbus.planner import plan_profile
from protocols.profiles import Point, Profile


@dataclass(frozen=True)
class ProbedPoint:
    point: Point
    registers: list[int] | None
    value: float | None
    error: str = ""

    def alternatives(self) -> dict[str, float]:
        """The same registers decoded in every word order, to spot a wrong order by eye."""
        if self.registers is None or self.point.register_count < 2:
            return {}
        p = self.point
        return {o.value: decode_raw(p.data_type, o, self.registers) * p.scale + p.offset for o in WordOrder}


EXCEPTION_NAMES = {1: "illegal function", 2: "illegal address", 3: "illegal value", 4: "device failure"}


def _short(exc: BusError) -> str:
    if isinstance(exc, DeviceException):
        return f"exception {exc.code} ({EXCEPTION_NAMES.get(exc.code, 'other')})"
    return {"timeout": "no reply", "crc_error": "CRC error", "link_down": "port unavailable"}.get(exc.kind, exc.kind)


def diagnose(results: list[ProbedPoint]) -> str | None:
    """A hint for the field engineer when nothing could be read, based on how it failed."""
    if any(r.value is not None for r in results):
        return None
    if all(r.error.startswith("exception") for r in results):
        return (
            "the device answers but refuses these registers: wrong function code or register map; "
            "try another --variant of the profile, or another profile"
        )
    if any(r.error == "CRC error" for r in results):
        return "replies arrive garbled: check baud rate, parity and stop bits, and bus termination"
    return "no reply: check wiring (A/B swapped?), unit id, baud rate and parity"


async def probe_device(bus: Bus, unit_id: int, profile: Profile) -> list[ProbedPoint]:
    hub = BusHub(bus)
    results: list[ProbedPoint] = []
    try:
        for request in plan_profile(profile, hub.timing):
            try:
                registers = await hub.read(unit_id, request)
            except BusError as exc:
                results += [ProbedPoint(p, None, None, _short(exc)) for p in request.points]
                continue
            for p in request.points:
                start = p.address - request.address
                own = registers[start : start + p.register_count]
                results.append(ProbedPoint(p, own, p.decode(own)))
    finally:
        hub.close()
    return sorted(results, key=lambda r: (r.point.function, r.point.address))


async def scan_units(bus: Bus, unit_ids: range, profile: Profile) -> list[tuple[int, float]]:
    """Unit ids that answer the profile's first planned read, with their round-trip time in ms."""
    hub = BusHub(bus)
    first = plan_profile(profile, hub.timing)[0]
    found = []
    try:
        for unit in unit_ids:
            started = time.perf_counter()
            try:
                await hub.read(unit, first)
            except BusError as exc:
                if exc.kind != "exception":
                    continue
            found.append((unit, (time.perf_counter() - started) * 1000))
    finally:
        hub.close()
    return found


def format_probe(results: list[ProbedPoint], all_orders: bool = False) -> str:
    lines = [f"{'point':<18} {'fc':>2} {'address':>8}  {'registers':<22} {'value':>14} unit"]
    for r in results:
        p = r.point
        regs = " ".join(f"{x:04X}" for x in r.registers) if r.registers is not None else "-"
        value = f"{r.value:.6g}" if r.value is not None else r.error
        flag = "  (outside valid range)" if r.value is not None and p.out_of_range(r.value) else ""
        lines.append(f"{p.name:<18} {p.function:>2} {p.address:>#8x}  {regs:<22} {value:>14} {p.unit}{flag}")
        if all_orders:
            for order, v in r.alternatives().items():
                lines.append(f"{'':<18} {'':>2} {'':>8}  {'as ' + order:<22} {v:>14.6g}")
    return "\n".join(lines)
