"""Faults a simulated device can show, and fault scenarios as data (shared by the tests and the demo).

A scenario file is a list of steps, each ``{device, fault, at, duration}`` with times in seconds from
the start of the simulation; ``duration`` omitted means "until cleared". Example::

    - {device: b1-u03-elec, fault: no_response, at: 30, duration: 60}
    - {device: b1-u07-water, fault: exception, exception_code: 6, at: 45, duration: 20}
    - {device: b2-master, fault: counter_rollover, at: 90}
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firmware_sims.pdu import SERVER_DEVICE_FAILURE


class FaultKind(StrEnum):
    NO_RESPONSE = "no_response"
    """The device stays silent: the master times out."""
    BAD_CRC = "bad_crc"
    """Replies go out with a broken checksum (RTU and RTU-over-TCP); on Modbus TCP a gateway drops them."""
    EXCEPTION = "exception"
    """Every read is answered with an exception (code 4, server device failure, unless configured)."""
    COUNTER_ROLLOVER = "counter_rollover"
    """Counters jump to just below their rollover value and wrap wrap_after_s later (counters without a
    rollover, or that do not move, are left alone)."""
    METER_REPLACED = "meter_replaced"
    """A new meter: counters restart from 0 and keep counting from there."""
    STUCK = "stuck"
    """Every value frozen at the moment the fault started (a hung measuring chip)."""
    REVERSE_FLOW = "reverse_flow"
    """Flow and power go negative; a reverse total advances, or a forward counter runs backwards (tampering)."""
    OUT_OF_RANGE = "out_of_range"
    """Gauges with a valid_range read beyond it (a broken sensor or a wrong CT ratio)."""


ExceptionCode = Annotated[int, Field(ge=1, le=255)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fault(_Model):
    kind: FaultKind
    exception_code: ExceptionCode = SERVER_DEVICE_FAILURE
    """For exception: the code every read is answered with."""
    wrap_after_s: Annotated[float, Field(gt=0)] = 30.0
    """For counter_rollover: how long after the jump the counters wrap."""


class FaultStep(_Model):
    """One fault window of a scenario."""

    device: str
    fault: FaultKind
    at: Annotated[float, Field(ge=0)]
    duration: Annotated[float, Field(gt=0)] | None = None
    exception_code: ExceptionCode = SERVER_DEVICE_FAILURE
    wrap_after_s: Annotated[float, Field(gt=0)] = 30.0

    def to_fault(self) -> Fault:
        return Fault(kind=self.fault, exception_code=self.exception_code, wrap_after_s=self.wrap_after_s)


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the step and the field."""


def parse_scenario(data: Any, origin: str = "scenario") -> list[FaultStep]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise ScenarioError(f"{origin}: a scenario is a list of steps {{device, fault, at, duration}}")
    steps = []
    for i, item in enumerate(data):
        try:
            steps.append(FaultStep.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'step'}: {e['msg']}" for e in exc.errors())
            raise ScenarioError(f"{origin}: step {i}: {problems}") from None
    return steps


def load_scenario(path: str | Path) -> list[FaultStep]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc}") from None
    return parse_scenario(data, str(path))
