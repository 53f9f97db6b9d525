// Renders patrol rounds as a floor view: per round, checkpoints grouped by building and floor, each with its
// result, trust level and scan time. Shared by the guard page and the supervisor's live view.
(() => {
  const time = (iso) => iso ? new Date(iso).toLocaleTimeString("zh-CN", {timeZone: "Asia/Shanghai", hour12: false}) : "";
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c);
    return node;
  };

  function checkpoint(cp, texts) {
    const when = cp.scanned_at ? `${time(cp.scanned_at)} · ${texts[cp.trust] || ""}`
                               : `${texts.due} ${time(cp.due_from).slice(0, 5)}–${time(cp.due_until).slice(0, 5)}`;
    return el("li", {class: "patrol-cp", "data-testid": `cp-${cp.code}`, "data-result": cp.result,
                     "data-trust": cp.trust || "", "data-scanned-at": cp.scanned_at || ""},
              el("span", {}, cp.name, " ", el("small", {}, cp.location || "")),
              el("span", {}, el("strong", {}, texts[cp.result] || cp.result), " ", el("small", {}, when)));
  }

  function render(container, rounds, texts, buildings) {
    container.replaceChildren();
    if (!rounds.length) { container.append(el("p", {}, texts.no_rounds)); return; }
    for (const round of rounds) {
      const box = el("section", {class: "patrol-round", "data-testid": `round-${round.id}`},
                     el("h2", {}, `${round.route} · ${time(round.starts_at).slice(0, 5)}–${time(round.ends_at).slice(0, 5)}`));
      const floors = new Map();
      for (const cp of round.checkpoints) {
        const building = (buildings && buildings[cp.building_id]) || "";
        const floor = cp.floor === null ? "" : texts.floor_n.replace("{n}", cp.floor);
        const key = [building, floor].filter(Boolean).join(" · ");
        if (!floors.has(key)) floors.set(key, []);
        floors.get(key).push(cp);
      }
      for (const [floor, cps] of floors) {
        box.append(el("div", {class: "patrol-floor"}, el("h3", {}, floor),
                      el("ul", {class: "patrol-cps"}, ...cps.map((cp) => checkpoint(cp, texts)))));
      }
      container.append(box);
    }
  }

  window.PatrolRounds = {render};
})();
