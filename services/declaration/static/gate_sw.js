/* The gate console's service worker (scope /gate): the gate keeps working without network.
 *
 * It keeps, per venue the page asks for, a shell of the gate screen (/gate/<venue>/shell: no
 * personal data), the blank assisted form, their static assets, the address pickers' data and
 * the pass keys. Gate pages are fetched from the network first (they are no-store and carry
 * today's data); offline, the shell answers. An assisted form posted offline is queued in
 * IndexedDB with an idempotency key of its own (the CSRF token dropped) and the staff member is
 * taken back to the gate screen, which sends the queue when the network returns. */
/* global KhaibaoGateQueue */
importScripts("/static/declaration/gate_queue.js");

var CACHE = "khaibao-gate-v1";
var VENUE = /^\/gate\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(\/[a-z]+)?\/?$/;
var LAST = "/gate/";  /* cache entry: the id of the last venue kept (the installed app starts at /gate) */
var OFFLINE = "Không có mạng và trang này chưa được lưu trên thiết bị. / " +
  "No network, and this page has not been kept on this device.";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

function assets(html) {
  var found = [], pattern = /(?:href|src)="(\/static\/[^"]+)"/g, match;
  while ((match = pattern.exec(html))) { found.push(match[1].replace(/&amp;/g, "&")); }
  return found;
}

function keepVenue(venue) {
  var pages = [["/gate/" + venue + "/shell", "/gate/" + venue], ["/gate/" + venue + "/declare", "/gate/" + venue + "/declare"]];
  return caches.open(CACHE).then(function (cache) {
    return Promise.all(pages.map(function (page) {
      return fetch(page[0], { credentials: "same-origin", cache: "no-store", redirect: "manual" }).then(function (response) {
        if (response.status !== 200) { throw new Error("not signed in"); }
        return response.clone().text().then(function (html) {
          return cache.put(page[1], response).then(function () { return assets(html); });
        });
      });
    })).then(function (lists) {
      var urls = [].concat.apply(["/static/declaration/gate_queue.js", "/api/places/79.json", "/api/pass-keys"], lists);
      urls = urls.filter(function (url, i) { return urls.indexOf(url) === i; });
      return Promise.all(urls.map(function (url) {
        return fetch(url, { credentials: "same-origin" }).then(function (response) {
          if (response.ok) { return cache.put(url, response); }
        });
      }));
    }).then(function () { return cache.put(LAST, new Response(venue)); });
  });
}

self.addEventListener("message", function (event) {
  var data = event.data || {};
  if (data.type !== "keep-venue" || !/^[0-9a-f-]{36}$/.test(data.venue || "")) { return; }
  event.waitUntil(keepVenue(data.venue).then(function () {
    if (event.source) { event.source.postMessage({ type: "kept", venue: data.venue }); }
  }, function () {
    if (event.source) { event.source.postMessage({ type: "not-kept", venue: data.venue }); }
  }));
});

function offlinePage(venue, declare) {
  return caches.open(CACHE).then(function (cache) {
    if (venue) { return cache.match("/gate/" + venue + (declare ? "/declare" : "")); }
    return cache.match(LAST).then(function (last) {
      return last ? last.text().then(function (id) { return Response.redirect("/gate/" + id, 303); }) : null;
    });
  }).then(function (response) {
    return response || new Response(OFFLINE, { status: 503, headers: { "content-type": "text/plain; charset=utf-8" } });
  });
}

function newKey() {
  var bytes = self.crypto.getRandomValues(new Uint8Array(18));
  return "off" + Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
}

/* An assisted form posted: sent if the network answers, else kept on this device. */
function sendOrQueue(request, venue) {
  var copy = request.clone();
  return fetch(request).catch(function () {
    return copy.text().then(function (body) {
      var fields = new URLSearchParams(body);
      if ((fields.get("action") || "submit") !== "submit") { return offlinePage(venue, true); }
      fields.delete("csrf_token");
      fields.set("key", newKey());
      var names = [];
      for (var i = 0; i < 50; i++) {
        if (fields.get("p" + i + ".full_name")) { names.push(fields.get("p" + i + ".full_name")); }
      }
      return KhaibaoGateQueue.put("declarations", {
        key: fields.get("key"), venue: venue, body: fields.toString(), names: names, at: Date.now() / 1000
      }).then(function () { return Response.redirect("/gate/" + venue + "?queued=1", 303); });
    });
  });
}

function networkThenCache(request) {
  return fetch(request).then(function (response) {
    if (response.ok) {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { return cache.put(request, copy); });
    }
    return response;
  }).catch(function () {
    return caches.match(request, { ignoreSearch: true }).then(function (found) { return found || Response.error(); });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request, url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  var venue = VENUE.exec(url.pathname);
  if (request.mode === "navigate" && request.method === "POST" && venue && venue[2] === "/declare") {
    event.respondWith(sendOrQueue(request, venue[1]));
  } else if (request.mode === "navigate" && (venue || url.pathname === "/gate" || url.pathname === "/gate/")) {
    /* Offline, any other gate page falls back on a kept one: an ID card scanned (read by the
     * server) opens the blank assisted form, the rest the gate screen. */
    var declare = venue && (venue[2] === "/declare" || venue[2] === "/scan");
    event.respondWith(fetch(request).catch(function () { return offlinePage(venue && venue[1], declare); }));
  } else if (request.method !== "GET") {
    return;
  } else if (url.pathname.indexOf("/static/") === 0 || url.pathname.indexOf("/api/places/") === 0 ||
             url.pathname === "/api/pass-keys") {
    event.respondWith(networkThenCache(request));
  }
});
