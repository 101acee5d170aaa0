// The alert inbox: asks for alerts newer than the newest shown and inserts them, so that
// new alerts appear without reloading. Without this script the page has a refresh link.
(function () {
  "use strict";
  var live = document.getElementById("live-status");
  var body = document.getElementById("alerts-body");
  if (!live || !body || !window.fetch) { return; }
  var every = parseInt(live.getAttribute("data-refresh-ms"), 10) || 2000;
  var after = live.getAttribute("data-after") || "";
  var status = live.getAttribute("data-status") || "";
  var textNew = live.getAttribute("data-text-new") || "";
  var busy = false;

  function poll() {
    if (busy || document.hidden) { return; }
    busy = true;
    var url = "/api/alerts/rows?after=" + encodeURIComponent(after) + (status ? "&status=" + encodeURIComponent(status) : "");
    fetch(url, { credentials: "same-origin", headers: { "accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        Object.keys(data.counts || {}).forEach(function (code) {
          var badge = document.querySelector('[data-count="' + code + '"]');
          if (badge) { badge.textContent = data.counts[code]; }
        });
        if (data.count > 0) {
          var empty = document.getElementById("alerts-empty");
          if (empty) { empty.remove(); }
          body.insertAdjacentHTML("afterbegin", data.html);
          after = data.latest || after;
          live.textContent = textNew + " (" + data.count + ")";
        }
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { busy = false; });
  }
  setInterval(poll, every);
  document.addEventListener("visibilitychange", poll);
})();
