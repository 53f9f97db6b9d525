"""The channels the dispatcher sends over: MQTT for integrations, signed webhooks, SMS.

Each ``send`` delivers one notification or raises; ``Undeliverable`` means trying again cannot help (no phone
number), anything else is retried with backoff by the dispatcher.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud.auth.sms import SmsSender
from cloud.notify.models import Channel
from cloud.settings import HubSettings
from protocols.topics import NAMESPACE, TOPIC_VERSION

log = logging.getLogger(__name__)

NOTIFY_TOPIC = f"{NAMESPACE}/{TOPIC_VERSION}/{{site}}/hub/notify/{{kind}}"
"""Where integrations subscribe (QoS 1): ``eh/v1/<site>/hub/notify/<kind>``, e.g.
``eh/v1/garden-court/hub/notify/alarm.raised``; notifications of no site go to site ``all``."""
SIGNATURE_HEADER = "X-EstateHub-Signature"
TIMESTAMP_HEADER = "X-EstateHub-Timestamp"
WEBHOOK_TIMEOUT_S = 5.0
MQTT_TIMEOUT_S = 5.0


class Undeliverable(Exception):
    """Retrying cannot help: the delivery is given up at once."""


@dataclass(frozen=True)
class Outgoing:
    """What a channel needs of a notification (read in the claiming transaction)."""

    id: int
    kind: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime
    site: str | None
    user_id: int | None
    phone: str | None

    def payload(self) -> dict[str, Any]:
        """The integration payload: no phone numbers."""
        return {
            "v": 1, "id": self.id, "kind": self.kind, "site": self.site, "user_id": self.user_id,
            "title": self.title, "body": self.body, "data": self.data, "created_at": self.created_at.isoformat(),
        }  # fmt: skip


class Sender(Protocol):
    channel: Channel

    def send(self, item: Outgoing) -> None: ...


class MqttSender:
    """Publishes to NOTIFY_TOPIC at QoS 1 with the hub's notify credentials; one connection, kept open."""

    channel = Channel.MQTT

    def __init__(self, host: str, port: int, *, username: str | None = None, password: str | None = None,
                 ca_file: str | None = None, client_id: str = "eh-hub-notify") -> None:  # fmt: skip
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        if username is not None:
            self._client.username_pw_set(username, password)
        if ca_file:
            self._client.tls_set(ca_certs=ca_file)
        self._client.reconnect_delay_set(1, 30)
        self._connected = threading.Event()
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = lambda *_: self._connected.clear()
        self._host, self._port = host, port
        self._started = False
        self._lock = threading.Lock()

    def send(self, item: Outgoing) -> None:
        with self._lock:
            if not self._started:
                self._client.connect_async(self._host, self._port, 30)
                self._client.loop_start()
                self._started = True
        if not self._connected.wait(MQTT_TIMEOUT_S):
            raise RuntimeError(f"not connected to the MQTT broker {self._host}:{self._port}")
        topic = NOTIFY_TOPIC.format(site=item.site or "all", kind=item.kind)
        info = self._client.publish(topic, json.dumps(item.payload(), ensure_ascii=False), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"MQTT publish to {topic} failed: {mqtt.error_string(info.rc)}")
        info.wait_for_publish(MQTT_TIMEOUT_S)
        if not info.is_published():
            raise RuntimeError(f"MQTT broker {self._host}:{self._port} did not confirm {topic} within "
                               f"{MQTT_TIMEOUT_S:.0f} s")  # fmt: skip

    def _on_connect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("notify: MQTT broker %s:%d refused the connection: %s", self._host, self._port, reason)
        else:
            self._connected.set()

    def close(self) -> None:
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()


class WebhookSender:
    """POSTs the payload as JSON, signed: ``X-EstateHub-Signature: sha256=<hex HMAC-SHA256 of
    "<timestamp>.<body>">`` with the shared secret, and the timestamp in ``X-EstateHub-Timestamp``."""

    channel = Channel.WEBHOOK

    def __init__(self, url: str, secret: str, clock: Any = None) -> None:
        self._url, self._secret = url, secret.encode()
        self._clock = clock or (lambda: int(datetime.now().timestamp()))

    def send(self, item: Outgoing) -> None:
        body = json.dumps(item.payload(), ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(self._clock())
        request = urllib.request.Request(self._url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "X-EstateHub-Event": item.kind,
            "X-EstateHub-Delivery": str(item.id), TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        })  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"webhook {self._url} answered {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise RuntimeError(f"webhook {self._url} unreachable: {exc}") from None


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str, now_s: int, tolerance_s: int = 300) -> bool:
    """For receivers: the signature matches and the timestamp is recent (a replayed request is refused)."""
    if not timestamp.isdigit() or abs(now_s - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class SmsChannel:
    """Through the hub's SmsSender (the log implementation unless a gateway is plugged in)."""

    channel = Channel.SMS

    def __init__(self, sender: SmsSender) -> None:
        self._sender = sender

    def send(self, item: Outgoing) -> None:
        if not item.phone:
            raise Undeliverable("no phone number to send the SMS to")
        self._sender.send(item.phone, f"【EstateHub】{item.title}：{item.body}")


def build_senders(settings: HubSettings, sms: SmsSender) -> list[Sender]:
    """The channels the settings turn on; SMS always (it is routed only where it applies)."""
    senders: list[Sender] = [SmsChannel(sms)]
    if settings.notify_mqtt:
        password = settings.notify_mqtt_password.get_secret_value() if settings.notify_mqtt_password else None
        senders.append(MqttSender(
            settings.notify_mqtt_host or settings.broker_host, settings.notify_mqtt_port or settings.broker_port,
            username=settings.notify_mqtt_username, password=password, ca_file=settings.broker_ca_file,
            client_id=f"eh-hub-notify-{settings.share_group}-{uuid.uuid4().hex[:8]}",
        ))  # fmt: skip
    if settings.notify_webhook_url and settings.notify_webhook_secret:
        senders.append(WebhookSender(settings.notify_webhook_url, settings.notify_webhook_secret.get_secret_value()))
    return senders
