// The guard's patrol app. Online: fetch a challenge, post the scan (normal trust). Offline (no signal, or the
// request fails on the network): queue the scan in localStorage with the phone's time and a unique reference,
// and sync the queue when the connection returns (stored once each, with their own times, low trust).
(() => {
  const root = document.getElementById("patrol-guard");
  const siteId = Number(root.dataset.site);
  const texts = JSON.parse(root.dataset.texts);
  const buildings = JSON.parse(root.dataset.buildings);
  const QUEUE = `eh-patrol-queue-${siteId}`;
  const $ = (id) => document.getElementById(id);

  const queue = () => JSON.parse(localStorage.getItem(QUEUE) || "[]");
  const save = (items) => { localStorage.setItem(QUEUE, JSON.stringify(items)); $("patrol-queue").textContent = items.length; };
  const say = (text, kind) => { const s = $("patrol-status"); s.textContent = text; s.dataset.kind = kind || ""; };
  const ref = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2, 12)}`);

  async function post(path, body) {
    return fetch(`/console/patrol/${path}`, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  }

  async function detail(response) {
    try { const body = await response.json(); return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail); }
    catch (err) { return response.statusText; }
  }

  function enqueue(code, when) {
    save([...queue(), {code, scanned_at: when.toISOString(), client_ref: ref()}]);
    say(texts.queued, "queued");
  }

  function fillCheckpoints(rounds) {
    const select = document.querySelector("#patrol-exception select");
    const chosen = select.value;
    const seen = new Map();
    for (const round of rounds) for (const cp of round.checkpoints) seen.set(String(cp.checkpoint_id), cp.name);
    select.replaceChildren(...[...seen].map(([id, name]) => new Option(name, id, false, id === chosen)));
  }

  async function refresh() {
    try {
      const response = await fetch(`/console/patrol/rounds.json?site_id=${siteId}`, {credentials: "same-origin"});
      if (!response.ok) return;
      const rounds = await response.json();
      window.PatrolRounds.render($("patrol-rounds"), rounds, texts, buildings);
      fillCheckpoints(rounds);
    } catch (err) {
      // no signal: the last view stays
    }
  }

  async function scan(code) {
    const when = new Date();
    if (!navigator.onLine) { enqueue(code, when); return; }
    try {
      const challenge = await post("challenge", {site_id: siteId});
      if (!challenge.ok) { say(`${texts.rejected}: ${await detail(challenge)}`, "rejected"); return; }
      const {nonce} = await challenge.json();
      const response = await post("scan", {code, nonce});
      if (!response.ok) { say(`${texts.rejected}: ${await detail(response)}`, "rejected"); return; }
      const result = await response.json();
      say(`${texts[result.result] || result.flag || ""} · ${texts[result.trust]}`, "ok");
      refresh();
    } catch (err) {
      enqueue(code, when);  // the request never reached the hub
    }
  }

  let syncing = false;
  async function sync() {
    const pending = queue();
    if (syncing || !pending.length || !navigator.onLine) return;
    syncing = true;
    try {
      const response = await post("sync", {site_id: siteId, scans: pending});
      if (!response.ok) { say(`${texts.rejected}: ${await detail(response)}`, "rejected"); return; }
      const results = await response.json();
      const done = new Set(results.map((r) => r.client_ref));
      save(queue().filter((item) => !done.has(item.client_ref)));
      const refused = results.filter((r) => r.rejected);
      say(refused.length ? `${texts.rejected}: ${refused.map((r) => r.rejected).join("; ")}` : texts.synced,
          refused.length ? "rejected" : "synced");
      refresh();
    } catch (err) {
      // still no way through: the queue stays for the next try
    } finally {
      syncing = false;
    }
  }

  $("patrol-scan").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("patrol-code");
    const code = input.value.trim();
    input.value = "";
    if (code) scan(code);
  });

  $("patrol-exception").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const status = $("patrol-exception-status");
    if (!navigator.onLine) { status.textContent = texts.exception_needs_signal; return; }
    const data = new FormData(form);
    if (!form.dataset.ref) form.dataset.ref = ref();  // one reference per report, kept across retries
    data.set("client_ref", form.dataset.ref);
    if (!data.get("photo") || !data.get("photo").size) data.delete("photo");
    try {
      const response = await fetch("/console/patrol/exception", {method: "POST", credentials: "same-origin", body: data});
      if (!response.ok) { status.textContent = `${texts.rejected}: ${await detail(response)}`; return; }
      status.textContent = `${texts.exception_sent} #${(await response.json()).ticket_id}`;
      form.reset();
      delete form.dataset.ref;
    } catch (err) {
      status.textContent = texts.exception_needs_signal;
    }
  });

  // Camera scanning where the browser has a barcode detector (Chrome on Android); otherwise type or use a
  // Bluetooth scanner, which types into the field.
  if ("BarcodeDetector" in window && navigator.mediaDevices) {
    const button = $("patrol-camera");
    button.hidden = false;
    button.addEventListener("click", async () => {
      const video = $("patrol-video");
      const stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: "environment"}});
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      const detector = new window.BarcodeDetector({formats: ["qr_code"]});
      const look = async () => {
        const found = await detector.detect(video);
        if (found.length) {
          stream.getTracks().forEach((t) => t.stop());
          video.hidden = true;
          scan(found[0].rawValue);
        } else {
          requestAnimationFrame(look);
        }
      };
      look();
    });
  }

  window.addEventListener("online", sync);
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/console/patrol/sw.js", {scope: "/console/patrol/"});
  save(queue());
  refresh();
  sync();
  setInterval(() => { sync(); refresh(); }, 15000);
})();
