// The guard app's service worker: keeps the page shell so the app opens without signal. Scans and round data
// are never cached here: scans queue in the page, rounds show what was last loaded.
const CACHE = "eh-patrol-v1";
const SHELL = ["/console/patrol/guard", "/console/static/patrol.js", "/console/static/patrol-rounds.js",
               "/console/static/patrol.css", "/console/static/console.css", "/console/static/patrol.webmanifest",
               "/console/static/patrol-icon.svg"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || !SHELL.includes(url.pathname)) return;
  // network first, so a new version is picked up at once; the cached shell when there is no signal
  event.respondWith(fetch(event.request)
    .then((response) => {
      if (response.ok) { const copy = response.clone(); caches.open(CACHE).then((cache) => cache.put(url.pathname, copy)); }
      return response;
    })
    .catch(() => caches.match(url.pathname)));
});
