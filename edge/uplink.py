"""The uplink: delivers the outbox to the hub over MQTT; a record leaves the outbox only when the hub acks it.

A PUBACK only says the broker has the message, not that the hub stored it, so delivery is confirmed end to
end: the hub answers each batch with an Ack (``acked_through`` = highest contiguous seq stored, ``stored`` =
the batch it answers). Unconfirmed batches are resent after ``ack_timeout_s``; the hub dedupes by seq.

One thread owns the paho client and all delivery state; paho's callbacks run on it too (the client is driven
with ``loop()``, not ``loop_start()``), so nothing here needs a lock except the counters read by others.
paho's own re-sending of unacknowledged messages after a reconnect is switched off (``drop_out_messages``),
so every copy in flight is one this module counts: the window of unconfirmed batches bounds paho's queue.

After an outage the records collected while away are a backlog, replayed in seq order at
``replay_records_per_s``; records collected after the reconnect go out at once beside it, never behind it.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from edge.config import BrokerConfig, UplinkConfig
from edge.outbox import Outbox, Record
from protocols.messages import (
    Ack,
    DataBatch,
    EdgeState,
    Event,
    EventBatch,
    EventType,
    ProtocolError,
    Reading,
    Status,
    decode,
    encode,
)
from protocols.topics import Downlink, EdgeTopics
from protocols.topics import Uplink as Channel

log = logging.getLogger(__name__)

TICK_S = 0.05
"""Longest wait in the network loop: how soon fresh records and stop() are noticed."""
REPLAY_BURST_S = 0.25
"""The replay token bucket holds this many seconds' worth of records (plus one batch of debt)."""
STOP_FLUSH_S = 1.0
"""How long stop() waits for the broker to take the offline status."""


@dataclass(frozen=True)
class UplinkCounters:
    """A snapshot for health and status pages."""

    connected: bool
    published_batches: int
    """Batches published for the first time."""
    resent_batches: int
    """Re-publishes of batches the hub had not confirmed in time (or that were cut off by a disconnect)."""
    acked_through: int
    last_ack_at: float | None
    """Wall-clock time (epoch s) of the last Ack from the hub."""
    inflight_batches: int


@dataclass
class _Batch:
    """A published run of consecutive same-kind records the hub has not confirmed yet."""

    first: int
    last: int
    replay: bool
    due: float = 0.0
    """Monotonic time after which it is resent if still unconfirmed."""
    info: mqtt.MQTTMessageInfo | None = None
    """The copy paho holds, if any; a batch is resent only once paho has let go of its previous copy."""
    sends: int = 0


