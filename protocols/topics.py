"""Versioned MQTT topic namespace shared by edge and hub.

Layout: ``eh/v1/{site}/{edge}/{up|down}/{channel}``. The version sits in the path so a v2 hub can run
beside v1 edges during a migration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

NAMESPACE = "eh"
TOPIC_VERSION = "v1"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Uplink(StrEnum):
    DATA = "data"
    EVENTS = "events"
    STATUS = "status"


class Downlink(StrEnum):
    ACK = "ack"
    CONFIG = "config"
    CMD = "cmd"


def check_id(kind: str, value: str) -> str:
    """Reject ids that would break the topic tree (``/``, ``+``, ``#``, spaces, empty)."""
    if not _ID.fullmatch(value):
        raise ValueError(
            f"{kind} id {value!r} is not usable in MQTT topics: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return value


@dataclass(frozen=True)
class EdgeTopics:
    """All topics of one edge box."""

    site: str
    edge: str

    def __post_init__(self) -> None:
        check_id("site", self.site)
        check_id("edge", self.edge)

    @property
    def base(self) -> str:
        return f"{NAMESPACE}/{TOPIC_VERSION}/{self.site}/{self.edge}"

    def up(self, channel: Uplink) -> str:
        return f"{self.base}/up/{channel.value}"

    def down(self, channel: Downlink) -> str:
        return f"{self.base}/down/{channel.value}"


@dataclass(frozen=True)
class TopicAddress:
    site: str
    edge: str
    direction: str
    channel: Uplink | Downlink


def uplink_filter(site: str = "+") -> str:
    """Subscription filter for every uplink message (of one site, or of all sites)."""
    return f"{NAMESPACE}/{TOPIC_VERSION}/{site}/+/up/#"


def parse_topic(topic: str) -> TopicAddress:
    """Split a topic into its parts; raises ValueError naming what is wrong."""
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != NAMESPACE:
        raise ValueError(f"topic {topic!r} is not in the {NAMESPACE}/{{version}}/{{site}}/{{edge}}/up|down/... tree")
    if parts[1] != TOPIC_VERSION:
        raise ValueError(f"topic {topic!r} uses version {parts[1]!r}; this build speaks {TOPIC_VERSION}")
    _, _, site, edge, direction, channel = parts
    check_id("site", site)
    check_id("edge", edge)
    try:
        if direction == "up":
            return TopicAddress(site, edge, direction, Uplink(channel))
        if direction == "down":
            return TopicAddress(site, edge, direction, Downlink(channel))
    except ValueError:
        raise ValueError(f"topic {topic!r}: unknown {direction} channel {channel!r}") from None
    raise ValueError(f"topic {topic!r}: direction must be 'up' or 'down', not {direction!r}")
