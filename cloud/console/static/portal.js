// Owner portal: month-by-month usage of each of the unit's meters, drawn with the vendored uPlot from the
// console's meter usage JSON (scoped to the signed-in owner on the server).
"use strict";
const Portal = (() => {
  const TZ = "Asia/Shanghai";
  // Buckets are calendar months in Asia/Shanghai, whatever the phone's own time zone.
  const MONTH = new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit" });
  async function monthlyUsage(box) {
    const response = await fetch(`/console/meters/${box.dataset.meter}/usage.json?bucket=month`,
                                 { credentials: "same-origin" });
    if (!response.ok) throw new Error(`usage of meter ${box.dataset.meter}: ${response.status}`);
    const data = await response.json();
    const xs = data.buckets.map((b) => b[0]);
    const ys = data.buckets.map((b) => b[1]);
    box.dataset.points = String(ys.filter((y) => y !== null && y > 0).length);
    box.parentElement.querySelector("[data-testid=no-data]").hidden = ys.some((y) => y !== null && y > 0);
    new uPlot({
      width: Math.max(280, box.clientWidth || 320), height: 220,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), TZ),
      legend: { show: false },
      series: [{}, { label: `${box.dataset.label} (${data.unit})`, stroke: "#1f4e79", fill: "rgba(31,78,121,.25)",
                     paths: uPlot.paths.bars({ size: [0.6] }) }],
      axes: [{ values: (u, splits) => splits.map((v) => MONTH.format(new Date(v * 1000))), space: 60 },
             { label: data.unit, size: 60 }],
    }, [xs, ys], box);
  }

  function usageCharts() {
    document.querySelectorAll("[data-meter]").forEach((box) => monthlyUsage(box));
  }

  return { usageCharts };
})();
