// Finance pages: the bill-run progress bar polls the run until it is done, then shows the finished page.
"use strict";
const Finance = (() => {
  const POLL_MS = 1000;

  function followRun(box) {
    if (!box || box.dataset.state !== "running") return;
    const bar = box.querySelector(".bar");
    const label = box.querySelector("[data-testid=progress-text]");
    async function poll() {
      const response = await fetch(`/console/finance/runs/${box.dataset.run}/progress.json`,
                                   { credentials: "same-origin" });
      if (!response.ok) return setTimeout(poll, POLL_MS * 5);
      const run = await response.json();
      const share = run.units_total ? run.units_done / run.units_total : 0;
      bar.style.width = `${Math.round(100 * share)}%`;
      label.textContent = `${run.units_done}/${run.units_total}`;
      if (run.state === "running") setTimeout(poll, POLL_MS);
      else window.location.reload();
    }
    poll();
  }

  return { followRun };
})();