class Uplink:
    """Runs on its own thread between start() and stop()."""

    def __init__(
        self,
        outbox: Outbox,
        broker: BrokerConfig,
        topics: EdgeTopics,
        settings: UplinkConfig,
        status: Callable[[], Mapping[str, Any]],
        client_id: str,
    ) -> None:
        self._outbox = outbox
        self._broker = broker
        self._topics = topics
        self._settings = settings
        self._status = status
        self._record_budget = settings.batch_max_bytes - _envelope_bytes(topics)
        self._client = self._make_client(client_id)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counter_lock = threading.Lock()
        self._connected = False
        self._published = 0
        self._resent = 0
        self._last_ack_at: float | None = None
        # Touched only by the uplink thread from here on.
        self._link_up = False
        self._delay = broker.reconnect_min_s
        self._inflight: dict[int, _Batch] = {}
        self._acked = outbox.stats().acked_through
        self._fresh_from = self._acked + 1
        """Records from here on were collected while connected: they are sent at once."""
        self._replay: deque[list[int]] = deque()
        """[first, last] seq ranges collected while away (or before start), replayed in order, throttled."""
        self._burst = max(1.0, settings.replay_records_per_s * REPLAY_BURST_S)
        self._tokens = self._burst
        self._refilled_at = time.monotonic()
        self._status_due = math.inf

    def _make_client(self, client_id: str) -> mqtt.Client:
        broker = self._broker
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, protocol=mqtt.MQTTv311
        )
        if broker.username is not None:
            client.username_pw_set(broker.username, broker.password)
        if broker.tls is not None:
            # Set once and never removed: a TLS failure means retrying TLS, never plaintext.
            client.tls_set(
                ca_certs=str(broker.tls.ca_file),
                certfile=str(broker.tls.cert_file) if broker.tls.cert_file else None,
                keyfile=str(broker.tls.key_file) if broker.tls.key_file else None,
            )
        # Backstop only: the batch window keeps paho's queue below this (+2: birth and offline status).
        client.max_inflight_messages_set(self._settings.max_inflight_batches + 2)
        client.max_queued_messages_set(self._settings.max_inflight_batches + 2)
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.connect_async(broker.host, broker.port, broker.keepalive_s)
        return client

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("uplink already started")
        self._thread = threading.Thread(target=self._run, name=f"uplink-{self._topics.edge}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish the offline status, disconnect cleanly and join the thread; unacked records stay queued."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("uplink thread did not stop within %.1f s", timeout_s)

    def counters(self) -> UplinkCounters:
        with self._counter_lock:
            return UplinkCounters(
                connected=self._connected,
                published_batches=self._published,
                resent_batches=self._resent,
                acked_through=self._acked,
                last_ack_at=self._last_ack_at,
                inflight_batches=len(self._inflight),
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception:
                # Keep delivering whatever went wrong (a full disk, a bad status field): records wait safely.
                log.exception("uplink: unexpected error; carrying on in %.1f s", self._delay)
                self._backoff()
        self._shutdown()

    def _step(self) -> None:
        client = self._client
        if not self._link_up:
            try:
                client.will_set(self._status_topic, self._status_payload(EdgeState.OFFLINE), qos=1, retain=True)
                rc = client.reconnect()
            except OSError as exc:  # refused, unreachable, TLS handshake failed (ssl.SSLError)
                self._connect_failed(str(exc) or type(exc).__name__)
                return
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._connect_failed(mqtt.error_string(rc))
                return
            self._link_up = True
        rc = client.loop(TICK_S)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._link_up = False
            self._set_connected(False)
            self._connect_failed(f"connection lost ({mqtt.error_string(rc)})")
            return
        if self._connected:
            self._pump()
            if time.monotonic() >= self._status_due:
                self._publish_status()

    def _connect_failed(self, why: str) -> None:
        b = self._broker
        tls = " over TLS" if b.tls else ""
        log.warning("uplink: broker %s:%d%s: %s; retrying in about %.1f s", b.host, b.port, tls, why, self._delay)
        self._backoff()

    def _backoff(self) -> None:
        """Wait (jittered, so a fleet does not reconnect in step), then double the next wait up to the max."""
        b = self._broker
        self._stop.wait(max(b.reconnect_min_s, self._delay * random.uniform(0.5, 1.0)))
        self._delay = min(self._delay * 2, b.reconnect_max_s)

    def _shutdown(self) -> None:
        client = self._client
        if self._connected:
            # A clean stop sends no will, so say it ourselves.
            info = client.publish(self._status_topic, self._status_payload(EdgeState.OFFLINE), qos=1, retain=True)
            deadline = time.monotonic() + STOP_FLUSH_S
            while not info.is_published() and time.monotonic() < deadline:
                if client.loop(TICK_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
        client.disconnect()
        self._link_up = False
        self._set_connected(False)

    # --- paho callbacks (on the uplink thread) -------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any) -> None:
        b = self._broker
        if reason.is_failure:
            log.error("uplink: broker %s:%d refused the connection: %s", b.host, b.port, reason)
            return
        log.info("uplink: connected to %s:%d%s", b.host, b.port, " over TLS" if b.tls else "")
        self._delay = b.reconnect_min_s
        client.drop_out_messages()
        now = time.monotonic()
        for batch in self._inflight.values():
            if batch.info is not None and not batch.info.is_published():
                batch.info, batch.due = None, now  # cut off before the broker took it: resend now
        # Subscribe every time: a restarted broker may have lost the persistent session.
        rc, _mid = client.subscribe(self._topics.down(Downlink.ACK), qos=1)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.warning("uplink: subscribing to acks failed: %s", mqtt.error_string(rc))
        last = self._outbox.last_seq
        if self._fresh_from <= last:
            self._replay.append([self._fresh_from, last])
            self._fresh_from = last + 1
        self._set_connected(True)
        self._publish_status()

    def _publish_status(self) -> None:
        """The retained online status; refreshed every status_interval_s so backlog and link health stay current."""
        self._status_due = time.monotonic() + self._settings.status_interval_s
        info = self._client.publish(self._status_topic, self._status_payload(EdgeState.ONLINE), qos=1, retain=True)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.warning("uplink: publishing the online status failed: %s", mqtt.error_string(info.rc))

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if not self._stop.is_set():
            log.warning("uplink: disconnected from the broker: %s", reason)
        self._set_connected(False)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            ack = decode(bytes(msg.payload))
        except ProtocolError as exc:
            log.warning("uplink: ignoring a bad message on %s: %s", msg.topic, exc)
            return
        if not isinstance(ack, Ack) or ack.edge != self._topics.edge:
            log.warning("uplink: ignoring a %s message for edge %r on %s", ack.kind, ack.edge, msg.topic)
            return
        if ack.acked_through > self._acked:
            self._outbox.ack(ack.acked_through)
        with self._counter_lock:
            self._acked = max(self._acked, ack.acked_through)
            self._last_ack_at = time.time()
        for first, batch in list(self._inflight.items()):
            unconfirmed_from = max(batch.first, self._acked + 1)
            if batch.last <= self._acked or (
                ack.stored is not None and ack.stored[0] <= unconfirmed_from and batch.last <= ack.stored[1]
            ):
                del self._inflight[first]

    # --- sending ------------------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Resend what timed out, then fill the window: fresh records first, then the throttled backlog."""
        now = time.monotonic()
        for first, batch in sorted(self._inflight.items()):
            if now >= batch.due and (batch.info is None or batch.info.is_published()):
                records = self._run_of(max(batch.first, self._acked + 1), batch.last)
                if not records:  # dropped by the outbox limits meanwhile; the records_dropped event covers it
                    del self._inflight[first]
                elif not self._send(batch, records, now):
                    return
        while len(self._inflight) < self._settings.max_inflight_batches:
            taken = self._take_fresh() or self._take_replay(now)
            if taken is None:
                return
            batch, records = taken
            self._inflight[batch.first] = batch
            if not self._send(batch, records, now):
                return

    def _take_fresh(self) -> tuple[_Batch, list[Record]] | None:
        if self._fresh_from > self._outbox.last_seq:
            return None
        records = self._run_of(self._fresh_from, None)
        if not records:
            return None
        self._fresh_from = records[-1].seq + 1
        return _Batch(records[0].seq, records[-1].seq, replay=False), records

    def _take_replay(self, now: float) -> tuple[_Batch, list[Record]] | None:
        rate = self._settings.replay_records_per_s
        self._tokens = min(self._burst, self._tokens + (now - self._refilled_at) * rate)
        self._refilled_at = now
        # Keep a slot free for fresh records whenever the window has more than one.
        slots = max(1, self._settings.max_inflight_batches - 1)
        if self._tokens <= 0 or sum(b.replay for b in self._inflight.values()) >= slots:
            return None
        while self._replay:
            span = self._replay[0]
            records = self._run_of(span[0], span[1])
            if records:
                span[0] = records[-1].seq + 1
            if not records or span[0] > span[1]:
                self._replay.popleft()
            if records:
                self._tokens -= len(records)
                return _Batch(records[0].seq, records[-1].seq, replay=True), records
        return None

    def _run_of(self, first: int, last: int | None) -> list[Record]:
        """The next batch from ``first``: consecutive records of one kind, up to ``last``, within the limits."""
        limit = self._settings.batch_max_records
        if last is not None:
            limit = min(limit, last - first + 1)
        records = self._outbox.read_from(first, limit, self._record_budget)
        if records:
            kind = type(records[0])
            end = next((i for i, r in enumerate(records) if type(r) is not kind), len(records))
            records = [r for r in records[:end] if last is None or r.seq <= last]
        return records

    def _send(self, batch: _Batch, records: list[Record], now: float) -> bool:
        """Publish one batch; False if paho would not take it (the batch stays due and is retried)."""
        head: dict[str, Any] = {"site": self._topics.site, "edge": self._topics.edge, "sent_at": _now_ms()}
        readings = [r for r in records if isinstance(r, Reading)]
        events = [r for r in records if isinstance(r, Event)]  # _run_of gives one kind: one of the two is empty
        if readings:
            topic, payload = self._topics.up(Channel.DATA), encode(DataBatch(**head, records=readings))
        else:
            topic, payload = self._topics.up(Channel.EVENTS), encode(EventBatch(**head, records=events))
        info = self._client.publish(topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            why = mqtt.error_string(info.rc)
            log.warning("uplink: publish of seq %d-%d not accepted: %s", batch.first, batch.last, why)
            batch.info, batch.due = None, now
            return False
        with self._counter_lock:
            if batch.sends:
                self._resent += 1
            else:
                self._published += 1
        batch.sends += 1
        batch.info, batch.due = info, now + self._settings.ack_timeout_s
        return True

    # --- status ---------------------------------------------------------------------------------------------

    @property
    def _status_topic(self) -> str:
        return self._topics.up(Channel.STATUS)

    def _status_payload(self, state: EdgeState) -> bytes:
        stats = self._outbox.stats()
        own: dict[str, Any] = {
            "site": self._topics.site,
            "edge": self._topics.edge,
            "sent_at": _now_ms(),
            "state": state,
            "backlog": stats.backlog,
            "dropped_total": stats.dropped_total,
        }
        try:
            return encode(Status(**{**self._status(), **own}))
        except Exception:
            # Delivery must not hinge on the status callback: connect with a plainer status instead.
            log.exception("uplink: the status callback failed or gave unusable fields; sending status without them")
            return encode(Status(**own))

    def _set_connected(self, connected: bool) -> None:
        with self._counter_lock:
            self._connected = connected


def _now_ms() -> int:
    return int(time.time() * 1000)


def _envelope_bytes(topics: EdgeTopics) -> int:
    """Bytes a batch adds around its records (the larger, events form, with a far-future sent_at)."""
    probe = Event(seq=1, ts=0, type=EventType.RECORDS_DROPPED)
    batch = EventBatch(site=topics.site, edge=topics.edge, sent_at=10**15, records=[probe])
    return len(encode(batch)) - len(encode(probe))
