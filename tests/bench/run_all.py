"""`make bench`: print every figure as `name: value`, and plot the RTU cycle comparison.

Figures go to stdout and bench-results/figures.txt; the plot to bench-results/rtu_cycle.png.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from tests.bench import agent_load, alarm_notify, billrun, delivery, ingest, rtu_cycle, timeseries_query  # noqa: E402

RESULTS = Path("bench-results")


def plot_rtu(figures: dict[str, float], path: Path) -> None:
    labels = [
        "one request per point\n(wire model)",
        "planned requests\n(wire model = physical min)",
        "planned, measured\n(edge + pymodbus + sim)",
    ]
    values = [
        figures["rtu_wire_ms_per_cycle_naive"],
        figures["rtu_cycle_ms_physical_min"],
        figures["rtu_cycle_ms_measured"],
    ]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bars = ax.bar(labels, [v / 1000 for v in values], color=["#b0b0b0", "#4c78a8", "#f58518"])
    ax.bar_label(bars, labels=[f"{v / 1000:.2f} s" for v in values])
    ax.set_ylabel("seconds per poll cycle")
    ax.set_title("Reference RS-485 bus: 32 DTSU666 + 16 water meters, 9600 8N1, 20 ms device latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    figures: dict[str, float] = {}
    for bench in (rtu_cycle, delivery, agent_load, ingest, timeseries_query, alarm_notify, billrun):
        for name, value in bench.run().items():
            figures[name] = value
            print(f"{name}: {value}", flush=True)
    (RESULTS / "figures.txt").write_text("".join(f"{k}: {v}\n" for k, v in figures.items()))
    plot_rtu(figures, RESULTS / "rtu_cycle.png")
    print(f"# plot: {RESULTS / 'rtu_cycle.png'}")


if __name__ == "__main__":
    main()
