"""Rule kinds and their parameters, validated with messages that name the field and say what to fix.

A rule is stored as data (cloud.alarms.models.AlarmRule); its ``params`` are checked here when it is created
or changed, and parsed here again by the evaluator, so an evaluator never meets parameters it cannot use.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloud.alarms.models import RuleKind

DEFAULT_FLAP_WINDOW_S = 300.0
"""A fault that clears and comes back within this long is the same episode, not a new alarm."""


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    flap_window_s: Annotated[float, Field(ge=0, le=86_400)] = DEFAULT_FLAP_WINDOW_S


class ThresholdParams(_Params):
    """Beyond ``above``/``below`` for ``raise_after_s`` raises; back inside by more than ``hysteresis`` for
    ``clear_after_s`` clears. Durations are measured on the readings' own timestamps."""

    above: float | None = None
    below: float | None = None
    hysteresis: Annotated[float, Field(ge=0)] = 0.0
    raise_after_s: Annotated[float, Field(ge=0, le=86_400)] = 0.0
    clear_after_s: Annotated[float, Field(ge=0, le=86_400)] = 0.0

    @model_validator(mode="after")
    def _one_limit(self) -> ThresholdParams:
        if (self.above is None) == (self.below is None):
            raise ValueError("set exactly one of 'above' or 'below'")
        return self

    def beyond(self, value: float) -> bool:
        return value > self.above if self.above is not None else value < self.below  # type: ignore[operator]

    def back(self, value: float) -> bool:
        """Inside the limit by more than the hysteresis band."""
        if self.above is not None:
            return value < self.above - self.hysteresis
        assert self.below is not None
        return value > self.below + self.hysteresis

    @property
    def limit(self) -> float:
        return self.above if self.above is not None else self.below  # type: ignore[return-value]


class MeterOfflineParams(_Params):
    interval_s: Annotated[float, Field(gt=0, le=86_400)]
    """The meter's poll interval."""
    intervals: Annotated[int, Field(ge=1, le=1000)] = 3
    """Raised after this many intervals without a reading."""


class EdgeOfflineParams(_Params):
    after_s: Annotated[float, Field(ge=0, le=86_400)] = 0.0
    """Raised once the edge has been offline this long (0: at once)."""


class LeakParams(_Params):
    floor: Annotated[float, Field(gt=0)]
    """Consumption per hour (the meter's unit, m³ for water) that every night hour must exceed."""
    night_start_hour: Annotated[int, Field(ge=0, le=23)] = 1
    night_end_hour: Annotated[int, Field(ge=1, le=24)] = 5
    """Local hours (Asia/Shanghai): 1 and 5 watch 01:00-05:00."""

    @model_validator(mode="after")
    def _night(self) -> LeakParams:
        if self.night_end_hour <= self.night_start_hour:
            raise ValueError("night_end_hour must be after night_start_hour (both local hours of the same night)")
        return self


class AbnormalConsumptionParams(_Params):
    factor: Annotated[float, Field(gt=1, le=100)] = 3.0
    """k: a day above k x the median of the previous days is abnormal."""
    days: Annotated[int, Field(ge=3, le=90)] = 14
    """N: how many previous days the median is taken over."""
    min_daily: Annotated[float, Field(ge=0)] = 0.0
    """Days below this are never abnormal (an empty flat's 0.1 m³ after a median of 0.01)."""


class EventParams(_Params):
    """Event kinds (tamper, rollover, replacement) have nothing to tune but the flap window."""


PARAMS: dict[RuleKind, type[_Params]] = {
    RuleKind.THRESHOLD: ThresholdParams,
    RuleKind.METER_OFFLINE: MeterOfflineParams,
    RuleKind.EDGE_OFFLINE: EdgeOfflineParams,
    RuleKind.LEAK: LeakParams,
    RuleKind.ABNORMAL_CONSUMPTION: AbnormalConsumptionParams,
    RuleKind.TAMPER: EventParams,
    RuleKind.COUNTER_ROLLOVER: EventParams,
    RuleKind.METER_REPLACED: EventParams,
}
METER_KINDS = frozenset({
    RuleKind.METER_OFFLINE, RuleKind.LEAK, RuleKind.ABNORMAL_CONSUMPTION, RuleKind.TAMPER,
    RuleKind.COUNTER_ROLLOVER, RuleKind.METER_REPLACED,
})  # fmt: skip
"""Kinds that watch meters: one meter, or every meter of the site when none is named."""


class RuleError(ValueError):
    """A rule that cannot be used; ``errors`` name each field and what is wrong with it."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def parse_params(kind: RuleKind, params: dict[str, Any]) -> _Params:
    """The parameters of a rule of ``kind``; RuleError naming each bad field otherwise."""
    if kind not in PARAMS:
        raise RuleError([f"kind: {kind.value} alarms come from the edge and need no hub rule"])
    try:
        return PARAMS[kind].model_validate(params)
    except ValidationError as exc:
        raise RuleError([_describe(kind, e) for e in exc.errors()]) from None


def check_target(
    kind: RuleKind, *, equipment_id: int | None, equipment_type: str | None, meter_id: int | None, point: str | None
) -> None:
    """Which assets a rule of ``kind`` may name; RuleError otherwise."""
    errors = []
    if kind is RuleKind.THRESHOLD:
        named = [n for n, v in (("equipment_id", equipment_id), ("equipment_type", equipment_type),
                                ("meter_id", meter_id)) if v is not None]  # fmt: skip
        if len(named) != 1:
            errors.append("target: a threshold rule watches exactly one of equipment_id, equipment_type or meter_id"
                          + (f" (got {', '.join(named)})" if named else ""))  # fmt: skip
        if not point:
            errors.append("point: a threshold rule needs the point it watches, e.g. outlet_pressure")
    elif kind in METER_KINDS:
        if equipment_id is not None or equipment_type is not None or point is not None:
            errors.append(f"target: a {kind.value} rule watches meters: give meter_id, or nothing for every meter")
    elif equipment_id is not None or equipment_type is not None or meter_id is not None or point is not None:
        errors.append(f"target: a {kind.value} rule watches the site's edges: give no equipment, meter or point")
    if errors:
        raise RuleError(errors)


def _describe(kind: RuleKind, error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(PARAMS[kind].model_fields)
        message = f"not a parameter of {kind.value} rules (they take: {allowed})"
    return f"params.{where}: {message}" if where else f"params: {message}"
