"""`make demo`: the simulated site, the edge agent and an embedded broker on this machine.

Until the cloud hub lands, a demo receiver stands in for it: it validates and counts what arrives,
acknowledges like the hub (so the edge's outbox drains), and prints what flows. It keeps nothing: a
real hub acks only after durable storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from deploy.embedded_broker import Account, EmbeddedBroker
from edge.agent import EdgeAgent
from edge.config import parse_config
from firmware_sims.control import DEFAULT_SOCKET, ControlServer
from firmware_sims.site import start_site
from protocols.messages import (
    Ack,
    DataBatch,
    EdgeState,
    EventBatch,
    EventType,
    ProtocolError,
    Reading,
    Status,
    decode,
    encode,
)
from protocols.sequence import SeqTracker
from protocols.topics import Downlink, EdgeTopics, parse_topic, uplink_filter

DEMO_SITE = Path(__file__).resolve().parents[1] / "firmware_sims" / "sites" / "demo_site.yaml"
NOTABLE = {
    EventType.ALARM_RAISED,
    EventType.ALARM_CLEARED,
    EventType.COUNTER_ROLLOVER,
    EventType.METER_REPLACED,
    EventType.COUNTER_DECREASE,
    EventType.DEVICE_OFFLINE,
    EventType.DEVICE_ONLINE,
    EventType.PATROL_SCAN,
    EventType.RECORDS_DROPPED,
}


def port_or_free(preferred: int) -> int:
    """The standard port when nobody uses it, otherwise any free one."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free TCP port")


class DemoReceiver:
    """Subscribes to every uplink, acks like the hub, and summarises what flows."""

    def __init__(self, port: int, account: Account) -> None:
        self.lock = threading.Lock()
        self.readings = 0
        self.events: Counter[str] = Counter()
        self.trackers: dict[str, SeqTracker] = {}
        self.latest: dict[tuple[str, str], float] = {}
        self.rejected = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="demo-hub", clean_session=False)
        self.client.username_pw_set(account.username, account.password)
        self.client.on_connect = lambda c, *_: c.subscribe(uplink_filter(), qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            address = parse_topic(msg.topic)
            message = decode(bytes(msg.payload))
        except (ValueError, ProtocolError) as exc:
            with self.lock:
                self.rejected += 1
            click.echo(click.style(f"  rejected message on {msg.topic}: {exc}", fg="red"))
            return
        if isinstance(message, Status):
            colour = "green" if message.state is EdgeState.ONLINE else "red"
            click.echo(
                click.style(
                    f"  edge {message.edge} is {message.state.value} "
                    f"(backlog {message.backlog}, dropped {message.dropped_total})",
                    fg=colour,
                )
            )
            return
        if not isinstance(message, DataBatch | EventBatch):
            return
        with self.lock:
            tracker = self.trackers.setdefault(message.edge, SeqTracker())
            new = set(tracker.add([r.seq for r in message.records]))
            for record in message.records:
                if record.seq not in new:
                    continue
                if isinstance(record, Reading):
                    self.readings += 1
                    self.latest[record.device, record.point] = record.value
                    continue
                self.events[record.type.value] += 1
                if record.type is EventType.RECORDS_DROPPED:
                    tracker.account([tuple(r) for r in record.data["ranges"]])
                if record.type in NOTABLE:
                    click.echo(f"  event {record.type.value}: {record.device or ''} {record.message}")
            ack = Ack(
                edge=message.edge,
                acked_through=tracker.acked_through,
                stored=(message.records[0].seq, message.records[-1].seq),
            )
        client.publish(EdgeTopics(address.site, address.edge).down(Downlink.ACK), encode(ack), qos=1)

    def summary(self, elapsed_s: float) -> str:
        with self.lock:
            acked = {edge: t.acked_through for edge, t in self.trackers.items()}
            sample = {
                k: v for k, v in self.latest.items() if k[1] in ("energy_import", "forward_total", "outlet_pressure")
            }
        shown = ", ".join(f"{d}.{p}={v:.2f}" for (d, p), v in sorted(sample.items())[:4])
        return (
            f"[{elapsed_s:5.0f}s] readings {self.readings} ({self.readings / max(elapsed_s, 1):.0f}/s), "
            f"events {dict(self.events)}, acked through {acked}, rejected {self.rejected}\n          {shown}"
        )


async def _run_edge(config: Any, stop: asyncio.Event) -> EdgeAgent:
    agent = EdgeAgent(config)
    await agent.run(stop)
    return agent


def run_demo(workdir: Path, duration_s: float | None, timing: bool) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("edge-outbox.*sqlite*"):  # the demo receiver keeps no history, so start afresh
        stale.unlink()
    port = port_or_free(1883)
    with contextlib.ExitStack() as stack:
        site = stack.enter_context(start_site(DEMO_SITE, timing=timing))
        stack.enter_context(ControlServer(site.devices, site.scanners, DEFAULT_SOCKET))
        broker = EmbeddedBroker(workdir, port, site.spec.site, site.spec.edge).start()
        stack.callback(broker.stop)
        data = site.edge_config_data()
        data["broker"] = {
            "host": "127.0.0.1",
            "port": port,
            "username": broker.edge.username,
            "password": broker.edge.password,
        }
        data["outbox"] = {"path": str(workdir / "edge-outbox.sqlite")}
        config = parse_config(data, "demo edge config")
        (workdir / "edge.yaml").write_text(
            yaml.safe_dump(data | {"broker": data["broker"] | {"password": "<generated>"}}, sort_keys=False)
        )
        receiver = DemoReceiver(port, broker.hub)
        stack.callback(receiver.close)
        click.echo(click.style("EstateHub demo is running", bold=True))
        click.echo(f"  MQTT broker (embedded, per-client credentials and ACLs): 127.0.0.1:{port}")
        for line in site.describe():
            click.echo(f"  {line}")
        click.echo(f"  edge config: {workdir / 'edge.yaml'} (outbox {workdir / 'edge-outbox.sqlite'})")
        click.echo(
            "  Try: estatehub sim scan gate-scanner GUARD-0042   |   estatehub sim fault b1-u04-elec no_response"
        )
        click.echo("  The cloud hub (console, bills) is not part of this build yet; a demo receiver acks and counts.")
        click.echo("  Ctrl-C stops everything.")
        asyncio.run(_supervise(config, receiver, duration_s))
    click.echo("demo stopped cleanly")


async def _supervise(config: Any, receiver: DemoReceiver, duration_s: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    edge = asyncio.create_task(_run_edge(config, stop))
    started = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=5)
        click.echo(receiver.summary(time.monotonic() - started))
        if duration_s is not None and time.monotonic() - started >= duration_s:
            stop.set()
    await edge


@click.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".demo"),
    show_default=True,
    help="Where the demo keeps the edge outbox, its config and the broker's password file.",
)
@click.option("--duration", type=float, help="Stop after this many seconds (default: run until Ctrl-C).")
@click.option(
    "--timing/--no-timing", default=True, show_default=True, help="Emulate RS-485 wire timing in the simulated meters."
)
def demo(workdir: Path, duration: float | None, timing: bool) -> None:
    """Run the simulated site, the edge agent and an embedded broker, and show what flows."""
    run_demo(workdir, duration, timing)
