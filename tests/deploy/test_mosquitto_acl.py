"""The shipped Mosquitto config (deploy/mosquitto/) on a real broker: TLS only, accounts, topic ACLs.

An edge delivers over TLS with its own account; it cannot publish as another edge nor read other edges'
data; anonymous clients and wrong passwords are refused.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import BrokerConfig, TlsConfig, UplinkConfig
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.topics import EdgeTopics
from tests.support.ackhub import Hub, wait_until
from tests.support.brokers import Mosquitto

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
SITE = "garden-court"
PASSWORDS = {"hub": "hub-secret", f"{SITE}.b1-plantroom": "b1-secret", f"{SITE}.b2-plantroom": "b2-secret",
             "hub-notify": "notify-secret", "integration-bms": "bms-secret"}  # fmt: skip


def make_certs(d: Path) -> None:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"),
        "-days", "1", "-subj", "/CN=estatehub-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "broker.key"), "-out", str(d / "broker.csr"),
        "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(d / "broker.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
        "-CAcreateserial", "-out", str(d / "broker.pem"), "-days", "1", "-extfile", str(d / "san.ext"))


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Mosquitto]:
    make_certs(tmp_path)
    passwd = tmp_path / "estatehub.passwd"
    passwd.touch()
    for user, password in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    shipped = (DEPLOY / "estatehub.conf").read_text()
    settings = []
    for line in shipped.splitlines():
        if not line or line.startswith(("#", "listener", "persistence")):
            continue  # the fixture supplies its own listener port and no persistence
        line = re.sub(r"/etc/mosquitto/certs/", f"{tmp_path}/", line)
        line = line.replace("/etc/mosquitto/estatehub.passwd", str(passwd))
        line = line.replace("/etc/mosquitto/estatehub.acl", str(DEPLOY / "estatehub.acl"))
        settings.append(line)
    if os.geteuid() == 0:
        settings.append("user root")  # otherwise it drops to user mosquitto, who cannot read pytest's tmp dir
    broker = Mosquitto(tmp_path, "\n".join(settings) + "\n")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def tls_client(broker: Mosquitto, ca: Path, user: str | None, password: str | None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:6]}")
    client.tls_set(ca_certs=str(ca))
    if user:
        client.username_pw_set(user, password)
    return client


def test_edge_delivers_over_tls_with_its_own_account(secured: Mosquitto, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    hub = Hub(secured.host, secured.port, SITE, username="hub", password=PASSWORDS["hub"], ca_file=str(ca))
    outbox = Outbox(tmp_path / "outbox.sqlite", max_records=1000, max_age_s=3600)
    topics = EdgeTopics(SITE, "b1-plantroom")
    broker = BrokerConfig(host=secured.host, port=secured.port, username=f"{SITE}.b1-plantroom",
                          password=PASSWORDS[f"{SITE}.b1-plantroom"], tls=TlsConfig(ca_file=ca))
    uplink = Uplink(outbox, broker, topics, UplinkConfig(), status=lambda: {}, client_id="b1-edge")
    uplink.start()
    try:
        seqs = outbox.add([{"kind": "reading", "ts": 1, "device": "m1", "point": "energy_import",
                            "quantity": "energy_import_kwh", "value": 1.5}])
        wait_until(lambda: hub.seqs("b1-plantroom") == set(seqs), 10, "the reading at the hub over TLS")
        wait_until(lambda: outbox.stats().backlog == 0, 5, "the hub's ack to reach the edge through the ACL")
    finally:
        uplink.stop()
        hub.close()
        outbox.close()


def test_an_edge_cannot_publish_as_another_edge_or_read_its_data(secured: Mosquitto, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    hub = Hub(secured.host, secured.port, SITE, username="hub", password=PASSWORDS["hub"], ca_file=str(ca))
    seen_by_b1: list[str] = []
    b1 = tls_client(secured, ca, f"{SITE}.b1-plantroom", PASSWORDS[f"{SITE}.b1-plantroom"])
    b1.on_message = lambda _c, _u, msg: seen_by_b1.append(msg.topic)
    b1.connect(secured.host, secured.port)
    b1.loop_start()
    b2 = tls_client(secured, ca, f"{SITE}.b2-plantroom", PASSWORDS[f"{SITE}.b2-plantroom"])
    b2.connect(secured.host, secured.port)
    b2.loop_start()
    try:
        wait_until(b1.is_connected, 5, "edge b1 to connect")
        b1.subscribe(f"eh/v1/{SITE}/+/up/#", qos=1)
        wait_until(b2.is_connected, 5, "edge b2 to connect")
        time.sleep(0.3)
        forged = b'{"v":1,"kind":"status","site":"garden-court","edge":"b2-plantroom","sent_at":1,"state":"offline"}'
        b1.publish(f"eh/v1/{SITE}/b2-plantroom/up/status", forged, qos=1).wait_for_publish(3)
        genuine = b'{"v":1,"kind":"status","site":"garden-court","edge":"b2-plantroom","sent_at":2,"state":"online"}'
        b2.publish(f"eh/v1/{SITE}/b2-plantroom/up/status", genuine, qos=1).wait_for_publish(3)
        wait_until(lambda: bool(hub.statuses), 5, "the genuine status at the hub")
        time.sleep(0.5)
        assert [s.sent_at for s in hub.statuses] == [2], "the forged status must not reach the hub"
        assert seen_by_b1 == [], "an edge must not read another edge's uplink"
    finally:
        for c in (b1, b2):
            c.disconnect()
            c.loop_stop()
        hub.close()


def test_notifications_reach_integrations_and_the_notify_account_can_forge_no_uplink(
    secured: Mosquitto, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    hub = Hub(secured.host, secured.port, SITE, username="hub", password=PASSWORDS["hub"], ca_file=str(ca))
    received: list[str] = []
    bms = tls_client(secured, ca, "integration-bms", PASSWORDS["integration-bms"])
    bms.on_message = lambda _c, _u, msg: received.append(msg.topic)
    notifier = tls_client(secured, ca, "hub-notify", PASSWORDS["hub-notify"])
    clients = (bms, notifier)
    for client in clients:
        client.connect(secured.host, secured.port)
        client.loop_start()
    try:
        wait_until(lambda: all(c.is_connected() for c in clients), 5, "both clients to connect")
        bms.subscribe(f"eh/v1/{SITE}/hub/notify/#", qos=1)
        time.sleep(0.3)
        notifier.publish(f"eh/v1/{SITE}/hub/notify/ticket.assigned", b"{}", qos=1).wait_for_publish(3)
        forged = b'{"v":1,"kind":"status","site":"garden-court","edge":"b1-plantroom","sent_at":1,"state":"offline"}'
        notifier.publish(f"eh/v1/{SITE}/b1-plantroom/up/status", forged, qos=1).wait_for_publish(3)
        wait_until(lambda: bool(received), 5, "the notification at the integration")
        time.sleep(0.5)
        assert received == [f"eh/v1/{SITE}/hub/notify/ticket.assigned"]
        assert hub.statuses == [], "the notify account must not publish edge uplinks"
    finally:
        for client in clients:
            client.disconnect()
            client.loop_stop()
        hub.close()


@pytest.mark.parametrize(("user", "password"), [(None, None), (f"{SITE}.b1-plantroom", "wrong")])
def test_anonymous_and_wrong_passwords_are_refused(secured: Mosquitto, tmp_path: Path, user: str | None,
                                                    password: str | None) -> None:
    client = tls_client(secured, tmp_path / "ca.pem", user, password)
    refused: list[object] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: refused.append(reason) if reason.is_failure else None
    client.connect(secured.host, secured.port)
    client.loop_start()
    try:
        wait_until(lambda: bool(refused), 5, "the broker to refuse the connection")
        assert not client.is_connected()
    finally:
        client.loop_stop()


def test_plaintext_is_not_offered(secured: Mosquitto) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.username_pw_set("hub", PASSWORDS["hub"])
    client.connect(secured.host, secured.port)
    client.loop_start()
    try:
        time.sleep(1.0)
        assert not client.is_connected(), "a plaintext client got through a TLS-only listener"
    finally:
        client.loop_stop()
