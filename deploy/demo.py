"""`make demo`: the whole system on embedded defaults, on this machine.

The simulated site (2 buildings x 24 flats, master meters, a pump room, a gate scanner), the edge agent,
an embedded MQTT broker with per-client accounts, and the hub (ingest, API, console) on a SQLite file,
seeded by deploy/demo_seed.py with logins, last month's bills, repairs and patrol setup.
Everything lives in the work directory, so a second run continues where the first stopped; delete the
directory to start over.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr
from sqlalchemy import func, select

from cloud.db import session_factory
from cloud.ingest.models import EdgeStateRow, EventRow
from cloud.service import HubService
from cloud.settings import HubSettings
from cloud.timeseries.models import Sample
from deploy.demo_seed import ADMIN, Seeded, secret, seed_demo, seed_registry
from deploy.embedded_broker import EmbeddedBroker
from edge.agent import EdgeAgent
from edge.config import EdgeConfig, parse_config
from firmware_sims.control import DEFAULT_SOCKET, ControlServer
from firmware_sims.load_shape import DailyShape
from firmware_sims.site import start_site

DEMO_SITE = Path(__file__).resolve().parents[1] / "firmware_sims" / "sites" / "demo_site.yaml"
DEMO_POLL_S = 15.0
"""Every poll group of the demo at most this far apart, so charts fill within a minute."""


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


def _seeded_lines(seeded: Seeded, seed_s: float) -> list[str]:
    where = {"finance": "/console/finance/", "technician": "/console/tech", "guard": "/console/patrol/guard",
             "owner": "/portal/"}  # fmt: skip
    lines = [f"{x.role} login: {x.username} / {x.password}   ({where[x.role]})" for x in seeded.logins]
    history = f"{seeded.history_samples} hourly readings written, " if seeded.history_samples else ""
    lines.append(f"billing: {history}{seeded.bills} bills issued for {seeded.period} (seeded in {seed_s:.1f} s)")
    return lines


def _summary(hub: HubService, elapsed_s: float) -> str:
    with session_factory(hub.engine)() as session:
        readings = session.scalar(select(func.count()).select_from(Sample)) or 0
        events = dict(session.execute(select(EventRow.type, func.count()).group_by(EventRow.type)).all())
        edges = {e.edge: (e.online, e.acked_through) for e in session.scalars(select(EdgeStateRow))}
    shown = ", ".join(f"{k} {'online' if on else 'offline'}, acked through {acked}" for k, (on, acked) in edges.items())
    return f"[{elapsed_s:5.0f}s] hub stored {readings} readings, events {events}; {shown}"


def _edge_config(site_data: dict[str, Any], broker: EmbeddedBroker, workdir: Path, port: int) -> EdgeConfig:
    data = dict(site_data)
    data["broker"] = {
        "host": "127.0.0.1",
        "port": port,
        "username": broker.edge.username,
        "password": broker.edge.password,
    }
    data["outbox"] = {"path": str(workdir / "edge-outbox.sqlite")}
    data["uplink"] = {"status_interval_s": 10}
    config = parse_config(data, "demo edge config")
    faster = []
    for device in config.devices:
        groups = config.profile_for(device).poll_groups
        faster.append(
            {
                **device.model_dump(exclude_none=True),
                "poll_intervals": {g: min(s, DEMO_POLL_S) for g, s in groups.items()},
            }
        )
    return parse_config({**data, "devices": faster}, "demo edge config")


def run_demo(workdir: Path, duration_s: float | None, timing: bool) -> None:
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    mqtt_port, http_port = port_or_free(1883), port_or_free(8000)
    password = secret(workdir, "demo-password")
    with contextlib.ExitStack() as stack:
        site = stack.enter_context(start_site(DEMO_SITE, timing=timing))
        stack.enter_context(ControlServer(site.devices, site.scanners, DEFAULT_SOCKET))
        broker = EmbeddedBroker(workdir, mqtt_port, site.spec.site, site.spec.edge).start()
        stack.callback(broker.stop)
        secret_key = SecretStr(secret(workdir, "hub-secret", 32))
        settings = HubSettings(
            database_url=f"sqlite:///{workdir / 'hub.sqlite'}", secret_key=secret_key,
            broker_port=mqtt_port, broker_username=broker.hub.username, broker_password=SecretStr(broker.hub.password),
            mqtt_v5=False, http_port=http_port,
        )  # fmt: skip
        hub = HubService(settings, ingest=True, worker_name="demo-hub")
        seed_registry(hub.engine, password)
        seeding = time.monotonic()
        shape = DailyShape(utc_offset_s=site.spec.utc_offset_h * 3600)
        seeded = seed_demo(hub.engine, settings, workdir, site.devices, shape, datetime.now(UTC))
        seed_s = time.monotonic() - seeding
        hub.start()
        stack.callback(hub.stop)
        config = _edge_config(site.edge_config_data(), broker, workdir, mqtt_port)
        click.echo(click.style("EstateHub demo is running", bold=True))
        click.echo(f"  console: {hub.console_url}")
        click.echo(f"  demo login: {ADMIN} / {password}")
        for line in _seeded_lines(seeded, seed_s):
            click.echo(f"  {line}")
        click.echo(f"  MQTT broker (embedded, per-client credentials and ACLs): 127.0.0.1:{mqtt_port}")
        for line in site.describe():
            click.echo(f"  {line}")
        click.echo(f"  data: {workdir} (delete it to start over)")
        click.echo(f"  Try: estatehub sim scan gate-scanner {seeded.badge}   (the guard badges at the north gate)")
        click.echo("       estatehub sim fault b1-u04-elec no_response   (a meter goes silent; `clear` ends it)")
        click.echo("  Ctrl-C stops everything.")
        asyncio.run(_supervise(config, hub, duration_s))
    click.echo("demo stopped cleanly")


async def _supervise(config: EdgeConfig, hub: HubService, duration_s: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    edge = asyncio.create_task(EdgeAgent(config).run(stop))
    started = time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=10)
        click.echo(await asyncio.to_thread(_summary, hub, time.monotonic() - started))
        if duration_s is not None and time.monotonic() - started >= duration_s:
            stop.set()
    await edge


@click.command()
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path(".demo"), show_default=True,
              help="Where the demo keeps the hub database, the edge outbox and the generated secrets.")  # fmt: skip
@click.option("--duration", type=float, help="Stop after this many seconds (default: run until Ctrl-C).")
@click.option("--timing/--no-timing", default=True, show_default=True,
              help="Emulate RS-485 wire timing in the simulated meters.")  # fmt: skip
def demo(workdir: Path, duration: float | None, timing: bool) -> None:
    """Run the simulated site, the edge agent, an embedded broker and the hub; print the console address."""
    run_demo(workdir, duration, timing)
