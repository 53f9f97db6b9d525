// Technician page: live updates. Listens to the user's notification stream (server-sent events, with the
// session cookie) and, when a ticket is assigned or offered, shows a banner and refreshes the ticket list.
"use strict";
(() => {
  const page = document.getElementById("tech-page");
  if (!page || !window.EventSource) return;
  const banner = document.querySelector("[data-testid=live-banner]");
  const list = document.querySelector("[data-testid=my-tickets]");

  async function refresh() {
    const response = await fetch(location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const replacement = fresh.querySelector("[data-testid=my-tickets]");
    if (replacement) list.replaceChildren(...replacement.childNodes);
  }

  const stream = new EventSource(page.dataset.stream);
  stream.addEventListener("notification", (event) => {
    const note = JSON.parse(event.data);
    if (!note.kind || !note.kind.startsWith("ticket.")) return;
    banner.hidden = false;
    banner.dataset.kind = note.kind;
    refresh();
  });
})();
