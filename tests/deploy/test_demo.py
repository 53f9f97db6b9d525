"""`make demo` runs the whole (edge-side) system on embedded defaults and stops cleanly on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_demo_flows_readings_end_to_end_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy.cli", "demo", "--no-timing", "--workdir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    time.sleep(14)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "MQTT broker (embedded, per-client credentials and ACLs): 127.0.0.1:" in out
    assert "edge demo-edge is online" in out
    acked = [int(n) for n in re.findall(r"acked through \{'demo-edge': (\d+)\}", out)]
    readings = [int(n) for n in re.findall(r"readings (\d+) ", out)]
    assert readings and readings[-1] > 100, out
    assert acked and acked[-1] > 100, "the edge's outbox drains through the end-to-end ack"
    assert "rejected 0" in out
    assert out.rstrip().endswith("demo stopped cleanly"), out[-2000:]
