/* The gate screen: verify personal QR codes in the browser (WebCrypto Ed25519 with the public
 * keys embedded in the page, no network needed), count the entry, keep entries and assisted
 * declarations made offline on this device (IndexedDB, gate_queue.js) until they can be sent,
 * each once (entries by their nonce, declarations by their idempotency key). The service worker
 * (/gate/sw.js) keeps this screen's shell so that it opens without network. Without WebCrypto
 * Ed25519 it asks the server; without this script the scan form posts to the server. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var gate = document.getElementById("gate");
  var form = document.getElementById("scan-form");
  if (!gate || !form) { return; }
  var input = form.elements.code;
  var venue = gate.getAttribute("data-venue");
  var keys = JSON.parse(gate.getAttribute("data-keys") || "{\"keys\":[]}").keys;
  var Q = window.KhaibaoGateQueue;
  var OLD_QUEUE = "khaibao.gate.queue." + venue;  /* entries kept by earlier versions (localStorage) */
  var COUNT = "khaibao.gate.count." + venue;      /* today's entries last heard from the server */
  var shell = gate.getAttribute("data-shell") === "1";
  var token = gate.getAttribute("data-csrf-token") || "";
  var imported = {};
  var box = document.getElementById("signal-box");
  var counter = document.getElementById("count-entries");
  var waiting = document.getElementById("count-waiting");
  var note = document.getElementById("offline-note");
  var sent = document.getElementById("sent");
  var refusedBox = document.getElementById("refused");

  function hex(text) {
    if (!/^([0-9A-F]{2})+$/.test(text)) { return null; }
    var out = new Uint8Array(text.length / 2);
    for (var i = 0; i < out.length; i++) { out[i] = parseInt(text.substr(i * 2, 2), 16); }
    return out;
  }
  function importKey(kid) {
    if (imported[kid]) { return imported[kid]; }
    var jwk = keys.filter(function (k) { return k.kid === kid; })[0];
    if (!jwk) { return Promise.resolve(null); }
    imported[kid] = window.crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x },
      { name: "Ed25519" }, false, ["verify"]);
    return imported[kid];
  }
  /* -> Promise of {outcome, result, id, expires} (outcome: valid | red | expired | forged) */
  function verifyLocally(text) {
    var parts = text.split(".");
    var forged = { outcome: "forged", offline: true };
    if (parts.length !== 6 || parts[0] !== "KB1" || ["G", "Y", "R"].indexOf(parts[3]) < 0 ||
        !/^\d+$/.test(parts[4]) || parts[2].length !== 32) { return Promise.resolve(forged); }
    var signature = hex(parts[5]), id = parts[2];
    if (!signature || !hex(id)) { return Promise.resolve(forged); }
    if (!keys.some(function (k) { return k.kid === parts[1]; })) { return Promise.resolve(forged); }
    var message = new TextEncoder().encode(parts.slice(0, 5).join("."));
    return importKey(parts[1]).then(function (key) {
      return window.crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
    }).then(function (ok) {
      if (!ok) { return forged; }
      var result = { G: "green", Y: "yellow", R: "red" }[parts[3]];
      var expires = Number(parts[4]);
      var uuid = id.toLowerCase().replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, "$1-$2-$3-$4-$5");
      var outcome = expires * 1000 < Date.now() ? "expired" : (result === "red" ? "red" : "valid");
      return { outcome: outcome, result: result, id: uuid, expires: expires, offline: true };
    });
  }
  function verifyOnServer(text) {
    return fetch(gate.getAttribute("data-verify-url"), {
      method: "POST", credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": gate.getAttribute("data-csrf-token") || "" },
      body: JSON.stringify({ code: text })
    }).then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (v) { return { outcome: v.outcome, result: v.result, id: v.declaration_id, expires: v.expires_at }; });
  }
  function verify(text) {
    if (!window.crypto || !window.crypto.subtle || !window.TextEncoder) { return verifyOnServer(text); }
    return verifyLocally(text).catch(function (error) {
      if (window.console) { window.console.warn("verified by the server:", error && error.message); }
      return verifyOnServer(text);
    });
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function show(found) {
    var kind = found.outcome === "valid" && found.result === "yellow" ? "yellow" : found.outcome;
    var template = document.getElementById("signal-" + kind);
    if (!template) { return; }
    var panel = template.content.firstElementChild.cloneNode(true);
    if (found.expires) {
      var d = new Date(found.expires * 1000);
      var until = panel.querySelector(".signal__until");
      until.textContent = until.getAttribute("data-label") + " " + pad(d.getHours()) + ":" + pad(d.getMinutes()) + " " +
        pad(d.getDate()) + "/" + pad(d.getMonth() + 1) + "/" + d.getFullYear();
    }
    if (found.id) {
      panel.querySelector(".signal__ref").textContent = "· " + found.id.replace(/-/g, "").slice(0, 8).toUpperCase();
      var link = panel.querySelector(".signal__case");
      if (link) { link.setAttribute("href", link.getAttribute("href").split("?")[0] + "?declaration=" + found.id); }
    }
    panel.setAttribute("data-checked", found.offline ? "browser" : "server");
    box.innerHTML = "";
    box.appendChild(panel);
  }

  /* ---- the queue: entries and assisted declarations, sent at once or when the network is back ---- */
  function nonce() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, "$1-$2-$3-$4-$5");
  }
  function today() { var d = new Date(); return d.getFullYear() + "-" + (d.getMonth() + 1) + "-" + d.getDate(); }
  function lastCount() {
    try {
      var known = JSON.parse(localStorage.getItem(COUNT) || "null");
      return known && known.day === today() ? known.entries : 0;
    } catch (e) { return 0; }
  }
  function serverCount(n) {
    try { localStorage.setItem(COUNT, JSON.stringify({ day: today(), entries: n })); } catch (e) { /* full */ }
  }
  function pending() {
    return Promise.all([Q.all("entries", venue), Q.all("declarations", venue)]).then(function (lists) {
      return { entries: lists[0], declarations: lists[1].filter(function (d) { return !d.refused; }),
               refused: lists[1].filter(function (d) { return d.refused; }) };
    });
  }
  var base = Number(counter.textContent);  /* today's entries the server had counted */
  function refresh() {
    return pending().then(function (p) {
      var n = p.entries.length + p.declarations.length;
      counter.textContent = String(base + p.entries.length);
      waiting.textContent = String(n);
      note.hidden = n === 0 && !note.getAttribute("data-signed-out");
      note.setAttribute("data-entries", String(p.entries.length));
      note.setAttribute("data-declarations", String(p.declarations.length));
      if (!note.getAttribute("data-signed-out")) {
        note.textContent = gate.getAttribute("data-offline-label").replace("{entries}", p.entries.length)
          .replace("{declarations}", p.declarations.length);
      }
      showRefused(p.refused);
      if (!p.declarations.length && !sent.hidden) { document.getElementById("queued-note").hidden = true; }
      return p;
    });
  }
  function post(url, body, type) {
    return fetch(url, { method: "POST", credentials: "same-origin", body: body,
      headers: { "content-type": type, "accept": "application/json", "x-csrf-token": token } });
  }
  function SignedOut() { this.name = "SignedOut"; }
  function signedOut() {
    note.setAttribute("data-signed-out", "1");
    note.classList.add("flash", "flash--warning");
    note.hidden = false;
    note.innerHTML = "";
    var link = document.createElement("a");
    link.href = "/gate/" + venue;
    link.textContent = gate.getAttribute("data-signin-label");
    note.appendChild(document.createTextNode(gate.getAttribute("data-signed-out-label") + " "));
    note.appendChild(link);
    return new SignedOut();
  }
  function freshToken() {  /* the token of the present sign-in (the shell's may be older) */
    return fetch(gate.getAttribute("data-session-url"), { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401 || r.status === 403 || r.redirected) { throw signedOut(); }
        if (!r.ok) { throw new Error(String(r.status)); }
        return r.json();
      }).then(function (session) {
        token = session.csrf_token;
        note.removeAttribute("data-signed-out");
        note.classList.remove("flash", "flash--warning");
      });
  }
  function sendEntries(entries) {
    if (!entries.length) { return Promise.resolve(); }
    var batch = entries.slice(0, 500);
    return post(gate.getAttribute("data-entries-url"), JSON.stringify({ venue_id: venue, entries: batch.map(function (e) {
      return { nonce: e.nonce, declaration_id: e.declaration_id, result: e.result, at: e.at };
    }) }), "application/json").then(function (r) {
      if (r.status === 401) { throw signedOut(); }
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.json();
    }).then(function (counts) {
      return Q.remove("entries", batch.map(function (e) { return e.nonce; })).then(function () {
        base = counts.entries; serverCount(base);
        return sendEntries(entries.slice(500));
      });
    });
  }
  function showSent(item, answer) {
    var labels = JSON.parse(sent.getAttribute("data-labels") || "{}");
    sent.hidden = false;
    answer.declarations.forEach(function (d, i) {
      var li = document.createElement("li");
      li.className = "sent-result sent-result--" + d.result;
      li.setAttribute("data-result", d.result);
      li.textContent = (item.names[i] || "") + " · " + (labels[d.result] || d.result) + " · " +
        sent.getAttribute("data-ref-label") + " " + d.ref;
      sent.querySelector("ul").appendChild(li);
    });
  }
  function sendDeclarations(list) {
    return list.reduce(function (chain, item) {
      return chain.then(function () {
        var fields = [];
        new URLSearchParams(item.body).forEach(function (value, name) { fields.push([name, value]); });
        return post("/api/gate/" + venue + "/declarations", JSON.stringify({ fields: fields }), "application/json").then(function (r) {
          return r.json().catch(function () { return {}; }).then(function (answer) {
            if (r.ok) {
              return Q.remove("declarations", [item.key]).then(function () {
                showSent(item, answer);
                if (answer.counts) {
                  base = answer.counts.entries; serverCount(base);
                  ["green", "yellow", "red"].forEach(function (c) {
                    var tile = document.getElementById("count-" + c);
                    if (tile) { tile.textContent = String(answer.counts[c]); }
                  });
                }
              });
            }
            if (r.status === 401) { throw signedOut(); }
            if (r.status >= 500 || r.status === 429 || r.status === 403) { throw new Error(String(r.status)); }
            item.refused = answer.title || String(r.status);  /* kept, marked, until the staff deletes it */
            return Q.put("declarations", item);
          });
        });
      });
    }, Promise.resolve());
  }
  function showRefused(list) {
    refusedBox.hidden = list.length === 0;
    var ul = refusedBox.querySelector("ul");
    ul.innerHTML = "";
    list.forEach(function (item) {
      var li = document.createElement("li");
      li.textContent = item.names.join(", ") + ": " + item.refused + " ";
      var button = document.createElement("button");
      button.type = "button"; button.className = "button button--secondary";
      button.textContent = refusedBox.getAttribute("data-delete-label");
      button.addEventListener("click", function () { Q.remove("declarations", [item.key]).then(refresh); });
      li.appendChild(button);
      ul.appendChild(li);
    });
  }
  var flushing = null;
  function flush() {
    if (flushing) { return flushing; }
    flushing = pending().then(function (p) {
      if (!p.entries.length && !p.declarations.length) { return null; }
      return freshToken().then(function () { return sendEntries(p.entries); })
        .then(function () { return sendDeclarations(p.declarations); });
    }).catch(function (error) {
      if (window.console && !(error instanceof SignedOut)) { window.console.warn("kept on this device:", error && error.message); }
    }).then(function () { flushing = null; return refresh(); });
    return flushing;
  }
  function admit(found) {
    return Q.put("entries", { nonce: nonce(), venue: venue, declaration_id: found ? found.id : null,
                              result: found ? found.result : "manual", at: Date.now() / 1000 })
      .then(refresh).then(flush);
  }
  function adopt() {  /* entries an earlier version kept in localStorage */
    var old;
    try { old = JSON.parse(localStorage.getItem(OLD_QUEUE) || "[]"); } catch (e) { old = []; }
    if (!old.length) { return Promise.resolve(); }
    return Promise.all(old.map(function (e) { return Q.put("entries", Object.assign({ venue: venue }, e)); }))
      .then(function () { localStorage.removeItem(OLD_QUEUE); });
  }

  /* ---- the service worker: this screen opens and works without network ---- */
  function keepOffline() {
    if (!("serviceWorker" in navigator)) { return; }
    navigator.serviceWorker.addEventListener("message", function (event) {
      if (event.data && event.data.type === "kept" && event.data.venue === venue) {
        document.documentElement.setAttribute("data-offline-ready", "1");
      }
    });
    navigator.serviceWorker.register(gate.getAttribute("data-sw-url"), { scope: "/gate" }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      if (shell) { document.documentElement.setAttribute("data-offline-ready", "1"); return; }
      registration.active.postMessage({ type: "keep-venue", venue: venue });
    }).catch(function (error) {
      if (window.console) { window.console.warn("no offline copy:", error && error.message); }
    });
  }

  form.addEventListener("submit", function (event) {
    var text = input.value.replace(/\s+/g, "").toUpperCase();
    if (text.indexOf("KB1.") !== 0) { return; }  /* an ID card: the server opens the prefilled form */
    event.preventDefault();
    input.value = "";
    verify(text).then(function (found) {
      show(found);
      if (found.outcome === "valid") { admit(found); }
    }).catch(function () {
      input.value = text;
      form.submit();  /* neither the browser nor the API could say: let the page do it */
    }).then(function () { input.focus(); });
  });
  var entryForm = document.getElementById("entry-form");
  if (entryForm) {
    entryForm.addEventListener("submit", function (event) {
      event.preventDefault();
      admit(null);
    });
  }
  if (shell) { base = Math.max(base, lastCount()); } else { serverCount(base); }
  if (/[?&]queued=1/.test(window.location.search)) {
    var queuedNote = document.getElementById("queued-note");
    queuedNote.classList.add("flash", "flash--success");  /* only when shown: pages look for one success flash */
    queuedNote.hidden = false;
    window.history.replaceState(null, "", window.location.pathname);
  }
  window.addEventListener("online", flush);
  window.setInterval(flush, 10000);
  if (Q) { adopt().then(refresh).then(flush); }
  keepOffline();
  input.focus();
}());
