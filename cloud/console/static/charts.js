// Console charts: fetch the page's JSON and draw it with the vendored uPlot; refresh every 10 s.
"use strict";
const EH = (() => {
  const REFRESH_MS = 10000;
  const width = (el) => Math.max(320, el.clientWidth || 900);

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  }

  function meterPage(meterId, label) {
    const el = document.getElementById("usage-chart");
    let bucket = "day";
    let plot = null;
    async function draw() {
      const data = await getJSON(`/console/meters/${meterId}/usage.json?bucket=${bucket}`);
      if (data.latest) {
        document.querySelector("[data-testid=live-value]").textContent = data.latest.value.toFixed(2);
        document.querySelector("[data-testid=live-unit]").textContent = data.unit;
        document.querySelector("[data-testid=live-time]").textContent = data.latest.ts;
      }
      const xs = data.buckets.map((b) => b[0]);
      const ys = data.buckets.map((b) => b[1]);
      el.dataset.points = String(ys.filter((y) => y !== null && y > 0).length);
      document.querySelector("[data-testid=no-data]").hidden = xs.length > 0;
      if (plot) plot.destroy();
      plot = new uPlot({
        width: width(el), height: 320,
        series: [{}, { label: `${label} (${data.unit})`, stroke: "#1f4e79", fill: "rgba(31,78,121,.25)",
                       paths: uPlot.paths.bars({ size: [0.7] }) }],
        axes: [{}, { label: data.unit }],
      }, [xs, ys], el);
    }
    document.querySelectorAll("[data-bucket]").forEach((button) => button.addEventListener("click", () => {
      bucket = button.dataset.bucket;
      document.querySelectorAll("[data-bucket]").forEach((b) => b.classList.toggle("active", b === button));
      draw();
    }));
    draw();
    setInterval(draw, REFRESH_MS);
  }

  function equipmentPage(equipmentId) {
    const root = document.getElementById("telemetry");
    async function draw() {
      const data = await getJSON(`/console/equipment/${equipmentId}/telemetry.json`);
      root.replaceChildren();
      document.querySelector("[data-testid=no-data]").hidden = data.charts.length > 0;
      for (const chart of data.charts) {
        const box = document.createElement("div");
        box.className = "chart";
        box.dataset.point = chart.point;
        const live = chart.latest ? ` = ${chart.latest.value.toFixed(2)} (${chart.latest.ts})` : "";
        box.innerHTML = `<h3>${chart.point} <small>${chart.quantity}${live}</small></h3>`;
        root.appendChild(box);
        new uPlot({
          width: width(root), height: 200,
          series: [{}, { label: "min", stroke: "#9fb3c8" }, { label: "avg", stroke: "#1f4e79" }, { label: "max", stroke: "#9fb3c8" }],
        }, chart.series, box);
      }
    }
    draw();
    setInterval(draw, REFRESH_MS);
  }

  return { meterPage, equipmentPage };
})();
