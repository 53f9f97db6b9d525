"""The edge agent: wires config, buses, pollers, scanners, the outbox and the uplink together."""

from __future__ import annotations

import asyncio
import logging
from importlib.metadata import version
from pathlib import Path
from typing import Any

from edge.bus import BusHub
from edge.config import EdgeConfig
from edge.counters import CounterTracker
from edge.outbox import Outbox
from edge.poller import DevicePoller, Record
from edge.rules import RuleEngine
from edge.scanner import ScannerReader
from edge.uplink import Uplink
from protocols.topics import EdgeTopics

log = logging.getLogger(__name__)
SECONDS_PER_DAY = 86400


def counter_state_path(outbox: Path) -> Path:
    """Last counter values live beside the outbox: edge-outbox.sqlite -> edge-outbox.counters.sqlite."""
    return outbox.with_name(f"{outbox.stem}.counters.sqlite")


class EdgeAgent:
    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self.outbox = Outbox(
            config.outbox.path,
            max_records=config.outbox.max_records,
            max_age_s=config.outbox.max_age_days * SECONDS_PER_DAY,
        )
        self.hubs = {bus.name: BusHub(bus) for bus in config.buses}
        self.counters = CounterTracker(counter_state_path(config.outbox.path))
        rules = RuleEngine(list(config.rules))
        self.pollers = [
            DevicePoller(device, config.profile_for(device), self.hubs[device.bus], self._commit, self.counters, rules)
            for device in config.devices
        ]
        self.scanners = [ScannerReader(s, self.outbox.add) for s in config.scanners]
        self.uplink = Uplink(
            self.outbox,
            config.broker,
            EdgeTopics(config.site, config.edge),
            config.uplink,
            status=self.status,
            client_id=f"eh-edge-{config.site}-{config.edge}",
        )

    async def _commit(self, records: list[Record]) -> None:
        await asyncio.to_thread(self.outbox.add, records)

    def status(self) -> dict[str, Any]:
        stats = self.outbox.stats()
        return {
            "agent_version": version("estatehub"),
            "config_version": self.config.version,
            "profile_versions": {p.profile.id: p.profile.version for p in self.pollers},
            "backlog": stats.backlog,
            "dropped_total": stats.dropped_total,
            "links": {p.name: p.health.as_link(ok=not p.breaker.open) for p in self.pollers},
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; readings stay in the outbox whatever happens to the uplink."""
        self.uplink.start()
        for scanner in self.scanners:
            scanner.start()
        tasks = []
        by_bus: dict[str, list[DevicePoller]] = {}
        for poller in self.pollers:
            by_bus.setdefault(poller.hub.name, []).append(poller)
        for pollers in by_bus.values():
            shortest = min((g.interval_s for p in pollers for g in p.groups), default=1.0)
            for i, poller in enumerate(pollers):
                tasks.append(asyncio.create_task(poller.run(stagger_s=shortest * i / len(pollers)), name=poller.name))
        log.info(
            "edge %s/%s: polling %d devices on %d buses, %d scanners",
            self.config.site,
            self.config.edge,
            len(self.pollers),
            len(self.hubs),
            len(self.scanners),
        )
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for scanner in self.scanners:
                scanner.stop()
            for hub in self.hubs.values():
                hub.close()
            self.uplink.stop()
            self.outbox.close()
            self.counters.close()
