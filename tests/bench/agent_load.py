"""The whole edge agent under load: CPU and memory while it polls ~1,000 points/s and delivers them.

60 simulated DTSU666 meters behind a Modbus TCP gateway, every point polled each second, delivered to
an acking hub through the shared Mosquitto. Field lesson: gateways that grow in memory or burn a core
at this rate do not survive a year on a small box.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from firmware_sims.device import SimulatedDevice
from firmware_sims.tcp_server import TcpServer
from protocols.profiles import load_profile
from protocols.topics import EdgeTopics
from tests.support.ackhub import Hub, forget_edge

METERS = 60
RUN_S = 40.0
WARMUP_S = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(host: str = "127.0.0.1", port: int = 1883) -> dict[str, float]:
    profile = load_profile("chint_dtsu666")
    devices = [SimulatedDevice(profile, unit, seed=unit) for unit in range(1, METERS + 1)]
    tag = uuid.uuid4().hex[:6]
    site, edge = f"bench-{tag}", f"edge-{tag}"
    with TcpServer(devices) as gateway, tempfile.TemporaryDirectory() as tmp:
        config = {
            "site": site, "edge": edge, "broker": {"host": host, "port": port},
            "outbox": {"path": f"{tmp}/outbox.sqlite"},
            "buses": [{"name": "gw", "type": "modbus-tcp", "host": "127.0.0.1", "port": gateway.port}],
            "devices": [
                {"name": f"m{d.unit_id}", "bus": "gw", "unit_id": d.unit_id, "profile": profile.id,
                 "poll_intervals": {"instant": 1, "energy": 1}}
                for d in devices
            ],
        }  # fmt: skip
        path = Path(tmp) / "edge.yaml"
        path.write_text(yaml.safe_dump(config))
        hub = Hub(host, port, site)
        agent = subprocess.Popen([sys.executable, "-m", "deploy.cli", "edge", "run", str(path)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            time.sleep(WARMUP_S)
            cpu0, rss0, stored0, t0 = _cpu_s(agent.pid), _rss_mb(agent.pid), len(hub.seqs(edge)), time.monotonic()
            time.sleep(RUN_S - WARMUP_S)
            cpu1, rss1, stored1, t1 = _cpu_s(agent.pid), _rss_mb(agent.pid), len(hub.seqs(edge)), time.monotonic()
        finally:
            agent.terminate()
            agent.wait(20)
            hub.close()
            forget_edge(host, port, f"eh-edge-{site}-{edge}", EdgeTopics(site, edge))
    return {
        "edge_points_per_s_delivered": round((stored1 - stored0) / (t1 - t0)),
        "edge_cpu_pct_of_one_core": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
        "edge_rss_mb_after_warmup": round(rss0, 1),
        "edge_rss_mb_growth_30s": round(rss1 - rss0, 1),
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name}: {value}")
