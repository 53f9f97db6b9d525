"""A stand-in for the cloud ingest, for tests: stores by (edge, seq) and acks like the real hub will.

acked_through is the highest contiguous seq stored (gaps named by a records_dropped event count as
filled); ``stored`` is the (first, last) of the batch being answered. Re-deliveries are absorbed, and a
seq that comes back with different content is recorded as a conflict, since that would mean lost data.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from protocols.messages import (
    Ack,
    DataBatch,
    Event,
    EventBatch,
    EventType,
    ProtocolError,
    Reading,
    Status,
    decode,
    encode,
)
from protocols.seq_ranges import contiguous_through, merge
from protocols.topics import Downlink, EdgeTopics, parse_topic, uplink_filter
from protocols.topics import Uplink as Channel


def _parse_record(body: str) -> Reading | Event:
    data = json.loads(body)
    return Event.model_validate_json(body) if "type" in data else Reading.model_validate_json(body)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.1f} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Seen:
    channel: Channel
    kind: str
    seqs: list[int]
    size: int
    at: float


@dataclass
class Hub:
    """The test stand-in for the cloud ingest: stores by (edge, seq), acks like the real hub."""

    host: str
    port: int
    site: str
    ack: bool = True
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    ignore_first: int = 0
    """Silently lose this many batches first (as if the hub crashed before storing them)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    stored: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    held: dict[str, list[list[int]]] = field(default_factory=lambda: defaultdict(list))
    """Per edge: seqs stored or reported dropped, as merged ranges."""
    deliveries: Counter[tuple[str, int]] = field(default_factory=Counter)
    first_seen: dict[int, float] = field(default_factory=dict)
    records: dict[tuple[str, int], str] = field(default_factory=dict)
    conflicts: list[tuple[str, int]] = field(default_factory=list)
    """Seqs delivered twice with different content: a reused seq, which would be data loss."""
    batches: list[Seen] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-hub-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, *_: c.subscribe(uplink_filter(self.site), qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.3)  # type: ignore[arg-type]  # floats work; the hint says int
        if self.username:
            self.client.username_pw_set(self.username, self.password)
        if self.ca_file:
            self.client.tls_set(ca_certs=self.ca_file)
        self.client.connect_async(self.host, self.port, keepalive=10)
        self.client.loop_start()
        assert self._subscribed.wait(5), "test hub could not subscribe"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def seqs(self, edge: str) -> set[int]:
        with self.lock:
            return set(self.stored[edge])

    def stored_records(self, edge: str) -> list[Reading | Event]:
        """Everything stored for an edge, in seq order."""
        with self.lock:
            bodies = [(seq, body) for (e, seq), body in self.records.items() if e == edge]
        return [_parse_record(body) for _, body in sorted(bodies)]

    def _on_message(self, client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:  # a retained status being cleared
            return
        try:
            message = decode(bytes(msg.payload))
        except ProtocolError as exc:
            pytest.fail(f"edge sent an invalid payload on {msg.topic}: {exc}")
        channel = parse_topic(msg.topic).channel
        assert isinstance(channel, Channel)
        with self.lock:
            if isinstance(message, Status):
                self.statuses.append(message)
                return
            assert isinstance(message, DataBatch | EventBatch)
            seqs = [r.seq for r in message.records]
            self.batches.append(Seen(channel, message.kind, seqs, len(msg.payload), time.monotonic()))
            if self.ignore_first > 0:
                self.ignore_first -= 1
                return
            edge = message.edge
            for record in message.records:
                self.deliveries[edge, record.seq] += 1
                self.first_seen.setdefault(record.seq, time.monotonic())
                self.stored[edge].add(record.seq)
                body = record.model_dump_json()
                if self.records.setdefault((edge, record.seq), body) != body:
                    self.conflicts.append((edge, record.seq))
                if isinstance(record, Event) and record.type is EventType.RECORDS_DROPPED:
                    self.held[edge] = merge([*self.held[edge], *record.data["ranges"]])
            self.held[edge] = merge([*self.held[edge], *([s, s] for s in seqs)])
            if self.ack:
                ack = Ack(edge=edge, acked_through=contiguous_through(self.held[edge]), stored=(seqs[0], seqs[-1]))
                client.publish(EdgeTopics(message.site, edge).down(Downlink.ACK), encode(ack), qos=1)


def forget_edge(host: str, port: int, client_id: str, topics: EdgeTopics) -> None:
    """Leave the broker as found: drop the persistent session and the retained status."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.connect(host, port)
    client.loop_start()
    client.publish(topics.up(Channel.STATUS), b"", qos=1, retain=True).wait_for_publish(3)
    client.disconnect()
    client.loop_stop()


