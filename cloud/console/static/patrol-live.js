// The supervisor's live view: today's rounds, refreshed every 5 s.
(() => {
  const root = document.getElementById("patrol-live");
  const texts = JSON.parse(root.dataset.texts);
  const buildings = JSON.parse(root.dataset.buildings);
  async function refresh() {
    try {
      const response = await fetch(`/console/patrol/rounds.json?site_id=${root.dataset.site}`, {credentials: "same-origin"});
      if (response.ok) window.PatrolRounds.render(root, await response.json(), texts, buildings);
    } catch (err) {
      // offline for a moment: keep showing the last view, try again on the next tick
    }
  }
  refresh();
  setInterval(refresh, 5000);
})();
