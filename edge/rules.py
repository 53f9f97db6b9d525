"""Threshold alarms evaluated at the edge, so alarms exist while the uplink is down.

A rule raises after its point has stayed beyond the limit for ``min_duration_s`` and clears only once the
value is back inside the limit by more than ``hysteresis``, so a value hovering at the limit cannot flap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.config import ThresholdRule
from protocols.messages import EventType


@dataclass
class AlarmChange:
    type: EventType
    rule: ThresholdRule
    value: float
    message: str


@dataclass
class _RuleState:
    beyond_since: float | None = None
    active: bool = False


@dataclass
class RuleEngine:
    rules: list[ThresholdRule]
    _state: dict[str, _RuleState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_point: dict[tuple[str, str], list[ThresholdRule]] = {}
        for rule in self.rules:
            self._by_point.setdefault((rule.device, rule.point), []).append(rule)
            self._state[rule.name] = _RuleState()

    def active(self, rule_name: str) -> bool:
        return self._state[rule_name].active

    def evaluate(self, device: str, point: str, value: float, now: float) -> list[AlarmChange]:
        changes = []
        for rule in self._by_point.get((device, point), ()):
            change = self._step(rule, self._state[rule.name], value, now)
            if change:
                changes.append(change)
        return changes

    @staticmethod
    def _step(rule: ThresholdRule, state: _RuleState, value: float, now: float) -> AlarmChange | None:
        if rule.above is not None:
            limit, beyond, back = rule.above, value > rule.above, value < rule.above - rule.hysteresis
            side = "above"
        else:
            assert rule.below is not None
            limit, beyond, back = rule.below, value < rule.below, value > rule.below + rule.hysteresis
            side = "below"
        if not state.active:
            if not beyond:
                state.beyond_since = None
                return None
            if state.beyond_since is None:
                state.beyond_since = now
            if now - state.beyond_since < rule.min_duration_s:
                return None
            state.active = True
            return AlarmChange(
                EventType.ALARM_RAISED,
                rule,
                value,
                f"{rule.device}.{rule.point} = {value:g} {side} {limit:g} for {now - state.beyond_since:.0f}s",
            )
        if back:
            state.active = False
            state.beyond_since = None
            return AlarmChange(
                EventType.ALARM_CLEARED,
                rule,
                value,
                f"{rule.device}.{rule.point} = {value:g} back from {side} {limit:g}",
            )
        return None
